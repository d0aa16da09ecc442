"""Async generator hooks and loop.shutdown_asyncgens()."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from conftest import run


def test_hooks_installed_only_while_running(loop: asyncio.AbstractEventLoop) -> None:
    before = sys.get_asyncgen_hooks()

    async def main() -> Any:
        return sys.get_asyncgen_hooks()

    during = run(loop, main())
    assert during.firstiter is not None
    assert during.finalizer is not None
    assert during != before
    assert sys.get_asyncgen_hooks() == before


def test_hooks_restored_after_exception(loop: asyncio.AbstractEventLoop) -> None:
    before = sys.get_asyncgen_hooks()

    async def main() -> None:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        loop.run_until_complete(main())
    assert sys.get_asyncgen_hooks() == before


def test_shutdown_asyncgens_runs_finally(loop: asyncio.AbstractEventLoop) -> None:
    events: list[str] = []

    async def agen() -> AsyncGenerator[int, None]:
        try:
            events.append("started")
            yield 1
            yield 2
        finally:
            events.append("finally")
            await asyncio.sleep(0)  # awaiting in finally is allowed during aclose()
            events.append("finally-after-await")

    gens: list[AsyncGenerator[int, None]] = []

    async def main() -> int:
        gen = agen()
        gens.append(gen)  # keep it alive: only shutdown_asyncgens may close it
        return await gen.__anext__()

    assert run(loop, main()) == 1
    assert events == ["started"]
    run(loop, loop.shutdown_asyncgens())
    assert events == ["started", "finally", "finally-after-await"]
    assert gens[0].ag_frame is None  # the generator is closed


def test_shutdown_asyncgens_closes_several(loop: asyncio.AbstractEventLoop) -> None:
    closed: list[int] = []

    async def agen(i: int) -> AsyncGenerator[int, None]:
        try:
            yield i
        finally:
            closed.append(i)

    gens = [agen(i) for i in range(3)]

    async def main() -> list[int]:
        return [await g.__anext__() for g in gens]

    assert run(loop, main()) == [0, 1, 2]
    run(loop, loop.shutdown_asyncgens())
    assert sorted(closed) == [0, 1, 2]


def test_shutdown_asyncgens_without_generators(loop: asyncio.AbstractEventLoop) -> None:
    assert run(loop, loop.shutdown_asyncgens()) is None


def test_shutdown_asyncgens_reports_aclose_errors(loop: asyncio.AbstractEventLoop) -> None:
    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def agen() -> AsyncGenerator[int, None]:
        try:
            yield 1
        finally:
            raise ZeroDivisionError("in finally")

    gen = agen()

    async def main() -> int:
        # The first __anext__() call must happen while the loop runs, so
        # that the loop's firstiter hook sees the generator.
        return await gen.__anext__()

    assert run(loop, main()) == 1
    run(loop, loop.shutdown_asyncgens())
    assert len(contexts) == 1
    assert contexts[0]["message"] == (
        "an error occurred during closing of asynchronous generator " + repr(gen)
    )
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)
    assert contexts[0]["asyncgen"] is gen


def test_garbage_collected_asyncgen_is_finalized_on_loop(
    loop: asyncio.AbstractEventLoop,
) -> None:
    events: list[str] = []

    async def agen() -> AsyncGenerator[int, None]:
        try:
            yield 1
        finally:
            events.append(f"finally:{asyncio.get_running_loop() is loop}")

    async def main() -> None:
        gen = agen()
        await gen.__anext__()
        del gen
        gc.collect()
        # The finalizer hook schedules aclose() on the loop; let it run.
        for _ in range(5):
            await asyncio.sleep(0)

    run(loop, main())
    assert events == ["finally:True"]


def test_asyncgen_after_shutdown_warns(loop: asyncio.AbstractEventLoop) -> None:
    async def agen() -> AsyncGenerator[int, None]:
        yield 1

    run(loop, loop.shutdown_asyncgens())

    async def main() -> int:
        gen = agen()
        try:
            return await gen.__anext__()
        finally:
            await gen.aclose()

    with pytest.warns(ResourceWarning, match="was scheduled after loop.shutdown_asyncgens"):
        assert run(loop, main()) == 1
