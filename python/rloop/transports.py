"""The transport protocols see: an ``asyncio.Transport`` whose methods are
those of the Rust handle of the connection actor (``_rloop.SocketTransport``).

The hot methods are bound on each instance, so a call goes straight to Rust
with no Python frame in between; the rest delegate through the class.
"""

from __future__ import annotations

import asyncio
from typing import Any

# Bound per instance: the calls a protocol makes per message or per request.
_HOT = (
    "write",
    "writelines",
    "is_closing",
    "get_extra_info",
    "pause_reading",
    "resume_reading",
    "is_reading",
    "get_write_buffer_size",
    "close",
)


class SocketTransport(asyncio.Transport):
    """A TCP or Unix stream transport of rloop (made by the loop, not by users)."""

    def __init__(self, core: Any) -> None:
        # asyncio.BaseTransport's only state is the extra dict, which lives
        # in Rust: nothing to initialise on the Python side but the methods.
        self._core = core
        for name in _HOT:
            setattr(self, name, getattr(core, name))

    def write_eof(self) -> None:
        self._core.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        self._core.abort()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._core.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._core.get_write_buffer_limits()  # type: ignore[no-any-return]

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._core.get_protocol()  # type: ignore[no-any-return]

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._core.set_protocol(protocol)

    def _inject_fault(self, **plan: Any) -> bool:
        """Test-only: make the connection's actor panic or fail (see the Rust docs)."""
        return self._core._inject_fault(**plan)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return repr(self._core)
