"""run(): asyncio.run() on an rloop loop."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def run(
    main: Coroutine[Any, Any, T],
    *,
    debug: bool | None = None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    loop: str | None = None,
) -> T:
    """Run a coroutine to completion on a new loop, then close it, as asyncio.run does.

    ``loop="tokio"`` runs it on TokioLoop; ``loop_factory`` overrides both.
    """
    if asyncio.events._get_running_loop() is not None:
        # Checked first, as asyncio.run() does, so no loop is made for nothing.
        raise RuntimeError("rloop.run() cannot be called from a running event loop")
    if loop_factory is None:
        from .policy import _loop_class

        loop_factory = _loop_class(loop)
    if sys.version_info >= (3, 11):
        with asyncio.Runner(debug=debug, loop_factory=loop_factory) as runner:
            return runner.run(main)
    return _run_before_311(main, debug, loop_factory)


def _run_before_311(
    main: Coroutine[Any, Any, T],
    debug: bool | None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> T:
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    loop = loop_factory()
    try:
        asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    pending = asyncio.all_tasks(loop)
    if not pending:
        return
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    for task in pending:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during asyncio.run() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
