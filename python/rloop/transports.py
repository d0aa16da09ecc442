"""The transport protocols see: an ``asyncio.Transport`` whose methods are
those of the Rust handle of the connection actor (``_rloop.SocketTransport``).

The frequent methods are C method descriptors of the class
(src/transport/face.rs), which read the handle from the ``_core`` slot, so
a call goes straight to Rust with no Python frame in between and nothing
is kept per connection but the instance; the rest delegate through the
class.
"""

from __future__ import annotations

import asyncio
import math
import sys
from asyncio import constants, transports
from typing import Any

from ._rloop import transport_methods


class SocketTransport(transports._FlowControlMixin):
    """A TCP or Unix stream transport of rloop (made by the loop, not by users).

    Flow control lives in the Rust actor; the asyncio base class (a
    Transport with flow control) is for code that checks the type, such as
    asyncio's own sendfile fallback (used when the file cannot be sent
    natively).
    """

    # loop.sendfile() sends the file with sendfile(2) in the actor
    # (python/rloop/sendfile.py); write() and writelines() raise meanwhile.
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE
    # loop.start_tls may put asyncio's SSLProtocol in front of this one.
    _start_tls_compatible = True

    # The handle sits at a fixed place in the instance, where the native
    # methods read it (src/transport/face.rs); a dict and weak references
    # as a class without slots would have (`_loop` is asyncio's slot).
    __slots__ = ("__dict__", "__weakref__", "_core")

    def __init__(self, core: Any) -> None:
        # The extra dict, buffers and limits live in Rust: nothing to
        # initialise on the Python side but the loop and the methods.
        self._core = core
        self._loop = core.get_loop()

    @property
    def _protocol_paused(self) -> bool:
        return self._core._protocol_paused()  # type: ignore[no-any-return]

    def write_eof(self) -> None:
        """Close the write end once the buffered data is sent; reading goes on."""
        self._core.write_eof()

    def can_write_eof(self) -> bool:
        """Return True: stream transports support write_eof()."""
        return True

    def abort(self) -> None:
        """Close the transport at once, dropping buffered data."""
        self._core.abort()

    def _force_close(self, exc: BaseException | None) -> None:
        """asyncio's private form, called by its SSLProtocol when TLS fails."""
        self._core._force_close(exc)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the write buffer's high- and low-water marks (flow control), in bytes."""
        self._core.set_write_buffer_limits(*_water_marks(high, low))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """Return the write buffer's (low, high) water marks, in bytes."""
        return self._core.get_write_buffer_limits()  # type: ignore[no-any-return]

    def get_protocol(self) -> asyncio.BaseProtocol:
        """Return the transport's protocol."""
        return self._core.get_protocol()  # type: ignore[no-any-return]

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Make `protocol` the transport's protocol."""
        self._core.set_protocol(protocol)

    def _io_counts(self) -> tuple[int, int]:
        """(bytes received, bytes sent) by the socket so far, or in all once
        the connection has ended (read by rloop.drain)."""
        return self._core._io_counts()  # type: ignore[no-any-return]

    def _inject_fault(self, **plan: Any) -> bool:
        """Test-only: make the connection's actor panic or fail (see the Rust docs)."""
        return self._core._inject_fault(**plan)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return repr(self._core)


# write, is_closing, writelines, get_extra_info, pause_reading,
# resume_reading, is_reading, get_write_buffer_size and close: forwarded to
# the handle.
transport_methods(SocketTransport)


def _water_marks(high: Any, low: Any) -> tuple[int, int]:
    """(high, low) by asyncio's rules: the defaults, the check, and the
    exceptions of its own arithmetic for what is not a number. The buffer
    size is a whole number, so a fractional mark is its floor."""
    if high is None:
        high = _DEFAULT_HIGH_WATER if low is None else 4 * low
    if low is None:
        low = high // 4
    if not high >= low >= 0:
        raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
    return min(math.floor(high), sys.maxsize), min(math.floor(low), sys.maxsize)


_DEFAULT_HIGH_WATER = 64 * 1024
