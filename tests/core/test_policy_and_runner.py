"""Event loop policy, rloop.install/run and asyncio.Runner (``python -m rloop``: test_cli)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RUN_TIMEOUT, loop_class_name, loop_skip_reason, make_loop

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- parametrized over every loop ------------------------------------------


def test_loop_fixture_class(loop: asyncio.AbstractEventLoop, loop_name: str) -> None:
    assert isinstance(loop, asyncio.AbstractEventLoop)
    expected = loop_class_name(loop_name)
    if expected is not None:
        assert type(loop).__name__ == expected
        rloop = pytest.importorskip("rloop")
        assert isinstance(loop, getattr(rloop, expected))


def test_loop_fixture_installs_current_loop(loop: asyncio.AbstractEventLoop) -> None:
    assert asyncio.get_event_loop() is loop


def test_runner_with_loop_factory(loop_name: str) -> None:
    seen: list[str] = []

    async def main() -> str:
        running = asyncio.get_running_loop()
        seen.append(type(running).__name__)
        await asyncio.sleep(0)
        return "result"

    with asyncio.Runner(loop_factory=lambda: make_loop(loop_name)) as runner:
        assert runner.run(asyncio.wait_for(main(), RUN_TIMEOUT)) == "result"
        runner_loop = runner.get_loop()
        assert runner_loop.is_closed() is False
    assert runner_loop.is_closed() is True
    expected = loop_class_name(loop_name)
    if expected is not None:
        assert seen == [expected]


def test_runner_propagates_exception(loop_name: str) -> None:
    async def main() -> None:
        raise LookupError("from main")

    runner = asyncio.Runner(loop_factory=lambda: make_loop(loop_name))
    with runner, pytest.raises(LookupError, match="from main"):
        runner.run(main())


def test_runner_debug(loop_name: str) -> None:
    async def main() -> bool:
        return asyncio.get_running_loop().get_debug()

    with asyncio.Runner(loop_factory=lambda: make_loop(loop_name), debug=True) as runner:
        assert runner.run(main()) is True


def test_runner_cancels_leftover_tasks_and_closes_asyncgens(loop_name: str) -> None:
    events: list[str] = []

    async def agen() -> Any:
        try:
            yield 1
            yield 2
        finally:
            events.append("agen closed")

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            events.append("task cancelled")
            raise

    gens: list[Any] = []

    async def main() -> None:
        asyncio.get_running_loop().create_task(forever())
        gen = agen()
        gens.append(gen)
        await gen.__anext__()
        await asyncio.sleep(0)

    with asyncio.Runner(loop_factory=lambda: make_loop(loop_name)) as runner:
        runner.run(main())
    assert sorted(events) == ["agen closed", "task cancelled"]


@pytest.mark.skipif(sys.platform == "win32", reason="Unix signals")
def test_runner_sigint_interrupts_main(loop_name: str) -> None:
    cancelled: list[bool] = []
    saved = signal.getsignal(signal.SIGINT)

    async def main() -> None:
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGINT)
        try:
            await asyncio.sleep(RUN_TIMEOUT)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    try:
        runner = asyncio.Runner(loop_factory=lambda: make_loop(loop_name))
        with runner, pytest.raises(KeyboardInterrupt):
            runner.run(main())
    finally:
        signal.signal(signal.SIGINT, saved)
    assert cancelled == [True]


# --- rloop specific -----------------------------------------------------------


@contextlib.contextmanager
def policy_api() -> Iterator[None]:
    """The tests' own calls of asyncio's policy API, deprecated from 3.14
    (rloop's install() must not warn; these calls are not rloop's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@contextlib.contextmanager
def no_deprecation_warning() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        yield


@pytest.fixture
def rloop() -> Iterator[Any]:
    reason = loop_skip_reason("rloop")
    if reason is not None:
        pytest.skip(reason)
    with no_deprecation_warning():
        import rloop as module

    saved_policy = asyncio.events._event_loop_policy
    try:
        yield module
    finally:
        with policy_api():
            asyncio.set_event_loop_policy(saved_policy)


def test_policy_new_event_loop(rloop: Any) -> None:
    with no_deprecation_warning():
        policy = rloop.EventLoopPolicy()
    with policy_api():
        assert isinstance(policy, asyncio.AbstractEventLoopPolicy)
    loop = policy.new_event_loop()
    try:
        assert isinstance(loop, rloop.RLoop)
        assert type(loop).__name__ == "RLoop"
    finally:
        loop.close()


def test_new_event_loop_function(rloop: Any) -> None:
    loop = rloop.new_event_loop()
    try:
        assert isinstance(loop, rloop.RLoop)
        assert not loop.is_running() and not loop.is_closed()
    finally:
        loop.close()


def test_install(rloop: Any) -> None:
    with no_deprecation_warning():
        rloop.install()
    try:
        with policy_api():
            assert isinstance(asyncio.get_event_loop_policy(), rloop.EventLoopPolicy)
        loop = asyncio.new_event_loop()
        try:
            assert isinstance(loop, rloop.RLoop)
        finally:
            loop.close()
    finally:
        with policy_api():
            asyncio.set_event_loop_policy(None)
    loop = asyncio.new_event_loop()
    try:
        assert not isinstance(loop, rloop.RLoop)
    finally:
        loop.close()


def test_install_then_asyncio_run(rloop: Any) -> None:
    async def main() -> str:
        return type(asyncio.get_running_loop()).__name__

    with no_deprecation_warning():
        rloop.install()
    try:
        assert asyncio.run(main()) == "RLoop"
    finally:
        with policy_api():
            asyncio.set_event_loop_policy(None)


def test_run_returns_value(rloop: Any) -> None:
    seen: list[Any] = []

    async def main() -> int:
        running = asyncio.get_running_loop()
        seen.append(running)
        seen.append(running.get_debug())
        await asyncio.sleep(0)
        return 42

    assert rloop.run(main()) == 42
    assert isinstance(seen[0], rloop.RLoop)
    assert seen[1] is False
    assert seen[0].is_closed()


def test_run_debug(rloop: Any) -> None:
    async def main() -> bool:
        return asyncio.get_running_loop().get_debug()

    assert rloop.run(main(), debug=True) is True


def test_run_propagates_exception(rloop: Any) -> None:
    async def main() -> None:
        raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        rloop.run(main())


def test_run_from_running_loop_raises(rloop: Any) -> None:
    async def inner() -> None:
        pass

    async def main() -> str:
        coro = inner()
        try:
            rloop.run(coro)
        except RuntimeError as exc:
            return str(exc)
        finally:
            coro.close()
        return "no error"

    assert "cannot be called from a running event loop" in asyncio.run(main())
