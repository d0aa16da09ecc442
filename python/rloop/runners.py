"""run(): asyncio.run() on an rloop loop, with an optional graceful shutdown
on signals (rloop.shutdown)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
def run(
    main: Coroutine[Any, Any, T],
    *,
    debug: bool | None = None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    loop: str | None = None,
) -> T: ...
@overload
def run(
    main: Coroutine[Any, Any, T],
    *,
    debug: bool | None = None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    loop: str | None = None,
    shutdown_signals: Iterable[int],
    shutdown_timeout: float | None = 30.0,
    shutdown_close_idle_after: float | None = None,
) -> T | None: ...
def run(
    main: Coroutine[Any, Any, T],
    *,
    debug: bool | None = None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    loop: str | None = None,
    shutdown_signals: Iterable[int] = (),
    shutdown_timeout: float | None = 30.0,
    shutdown_close_idle_after: float | None = None,
) -> T | None:
    """Run a coroutine to completion on a new loop, then close it, as asyncio.run does.

    ``loop="tokio"`` runs it on TokioLoop; ``loop_factory`` overrides both.

    With ``shutdown_signals`` (e.g. ``(signal.SIGTERM, signal.SIGINT)``), the
    first of them drains every server of the loop (``rloop.drain`` with
    ``shutdown_timeout`` and ``shutdown_close_idle_after``), then cancels
    `main`; run() then returns None (or what `main` returned, if it caught
    the cancellation). A second signal aborts the connections still open;
    a third acts as if no handler were set. See docs/shutdown.md.
    """
    if asyncio.events._get_running_loop() is not None:
        # Checked first, as asyncio.run() does, so no loop is made for nothing.
        raise RuntimeError("rloop.run() cannot be called from a running event loop")
    if loop_factory is None:
        from .policy import _loop_class

        loop_factory = _loop_class(loop)
    signals = tuple(shutdown_signals)
    with asyncio.Runner(debug=debug, loop_factory=loop_factory) as runner:
        if not signals:
            return runner.run(main)
        from .shutdown import SignalShutdown

        try:
            shutdown = SignalShutdown(
                runner.get_loop(), signals, shutdown_timeout, shutdown_close_idle_after
            )
            shutdown.install()
        except BaseException:
            main.close()  # never awaited: no "coroutine was never awaited" warning
            raise
        try:
            return runner.run(shutdown.run_main(main))  # type: ignore[no-any-return]
        finally:
            shutdown.uninstall()
