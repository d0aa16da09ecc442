"""Low-level socket operations: sock_recv, sock_sendall, sock_connect, ...,
getaddrinfo and getnameinfo.

These are asyncio's own loop-agnostic implementations, taken from the stdlib
at import time: they only need add_reader/add_writer returning handles,
create_future and the transport-fd check, which the Rust core provides.
"""

from __future__ import annotations

from asyncio import base_events, selector_events
from typing import Any

_SELECTOR = selector_events.BaseSelectorEventLoop
_BASE = base_events.BaseEventLoop


def _borrow(cls: type, names: list[str]) -> dict[str, Any]:
    return {name: cls.__dict__[name] for name in names if name in cls.__dict__}


class SocketsMixin:
    locals().update(
        _borrow(
            _SELECTOR,
            [
                "sock_recv",
                "_sock_recv",
                "sock_recv_into",
                "_sock_recv_into",
                "sock_recvfrom",
                "_sock_recvfrom",
                "sock_recvfrom_into",
                "_sock_recvfrom_into",
                "sock_sendall",
                "_sock_sendall",
                "sock_sendto",
                "_sock_sendto",
                "sock_connect",
                "_sock_connect",
                "_sock_connect_cb",
                "sock_accept",
                "_sock_accept",
                "_sock_read_done",
                "_sock_write_done",
            ],
        )
    )
    locals().update(
        _borrow(
            _BASE,
            [
                "getaddrinfo",
                "getnameinfo",
                "_getaddrinfo_debug",
                "_ensure_resolved",
                "_connect_sock",
                "_create_connection_transport",
                "_create_server_getaddrinfo",
                "sendfile",
                "_sendfile_native",
                "_sendfile_fallback",
                "sock_sendfile",
                "_sock_sendfile_native",
                "_sock_sendfile_fallback",
                "_check_sendfile_params",
            ],
        )
    )
