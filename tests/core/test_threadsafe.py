"""call_soon_threadsafe and cross-thread wake-ups."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest
from conftest import RUN_TIMEOUT, run, run_forever_bounded, xfail_for

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def _start_thread_when_running(loop: asyncio.AbstractEventLoop, target: object) -> threading.Thread:
    thread = threading.Thread(target=target)  # type: ignore[arg-type]
    loop.call_soon(thread.start)
    return thread


def test_wakes_loop_blocked_waiting(loop: asyncio.AbstractEventLoop) -> None:
    """The loop sleeps in its poller (nothing due for RUN_TIMEOUT seconds) and
    must wake up promptly when another thread schedules a callback."""
    loop_idle = threading.Event()
    woke: list[tuple[str, int]] = []

    def from_thread() -> None:
        assert loop_idle.wait(RUN_TIMEOUT)
        # Give the loop time to block in its poller; if the wake-up were
        # missed the run would only end at the RUN_TIMEOUT guard.
        time.sleep(0.05)
        loop.call_soon_threadsafe(on_wake, "woken")

    def on_wake(tag: str) -> None:
        woke.append((tag, threading.get_ident()))
        loop.stop()

    thread = _start_thread_when_running(loop, from_thread)
    loop.call_soon(loop_idle.set)
    start = time.monotonic()
    try:
        run_forever_bounded(loop)
    finally:
        thread.join(RUN_TIMEOUT)
    assert not thread.is_alive()
    assert woke == [("woken", threading.get_ident())]
    assert time.monotonic() - start < 2


def test_wakes_loop_waiting_on_far_timer(loop: asyncio.AbstractEventLoop) -> None:
    ran: list[str] = []
    loop.call_later(3600, ran.append, "far timer")

    def from_thread() -> None:
        loop.call_soon_threadsafe(loop.stop)

    thread = _start_thread_when_running(loop, from_thread)
    start = time.monotonic()
    try:
        run_forever_bounded(loop)
    finally:
        thread.join(RUN_TIMEOUT)
    assert time.monotonic() - start < 2
    assert ran == []


def test_order_from_one_thread_is_preserved(loop: asyncio.AbstractEventLoop) -> None:
    got: list[int] = []

    def from_thread() -> None:
        for i in range(500):
            loop.call_soon_threadsafe(got.append, i)
        loop.call_soon_threadsafe(loop.stop)

    thread = _start_thread_when_running(loop, from_thread)
    try:
        run_forever_bounded(loop)
    finally:
        thread.join(RUN_TIMEOUT)
    assert got == list(range(500))


def test_many_threads(loop: asyncio.AbstractEventLoop) -> None:
    n_threads, per_thread = 8, 200
    got: list[tuple[int, int]] = []
    done = [0]

    def finished() -> None:
        done[0] += 1
        if done[0] == n_threads:
            loop.stop()

    def worker(t: int) -> None:
        for i in range(per_thread):
            loop.call_soon_threadsafe(got.append, (t, i))
        loop.call_soon_threadsafe(finished)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        loop.call_soon(thread.start)
    try:
        run_forever_bounded(loop)
    finally:
        for thread in threads:
            thread.join(RUN_TIMEOUT)
    assert len(got) == n_threads * per_thread
    for t in range(n_threads):
        assert [i for (tt, i) in got if tt == t] == list(range(per_thread))


def test_every_burst_wakes_the_blocked_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Round after round the loop blocks with nothing to do, and another
    thread queues a burst of callbacks: each burst must wake it (one lost
    wake-up would leave it blocked until the RUN_TIMEOUT guard)."""
    rounds, burst = 300, 5
    go = threading.Event()
    ran: list[int] = []
    state: dict[str, asyncio.Future[None]] = {}

    def finish_round() -> None:
        state["fut"].set_result(None)

    def worker() -> None:
        for r in range(rounds):
            if not go.wait(RUN_TIMEOUT):
                return
            go.clear()
            for _ in range(burst - 1):
                loop.call_soon_threadsafe(ran.append, r)
            loop.call_soon_threadsafe(finish_round)

    async def main() -> None:
        for _ in range(rounds):
            state["fut"] = loop.create_future()
            go.set()
            await state["fut"]

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        run(loop, main())
    finally:
        go.set()
        thread.join(RUN_TIMEOUT)
    assert ran == [r for r in range(rounds) for _ in range(burst - 1)]


def test_before_loop_runs(loop: asyncio.AbstractEventLoop) -> None:
    got: list[str] = []
    thread = threading.Thread(target=lambda: loop.call_soon_threadsafe(got.append, "queued"))
    thread.start()
    thread.join(RUN_TIMEOUT)
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert got == ["queued"]


def test_threadsafe_handle_cancel(loop: asyncio.AbstractEventLoop) -> None:
    got: list[str] = []
    handle = loop.call_soon_threadsafe(got.append, "cancelled")
    handle.cancel()
    loop.call_soon_threadsafe(got.append, "kept")
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert got == ["kept"]
    assert handle.cancelled()


def test_threadsafe_and_call_soon_share_fifo(loop: asyncio.AbstractEventLoop) -> None:
    got: list[str] = []
    loop.call_soon(got.append, "a")
    loop.call_soon_threadsafe(got.append, "b")
    loop.call_soon(got.append, "c")
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert got == ["a", "b", "c"]


def test_threadsafe_context(loop: asyncio.AbstractEventLoop) -> None:
    ctx = contextvars.copy_context()
    ctx.run(VAR.set, "given")
    seen: list[str] = []

    def from_thread() -> None:
        VAR.set("thread-value")
        loop.call_soon_threadsafe(lambda: seen.append(VAR.get()), context=ctx)
        loop.call_soon_threadsafe(lambda: seen.append(VAR.get()))
        loop.call_soon_threadsafe(loop.stop)

    thread = _start_thread_when_running(loop, from_thread)
    try:
        run_forever_bounded(loop)
    finally:
        thread.join(RUN_TIMEOUT)
    # Without context= the callback runs in a copy of the *calling thread's*
    # context.
    assert seen == ["given", "thread-value"]


def test_run_coroutine_threadsafe(loop: asyncio.AbstractEventLoop) -> None:
    results: list[object] = []

    async def compute(x: int) -> int:
        await asyncio.sleep(0)
        assert asyncio.get_running_loop() is loop
        return x * 2

    def from_thread() -> None:
        fut = asyncio.run_coroutine_threadsafe(compute(21), loop)
        results.append(fut.result(RUN_TIMEOUT))

    async def main() -> None:
        thread = threading.Thread(target=from_thread)
        thread.start()
        await loop.run_in_executor(None, thread.join, RUN_TIMEOUT)

    run(loop, main())
    assert results == [42]


def test_future_completed_from_thread(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> str:
        fut = loop.create_future()
        thread = threading.Thread(
            target=lambda: loop.call_soon_threadsafe(fut.set_result, "from thread")
        )
        thread.start()
        try:
            return await fut
        finally:
            thread.join(RUN_TIMEOUT)

    assert run(loop, main()) == "from thread"


# Whether the running asyncio's call_soon_threadsafe handles make a cancel
# from another thread wait for a running callback (3.14, and the later
# patch releases of 3.12 and 3.13). rloop's always do.
CANCEL_WAITS_FOR_CALLBACK = hasattr(asyncio.events, "_ThreadSafeHandle")


def _waits_for_callback(request: pytest.FixtureRequest, loop_name: str) -> None:
    if loop_name in ("asyncio", "uvloop") and not CANCEL_WAITS_FOR_CALLBACK:
        pytest.skip("this Python's asyncio does not order a cross-thread cancel")
    xfail_for(request, ["uvloop"], "uvloop's cancel() does not wait for the callback", loop_name)


@pytest.mark.parametrize("method", ["cancel", "cancelled"])
def test_cancel_from_thread_waits_for_running_callback(
    request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop, loop_name: str, method: str
) -> None:
    _waits_for_callback(request, loop_name)
    started, finished = threading.Event(), threading.Event()
    seen: list[object] = []

    def callback() -> None:
        started.set()
        time.sleep(0.1)  # the other thread calls cancel() meanwhile
        finished.set()

    def other_thread() -> None:
        handle = loop.call_soon_threadsafe(callback)
        assert started.wait(RUN_TIMEOUT)
        seen.append(getattr(handle, method)())
        # cancel()/cancelled() returned only once the callback had.
        seen.append(finished.is_set())
        loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=other_thread)
    thread.start()
    run_forever_bounded(loop)
    thread.join(RUN_TIMEOUT)
    assert seen == [None if method == "cancel" else False, True]


def test_callback_cancels_its_own_threadsafe_handle(loop: asyncio.AbstractEventLoop) -> None:
    # The thread running the callback does not wait on itself.
    handles: list[asyncio.Handle] = []
    seen: list[bool] = []

    def callback() -> None:
        handles[0].cancel()
        seen.append(handles[0].cancelled())
        loop.stop()

    def other_thread() -> None:
        handles.append(loop.call_soon_threadsafe(callback))

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(RUN_TIMEOUT)
    run_forever_bounded(loop)
    assert seen == [True]


def test_threadsafe_handle_cancelled_from_thread_never_runs(
    loop: asyncio.AbstractEventLoop,
) -> None:
    ran: list[str] = []

    def other_thread() -> None:
        handle = loop.call_soon_threadsafe(ran.append, "cancelled one")
        handle.cancel()
        loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(RUN_TIMEOUT)
    run_forever_bounded(loop)
    assert ran == []
