"""The loop's methods take what the running Python's asyncio takes, and name
themselves as asyncio's do in argument errors."""

from __future__ import annotations

import asyncio
import inspect
import socket
from typing import Any

import pytest
from conftest import run, xfail_for
from net_helpers import Echo

# create_task: its keywords differ by patch release (name=/context=, then
# **kwargs passed on); the core's one signature is checked by behaviour in
# test_tasks_futures.
_NOT_COMPARED = {"create_task"}

#: Of the keywords below, those uvloop (0.21+) takes, whatever the Python version.
_UVLOOP_KEYWORDS = {"cleanup_socket"}


def _shape(method: Any) -> list[tuple[str, Any, Any]]:
    """Parameter names, kinds and defaults (not annotations), without self."""
    params = inspect.signature(method).parameters.values()
    return [(p.name, p.kind, p.default) for p in params if p.name != "self"]


def test_signatures_match_asyncio(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(request, ["uvloop"], "uvloop's Cython methods have other signatures", loop_name)
    reference = asyncio.new_event_loop()
    try:
        differ = {}
        for name in dir(asyncio.AbstractEventLoop):
            if name.startswith("_") or name in _NOT_COMPARED:
                continue
            expected = _shape(getattr(reference, name))
            try:
                seen = _shape(getattr(loop, name))
            except ValueError as exc:  # no signature at all
                seen = [("<no signature>", str(exc), None)]
            if seen != expected:
                differ[name] = (seen, expected)
        assert differ == {}
    finally:
        reference.close()


def _call_error(loop: asyncio.AbstractEventLoop, name: str, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(TypeError) as info:
        result = getattr(loop, name)(*args, **kwargs)
        if hasattr(result, "close"):  # a coroutine, Cython's (uvloop) too
            result.close()
    return str(info.value)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("create_server", ()),
        ("create_server", (Echo, None, None, None)),
        ("create_connection", ()),
        ("create_unix_server", ()),
        ("create_unix_connection", ()),
        ("connect_accepted_socket", ()),
        ("run_in_executor", ()),
        ("run_until_complete", ()),
        ("set_default_executor", ()),
        ("shutdown_asyncgens", (1,)),
        ("add_signal_handler", ()),
        ("remove_signal_handler", ()),
        ("close", (1,)),
        ("sock_recv", ()),
        ("call_soon", ()),
        ("call_later", ()),
        ("call_at", ()),
        ("call_soon_threadsafe", ()),
        ("call_exception_handler", ()),
        ("set_exception_handler", ()),
        ("set_task_factory", ()),
        ("set_debug", ()),
    ],
)
def test_argument_errors_name_the_method_as_asyncio(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    request: pytest.FixtureRequest,
    name: str,
    args: tuple[Any, ...],
) -> None:
    """``BaseEventLoop.create_server() missing 1 required positional
    argument``: the same text, the class named as asyncio names it."""
    xfail_for(request, ["uvloop"], "uvloop names its own class (Loop)", loop_name)
    reference = asyncio.new_event_loop()
    try:
        expected = _call_error(reference, name, *args)
    finally:
        reference.close()
    seen = _call_error(loop, name, *args)
    if isinstance(inspect.getattr_static(type(loop), name), type(reference.call_soon)):
        assert seen == expected
    else:
        # A method of the Rust core (a builtin): the same name; pyo3 counts
        # the positional arguments without self. A builtin's class is the
        # core's, BaseEventLoop, also for the few methods asyncio defines on
        # BaseSelectorEventLoop (sock_recv, sock_sendall, add_reader): a
        # known difference (docs: the smaller differences).
        named = expected.split("(")[0]
        assert seen.split("(")[0] in (
            named,
            named.replace("BaseSelectorEventLoop.", "BaseEventLoop."),
        )


@pytest.mark.parametrize(
    ("name", "keyword", "value"),
    [
        ("create_server", "keep_alive", True),
        ("create_connection", "all_errors", True),
        ("create_unix_server", "cleanup_socket", False),
    ],
)
def test_keywords_accepted_where_asyncio_accepts_them(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    request: pytest.FixtureRequest,
    name: str,
    keyword: str,
    value: object,
) -> None:
    """A keyword newer than the running Python's asyncio is refused at the
    call, with Python's message; where asyncio has it, it works."""
    accepted = keyword in inspect.signature(getattr(asyncio.SelectorEventLoop, name)).parameters
    if (keyword in _UVLOOP_KEYWORDS) != accepted:
        xfail_for(request, ["uvloop"], "uvloop's keywords are the same on every Python", loop_name)
    if not accepted:
        message = _call_error(loop, name, Echo, **{keyword: value})
        assert message.endswith(f"{name}() got an unexpected keyword argument '{keyword}'")
        return

    async def main() -> None:
        if name == "create_server":
            server = await loop.create_server(Echo, "127.0.0.1", 0, keep_alive=value)  # type: ignore[call-arg]
            sock = server.sockets[0]
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            writer.close()
            server.close()
            await server.wait_closed()
        elif name == "create_connection":
            server = await loop.create_server(Echo, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            transport, _ = await loop.create_connection(Echo, "127.0.0.1", port, all_errors=value)  # type: ignore[call-arg]
            transport.close()
            server.close()
            await server.wait_closed()
        else:
            server = await loop.create_unix_server(
                Echo, sock=_unix_listener(), cleanup_socket=value
            )  # type: ignore[call-arg]
            server.close()
            await server.wait_closed()

    run(loop, main())


def _unix_listener() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind("")  # an abstract address: nothing to clean up
    return sock


def test_shutdown_default_executor_timeout(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    params = inspect.signature(asyncio.BaseEventLoop.shutdown_default_executor).parameters
    accepted = "timeout" in params
    if not accepted:
        xfail_for(request, ["uvloop"], "uvloop takes timeout= on every Python", loop_name)

    async def main() -> None:
        await loop.run_in_executor(None, int)
        if accepted:
            await loop.shutdown_default_executor(5)  # type: ignore[call-arg]
        else:
            message = _call_error(loop, "shutdown_default_executor", 5)
            assert message.endswith(
                "shutdown_default_executor() takes 1 positional argument but 2 were given"
            )
            await loop.shutdown_default_executor()

    run(loop, main())


_SOON_CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((), {}),
    ((), {"context": None}),
    ((print,), {"contxt": None}),
    ((print,), {"callback": print}),
]
_TIMER_CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((), {}),
    ((1,), {}),
    ((1, print), {"contxt": None}),
    ((1, print), {"callback": print}),
    ((1, print), {"LEAD": 2}),
]
_LEADS = {"call_later": "delay", "call_at": "when"}


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [(name, a, k) for name in ("call_soon", "call_soon_threadsafe") for a, k in _SOON_CALLS]
    + [
        (name, a, {(_LEADS[name] if key == "LEAD" else key): v for key, v in k.items()})
        for name in ("call_later", "call_at")
        for a, k in _TIMER_CALLS
    ],
)
def test_callback_method_argument_errors_are_asyncios(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    request: pytest.FixtureRequest,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """call_soon, call_soon_threadsafe, call_later and call_at take their
    arguments apart themselves (C methods, src/callback_methods.rs): word
    for word the running asyncio's errors."""
    xfail_for(request, ["uvloop"], "uvloop names its own class (Loop)", loop_name)
    reference = asyncio.new_event_loop()
    try:
        expected = _call_error(reference, name, *args, **kwargs)
    finally:
        reference.close()
    assert _call_error(loop, name, *args, **kwargs) == expected


@pytest.mark.parametrize("name", ["call_soon", "call_soon_threadsafe", "call_later", "call_at"])
def test_callback_methods_take_keywords(loop: asyncio.AbstractEventLoop, name: str) -> None:
    ran: list[str] = []
    both: asyncio.Future[None] = loop.create_future()

    def note(what: str) -> None:
        ran.append(what)
        if len(ran) == 2:
            both.set_result(None)

    lead = {"call_later": {"delay": 0}, "call_at": {"when": loop.time()}}.get(name, {})
    getattr(loop, name)(callback=lambda: note("by keyword"), **lead)
    getattr(loop, name)(*lead.values(), note, "with arg", context=None)
    loop.run_until_complete(asyncio.wait_for(both, 10))
    assert ran == ["by keyword", "with arg"]


def test_no_mixin_method_is_hidden_by_the_core() -> None:
    """LoopBase lists the Rust core before its Python mixins, so that a call
    of a core method checks `self` against a type near the front of the MRO;
    a mixin method named as a core one would then never be called."""
    from rloop._rloop import BaseEventLoop
    from rloop.loop import LoopBase

    mro = LoopBase.__mro__
    mixins = mro[mro.index(BaseEventLoop) + 1 : mro.index(asyncio.AbstractEventLoop)]
    assert mixins, "the mixins come after the core"
    core = {name for name in vars(BaseEventLoop) if not name.startswith("__")}
    hidden = sorted(
        f"{mixin.__name__}.{name}" for mixin in mixins for name in vars(mixin) if name in core
    )
    assert hidden == []
