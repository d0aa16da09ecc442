"""The event loop policy, new_event_loop() and install()."""

from __future__ import annotations

import asyncio

from .loop import RLoop


def new_event_loop() -> RLoop:
    """A new RLoop (usable as a loop_factory, e.g. for uvicorn or asyncio.Runner)."""
    return RLoop()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):  # type: ignore[misc,valid-type]
    """asyncio's default policy, making RLoop loops."""

    def _loop_factory(self) -> RLoop:  # type: ignore[override]
        return new_event_loop()


def install() -> None:
    """Make asyncio.new_event_loop() and asyncio.run() use RLoop."""
    asyncio.set_event_loop_policy(EventLoopPolicy())
