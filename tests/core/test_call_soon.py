"""loop.call_soon: FIFO ordering, arguments, contexts and bad input."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest
from conftest import noop, run_forever_bounded, xfail_for

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def test_fifo_order_and_arguments(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[tuple[Any, ...]] = []

    def record(*args: Any) -> None:
        calls.append(args)

    for i in range(20):
        loop.call_soon(record, i, str(i))
    loop.call_soon(record, "no-more")
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert calls == [(i, str(i)) for i in range(20)] + [("no-more",)]


def test_callback_without_arguments(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[str] = []
    loop.call_soon(lambda: calls.append("called"))
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert calls == ["called"]


def test_scheduled_from_callback_runs_after_already_queued(
    loop: asyncio.AbstractEventLoop,
) -> None:
    order: list[str] = []

    def first() -> None:
        order.append("first")
        loop.call_soon(order.append, "third")
        loop.call_soon(loop.stop)

    loop.call_soon(first)
    loop.call_soon(order.append, "second")
    run_forever_bounded(loop)
    assert order == ["first", "second", "third"]


def test_each_callback_runs_exactly_once(loop: asyncio.AbstractEventLoop) -> None:
    counts = {"a": 0, "b": 0}

    def bump(key: str) -> None:
        counts[key] += 1

    loop.call_soon(bump, "a")
    loop.call_soon(bump, "b")
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert counts == {"a": 1, "b": 1}


def test_returns_handle(loop: asyncio.AbstractEventLoop) -> None:
    handle = loop.call_soon(noop)
    assert not handle.cancelled()
    handle.cancel()
    assert handle.cancelled()


def test_get_running_loop_inside_callback(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    def cb() -> None:
        seen.append(asyncio.get_running_loop())
        seen.append(asyncio.get_event_loop())
        loop.stop()

    loop.call_soon(cb)
    run_forever_bounded(loop)
    assert seen == [loop, loop]
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.get_running_loop()


def test_context_argument_is_used(loop: asyncio.AbstractEventLoop) -> None:
    ctx = contextvars.copy_context()
    ctx.run(VAR.set, "in-ctx")
    seen: list[str] = []

    def cb() -> None:
        seen.append(VAR.get())
        VAR.set("changed-by-callback")

    loop.call_soon(cb, context=ctx)
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert seen == ["in-ctx"]
    # The callback ran inside ctx itself, so its change is visible there ...
    assert ctx[VAR] == "changed-by-callback"
    # ... and not in the caller's context.
    assert VAR.get() == "unset"


def test_context_keyword_spelled_by_any_equal_string(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # A keyword is matched by value, whatever string object names it (rloop
    # knows asyncio's own by its address once seen); a near miss is refused.
    seen: list[str] = []
    for i in range(3):
        ctx = contextvars.copy_context()
        ctx.run(VAR.set, f"ctx-{i}")
        keyword = "con" + str(i)[:0] + "text"  # a new string object each time
        loop.call_soon(lambda: seen.append(VAR.get()), **{keyword: ctx})
    with pytest.raises(TypeError):
        loop.call_soon(noop, contexts=None)  # type: ignore[call-arg]
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert seen == ["ctx-0", "ctx-1", "ctx-2"]


def test_default_context_is_a_copy_of_the_current_one(
    loop: asyncio.AbstractEventLoop,
) -> None:
    seen: list[str] = []

    def cb(label: str) -> None:
        seen.append(f"{label}:{VAR.get()}")
        VAR.set(f"set-by-{label}")

    def schedule() -> None:
        # Runs in a context where VAR is "outer": the callbacks see a copy.
        VAR.set("outer")
        loop.call_soon(cb, "a")
        loop.call_soon(cb, "b")
        loop.call_soon(check)

    def check() -> None:
        seen.append(f"check:{VAR.get()}")
        loop.stop()

    contextvars.copy_context().run(schedule)
    run_forever_bounded(loop)
    # Each callback gets its own copy: "b" does not see what "a" set.
    assert seen == ["a:outer", "b:outer", "check:outer"]
    assert VAR.get() == "unset"


def test_callback_set_does_not_leak_to_caller(loop: asyncio.AbstractEventLoop) -> None:
    token = VAR.set("caller")
    try:
        loop.call_soon(VAR.set, "callback")
        loop.call_soon(loop.stop)
        run_forever_bounded(loop)
        assert VAR.get() == "caller"
    finally:
        VAR.reset(token)


async def _coro_function() -> None:
    pass


UVLOOP_NO_DEBUG_CHECKS = "uvloop does not validate callbacks in debug mode"


@pytest.mark.parametrize("method", ["call_soon", "call_soon_threadsafe"])
def test_debug_rejects_non_callable(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    method: str,
    request: pytest.FixtureRequest,
) -> None:
    xfail_for(request, ["uvloop"], UVLOOP_NO_DEBUG_CHECKS, loop_name)
    loop.set_debug(True)
    with pytest.raises(TypeError, match=rf"a callable object was expected by {method}\(\)"):
        getattr(loop, method)(42)


@pytest.mark.parametrize("method", ["call_soon", "call_soon_threadsafe"])
def test_debug_rejects_coroutine_function(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    method: str,
    request: pytest.FixtureRequest,
) -> None:
    xfail_for(request, ["uvloop"], UVLOOP_NO_DEBUG_CHECKS, loop_name)
    loop.set_debug(True)
    with pytest.raises(TypeError, match=rf"coroutines cannot be used with {method}\(\)"):
        getattr(loop, method)(_coro_function)


@pytest.mark.parametrize("method", ["call_soon", "call_soon_threadsafe"])
def test_debug_rejects_coroutine(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    method: str,
    request: pytest.FixtureRequest,
) -> None:
    xfail_for(request, ["uvloop"], UVLOOP_NO_DEBUG_CHECKS, loop_name)
    loop.set_debug(True)
    coro = _coro_function()
    try:
        with pytest.raises(TypeError, match=rf"coroutines cannot be used with {method}\(\)"):
            getattr(loop, method)(coro)
    finally:
        coro.close()


def test_non_callable_fails_when_called(loop: asyncio.AbstractEventLoop) -> None:
    """Outside debug mode the error surfaces when the 'callback' is invoked."""
    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: contexts.append(context))
    order: list[str] = []
    try:
        loop.call_soon(42)  # type: ignore[arg-type]
    except TypeError:
        # Eager validation is also acceptable: nothing was scheduled.
        return
    loop.call_soon(order.append, "after")
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert order == ["after"]
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], TypeError)
