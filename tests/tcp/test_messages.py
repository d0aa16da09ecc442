"""Bad input to a transport and to the loop gets stock asyncio's exception
with stock asyncio's text (the running Python's: some changed between
versions), and an exception from connection_lost reaches the exception
handler as any callback's does."""

from __future__ import annotations

import array
import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import run, xfail_for
from net_helpers import Echo

# (case, call on (loop, transport))
CASES: list[tuple[str, Callable[[Any, Any], object]]] = [
    ("write str", lambda _, t: t.write("str")),
    ("write int", lambda _, t: t.write(1)),
    ("write array", lambda _, t: t.write(array.array("b", [1]))),
    ("writelines of str", lambda _, t: t.writelines(["a"])),
    ("writelines second item bad", lambda _, t: t.writelines([b"a", 1])),
    ("writelines None", lambda _, t: t.writelines(None)),
    ("writelines int", lambda _, t: t.writelines(1)),
    ("writelines generator of str", lambda _, t: t.writelines(x for x in ["a"])),
    ("limits high=-1", lambda _, t: t.set_write_buffer_limits(high=-1)),
    ("limits low=-1", lambda _, t: t.set_write_buffer_limits(low=-1)),
    ("limits high < low", lambda _, t: t.set_write_buffer_limits(high=1, low=2)),
    ("limits str", lambda _, t: t.set_write_buffer_limits("a")),
    ("limits low str", lambda _, t: t.set_write_buffer_limits(None, "a")),
    ("call_later str", lambda lp, _: lp.call_later("1", print)),
    ("call_later None", lambda lp, _: lp.call_later(None, print)),
]


#: The cases uvloop (0.21) answers as asyncio does: the water marks, and
#: the bad writelines() items where asyncio too takes a memoryview of each
#: (3.12+; 3.11's joins them).
_UVLOOP_AS_ASYNCIO = {"limits high=-1", "limits low=-1", "limits high < low"}
if "writelines" in asyncio.selector_events._SelectorSocketTransport.__dict__:
    _UVLOOP_AS_ASYNCIO |= {
        "writelines of str",
        "writelines second item bad",
        "writelines int",
        "writelines generator of str",
    }


def _outcome(loop: asyncio.AbstractEventLoop, transport: Any, call: Callable[..., object]) -> str:
    try:
        result = call(loop, transport)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome
        return f"{type(exc).__name__}: {exc}"
    if isinstance(result, asyncio.TimerHandle):
        result.cancel()
    return "ok"


@pytest.fixture
def reference() -> Iterator[dict[str, str]]:
    """What stock asyncio of this Python gives for each case."""
    loop = asyncio.new_event_loop()
    try:
        yield run(loop, _outcomes(loop))
    finally:
        loop.close()


async def _outcomes(loop: asyncio.AbstractEventLoop) -> dict[str, str]:
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    transport, _ = await loop.create_connection(Echo, *server.sockets[0].getsockname()[:2])
    outcomes = {case: _outcome(loop, transport, call) for case, call in CASES}
    transport.abort()
    server.close()
    await server.wait_closed()
    return outcomes


@pytest.mark.parametrize("case", [case for case, _ in CASES])
def test_bad_input_as_asyncio(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    request: pytest.FixtureRequest,
    reference: dict[str, str],
    case: str,
) -> None:
    if case not in _UVLOOP_AS_ASYNCIO:
        xfail_for(request, ["uvloop"], "uvloop words its own errors", loop_name)
    assert run(loop, _outcomes(loop))[case] == reference[case]


def test_error_in_connection_lost_reported_as_callback_error(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    """asyncio runs connection_lost from a handle
    (``_call_connection_lost(exc)``): its exception reaches the handler as
    any callback's, with the handle, and the connection is released."""
    xfail_for(request, ["uvloop"], "uvloop gives the protocol and transport", loop_name)
    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: contexts.append(context))
    lost = loop.create_future()

    class Failing(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            lost.set_result(None)
            raise ZeroDivisionError("from connection_lost")

    async def main() -> bool:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        transport, _ = await loop.create_connection(Failing, *server.sockets[0].getsockname()[:2])
        sock = transport.get_extra_info("socket")
        transport.close()
        await lost
        await asyncio.sleep(0)  # the handler runs as the callback ends
        server.close()
        await server.wait_closed()
        return sock.fileno() == -1

    assert run(loop, main()) is True  # released all the same
    assert len(contexts) == 1
    context = contexts[0]
    assert set(context) == {"message", "exception", "handle"}
    assert isinstance(context["exception"], ZeroDivisionError)
    assert context["message"].startswith("Exception in callback ")
    assert "._call_connection_lost(" in context["message"]
    assert (
        isinstance(context["handle"], asyncio.Handle)
        or type(context["handle"]).__name__ == "Handle"
    )
