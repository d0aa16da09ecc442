"""create_datagram_endpoint and the UDP transport it makes.

These are asyncio's own implementations (base_events' endpoint setup and
selector_events' datagram transport), taken from the stdlib at import
time. The transport needs from its loop what a selector loop has: the
private _add_reader/_remove_reader/_add_writer/_remove_writer (from the
Rust core), a ``_transports`` table of the fds transports own, and, for
its repr, a ``_selector`` that can say what an fd is watched for.
"""

from __future__ import annotations

import selectors
import weakref
from asyncio import base_events, selector_events
from typing import Any, NamedTuple

from .borrow import borrow


class _Key(NamedTuple):
    fd: int
    events: int


class _WatchedFds:
    """The one selector method asyncio's transports call: get_key(fd)."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop

    def get_key(self, fd: int) -> _Key:
        read, write = self._loop._fd_watched(fd)
        events = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
        if not events:
            raise KeyError(fd)
        return _Key(fd, events)


class DatagramsMixin:
    locals().update(borrow(base_events.BaseEventLoop, ["create_datagram_endpoint"]))
    locals().update(borrow(selector_events.BaseSelectorEventLoop, ["_make_datagram_transport"]))

    def __init__(self) -> None:
        # fd -> transport, as a selector loop keeps it; only Python-level
        # transports (UDP) are here, TCP and Unix ones are the core's.
        self._transports: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()

    @property
    def _selector(self) -> _WatchedFds | None:
        """None once the loop is closed, as a selector loop's."""
        return None if self.is_closed() else _WatchedFds(self)  # type: ignore[attr-defined]
