"""RLoop: the Rust loop core on mio, with asyncio's cold paths added here."""

from __future__ import annotations

import asyncio
import warnings
from typing import TYPE_CHECKING, Any

from ._rloop import BaseEventLoop as LoopCore
from .asyncgens import AsyncGenMixin
from .connections import ConnectionsMixin
from .datagrams import DatagramsMixin
from .executor import ExecutorMixin
from .pipes import PipesMixin
from .server import ServersMixin
from .signals import SignalMixin
from .signatures import adopt_asyncio_signatures
from .sockets import SocketsMixin
from .subprocesses import SubprocessMixin
from .versions import debug_mode_requested

if TYPE_CHECKING:
    from typing import Self


def _stop_loop_when_done(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        exc = fut.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            # run_forever() is already unwinding with this exception.
            return
    fut.get_loop().stop()


class LoopBase(
    # The Rust core comes first: every call of one of its methods checks
    # that `self` is an instance of it, walking the instance type's MRO
    # until it meets the core, and that walk is short this way.
    LoopCore,
    ServersMixin,
    ConnectionsMixin,
    SocketsMixin,
    DatagramsMixin,
    PipesMixin,
    SubprocessMixin,
    ExecutorMixin,
    AsyncGenMixin,
    SignalMixin,
    asyncio.AbstractEventLoop,
):
    """What RLoop and TokioLoop share on the Python side."""

    def __init__(self) -> None:
        # As asyncio's loops: python -X dev or PYTHONASYNCIODEBUG start it in debug mode.
        if debug_mode_requested():
            self.set_debug(True)
        ServersMixin.__init__(self)
        # connect_error rules of fault plans applied to this loop (faults.py).
        self._connect_faults: list[Any] = []
        DatagramsMixin.__init__(self)
        SubprocessMixin.__init__(self)
        ExecutorMixin.__init__(self)
        AsyncGenMixin.__init__(self)
        SignalMixin.__init__(self)

    # asyncio's formatting and logging of an error context, which reads only
    # the context and ``self._current_handle`` (provided by the core).
    default_exception_handler = asyncio.BaseEventLoop.default_exception_handler

    def run_until_complete(self, future: Any) -> Any:
        """Run the loop until `future` (a future, task or coroutine) is done;
        return its result or raise its exception."""
        self._check_closed()
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if asyncio.events._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")
        wrapped = not asyncio.isfuture(future)
        fut = asyncio.ensure_future(future, loop=self)
        if wrapped:
            # A task made here is ours: don't warn if it is destroyed pending.
            fut._log_destroy_pending = False  # type: ignore[attr-defined]
        fut.add_done_callback(_stop_loop_when_done)
        try:
            self.run_forever()
        except BaseException:
            if wrapped and fut.done() and not fut.cancelled():
                # The exception is re-raised below; mark it retrieved.
                fut.exception()
            raise
        finally:
            fut.remove_done_callback(_stop_loop_when_done)
        if not fut.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return fut.result()

    def close(self) -> None:
        """Close the loop: drop what is scheduled, end every connection, shut the
        default executor down without waiting. The loop must not be running."""
        was_closed = self.is_closed()
        LoopCore.close(self)
        if was_closed:
            return
        self._close_signals()
        self._close_child_watcher()
        self._close_executor()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} running={self.is_running()} "
            f"closed={self.is_closed()} debug={self.get_debug()}>"
        )

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self.is_closed():
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()


adopt_asyncio_signatures(LoopBase)


class RLoop(LoopBase):
    """The single-threaded loop on mio."""

    def __new__(cls) -> Self:
        return LoopCore.__new__(cls, backend="mio")  # type: ignore[no-any-return]


class TokioLoop(LoopBase):
    """The same loop, with connections scheduled by tokio."""

    def __new__(cls) -> Self:
        return LoopCore.__new__(cls, backend="tokio")  # type: ignore[no-any-return]
