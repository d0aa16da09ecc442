"""run_forever / run_until_complete / stop / close and the loop's state."""

from __future__ import annotations

import asyncio
import gc
import os
import select
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from conftest import make_loop, noop, run, run_forever_bounded, xfail_for


class CustomError(Exception):
    pass


async def _value(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


def test_run_until_complete_returns_coroutine_result(loop: asyncio.AbstractEventLoop) -> None:
    assert loop.run_until_complete(_value(42)) == 42
    assert loop.run_until_complete(_value("again")) == "again"


def test_run_until_complete_raises_coroutine_exception(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def boom() -> None:
        await asyncio.sleep(0)
        raise CustomError("boom")

    with pytest.raises(CustomError, match="boom"):
        loop.run_until_complete(boom())
    # The loop is still usable afterwards.
    assert loop.run_until_complete(_value(1)) == 1


def test_run_until_complete_accepts_future(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "from-future")
    assert loop.run_until_complete(fut) == "from-future"


def test_run_until_complete_accepts_task(loop: asyncio.AbstractEventLoop) -> None:
    task = loop.create_task(_value("from-task"))
    assert loop.run_until_complete(task) == "from-task"


def test_run_until_complete_accepts_awaitable(loop: asyncio.AbstractEventLoop) -> None:
    class Awaitable:
        def __await__(self) -> Any:
            return _value("awaited").__await__()

    assert loop.run_until_complete(Awaitable()) == "awaited"


def test_run_until_complete_future_exception(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    loop.call_soon(fut.set_exception, CustomError("fut-err"))
    with pytest.raises(CustomError, match="fut-err"):
        loop.run_until_complete(fut)


def test_run_until_complete_cancelled_future(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    loop.call_soon(fut.cancel)
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(fut)


def test_run_until_complete_rejects_non_awaitable(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(TypeError):
        loop.run_until_complete(42)  # type: ignore[arg-type]


def test_run_until_complete_stopped_early(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match=r"^Event loop stopped before Future completed\.$"):
        loop.run_until_complete(fut)
    assert not fut.done()
    assert not loop.is_running()
    # The loop can still complete the future afterwards.
    loop.call_soon(fut.set_result, 7)
    assert loop.run_until_complete(fut) == 7


def test_run_until_complete_future_of_other_loop(loop: asyncio.AbstractEventLoop) -> None:
    other = asyncio.new_event_loop()
    try:
        fut = other.create_future()
        with pytest.raises(ValueError, match="The future belongs to a different loop"):
            loop.run_until_complete(fut)
    finally:
        other.close()


def test_run_forever_until_stop(loop: asyncio.AbstractEventLoop) -> None:
    ran: list[str] = []

    def cb() -> None:
        ran.append("cb")
        loop.call_later(0.01, loop.stop)

    loop.call_soon(cb)
    run_forever_bounded(loop)
    assert ran == ["cb"]
    assert not loop.is_running()


def test_stop_finishes_current_iteration(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(
        request,
        ["uvloop"],
        "uvloop also runs callbacks queued during the last iteration",
        loop_name,
    )
    order: list[str] = []

    def a() -> None:
        order.append("a")
        loop.call_soon(order.append, "next-iteration")

    loop.call_soon(a)
    loop.call_soon(loop.stop)
    loop.call_soon(order.append, "b")
    run_forever_bounded(loop)
    assert order == ["a", "b"]
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert order == ["a", "b", "next-iteration"]


def test_stop_before_run_forever_runs_one_iteration(loop: asyncio.AbstractEventLoop) -> None:
    order: list[str] = []
    loop.call_soon(order.append, "first")
    loop.call_soon(lambda: loop.call_soon(order.append, "second-iteration"))
    loop.stop()
    run_forever_bounded(loop)
    assert order == ["first"]
    # The stop request was consumed: the next run goes on until stopped again.
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert order == ["first", "second-iteration"]


def test_stop_before_run_forever_with_nothing_scheduled(
    loop: asyncio.AbstractEventLoop,
) -> None:
    loop.stop()
    loop.run_forever()  # must return on its own
    assert not loop.is_running()


def test_is_running(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[bool] = []
    assert loop.is_running() is False

    def cb() -> None:
        seen.append(loop.is_running())
        loop.stop()

    loop.call_soon(cb)
    run_forever_bounded(loop)
    assert seen == [True]
    assert loop.is_running() is False

    async def coro() -> bool:
        return loop.is_running()

    assert loop.run_until_complete(coro()) is True
    assert loop.is_running() is False


def test_close_and_is_closed(loop: asyncio.AbstractEventLoop) -> None:
    assert loop.is_closed() is False
    loop.close()
    assert loop.is_closed() is True
    loop.close()  # idempotent
    assert loop.is_closed() is True


def test_close_running_loop_raises(loop: asyncio.AbstractEventLoop) -> None:
    errors: list[BaseException] = []

    def cb() -> None:
        try:
            loop.close()
        except RuntimeError as exc:
            errors.append(exc)
        loop.stop()

    loop.call_soon(cb)
    run_forever_bounded(loop)
    assert len(errors) == 1
    assert str(errors[0]) == "Cannot close a running event loop"
    assert loop.is_closed() is False


def test_close_discards_pending_callbacks(loop_name: str) -> None:
    loop = make_loop(loop_name)
    ran: list[str] = []
    loop.call_soon(ran.append, "soon")
    loop.call_later(0, ran.append, "later")
    loop.close()
    assert ran == []


UVLOOP_RUNNING_MESSAGE = "uvloop says 'this event loop is already running.'"


def test_run_forever_reentry_raises(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(request, ["uvloop"], UVLOOP_RUNNING_MESSAGE, loop_name)
    errors: list[BaseException] = []

    def cb() -> None:
        try:
            loop.run_forever()
        except RuntimeError as exc:
            errors.append(exc)
        loop.stop()

    loop.call_soon(cb)
    run_forever_bounded(loop)
    assert [str(e) for e in errors] == ["This event loop is already running"]


def test_run_until_complete_reentry_raises(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(request, ["uvloop"], UVLOOP_RUNNING_MESSAGE, loop_name)

    async def outer() -> str:
        try:
            loop.run_until_complete(loop.create_future())
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    assert run(loop, outer()) == "This event loop is already running"


def _run_inside(outer: asyncio.AbstractEventLoop, inner: asyncio.AbstractEventLoop) -> str:
    """Try to run *inner* from a callback of *outer*; return the error text."""
    result: list[str] = []

    def cb() -> None:
        coro = _value(None)
        try:
            inner.run_until_complete(coro)
            result.append("no error")
        except RuntimeError as exc:
            result.append(str(exc))
        finally:
            coro.close()
        outer.stop()

    outer.call_soon(cb)
    run_forever_bounded(outer)
    return result[0]


def test_cannot_run_while_another_loop_of_same_kind_runs(
    loop: asyncio.AbstractEventLoop, loop_name: str
) -> None:
    other = make_loop(loop_name)
    try:
        assert _run_inside(loop, other) == (
            "Cannot run the event loop while another loop is running"
        )
    finally:
        other.close()


def test_cannot_run_inside_running_stock_loop(loop: asyncio.AbstractEventLoop) -> None:
    stock = asyncio.new_event_loop()
    try:
        assert _run_inside(stock, loop) == (
            "Cannot run the event loop while another loop is running"
        )
    finally:
        stock.close()


def test_stock_loop_cannot_run_inside_this_loop(loop: asyncio.AbstractEventLoop) -> None:
    stock = asyncio.new_event_loop()
    try:
        assert _run_inside(loop, stock) == (
            "Cannot run the event loop while another loop is running"
        )
    finally:
        stock.close()


def test_a_loop_of_the_same_kind_is_made_closed_and_dropped_inside_a_callback(
    loop: asyncio.AbstractEventLoop, loop_name: str
) -> None:
    # TokioLoop runs its callbacks inside tokio's runtime, where dropping
    # another runtime the plain way would panic.
    done: list[str] = []

    def cb() -> None:
        closed = make_loop(loop_name)
        closed.call_soon(noop)
        closed.close()
        dropped = make_loop(loop_name)
        dropped.close()
        del dropped
        gc.collect()
        done.append("ok")
        loop.stop()

    loop.call_soon(cb)
    run_forever_bounded(loop)
    assert done == ["ok"]
    assert loop.run_until_complete(_value(3)) == 3


def test_a_loop_of_the_same_kind_runs_inside_a_callback_past_the_running_check(
    loop: asyncio.AbstractEventLoop, loop_name: str
) -> None:
    # What a process forked from a callback does (multiprocessing's fork
    # start method): run a loop from inside the running one's callback.
    # TokioLoop's callbacks run inside tokio's runtime, where another
    # runtime cannot be entered.
    results: list[object] = []

    async def inner_work() -> str:
        await asyncio.sleep(0.001)
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.001, fut.set_result, "inner")
        return await fut

    def cb() -> None:
        inner = make_loop(loop_name)
        asyncio.events._set_running_loop(None)
        try:
            results.append(inner.run_until_complete(inner_work()))
        finally:
            asyncio.events._set_running_loop(loop)
            inner.close()
            loop.stop()

    loop.call_soon(cb)
    run_forever_bounded(loop)
    assert results == ["inner"]
    assert loop.run_until_complete(_value(4)) == 4


async def _child_work() -> bytes:
    await asyncio.sleep(0.001)
    return b"child ran"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_loop_of_the_same_kind_runs_in_a_process_forked_from_a_callback(
    loop: asyncio.AbstractEventLoop, loop_name: str
) -> None:
    # multiprocessing's fork start method does this: the child carries on
    # from inside the callback (on TokioLoop, inside tokio's runtime).
    r, w = os.pipe()
    pids: list[int] = []

    def cb() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
            pid = os.fork()
        if pid == 0:
            code = 1
            try:
                asyncio.events._set_running_loop(None)
                inner = make_loop(loop_name)
                os.write(w, inner.run_until_complete(_child_work()))
                inner.close()
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
        loop.stop()

    loop.call_soon(cb)
    run_forever_bounded(loop)
    os.close(w)
    try:
        readable, _, _ = select.select([r], [], [], 20)
        got = os.read(r, 100) if readable else b""
    finally:
        os.close(r)
        _, status = os.waitpid(pids[0], 0)
    assert got == b"child ran"
    assert os.waitstatus_to_exitcode(status) == 0


def test_get_running_loop_in_task(loop: asyncio.AbstractEventLoop) -> None:
    async def coro() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
        return asyncio.get_running_loop(), asyncio.get_event_loop()

    assert run(loop, coro()) == (loop, loop)
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_running_loop_is_reset_after_exception(loop: asyncio.AbstractEventLoop) -> None:
    async def boom() -> None:
        raise CustomError

    with pytest.raises(CustomError):
        loop.run_until_complete(boom())
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.get_running_loop()
    assert not loop.is_running()


async def _a_coro() -> None:
    pass


CLOSED_OPERATIONS: dict[str, Callable[[asyncio.AbstractEventLoop], Any]] = {
    "call_soon": lambda lp: lp.call_soon(noop),
    "call_later": lambda lp: lp.call_later(1, noop),
    "call_at": lambda lp: lp.call_at(lp.time() + 1, noop),
    "call_soon_threadsafe": lambda lp: lp.call_soon_threadsafe(noop),
    "run_forever": lambda lp: lp.run_forever(),
    "run_until_complete": lambda lp: lp.run_until_complete(_a_coro()),
    "create_task": lambda lp: lp.create_task(_a_coro()),
    "run_in_executor": lambda lp: lp.run_in_executor(None, noop),
    "shutdown_asyncgens": lambda lp: lp.run_until_complete(lp.shutdown_asyncgens()),
}


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
@pytest.mark.parametrize("operation", sorted(CLOSED_OPERATIONS))
def test_closed_loop_raises(loop: asyncio.AbstractEventLoop, operation: str) -> None:
    loop.close()
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        CLOSED_OPERATIONS[operation](loop)


def test_closed_loop_rejects_future_use(loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    loop.close()
    # Completing a future schedules its callbacks: that needs an open loop.
    fut.add_done_callback(noop)
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        fut.set_result(None)
