"""Shared fixtures for the rloop test suite.

Every behaviour test runs over the same set of event loops, with the same
assertions: stock asyncio is the specification, uvloop is a second reference
implementation, and ``rloop`` / ``tokio`` are the loops under test.

Other test folders reuse :data:`LOOP_NAMES`, :func:`make_loop` and the
``loop`` / ``loop_name`` fixtures defined here.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import socket
import sys
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

#: Names of every loop implementation the suite is parametrized over.
LOOP_NAMES: tuple[str, ...] = ("asyncio", "uvloop", "rloop", "tokio")

# What the running Python's asyncio does where versions differ: the tests
# hold every loop to the running Python's asyncio, read from asyncio itself
# where a check is possible.

#: A Unix server removes its socket file when it closes (3.13+).
UNIX_SOCKET_CLEANUP: bool = (
    "cleanup_socket" in inspect.signature(asyncio.SelectorEventLoop.create_unix_server).parameters
)
#: Server.wait_closed() waits for the server's connections to end (3.12+;
#: 3.11's returns at once, CPython gh-79033).
WAIT_CLOSED_WAITS_FOR_CLIENTS: bool = sys.version_info >= (3, 12)

#: A cancelled Server.serve_forever() closes the server's connections before
#: it waits for them (3.14; read from the names its code uses).
SERVE_FOREVER_CLOSES_CLIENTS: bool = (
    "close_clients" in asyncio.base_events.Server.serve_forever.__code__.co_names
)
#: A custom exception handler runs in the context of the handle or task
#: that failed (3.12+, CPython gh-96704).
HANDLER_IN_FAILING_CONTEXT: bool = sys.version_info >= (3, 12)
_CREATE_TASK_PARAMS = inspect.signature(asyncio.BaseEventLoop.create_task).parameters
#: create_task() takes keywords beyond name= and context= and passes them
#: on, e.g. eager_start= (3.14, and the later 3.13 releases).
CREATE_TASK_PASSES_OTHER_KEYWORDS: bool = any(
    p.kind is inspect.Parameter.VAR_KEYWORD for p in _CREATE_TASK_PARAMS.values()
)
#: create_task() passes every keyword, name= too, to the task factory, which
#: names the task itself (3.14+); before, the factory gets context= (when
#: given) and whatever else the version passes on, and the loop names it.
TASK_FACTORY_GETS_EVERY_KEYWORD: bool = (
    CREATE_TASK_PASSES_OTHER_KEYWORDS and "name" not in _CREATE_TASK_PARAMS
)

#: Upper bound, in seconds, for any single loop run in the suite.
RUN_TIMEOUT: float = 5.0


def _import_or_none(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def loop_skip_reason(name: str) -> str | None:
    """Why the loop called *name* cannot be tested here, or None if it can."""
    if name == "asyncio":
        return None
    if name == "uvloop":
        return None if _import_or_none("uvloop") is not None else "uvloop is not importable"
    if name in ("rloop", "tokio"):
        rloop = _import_or_none("rloop")
        if rloop is None:
            return "rloop is not importable"
        if name == "tokio" and not hasattr(rloop, "TokioLoop"):
            return "rloop has no TokioLoop"
        return None
    raise ValueError(f"unknown loop name {name!r}")


def make_loop(name: str) -> asyncio.AbstractEventLoop:
    """Create a fresh, not running, event loop of the implementation *name*."""
    reason = loop_skip_reason(name)
    if reason is not None:
        pytest.skip(reason)
    if name == "asyncio":
        return asyncio.new_event_loop()
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    rloop = importlib.import_module("rloop")
    if name == "rloop":
        return rloop.new_event_loop()
    return rloop.new_tokio_event_loop()


def loop_class_name(name: str) -> str | None:
    """The class name the loop called *name* must have, when the suite pins it."""
    return {"rloop": "RLoop", "tokio": "TokioLoop"}.get(name)


@pytest.fixture(params=LOOP_NAMES)
def loop_name(request: pytest.FixtureRequest) -> str:
    """The name of the loop implementation under test (skips unavailable ones)."""
    name: str = request.param
    reason = loop_skip_reason(name)
    if reason is not None:
        pytest.skip(reason)
    return name


#: The loops that have rloop's own APIs (drain, faults): their tests run on
#: these only, with the same assertions.
RLOOP_NAMES: tuple[str, ...] = ("rloop", "tokio")


def rloop_loop_name(request: pytest.FixtureRequest) -> str:
    """The ``loop_name`` of a module that tests rloop's own APIs, made its
    fixture as ``loop_name = pytest.fixture(params=RLOOP_NAMES,
    name="loop_name")(rloop_loop_name)`` (skips unavailable loops)."""
    name = str(request.param)
    reason = loop_skip_reason(name)
    if reason is not None:
        pytest.skip(reason)
    return name


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected non-blocking socketpair, closed after the test."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@pytest.fixture
def loop(loop_name: str) -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop, installed as the current loop for the test.

    The current loop is reset afterwards and the loop closed, so tests don't
    leak state into each other. (Through set_event_loop alone: the policy
    functions are deprecated from 3.14.)
    """
    new_loop = make_loop(loop_name)
    asyncio.set_event_loop(new_loop)
    try:
        yield new_loop
    finally:
        try:
            if not new_loop.is_closed() and not new_loop.is_running():
                new_loop.close()
        finally:
            asyncio.set_event_loop(None)


def xfail_for(
    request: pytest.FixtureRequest, names: Sequence[str], reason: str, loop_name: str
) -> None:
    """Mark the running test as a strict expected failure for the loops *names*.

    Used where a reference implementation (uvloop) departs from stock asyncio,
    which is the specification: the test still runs and must fail there.
    """
    if loop_name in names:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


def run(
    loop: asyncio.AbstractEventLoop,
    awaitable: Coroutine[Any, Any, T],
    timeout: float = RUN_TIMEOUT,
) -> T:
    """Run *awaitable* to completion on *loop*, failing after *timeout* seconds."""
    return loop.run_until_complete(asyncio.wait_for(awaitable, timeout))


def run_forever_bounded(loop: asyncio.AbstractEventLoop, timeout: float = RUN_TIMEOUT) -> None:
    """``loop.run_forever()``, failing the test if the loop isn't stopped in time."""
    timed_out: list[bool] = []

    def guard() -> None:
        timed_out.append(True)
        loop.stop()

    handle = loop.call_later(timeout, guard)
    try:
        loop.run_forever()
    finally:
        handle.cancel()
    if timed_out:
        pytest.fail(f"the loop was not stopped within {timeout} seconds")


def noop(*args: Any) -> None:
    """A callback that does nothing."""
