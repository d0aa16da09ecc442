"""asyncio.Handle / asyncio.TimerHandle as returned by the loop."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import weakref

import pytest
from conftest import run_forever_bounded, xfail_for

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def distinctive_callback_name() -> None:
    pass


def test_cancel_and_cancelled(loop: asyncio.AbstractEventLoop) -> None:
    handle = loop.call_soon(distinctive_callback_name)
    assert handle.cancelled() is False
    assert handle.cancel() is None
    assert handle.cancelled() is True
    handle.cancel()  # idempotent
    assert handle.cancelled() is True


def test_timer_cancel_and_cancelled(loop: asyncio.AbstractEventLoop) -> None:
    handle = loop.call_later(10, distinctive_callback_name)
    assert handle.cancelled() is False
    handle.cancel()
    assert handle.cancelled() is True
    handle.cancel()
    assert handle.cancelled() is True


def test_cancelled_handles_never_run(loop: asyncio.AbstractEventLoop) -> None:
    ran: list[str] = []
    handles = [loop.call_soon(ran.append, f"h{i}") for i in range(6)]
    for h in handles[::2]:
        h.cancel()
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert ran == ["h1", "h3", "h5"]


def test_cancel_from_earlier_callback_in_same_iteration(
    loop: asyncio.AbstractEventLoop,
) -> None:
    ran: list[str] = []
    later: list[asyncio.Handle] = []
    loop.call_soon(lambda: later[0].cancel())
    later.append(loop.call_soon(ran.append, "should-not-run"))
    loop.call_soon(ran.append, "runs")
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert ran == ["runs"]


def test_cancel_after_run_is_harmless(loop: asyncio.AbstractEventLoop) -> None:
    ran: list[int] = []
    handle = loop.call_soon(ran.append, 1)
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    handle.cancel()
    assert handle.cancelled() is True
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert ran == [1]


def test_timer_when(loop: asyncio.AbstractEventLoop) -> None:
    # 2 ms: uvloop keeps `when` on its millisecond clock, so its rounding
    # alone may reach 1 ms.
    when = loop.time() + 42.5
    handle = loop.call_at(when, distinctive_callback_name)
    assert handle.when() == pytest.approx(when, abs=2e-3)
    handle.cancel()
    # when() is still available after cancel.
    assert handle.when() == pytest.approx(when, abs=2e-3)


def test_repr_contains_callback_name(loop: asyncio.AbstractEventLoop) -> None:
    handle = loop.call_soon(distinctive_callback_name)
    timer = loop.call_later(10, distinctive_callback_name)
    assert "distinctive_callback_name" in repr(handle)
    assert "distinctive_callback_name" in repr(timer)
    assert "cancelled" not in repr(handle)
    assert "cancelled" not in repr(timer)
    handle.cancel()
    timer.cancel()
    # Outside debug mode asyncio drops the callback on cancel, so only the
    # state is promised here.
    assert "cancelled" in repr(handle)
    assert "cancelled" in repr(timer)


def test_repr_class_names(loop: asyncio.AbstractEventLoop) -> None:
    handle = loop.call_soon(distinctive_callback_name)
    timer = loop.call_later(10, distinctive_callback_name)
    assert repr(handle).startswith("<Handle ")
    assert repr(timer).startswith("<TimerHandle ")
    handle.cancel()
    timer.cancel()


def test_debug_repr_keeps_callback_after_cancel(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(request, ["uvloop"], "uvloop drops the callback from a cancelled repr", loop_name)
    loop.set_debug(True)
    handle = loop.call_soon(distinctive_callback_name)
    handle.cancel()
    text = repr(handle)
    assert "cancelled" in text
    assert "distinctive_callback_name" in text


def _get_context(handle: asyncio.Handle) -> contextvars.Context:
    if not hasattr(handle, "get_context"):
        pytest.skip("Handle.get_context() is new in Python 3.12; 3.11's handles lack it")
    return handle.get_context()  # type: ignore[no-any-return,attr-defined]


def test_get_context_returns_given_context(loop: asyncio.AbstractEventLoop) -> None:
    ctx = contextvars.copy_context()
    handle = loop.call_soon(distinctive_callback_name, context=ctx)
    timer = loop.call_later(10, distinctive_callback_name, context=ctx)
    try:
        assert _get_context(handle) is ctx
        assert _get_context(timer) is ctx
    finally:
        handle.cancel()
        timer.cancel()


def test_get_context_defaults_to_copy(loop: asyncio.AbstractEventLoop) -> None:
    token = VAR.set("current")
    try:
        handle = loop.call_soon(distinctive_callback_name)
        ctx = _get_context(handle)
        assert ctx[VAR] == "current"
        handle.cancel()
    finally:
        VAR.reset(token)


class _Target:
    def method(self) -> None:
        pass


@pytest.mark.parametrize("kind", ["call_soon", "call_later"])
def test_cancel_releases_callback_and_args(loop: asyncio.AbstractEventLoop, kind: str) -> None:
    # asyncio drops a cancelled handle's callback and arguments at once, so
    # a cancelled timer keeps nothing alive until its deadline.
    callback_owner, arg = _Target(), _Target()
    refs = [weakref.ref(callback_owner), weakref.ref(arg)]
    if kind == "call_soon":
        handle: asyncio.Handle = loop.call_soon(callback_owner.method, arg)
    else:
        handle = loop.call_later(3600, callback_owner.method, arg)
    del callback_owner, arg
    assert all(r() is not None for r in refs)
    handle.cancel()
    assert [r() for r in refs] == [None, None]
    assert handle.cancelled()
    loop.run_until_complete(asyncio.sleep(0))  # the loop skips it, no error


def test_cancelled_handle_repr(loop: asyncio.AbstractEventLoop) -> None:
    handle = loop.call_soon(distinctive_callback_name)
    assert "distinctive_callback_name" in repr(handle)
    handle.cancel()
    assert repr(handle) == "<Handle cancelled>"


@pytest.mark.parametrize("kind", ["call_soon", "call_later"])
def test_handles_are_weakly_referenceable(loop: asyncio.AbstractEventLoop, kind: str) -> None:
    if kind == "call_soon":
        handle: asyncio.Handle = loop.call_soon(distinctive_callback_name)
    else:
        handle = loop.call_later(3600, distinctive_callback_name)
    ref = weakref.ref(handle)
    assert ref() is handle
    handle.cancel()
    loop.run_until_complete(asyncio.sleep(0))  # the loop lets go of it
    del handle
    gc.collect()
    assert ref() is None
