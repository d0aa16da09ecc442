"""run_in_executor / set_default_executor / shutdown_default_executor."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import pytest
from conftest import run, xfail_for


class CustomError(Exception):
    pass


def _thread_name(tag: str) -> tuple[str, str]:
    return tag, threading.current_thread().name


def test_default_executor_runs_in_other_thread(loop: asyncio.AbstractEventLoop) -> None:
    main_ident = threading.get_ident()

    async def main() -> tuple[int, int]:
        ident = await loop.run_in_executor(None, threading.get_ident)
        total = await loop.run_in_executor(None, sum, [1, 2, 3])
        return ident, total

    ident, total = run(loop, main())
    assert ident != main_ident
    assert total == 6


def test_run_in_executor_returns_asyncio_future(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> Any:
        fut = loop.run_in_executor(None, pow, 2, 10)
        assert isinstance(fut, asyncio.Future)
        assert fut.get_loop() is loop
        return await fut

    assert run(loop, main()) == 1024


def test_run_in_executor_exception(loop: asyncio.AbstractEventLoop) -> None:
    def fail() -> None:
        raise CustomError("from thread")

    async def main() -> None:
        await loop.run_in_executor(None, fail)

    with pytest.raises(CustomError, match="from thread"):
        run(loop, main())


def test_custom_executor(loop: asyncio.AbstractEventLoop) -> None:
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="custom-pool"
    ) as pool:

        async def main() -> tuple[str, str]:
            return await loop.run_in_executor(pool, _thread_name, "x")

        tag, name = run(loop, main())
    assert tag == "x"
    assert name.startswith("custom-pool")


def test_set_default_executor(loop: asyncio.AbstractEventLoop) -> None:
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dflt")
    try:
        loop.set_default_executor(pool)

        async def main() -> tuple[str, str]:
            return await loop.run_in_executor(None, _thread_name, "y")

        tag, name = run(loop, main())
        assert (tag, name.startswith("dflt")) == ("y", True)
    finally:
        pool.shutdown(wait=True)


@pytest.mark.parametrize("kind", ["object", "process-pool"])
def test_set_default_executor_rejects_non_thread_pool(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    # Python 3.11: "executor must be ThreadPoolExecutor instance" (TypeError).
    xfail_for(request, ["uvloop"], "uvloop accepts any executor", loop_name)
    executor: Any
    if kind == "object":
        executor = object()
    else:
        executor = concurrent.futures.ProcessPoolExecutor(max_workers=1)
    try:
        with pytest.raises(TypeError, match="executor must be ThreadPoolExecutor instance"):
            loop.set_default_executor(executor)
    finally:
        if kind != "object":
            executor.shutdown(wait=True)
        # Don't let close() call shutdown() on a bogus default executor.
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=1))


def test_shutdown_default_executor(loop: asyncio.AbstractEventLoop) -> None:
    finished = threading.Event()

    def work() -> str:
        finished.set()
        return "done"

    async def main() -> str:
        result = await loop.run_in_executor(None, work)
        await loop.shutdown_default_executor()
        return result

    assert run(loop, main()) == "done"
    assert finished.is_set()
    with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
        loop.run_in_executor(None, work)


def test_shutdown_default_executor_waits_for_work(loop: asyncio.AbstractEventLoop) -> None:
    release = threading.Event()
    results: list[str] = []

    def work() -> None:
        release.wait(2)
        results.append("finished")

    async def main() -> None:
        loop.run_in_executor(None, work)
        loop.call_soon(release.set)
        await loop.shutdown_default_executor()
        # Shutdown waits for the pending job to complete.
        assert results == ["finished"]

    run(loop, main())


def test_shutdown_default_executor_without_executor(loop: asyncio.AbstractEventLoop) -> None:
    run(loop, loop.shutdown_default_executor())
    with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
        loop.run_in_executor(None, int)


def test_custom_executor_still_usable_after_default_shutdown(
    loop: asyncio.AbstractEventLoop,
) -> None:
    run(loop, loop.shutdown_default_executor())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:

        async def main() -> int:
            return await loop.run_in_executor(pool, int, "12")

        assert run(loop, main()) == 12


def test_debug_run_in_executor_rejects_coroutine_function(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def coro_fn() -> None:
        pass

    loop.set_debug(True)
    with pytest.raises(TypeError, match="coroutines cannot be used with run_in_executor"):
        loop.run_in_executor(None, coro_fn)
