"""Low-level socket operations: sock_recv, sock_sendall, sock_connect, ...,
getaddrinfo and getnameinfo.

sock_recv, sock_recv_into, sock_sendall, sock_recvfrom,
sock_recvfrom_into, sock_sendto, sock_accept and sock_connect (to an
address that needs no resolving) are rloop's own: native coroutines whose
try and wait are in Rust (src/sock_coro.rs, src/sock_recv.rs,
src/sock_send.rs, src/sock_call.rs). The others (sendfile, and a
sock_connect whose address needs resolving, or with a connect fault set)
are asyncio's own loop-agnostic implementations, taken from the stdlib at
import time: they only need add_reader/add_writer returning handles,
create_future and the transport-fd check, which the Rust core provides.
"""

from __future__ import annotations

import asyncio
import collections.abc
import socket
from asyncio import base_events, selector_events
from typing import Any

from ._rloop import sock_coroutine as _sock_coroutine
from .borrow import borrow, documented
from .faults import connect_fault
from .sendfile import sendfile_native
from .versions import mark_coroutine_function

_SELECTOR = selector_events.BaseSelectorEventLoop
_BASE = base_events.BaseEventLoop

#: asyncio's sock_connect, for the connects rloop leaves to it.
_STOCK_SOCK_CONNECT = _SELECTOR.sock_connect

#: The families asyncio resolves the address of before it connects.
_IP_FAMILIES = (
    (socket.AF_INET, socket.AF_INET6) if base_events._HAS_IPv6 else (socket.AF_INET,)
)


def _address_as_is(sock: socket.socket, address: Any) -> Any:
    """The address sock_connect connects `sock` to, when finding it needs
    no name resolution (asyncio's ``_ensure_resolved`` would return it at
    once: a numeric host, or a family that has no names); None when it does,
    or when working it out fails (asyncio's coroutine then raises the error,
    when it is awaited)."""
    try:
        family = sock.family
        if family not in _IP_FAMILIES:
            return address
        host, port = address[:2]
        info = base_events._ipaddr_info(host, port, family, sock.type, sock.proto, *address[2:])
    except Exception:  # noqa: BLE001 - asyncio's coroutine raises it
        return None
    return None if info is None else info[4]


class SocketsMixin:
    locals().update(
        borrow(
            _SELECTOR,
            [
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

    def sock_connect(self, sock: socket.socket, address: Any) -> Any:
        """Connect `sock` (non-blocking) to the remote socket at `address`, as
        asyncio does: a host name is resolved with getaddrinfo() first.

        A connect that needs no name resolution (and no connect fault is
        set) is a native coroutine (src/sock_call.rs); the others are
        asyncio's."""
        if not self._connect_faults:  # type: ignore[attr-defined]
            resolved = _address_as_is(sock, address)
            if resolved is not None:
                return self._sock_connect_native(sock, resolved)  # type: ignore[attr-defined]
        return _STOCK_SOCK_CONNECT(self, sock, address)

    mark_coroutine_function(sock_connect)

    # Every connect asyncio's code makes (create_connection, sock_connect, ...)
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
