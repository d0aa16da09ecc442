"""create_future / create_task / task factories."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Coroutine
from typing import Any

import pytest
from conftest import (
    CREATE_TASK_PASSES_OTHER_KEYWORDS,
    TASK_FACTORY_GETS_EVERY_KEYWORD,
    run,
    xfail_for,
)

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


async def _value(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


def test_create_future(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    assert isinstance(fut, asyncio.Future)
    assert fut.get_loop() is loop
    assert not fut.done()
    loop.call_soon(fut.set_result, "value")
    assert loop.run_until_complete(fut) == "value"


def test_future_done_callbacks_run_on_loop_in_order(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    order: list[str] = []
    fut.add_done_callback(lambda f: order.append(f"first:{f.result()}"))
    fut.add_done_callback(lambda f: order.append(f"second:{f.result()}"))

    async def main() -> None:
        fut.set_result(1)
        assert order == []  # callbacks are scheduled, not called synchronously
        await asyncio.sleep(0)

    run(loop, main())
    assert order == ["first:1", "second:1"]


def test_create_task_runs_coroutine(loop: asyncio.AbstractEventLoop) -> None:
    task = loop.create_task(_value(5))
    assert isinstance(task, asyncio.Task)
    assert task.get_loop() is loop
    assert loop.run_until_complete(task) == 5
    assert task.done() and task.result() == 5


def test_create_task_name(loop: asyncio.AbstractEventLoop) -> None:
    named = loop.create_task(_value(None), name="my-task")
    unnamed = loop.create_task(_value(None))
    assert named.get_name() == "my-task"
    assert unnamed.get_name().startswith("Task-")
    loop.run_until_complete(asyncio.gather(named, unnamed))


def test_create_task_context(loop: asyncio.AbstractEventLoop) -> None:
    ctx = contextvars.copy_context()
    ctx.run(VAR.set, "from-ctx")

    async def coro() -> str:
        seen = VAR.get()
        VAR.set("set-by-task")
        return seen

    task = loop.create_task(coro(), context=ctx)
    assert loop.run_until_complete(task) == "from-ctx"
    assert ctx[VAR] == "set-by-task"
    assert VAR.get() == "unset"


def test_create_task_copies_current_context(loop: asyncio.AbstractEventLoop) -> None:
    async def child() -> str:
        seen = VAR.get()
        VAR.set("child")
        return seen

    async def parent() -> tuple[str, str]:
        VAR.set("parent")
        seen = await loop.create_task(child())
        return seen, VAR.get()

    assert run(loop, parent()) == ("parent", "parent")
    assert VAR.get() == "unset"


def test_create_task_rejects_non_coroutine(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(TypeError):
        loop.create_task(42)  # type: ignore[arg-type]


def test_task_exception_and_cancel(loop: asyncio.AbstractEventLoop) -> None:
    async def forever() -> None:
        await loop.create_future()

    async def main() -> str:
        task = loop.create_task(forever())
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "not cancelled"

    assert run(loop, main()) == "cancelled"


def test_task_factory_default_is_none(loop: asyncio.AbstractEventLoop) -> None:
    assert loop.get_task_factory() is None


def test_task_factory_called_with_loop_and_coro(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    # asyncio 3.11 passes context= only when create_task() got one, so a
    # two-argument factory keeps working.
    xfail_for(request, ["uvloop"], "uvloop always passes context= to the factory", loop_name)
    calls: list[tuple[asyncio.AbstractEventLoop, Coroutine[Any, Any, Any]]] = []

    def factory(lp: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        calls.append((lp, coro))
        return asyncio.Task(coro, loop=lp)

    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory
    coro = _value("made")
    try:
        task = loop.create_task(coro)
    except BaseException:
        coro.close()
        raise
    assert calls == [(loop, coro)]
    assert loop.run_until_complete(task) == "made"

    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    assert loop.run_until_complete(loop.create_task(_value(1))) == 1
    assert len(calls) == 1


def test_task_factory_keywords(
    request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop, loop_name: str
) -> None:
    xfail_for(
        request, ["uvloop"], "uvloop always passes context= (and eager_start= on 3.12+)", loop_name
    )
    received: list[dict[str, Any]] = []

    def factory(
        lp: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Task[Any]:
        received.append(dict(kwargs))
        return asyncio.Task(coro, loop=lp, **kwargs)

    loop.set_task_factory(factory)
    ctx = contextvars.copy_context()
    loop.run_until_complete(loop.create_task(_value(None), context=ctx))
    named = loop.create_task(_value(None), name="named")
    loop.run_until_complete(named)
    loop.run_until_complete(loop.create_task(_value(None)))
    assert named.get_name() == "named"
    if TASK_FACTORY_GETS_EVERY_KEYWORD:
        # 3.14+: the factory gets the keywords as given, and names the task.
        assert received == [{"context": ctx}, {"name": "named"}, {}]
    else:
        # Before: context alone, when given; the loop names the task.
        assert received == [{"context": ctx}, {}, {}]


def test_create_task_unknown_keyword(loop: asyncio.AbstractEventLoop) -> None:
    coro = _value(None)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        loop.create_task(coro, bogus=1)  # type: ignore[call-arg]
    coro.close()


@pytest.mark.skipif(
    not CREATE_TASK_PASSES_OTHER_KEYWORDS, reason="create_task(eager_start=) is 3.14 (3.13.x)"
)
def test_create_task_eager_start(loop: asyncio.AbstractEventLoop) -> None:
    steps: list[str] = []

    async def child() -> int:
        steps.append("child started")
        await asyncio.sleep(0)
        steps.append("child resumed")
        return 7

    async def main() -> int:
        task = loop.create_task(child(), eager_start=True)  # type: ignore[call-arg]
        steps.append("create_task returned")
        return await task

    assert run(loop, main()) == 7
    assert steps == ["child started", "create_task returned", "child resumed"]


@pytest.mark.skipif(
    not hasattr(asyncio, "eager_task_factory"), reason="asyncio.eager_task_factory is 3.12+"
)
def test_eager_task_factory(
    request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop, loop_name: str
) -> None:
    if sys.version_info >= (3, 13):
        xfail_for(
            request, ["uvloop"], "uvloop passes eager_start= to the task factory on 3.13+", loop_name
        )
    steps: list[str] = []

    async def done_at_once() -> str:
        steps.append("ran")
        return "result"

    async def main() -> str:
        task = asyncio.ensure_future(done_at_once())
        # An eager task that finishes without suspending is done on return.
        assert task.done()
        steps.append("after")
        return await task

    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    assert run(loop, main()) == "result"
    assert steps == ["ran", "after"]


def test_task_factory_used_by_ensure_future_and_gather(loop: asyncio.AbstractEventLoop) -> None:
    names: list[str] = []

    class MyTask(asyncio.Task):  # type: ignore[type-arg]
        pass

    def factory(
        lp: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> MyTask:
        names.append(coro.__name__)
        return MyTask(coro, loop=lp, **kwargs)

    loop.set_task_factory(factory)

    async def main() -> list[Any]:
        task = asyncio.ensure_future(_value(1))
        assert isinstance(task, MyTask)
        return await asyncio.gather(task, _value(2))

    assert loop.run_until_complete(main()) == [1, 2]
    # main itself went through the factory too.
    assert names == ["main", "_value", "_value"]


@pytest.mark.parametrize("factory", [42, "not callable", object()])
def test_task_factory_rejects_non_callable(
    loop: asyncio.AbstractEventLoop, factory: object
) -> None:
    with pytest.raises(TypeError, match="task factory must be a callable or None"):
        loop.set_task_factory(factory)  # type: ignore[arg-type]
    assert loop.get_task_factory() is None


def test_current_task_and_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bool:
        me = asyncio.current_task()
        assert me is not None
        other = loop.create_task(asyncio.sleep(0.01))
        tasks = asyncio.all_tasks()
        await other
        return me in tasks and other in tasks

    assert run(loop, main()) is True
    assert asyncio.all_tasks(loop) == set()


def test_sleep_and_gather(loop: asyncio.AbstractEventLoop) -> None:
    order: list[int] = []

    async def worker(i: int, delay: float) -> int:
        await asyncio.sleep(delay)
        order.append(i)
        return i * 10

    async def main() -> list[int]:
        return await asyncio.gather(worker(1, 0.03), worker(2, 0.01), worker(3, 0.02))

    assert run(loop, main()) == [10, 20, 30]
    assert order == [2, 3, 1]
