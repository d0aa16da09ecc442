"""add_signal_handler/remove_signal_handler, as asyncio's Unix loop has them.

Python's C-level signal handler writes the signal number to a wakeup fd
(`signal.set_wakeup_fd`); the loop watches the other end with add_reader
and schedules the registered callback on the loop thread. The wakeup fd is
set through the core (`_set_wakeup_fd`), which keeps its own wakeup fd
(src/signal_wakeup.rs) out of the way of this one while handlers exist.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import signal
import socket
import sys
import warnings
from asyncio.log import logger
from collections.abc import Callable
from typing import Any, NamedTuple

from .versions import iscoroutinefunction


class _SignalHandler(NamedTuple):
    callback: Callable[..., Any]
    args: tuple[Any, ...]
    context: contextvars.Context


def _noop(signum: int, frame: Any) -> None:
    """Installed as the Python handler: the work happens on the loop."""


def _check_signal(sig: Any) -> None:
    if not isinstance(sig, int):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"invalid signal number {sig}")


class SignalMixin:
    _signal_handlers: dict[int, _SignalHandler]
    _signal_socks: tuple[socket.socket, socket.socket] | None

    def __init__(self) -> None:
        self._signal_handlers = {}
        self._signal_socks = None

    def add_signal_handler(self, sig: int, callback: Callable[..., Any], *args: Any) -> None:
        """Call callback(*args) on the loop whenever the signal `sig` arrives
        (Unix, from the main thread). Replaces the signal's previous handler."""
        if asyncio.iscoroutine(callback) or iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        _check_signal(sig)
        loop: Any = self
        loop._check_closed()
        wsock = self._signal_wakeup_sock()
        try:
            # Fails outside the main thread, as in asyncio.
            loop._set_wakeup_fd(wsock.fileno())
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc)) from None

        self._signal_handlers[sig] = _SignalHandler(callback, args, contextvars.copy_context())
        try:
            signal.signal(sig, _noop)
            # Don't make system calls fail with EINTR because of this signal.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                self._reset_wakeup_fd()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler of the signal `sig`; return True if there was one."""
        _check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise
        if not self._signal_handlers:
            self._reset_wakeup_fd()
        return True

    def _signal_wakeup_sock(self) -> socket.socket:
        if self._signal_socks is None:
            rsock, wsock = socket.socketpair()
            rsock.setblocking(False)
            wsock.setblocking(False)
            self._signal_socks = (rsock, wsock)
            loop: Any = self
            loop.add_reader(rsock.fileno(), self._read_signals)
        return self._signal_socks[1]

    def _read_signals(self) -> None:
        socks = self._signal_socks
        if socks is None:
            return
        loop: Any = self
        while True:
            try:
                data = socks[0].recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for signum in data:
                handler = self._signal_handlers.get(signum)
                if handler is not None:
                    loop.call_soon(handler.callback, *handler.args, context=handler.context)

    def _reset_wakeup_fd(self) -> None:
        loop: Any = self
        try:
            loop._set_wakeup_fd(-1)
        except (ValueError, OSError) as exc:
            logger.info("set_wakeup_fd(-1) failed: %s", exc)

    def _close_signals(self) -> None:
        if sys.is_finalizing():
            if self._signal_handlers:
                warnings.warn(
                    f"Closing the loop {self!r} on interpreter shutdown "
                    f"stage, skipping signal handlers removal",
                    ResourceWarning,
                    source=self,
                )
                self._signal_handlers.clear()
        else:
            for sig in list(self._signal_handlers):
                self.remove_signal_handler(sig)
        socks = self._signal_socks
        if socks is not None:
            self._signal_socks = None
            for s in socks:
                s.close()
