"""add_signal_handler / remove_signal_handler (Unix)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import make_loop, noop, run, run_forever_bounded, xfail_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix signals")

SIGNALS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)


@pytest.fixture(autouse=True)
def _restore_signal_handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in SIGNALS}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(wakeup)


async def _coro_function() -> None:
    pass


def test_handler_runs_on_signal(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[tuple[Any, ...]] = []

    def handler(*args: Any) -> None:
        calls.append(args)
        calls.append((asyncio.get_running_loop() is loop, threading.get_ident()))
        loop.stop()

    loop.add_signal_handler(signal.SIGUSR1, handler, "arg1", 2)
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    run_forever_bounded(loop)
    assert calls == [("arg1", 2), (True, threading.get_ident())]


def test_handler_runs_as_loop_callback_not_inside_signal(
    loop: asyncio.AbstractEventLoop,
) -> None:
    order: list[str] = []

    def handler() -> None:
        order.append("handler")
        loop.stop()

    def send() -> None:
        os.kill(os.getpid(), signal.SIGUSR1)
        order.append("after kill")

    loop.add_signal_handler(signal.SIGUSR1, handler)
    loop.call_soon(send)
    run_forever_bounded(loop)
    assert order == ["after kill", "handler"]


def test_signal_wakes_idle_loop(loop: asyncio.AbstractEventLoop) -> None:
    """A signal sent from another thread wakes a loop blocked waiting."""
    got: list[str] = []

    def handler() -> None:
        got.append("signal")
        loop.stop()

    loop.add_signal_handler(signal.SIGUSR2, handler)
    started = threading.Event()
    thread = threading.Thread(
        target=lambda: started.wait(5) and os.kill(os.getpid(), signal.SIGUSR2)
    )
    thread.start()
    loop.call_soon(started.set)
    try:
        run_forever_bounded(loop)
    finally:
        thread.join(5)
    assert got == ["signal"]


def test_replacing_handler(loop: asyncio.AbstractEventLoop) -> None:
    got: list[str] = []
    loop.add_signal_handler(signal.SIGUSR1, got.append, "old")
    loop.add_signal_handler(signal.SIGUSR1, lambda: (got.append("new"), loop.stop()))
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    run_forever_bounded(loop)
    assert got == ["new"]


UVLOOP_REMOVE_BEFORE_RUN = (
    "uvloop's remove_signal_handler() returns False for handlers added before the loop ran"
)


def test_remove_signal_handler_return_value(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> list[bool]:
        results = [loop.remove_signal_handler(signal.SIGUSR1)]
        loop.add_signal_handler(signal.SIGUSR1, noop)
        results.append(loop.remove_signal_handler(signal.SIGUSR1))
        results.append(loop.remove_signal_handler(signal.SIGUSR1))
        return results

    assert run(loop, main()) == [False, True, False]


def test_remove_signal_handler_before_run(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(request, ["uvloop"], UVLOOP_REMOVE_BEFORE_RUN, loop_name)
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    loop.add_signal_handler(signal.SIGUSR1, noop)
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


def test_remove_restores_default_disposition(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        loop.add_signal_handler(signal.SIGUSR1, noop)
        assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN)
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL

    run(loop, main())


def test_remove_sigint_restores_default_int_handler(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        loop.add_signal_handler(signal.SIGINT, noop)
        assert loop.remove_signal_handler(signal.SIGINT) is True
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    run(loop, main())


def test_removed_handler_does_not_run(loop: asyncio.AbstractEventLoop) -> None:
    got: list[str] = []
    removed: list[bool] = []

    def send() -> None:
        loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
        loop.add_signal_handler(signal.SIGUSR2, lambda: (got.append("usr2"), loop.stop()))
        removed.append(loop.remove_signal_handler(signal.SIGUSR1))
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # don't die if it slips through
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)

    loop.call_soon(send)
    run_forever_bounded(loop)
    assert removed == [True]
    assert got == ["usr2"]


def test_close_removes_handlers(loop_name: str, request: pytest.FixtureRequest) -> None:
    xfail_for(request, ["uvloop"], "uvloop's close() leaves its handler installed", loop_name)
    loop = make_loop(loop_name)
    loop.add_signal_handler(signal.SIGUSR1, noop)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


@pytest.mark.parametrize("sig", ["SIGUSR1", None, 1.5])
def test_add_non_int_signal(loop: asyncio.AbstractEventLoop, sig: object) -> None:
    with pytest.raises(TypeError, match="sig must be an int"):
        loop.add_signal_handler(sig, noop)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sig must be an int"):
        loop.remove_signal_handler(sig)  # type: ignore[arg-type]


@pytest.mark.parametrize("sig", [0, -1, 10000])
def test_invalid_signal_number(
    loop: asyncio.AbstractEventLoop, loop_name: str, sig: int, request: pytest.FixtureRequest
) -> None:
    xfail_for(request, ["uvloop"], "uvloop says 'sig N out of range(1, 65)'", loop_name)
    with pytest.raises(ValueError, match=f"^invalid signal number {sig}$"):
        loop.add_signal_handler(sig, noop)
    with pytest.raises(ValueError, match=f"^invalid signal number {sig}$"):
        loop.remove_signal_handler(sig)


@pytest.mark.parametrize("sig", [0, 10000])
def test_invalid_signal_number_is_value_error(loop: asyncio.AbstractEventLoop, sig: int) -> None:
    with pytest.raises(ValueError):
        loop.add_signal_handler(sig, noop)


def test_uncatchable_signal(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(RuntimeError, match=f"^sig {int(signal.SIGKILL)} cannot be caught$"):
        loop.add_signal_handler(signal.SIGKILL, noop)
    assert loop.remove_signal_handler(signal.SIGKILL) is False


def test_coroutine_function_rejected(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(TypeError, match=r"coroutines cannot be used with add_signal_handler\(\)"):
        loop.add_signal_handler(signal.SIGUSR1, _coro_function)
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


def test_coroutine_rejected(loop: asyncio.AbstractEventLoop) -> None:
    coro = _coro_function()
    try:
        with pytest.raises(
            TypeError, match=r"coroutines cannot be used with add_signal_handler\(\)"
        ):
            loop.add_signal_handler(signal.SIGUSR1, coro)  # type: ignore[arg-type]
    finally:
        coro.close()


def test_closed_loop(loop: asyncio.AbstractEventLoop) -> None:
    loop.close()
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.add_signal_handler(signal.SIGUSR1, noop)


def test_not_main_thread(loop_name: str, request: pytest.FixtureRequest) -> None:
    xfail_for(
        request,
        ["uvloop"],
        "uvloop raises ValueError('add_signal_handler() can only be called from the main thread')",
        loop_name,
    )
    result: list[BaseException] = []
    handlers_before = signal.getsignal(signal.SIGUSR1)

    def in_thread() -> None:
        thread_loop = make_loop(loop_name)
        try:
            thread_loop.add_signal_handler(signal.SIGUSR1, noop)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            result.append(exc)
        finally:
            thread_loop.close()

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert len(result) == 1
    assert type(result[0]) is RuntimeError
    assert "main thread" in str(result[0])
    assert signal.getsignal(signal.SIGUSR1) == handlers_before


def test_a_handler_run_just_before_the_loop_waits_is_not_left_waiting(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """A signal whose Python handler runs after the last callback of a turn
    and before the loop waits for I/O (here: simulated by a C callback, so
    no Python code runs the handler within the callback itself): what the
    handler schedules with call_soon runs at once, not after the wait."""
    import _thread

    got: list[str] = []

    def handler(signum: int, frame: object) -> None:
        loop.call_soon(got.append, "scheduled by the handler")
        loop.call_soon(loop.stop)

    old = signal.signal(signal.SIGINT, handler)
    try:
        loop.call_soon(_thread.interrupt_main)
        # Only the bound's timer is due: a loop that waited now would
        # wait for it, and fail.
        run_forever_bounded(loop, timeout=30)
    finally:
        signal.signal(signal.SIGINT, old)
    assert got == ["scheduled by the handler"]
