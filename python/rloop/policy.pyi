"""Type stubs for rloop.policy.

At run time EventLoopPolicy's base is asyncio.DefaultEventLoopPolicy read
without 3.14's DeprecationWarning (so ``Any`` to a checker); here it is
asyncio's class, so the policy's methods keep their types.
"""

import asyncio

from .loop import LoopBase, TokioLoop

LOOPS: dict[str, type[LoopBase]]

def _loop_class(loop: str | None) -> type[LoopBase]: ...
def new_event_loop(loop: str | None = None) -> LoopBase:
    """A new loop: RLoop unless ``loop="tokio"`` (or RLOOP_LOOP=tokio) asks for TokioLoop."""

def new_tokio_event_loop() -> TokioLoop:
    """A new TokioLoop."""

class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """asyncio's default policy, making rloop loops (``loop="tokio"`` for TokioLoop)."""

    def __init__(self, loop: str | None = None) -> None: ...
    def new_event_loop(self) -> LoopBase: ...

def install(loop: str | None = None) -> None:
    """Make asyncio.new_event_loop() and asyncio.run() use rloop (``loop="tokio"``: TokioLoop)."""
