"""Low-level socket operations: sock_recv, sock_sendall, sock_connect, ...,
getaddrinfo and getnameinfo.

sock_recv, sock_recv_into, sock_sendall, sock_recvfrom,
sock_recvfrom_into, sock_sendto and sock_accept are rloop's own: native
coroutines whose try and wait are in Rust (src/sock_coro.rs,
src/sock_recv.rs, src/sock_send.rs, src/sock_call.rs). The others
(sock_connect, which resolves its address with an await of getaddrinfo
and runs once per connection, and sendfile) are asyncio's own
loop-agnostic implementations, taken from the stdlib at import time: they
only need add_reader/add_writer returning handles, create_future and the
transport-fd check, which the Rust core provides.
"""

from __future__ import annotations

import asyncio
import collections.abc
import socket
from asyncio import base_events, selector_events

from ._rloop import sock_coroutine as _sock_coroutine
from .borrow import borrow, documented
from .faults import connect_fault
from .sendfile import sendfile_native

_SELECTOR = selector_events.BaseSelectorEventLoop
_BASE = base_events.BaseEventLoop


class SocketsMixin:
    locals().update(
        borrow(
            _SELECTOR,
            [
                "sock_connect",
                "_sock_connect_cb",
                "_sock_read_done",
                "_sock_write_done",
            ],
        )
    )
    locals().update(
        borrow(
            _BASE,
            [
                "_getaddrinfo_debug",
                "_ensure_resolved",
                "_connect_sock",
                "_create_connection_transport",
                "_create_server_getaddrinfo",
                "sendfile",
                "_sendfile_fallback",
                "_sock_sendfile_native",
                "_sock_sendfile_fallback",
                "_check_sendfile_params",
            ],
        )
    )

    # Every connect the loop makes (create_connection, sock_connect, ...)
    # passes here: a connect_error toxic (faults.py) fails it as the
    # connect() call would have.
    _asyncio_sock_connect = _SELECTOR._sock_connect

    def _sock_connect(self, fut: asyncio.Future[None], sock: socket.socket, address: object) -> None:
        if self._connect_faults:  # type: ignore[attr-defined]
            err = connect_fault(self, address)
            if err is not None:
                fut.set_exception(err)
                return
        self._asyncio_sock_connect(fut, sock, address)

    getaddrinfo = documented(
        _BASE.getaddrinfo,
        """Resolve host and port into a list of addresses, as socket.getaddrinfo()
        does (in the default executor).

        Each entry is (family, type, proto, canonname, sockaddr).""",
    )
    getnameinfo = documented(
        _BASE.getnameinfo,
        """Translate the socket address `sockaddr` into (host, port), as
        socket.getnameinfo() does (in the default executor).""",
    )
    sock_sendfile = documented(
        _BASE.sock_sendfile,
        """Send the file `file` (opened in binary mode) over the connected socket
        `sock`, from `offset`, `count` bytes or to the end; return the number
        of bytes sent.

        The file is read and sent with sock_sendall(); with fallback=False,
        which asks for os.sendfile(), SendfileNotAvailableError is raised.""",
    )

    # loop.sendfile() above is asyncio's; sending natively is rloop's own.
    _sendfile_native = sendfile_native


# The native coroutines pass asyncio.iscoroutine() (create_task takes them),
# as Cython's do once registered.
collections.abc.Coroutine.register(_sock_coroutine)
