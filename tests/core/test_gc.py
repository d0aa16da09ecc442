"""Reference cycles through loop objects are collected, as with asyncio's
pure-Python handles: a long-running server must not leak one object per
request that kept a timer on itself."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import socket
import weakref

import pytest
from conftest import make_loop, run, run_forever_bounded, xfail_for


class HoldsTimer:
    """Keeps a handle whose callback is one of its own methods (a cycle)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = loop.call_later(3600, self.on_timeout)
        self.soon = loop.call_soon(self.on_timeout)
        self.fired = 0

    def on_timeout(self) -> None:
        self.fired += 1


def test_cancelled_timer_cycle_is_collected(loop: asyncio.AbstractEventLoop) -> None:
    obj = HoldsTimer(loop)
    ref = weakref.ref(obj)
    obj.timer.cancel()
    run(loop, asyncio.sleep(0))
    assert obj.fired == 1
    del obj
    gc.collect()
    assert ref() is None


def test_reader_handle_cycle_is_collected(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(request, ["uvloop"], "uvloop keeps a removed reader's callback alive", loop_name)

    a, b = socket.socketpair()
    try:

        class Reader:
            def __init__(self) -> None:
                loop.add_reader(a, self.readable)
                self.loop = loop

            def readable(self) -> None:
                a.recv(100)

        reader = Reader()
        ref = weakref.ref(reader)
        assert loop.remove_reader(a)
        del reader
        gc.collect()
        assert ref() is None
    finally:
        a.close()
        b.close()


def _closed_loop_referenced_by_its_handler(loop_name: str) -> weakref.ref[object]:
    loop = make_loop(loop_name)
    holder: dict[str, object] = {"loop": loop}
    loop.set_exception_handler(lambda lp, ctx: holder.clear())
    run(loop, asyncio.sleep(0))
    loop.close()
    return weakref.ref(loop)


def test_closed_loop_with_self_referencing_handler_is_collected(loop_name: str) -> None:
    ref = _closed_loop_referenced_by_its_handler(loop_name)
    gc.collect()
    assert ref() is None


def _abandoned_sock_recv(loop_name: str) -> weakref.ref[object]:
    """A sock_recv still waiting when its loop is closed and dropped."""
    loop = make_loop(loop_name)
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    try:

        async def main() -> asyncio.Future[bytes]:
            waiting = asyncio.ensure_future(loop.sock_recv(ours, 10))
            await asyncio.sleep(0)
            return waiting

        waiting = run(loop, main())
        assert not waiting.done()
        ref = weakref.ref(waiting)
        # Its "destroyed but pending" report goes to this handler.
        loop.set_exception_handler(lambda lp, ctx: None)
        loop.close()
        return ref
    finally:
        ours.close()
        peer.close()


def test_abandoned_sock_recv_is_collected(loop_name: str) -> None:
    ref = _abandoned_sock_recv(loop_name)
    gc.collect()
    assert ref() is None


class HoldsSoon:
    """Keeps the handle of a call_soon whose callback is its own method."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.handle = loop.call_soon(self.run)
        self.ran = False

    def run(self) -> None:
        self.ran = True


def _mark_ran(obj: HoldsSoonArg, _other: object) -> None:
    obj.ran = True


class HoldsSoonArg:
    """Keeps the handle of a call_soon that has the object among its
    arguments: obj -> handle -> its arguments -> obj. With `hold_args`, the
    object also keeps the arguments' tuple itself (asyncio's
    `handle._args`), so that the tuple outlives the handle."""

    def __init__(self, loop: asyncio.AbstractEventLoop, hold_args: bool) -> None:
        self.ran = False
        self.handle: asyncio.Handle | None = loop.call_soon(_mark_ran, self, None)
        self.args = self.handle._args if hold_args else None  # type: ignore[attr-defined]


def _mark_result_ran(fut: asyncio.Future[HoldsSoonFuture]) -> None:
    fut.result().ran = True


class HoldsSoonFuture:
    """Keeps the handle of a call_soon made as a future schedules its
    done-callbacks (`call_soon(cb, fut, context=ctx)`), where the future and
    the context both hold the object: obj -> handle -> future -> obj, and
    obj -> handle -> context -> obj. The loop hides both from the collector
    while the handle is queued."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.ran = False
        fut: asyncio.Future[HoldsSoonFuture] = loop.create_future()
        fut.set_result(self)
        ctx = contextvars.copy_context()
        ctx.run(_HOLDER.set, self)
        self.handle = loop.call_soon(_mark_result_ran, fut, context=ctx)


def _soon_holder(
    loop: asyncio.AbstractEventLoop, through: str
) -> HoldsSoon | HoldsSoonArg | HoldsSoonFuture:
    if through == "callback":
        return HoldsSoon(loop)
    if through == "future and context":
        return HoldsSoonFuture(loop)
    return HoldsSoonArg(loop, hold_args=through == "arguments kept")


@pytest.mark.parametrize(
    "through", ["callback", "arguments", "arguments kept", "future and context"]
)
@pytest.mark.parametrize("ends", ["ran", "cancelled", "loop closed"])
@pytest.mark.parametrize("count", [3, 100])
def test_call_soon_cycle_is_collected(loop_name: str, ends: str, through: str, count: int) -> None:
    """A cycle through a call_soon handle is collected once the loop lets go
    of the handle, however the handle left its queue: through its callback,
    or through its arguments, which the loop hides from the collector with
    the handle ("arguments kept": the object keeps the arguments' tuple
    too, so that it outlives the handle), or through a future argument and
    the context given, hidden too. rloop hides only the handles queued
    behind many others: 100 are queued to cover those."""
    loop = make_loop(loop_name)
    if through == "arguments kept" and not hasattr(loop.call_soon(print), "_args"):
        loop.close()
        pytest.skip("this loop's handles do not show their arguments")
    try:
        objs = [_soon_holder(loop, through) for _ in range(count)]
        refs = [weakref.ref(obj) for obj in objs]
        gc.collect()  # while queued, each is alive (the loop holds it)
        assert all(ref() is not None for ref in refs)
        if ends == "cancelled":
            for obj in objs:
                assert obj.handle is not None
                obj.handle.cancel()
                if isinstance(obj, HoldsSoonArg):
                    obj.handle = None  # what is left: obj -> arguments -> obj
            del obj
        if ends != "loop closed":
            run(loop, asyncio.sleep(0))
        ran = [held.ran for held in objs]
        del objs
    finally:
        loop.close()
    assert ran == [ends == "ran"] * count
    gc.collect()
    assert [ref() for ref in refs] == [None] * count


class HoldsLater:
    """Keeps the handle of a call_later whose callback is its own method."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float, ran: list[bool]) -> None:
        self.handle = loop.call_later(delay, self.run)
        self.ran = False
        self.all_ran = ran

    def run(self) -> None:
        self.ran = True
        self.all_ran.append(True)
        if len(self.all_ran) == 3:
            asyncio.get_running_loop().stop()


@pytest.mark.parametrize("ends", ["ran", "cancelled", "loop closed"])
def test_call_later_cycle_is_collected(loop_name: str, ends: str) -> None:
    """The same for timers, however they left the loop's timer heap."""
    loop = make_loop(loop_name)
    try:
        fired: list[bool] = []
        objs = [HoldsLater(loop, 0 if ends == "ran" else 3600, fired) for _ in range(3)]
        refs = [weakref.ref(obj) for obj in objs]
        gc.collect()
        assert all(ref() is not None for ref in refs)
        if ends == "cancelled":
            for obj in objs:
                obj.handle.cancel()
            del obj
        if ends == "ran":
            run_forever_bounded(loop)  # the third stops it
        elif ends == "cancelled":
            run(loop, asyncio.sleep(0))
        ran = [held.ran for held in objs]
        del objs
    finally:
        loop.close()
    assert ran == [ends == "ran"] * 3 and len(fired) == ran.count(True)
    gc.collect()
    assert [ref() for ref in refs] == [None] * 3


_HOLDER: contextvars.ContextVar[object] = contextvars.ContextVar("_HOLDER")


def _soon_in_own_context(loop: asyncio.AbstractEventLoop) -> HoldsSoon:
    """A HoldsSoon whose handle's context (a copy of the current one, made
    by call_soon) holds the object too: obj -> handle -> context -> obj."""
    obj = HoldsSoon.__new__(HoldsSoon)
    _HOLDER.set(obj)
    HoldsSoon.__init__(obj, loop)
    return obj


@pytest.mark.parametrize("ends", ["ran", "loop closed"])
def test_cycle_through_handle_context_is_collected(loop_name: str, ends: str) -> None:
    loop = make_loop(loop_name)
    try:
        refs = [weakref.ref(contextvars.copy_context().run(_soon_in_own_context, loop))]
        gc.collect()
        assert refs[0]() is not None  # queued: the loop holds it
        if ends == "ran":
            run(loop, asyncio.sleep(0))
    finally:
        loop.close()
    gc.collect()
    assert refs[0]() is None


class Reentrant:
    """An object whose finalizer schedules on the loop: what a loop frees
    (a cancelled timer's callback, a handle's arguments) may call back into
    it at once, while it is in the middle of its own bookkeeping."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ran: list[str]) -> None:
        self.loop = loop
        self.ran = ran

    def __call__(self) -> None:
        raise AssertionError("a cancelled timer ran")

    def __del__(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon(self.ran.append, "soon")
            self.loop.call_later(0, self.ran.append, "later")


def test_finalizers_that_schedule_while_the_loop_frees(loop: asyncio.AbstractEventLoop) -> None:
    # Cancelled timers are freed when the heap is compacted (more than half
    # of it, and at least 100, cancelled) or when they come due; each
    # freed callback schedules two more callbacks from its finalizer.
    ran: list[str] = []
    timers = [loop.call_later(0.001 * (i % 3), Reentrant(loop, ran)) for i in range(300)]
    for timer in timers:
        timer.cancel()
    del timers, timer
    for _ in range(5):
        loop.run_until_complete(asyncio.sleep(0.005))
    assert ran.count("soon") == ran.count("later") == 300
    # Handles still queued at close(): their finalizers find the loop closed.
    pending = [loop.call_soon(print, Reentrant(loop, ran)) for _ in range(10)]
    del pending
    loop.close()
    gc.collect()
    assert len(ran) == 600


class Roundtrip:
    """Keeps the handle of a call_soon of one of its own methods, with a
    tag as its argument: obj -> handle -> bound method -> obj."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, ran: list[tuple[int, int]], tag: tuple[int, int]
    ) -> None:
        self.ran = ran
        self.handle = loop.call_soon(self.record, tag)

    def record(self, tag: tuple[int, int]) -> None:
        self.ran.append(tag)


def test_handles_made_after_others_were_freed(loop: asyncio.AbstractEventLoop) -> None:
    """Rounds of call_soon handles, each round made once the last one's
    handles are freed (rloop then makes them in the freed handles' memory):
    every handle is new (not cancelled, tracked by the collector, with its
    own callback and arguments), and a cycle through any of them is
    collected."""
    ran: list[tuple[int, int]] = []
    for rnd in range(40):
        objs = [Roundtrip(loop, ran, (rnd, i)) for i in range(rnd % 5)]
        assert all(not obj.handle.cancelled() for obj in objs)
        assert all(gc.is_tracked(obj.handle) for obj in objs)
        refs = [weakref.ref(obj) for obj in objs] + [weakref.ref(obj.handle) for obj in objs]
        if objs and rnd % 3 == 0:
            objs[0].handle.cancel()
        run(loop, asyncio.sleep(0))
        del objs
        gc.collect()
        assert [r() for r in refs] == [None] * len(refs)
    expected = [
        (rnd, i) for rnd in range(40) for i in range(rnd % 5) if not (rnd % 3 == 0 and i == 0)
    ]
    assert ran == expected
