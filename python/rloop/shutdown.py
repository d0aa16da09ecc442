"""Graceful shutdown: drain a server's connections instead of cutting them.

``await rloop.drain(server)`` stops accepting at once, lets each connection
finish (its queued writes flushed, then closed by its protocol, or by the
drain when it has gone idle) and aborts whatever is still open when the
timeout expires. ``rloop.run(main(), shutdown_signals=...)`` (runners.py)
drains every server of the loop on a signal. See docs/shutdown.md.

Drain is a cold path: it composes what the server and its transports
already know (the server's connections, each transport's write buffer and
its byte counters, ``_io_counts()``, kept by the connection's actor) and
looks at them a few times per second with a loop timer.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from asyncio import sslproto
from dataclasses import dataclass
from typing import Any

from .server import Server

__all__ = ["DrainReport", "drain"]

logger = logging.getLogger("rloop.shutdown")

# How often the connections are looked at (seconds), at most: an idle
# connection is closed between close_idle_after and close_idle_after plus
# this after it went quiet.
_POLL_INTERVAL = 0.1
_MIN_POLL_INTERVAL = 0.005


@dataclass(frozen=True)
class DrainReport:
    """What :func:`drain` did to a server's connections.

    ``drained``: connections that ended before the timeout, however they
    ended (closed by their protocol, by the peer, or by the drain because
    they were idle). ``aborted``: connections the drain aborted (at the
    timeout, or when it was cancelled or told to abort), with whatever
    they had not sent. ``bytes_flushed``: the bytes the drained connections
    handed to the kernel after the drain started. ``duration``: seconds
    from the start of the drain to the end of its last connection.
    """

    drained: int
    aborted: int
    bytes_flushed: int
    duration: float


class _Connection:
    __slots__ = ("counts", "ended_by_drain", "quiet_since", "sent_at_start")

    def __init__(self, counts: tuple[int, int], now: float) -> None:
        self.counts = counts
        self.sent_at_start = counts[1]
        self.quiet_since = now
        # What it will have sent once flushed, once seen closing (nothing
        # can be added to its buffer then).
        # "closed" once the drain closed it as idle, "aborted" once it
        # aborted it; None while it is the connection's own business.
        self.ended_by_drain: str | None = None


class _Drain:
    """One drain of one server. The server points to it while it runs
    (``Server._drain``), so that it hears of each connection's end and a
    second drain() of the same server joins it."""

    def __init__(self, server: Server, timeout: float | None, close_idle_after: float | None):
        self._server = server
        self._loop: asyncio.AbstractEventLoop = server.get_loop()
        self._start = self._loop.time()
        self._deadline = None if timeout is None else self._start + timeout
        self._idle_after = close_idle_after
        self._connections: dict[Any, _Connection] = {}
        self._drained = 0
        self._aborted = 0
        self._flushed = 0
        self._abort_requested = False
        self._wakeup: asyncio.Future[None] | None = None
        self.report: asyncio.Future[DrainReport] = self._loop.create_future()

    # Called by the server (Server._attach/_detach).
    def _attached(self, transport: Any) -> None:
        self._connections[transport] = _Connection(transport._io_counts(), self._loop.time())

    def _detached(self, transport: Any) -> None:
        conn = self._connections.pop(transport, None)
        if conn is None:
            return
        if conn.ended_by_drain == "aborted":
            self._aborted += 1
        else:
            self._drained += 1
            # The counters stay readable after the connection's end.
            self._flushed += int(transport._io_counts()[1]) - conn.sent_at_start
        if not self._connections:
            self._wake()

    def abort(self) -> None:
        """Abort every connection still open now, instead of at the timeout."""
        self._abort_requested = True
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def run(self) -> DrainReport:
        server = self._server
        # serve_forever() ends (CancelledError, as after close()) once the
        # drain is over, not when it starts: the code after it usually
        # tears down what the connections still use, and 3.14's would also
        # close every connection at once (close_clients()).
        serving_forever = server._serving_forever_fut
        server._serving_forever_fut = None
        server._drain = self
        try:
            for transport in list(server._clients):
                self._attached(transport)
            server.close()
            await self._watch()
        except asyncio.CancelledError:
            self._abort_all()
            await self._wait(None)
            raise
        finally:
            server._drain = None
            if serving_forever is not None and not serving_forever.done():
                serving_forever.cancel()
            report = DrainReport(
                self._drained, self._aborted, self._flushed, self._loop.time() - self._start
            )
            if not self.report.done():
                self.report.set_result(report)
        return report

    async def _watch(self) -> None:
        while self._connections:
            now = self._loop.time()
            if self._abort_requested or (self._deadline is not None and now >= self._deadline):
                self._abort_all()
                await self._wait(None)
                continue
            self._look(now)
            tick = _POLL_INTERVAL
            if self._idle_after is not None:
                tick = max(min(tick, self._idle_after / 4), _MIN_POLL_INTERVAL)
            wake_at = now + tick if self._deadline is None else min(self._deadline, now + tick)
            await self._wait(wake_at)

    def _look(self, now: float) -> None:
        """Note each connection's counters; close the idle ones."""
        for transport, conn in self._connections.items():
            if conn.ended_by_drain is not None:
                continue
            counts = transport._io_counts()
            if counts != conn.counts:
                conn.counts = counts
                conn.quiet_since = now
            if transport.is_closing():
                continue
            idle_after = self._idle_after
            if idle_after is None or now - conn.quiet_since < idle_after:
                continue
            app_transport = _tls_transport(transport)
            if transport.get_write_buffer_size() or (
                app_transport is not None and app_transport.get_write_buffer_size()
            ):
                continue
            conn.ended_by_drain = "closed"
            # Over TLS the application's transport closes, so that the
            # peer gets a close_notify before the FIN.
            (app_transport or transport).close()

    def _abort_all(self) -> None:
        for transport, conn in self._connections.items():
            if conn.ended_by_drain != "aborted":
                conn.ended_by_drain = "aborted"
                transport.abort()

    async def _wait(self, when: float | None) -> None:
        """Until a wake-up (the last connection ended, an abort was asked
        for) or the loop time `when` (None: no time limit)."""
        if not self._connections:
            return
        self._wakeup = self._loop.create_future()
        timer = None
        if when is not None:
            timer = self._loop.call_at(when, self._wake)
        try:
            await self._wakeup
        finally:
            self._wakeup = None
            if timer is not None:
                timer.cancel()


def _tls_transport(transport: Any) -> Any:
    """The TLS transport the application writes to, when asyncio's
    SSLProtocol sits between it and `transport`."""
    protocol = transport.get_protocol()
    if isinstance(protocol, sslproto.SSLProtocol):
        return protocol._app_transport
    return None


def _check_timeout(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number or None, not {type(value).__name__}")
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, not {value!r}")


async def drain(
    server: asyncio.AbstractServer,
    timeout: float | None = 30.0,
    *,
    close_idle_after: float | None = None,
) -> DrainReport:
    """Shut `server` down gracefully and report what happened to its connections.

    The server stops accepting at once (``server.close()``). Each connection
    it accepted then ends on its own terms: its protocol (or the peer)
    closes it, and a closed transport sends what it has queued before its
    FIN. With `close_idle_after` (seconds), the drain also closes each
    connection that has nothing queued and has neither sent nor received a
    byte for that long (counted from the start of the drain at the
    earliest). When `timeout` seconds have passed (None: no limit), the
    connections still open are aborted. Returns when every connection has
    ended, with a :class:`DrainReport`.

    A ``serve_forever()`` running on the server ends when the drain does.
    If the drain is cancelled, it aborts the connections still open before
    the cancellation propagates. A second drain() of a server that is
    draining waits for the first and returns its report.

    `server` must be a server of an rloop loop (RLoop, TokioLoop):
    TypeError otherwise.
    """
    if not isinstance(server, Server):
        raise TypeError(
            f"rloop.drain() needs a server of an rloop loop (RLoop or TokioLoop), "
            f"not {type(server).__module__}.{type(server).__qualname__}"
        )
    _check_timeout("timeout", timeout)
    _check_timeout("close_idle_after", close_idle_after)
    if server.get_loop() is not asyncio.get_running_loop():
        raise RuntimeError(f"{server!r} belongs to another event loop")
    running = server._drain
    if running is not None:
        return await asyncio.shield(running.report)
    return await _Drain(server, timeout, close_idle_after).run()


def _abort_drains(servers: Any) -> None:
    """Abort the connections of every server of `servers` that is draining."""
    for server in list(servers):
        running = getattr(server, "_drain", None)
        if running is not None:
            running.abort()


class SignalShutdown:
    """The graceful shutdown rloop.run(..., shutdown_signals=...) sets up.

    The first of `signals` drains every server of the loop (bounded by
    `timeout`), then cancels the main task; the second aborts the
    connections still open and gives the signals back to their default
    action, so that a third one acts as if rloop were not there.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        signals: tuple[int, ...],
        timeout: float | None,
        close_idle_after: float | None,
    ) -> None:
        if not hasattr(loop, "_servers"):
            raise TypeError(
                f"shutdown_signals= needs an rloop loop (RLoop or TokioLoop), "
                f"not {type(loop).__module__}.{type(loop).__qualname__}"
            )
        _check_timeout("shutdown_timeout", timeout)
        _check_timeout("shutdown_close_idle_after", close_idle_after)
        self._loop: Any = loop
        self._signals = signals
        self._timeout = timeout
        self._close_idle_after = close_idle_after
        self._received = 0
        self._main: asyncio.Task[Any] | None = None
        self._main_done = False
        self._cancelled_main = False
        self._draining: asyncio.Task[None] | None = None
        #: The report of each server drained, once the drain is over.
        self.reports: list[tuple[Server, DrainReport]] = []

    def install(self) -> None:
        for sig in self._signals:
            self._loop.add_signal_handler(sig, self._on_signal, sig)

    def uninstall(self) -> None:
        """Remove the handlers that are still this object's."""
        if self._loop.is_closed():
            return
        for sig in self._signals:
            handler = self._loop._signal_handlers.get(sig)
            if handler is not None and handler.callback == self._on_signal:
                self._loop.remove_signal_handler(sig)

    async def run_main(self, main: Any) -> Any:
        """Await `main` in the main task; a shutdown's cancellation of it
        makes it return None, after the drain is over."""
        task = self._main = asyncio.current_task()
        assert task is not None
        try:
            return await main
        except asyncio.CancelledError:
            if not self._received:
                raise
            if self._cancelled_main and task.uncancel() > 0:
                raise  # cancelled by someone else as well
            return None
        finally:
            self._main_done = True
            if self._draining is not None:
                await asyncio.shield(self._draining)

    def _on_signal(self, sig: int) -> None:
        self._received += 1
        name = _signal_name(sig)
        if self._received == 1:
            logger.info("%s: draining the servers (timeout %s s)", name, self._timeout)
            self._draining = self._loop.create_task(self._drain_all())
        else:
            logger.info("%s: aborting the connections still open", name)
            _abort_drains(self._loop._servers)
            self.uninstall()

    async def _drain_all(self) -> None:
        servers = [s for s in list(self._loop._servers) if s.is_serving() or s._clients]
        reports = await asyncio.gather(
            *(drain(s, self._timeout, close_idle_after=self._close_idle_after) for s in servers)
        )
        for server, report in zip(servers, reports):
            logger.info("drained %r: %s", server, report)
        self.reports = list(zip(servers, reports))
        if self._main is not None and not self._main_done:
            self._cancelled_main = True
            self._main.cancel()


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
