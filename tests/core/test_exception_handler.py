"""Exception handling: custom handlers, the default handler, BaseException."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
from typing import Any

import pytest
from conftest import HANDLER_IN_FAILING_CONTEXT, run_forever_bounded, xfail_for

Context = dict[str, Any]


class CustomError(Exception):
    pass


def failing_callback() -> None:
    raise CustomError("callback failed")


def test_default_handler_is_none(loop: asyncio.AbstractEventLoop) -> None:
    assert loop.get_exception_handler() is None


def test_set_and_get_exception_handler(loop: asyncio.AbstractEventLoop) -> None:
    def handler(lp: asyncio.AbstractEventLoop, context: Context) -> None:
        pass

    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


@pytest.mark.parametrize("handler", [42, "handler", object()])
def test_set_exception_handler_rejects_non_callable(
    loop: asyncio.AbstractEventLoop, handler: object
) -> None:
    with pytest.raises(TypeError, match="A callable object or None is expected"):
        loop.set_exception_handler(handler)  # type: ignore[arg-type]
    assert loop.get_exception_handler() is None


def test_callback_exception_reaches_handler(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[tuple[asyncio.AbstractEventLoop, Context]] = []
    order: list[str] = []
    loop.set_exception_handler(lambda lp, ctx: calls.append((lp, ctx)))
    handle = loop.call_soon(failing_callback)
    loop.call_soon(order.append, "still running")
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)

    assert order == ["still running"]
    assert len(calls) == 1
    lp, context = calls[0]
    assert lp is loop
    assert {"message", "exception", "handle"} <= set(context)
    assert isinstance(context["exception"], CustomError)
    assert str(context["exception"]) == "callback failed"
    assert context["handle"] is handle
    assert context["message"].startswith("Exception in callback")
    assert "failing_callback" in context["message"]


def test_timer_exception_reaches_handler(loop: asyncio.AbstractEventLoop) -> None:
    contexts: list[Context] = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    handle = loop.call_later(0.001, failing_callback)
    loop.call_later(0.02, loop.stop)
    run_forever_bounded(loop)
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], CustomError)
    assert contexts[0]["handle"] is handle


def test_loop_keeps_running_after_many_errors(loop: asyncio.AbstractEventLoop) -> None:
    errors: list[BaseException] = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx["exception"]))
    for _ in range(5):
        loop.call_soon(failing_callback)

    async def main() -> str:
        await asyncio.sleep(0.01)
        return "ok"

    assert loop.run_until_complete(asyncio.wait_for(main(), 5)) == "ok"
    assert len(errors) == 5


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_propagates_from_run_forever(
    loop: asyncio.AbstractEventLoop, exc_type: type[BaseException]
) -> None:
    contexts: list[Context] = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def raise_base() -> None:
        raise exc_type("stop now")

    loop.call_soon(raise_base)
    guard = loop.call_later(5, loop.stop)
    with pytest.raises(exc_type, match="stop now"):
        loop.run_forever()
    guard.cancel()
    assert contexts == []
    assert not loop.is_running()
    # The loop can be run again afterwards.
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)


def test_base_exception_propagates_from_run_until_complete(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def main() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(main())
    assert not loop.is_running()


def test_handler_that_raises_is_logged(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    def bad_handler(lp: asyncio.AbstractEventLoop, context: Context) -> None:
        raise RuntimeError("handler is broken")

    loop.set_exception_handler(bad_handler)
    order: list[str] = []
    loop.call_soon(failing_callback)
    loop.call_soon(order.append, "after")
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        run_forever_bounded(loop)
    assert order == ["after"]
    records = [
        r
        for r in caplog.records
        if r.name == "asyncio" and "Unhandled error in exception handler" in r.getMessage()
    ]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], RuntimeError)
    assert str(records[0].exc_info[1]) == "handler is broken"


def test_default_exception_handler_logs(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.call_soon(failing_callback)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        run_forever_bounded(loop)
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert "Exception in callback" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], CustomError)


def test_default_exception_handler_method(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.default_exception_handler(
            {"message": "custom message", "exception": CustomError("xyz"), "extra": 123}
        )
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1
    text = records[0].getMessage()
    assert text.startswith("custom message")
    assert "extra: 123" in text
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], CustomError)


def test_call_exception_handler_uses_custom_handler(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[tuple[asyncio.AbstractEventLoop, Context]] = []
    loop.set_exception_handler(lambda lp, ctx: calls.append((lp, ctx)))
    context: Context = {"message": "hello", "exception": CustomError()}
    loop.call_exception_handler(context)
    assert len(calls) == 1
    assert calls[0][0] is loop
    assert calls[0][1]["message"] == "hello"
    assert calls[0][1]["exception"] is context["exception"]


def test_call_exception_handler_default_logs(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "no exception here"})
    messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert len(messages) == 1
    assert messages[0].startswith("no exception here")


def test_handler_can_delegate_to_default(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def handler(lp: asyncio.AbstractEventLoop, context: Context) -> None:
        seen.append(context["message"])
        lp.default_exception_handler(context)

    loop.set_exception_handler(handler)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "delegated"})
    assert seen == ["delegated"]
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == ["delegated"]


def test_unretrieved_task_exception_reported(loop: asyncio.AbstractEventLoop) -> None:
    contexts: list[Context] = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def boom() -> None:
        raise CustomError("never retrieved")

    async def main() -> None:
        task = loop.create_task(boom())
        await asyncio.sleep(0.01)
        assert task.done()

    loop.run_until_complete(asyncio.wait_for(main(), 5))
    gc.collect()
    assert [c["message"] for c in contexts] == ["Task exception was never retrieved"]
    assert isinstance(contexts[0]["exception"], CustomError)


NAME: contextvars.ContextVar[str] = contextvars.ContextVar("NAME", default="outer")


@pytest.mark.parametrize("source", ["callback", "task"])
def test_handler_runs_in_failing_context(
    request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop, loop_name: str, source: str
) -> None:
    # From 3.12 asyncio calls a custom handler in the context of the handle
    # or task that failed (CPython gh-96704); 3.11's, in the loop's own.
    if (source == "task") == HANDLER_IN_FAILING_CONTEXT:
        xfail_for(
            request, ["uvloop"], "uvloop runs a callback's handler in the callback's "
            "context on every version, a task's in the loop's", loop_name,
        )
    seen: list[str] = []

    def handler(lp: asyncio.AbstractEventLoop, context: Context) -> None:
        seen.append(NAME.get())

    def callback() -> None:
        NAME.set("inner")
        raise CustomError("callback failed")

    async def failing_task() -> None:
        NAME.set("inner")
        raise CustomError("task failed")

    async def main() -> None:
        if source == "callback":
            loop.call_soon(callback)
        else:
            loop.create_task(failing_task())  # never awaited: reported when collected
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()

    loop.set_exception_handler(handler)
    loop.run_until_complete(main())
    assert seen == (["inner"] if HANDLER_IN_FAILING_CONTEXT else ["outer"])
