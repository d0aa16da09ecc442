"""Picking the loop: new_event_loop(), the policy and install().

Two loops, one behaviour: ``"rloop"`` (RLoop, mio) and ``"tokio"``
(TokioLoop). Where no loop is named, the ``RLOOP_LOOP`` environment variable
chooses (default ``"rloop"``), so a program that only calls
``rloop.new_event_loop`` or ``rloop.install()`` can be switched without
changing code.
"""

from __future__ import annotations

import asyncio
import os

from ._rloop import BACKENDS
from .loop import LoopBase, RLoop, TokioLoop
from .versions import DefaultEventLoopPolicy, quietly_deprecated

LOOPS: dict[str, type[LoopBase]] = {"rloop": RLoop}
if "tokio" in BACKENDS:
    LOOPS["tokio"] = TokioLoop


def _loop_class(loop: str | None) -> type[LoopBase]:
    name = loop or os.environ.get("RLOOP_LOOP") or "rloop"
    try:
        return LOOPS[name]
    except KeyError:
        raise ValueError(f"unknown rloop loop {name!r}: expected one of {sorted(LOOPS)}") from None


def new_event_loop(loop: str | None = None) -> LoopBase:
    """A new loop: RLoop unless ``loop="tokio"`` (or RLOOP_LOOP=tokio) asks for TokioLoop.

    Usable as a loop_factory, e.g. ``asyncio.Runner(loop_factory=rloop.new_event_loop)``
    or ``uvicorn --loop rloop:new_event_loop``.
    """
    return _loop_class(loop)()


def new_tokio_event_loop() -> TokioLoop:
    """A new TokioLoop (``uvicorn --loop rloop:new_tokio_event_loop``)."""
    return TokioLoop()


class EventLoopPolicy(DefaultEventLoopPolicy):  # type: ignore[misc]
    """asyncio's default policy, making rloop loops (``loop="tokio"`` for TokioLoop).

    asyncio deprecates policies from 3.14 (to be removed in 3.16): there,
    prefer ``asyncio.run(main(), loop_factory=rloop.new_event_loop)`` or
    ``asyncio.Runner(loop_factory=...)``. This keeps working, without a
    warning from rloop, for as long as asyncio has policies.
    """

    def __init__(self, loop: str | None = None) -> None:
        super().__init__()
        self._rloop_class = _loop_class(loop)

    def _loop_factory(self) -> LoopBase:
        return self._rloop_class()


def install(loop: str | None = None) -> None:
    """Make asyncio.new_event_loop() and asyncio.run() use rloop (``loop="tokio"``: TokioLoop).

    Installs an rloop EventLoopPolicy: asyncio's policies are deprecated from
    3.14, where ``asyncio.run(main(), loop_factory=rloop.new_event_loop)`` is
    the modern way.
    """
    quietly_deprecated(asyncio.set_event_loop_policy, EventLoopPolicy(loop))
