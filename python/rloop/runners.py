"""run(): asyncio.run() on an rloop loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

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
    with asyncio.Runner(debug=debug, loop_factory=loop_factory) as runner:
        return runner.run(main)
