"""Every public method of rloop's loops, handles and transports has a
docstring, as asyncio's do (``help(loop.call_soon)`` says what it does).

The names checked are asyncio's: those of ``asyncio.AbstractEventLoop``,
``asyncio.Handle``/``TimerHandle`` and the transport classes. A method rloop
defines (in Rust or Python, or asyncio's function borrowed into an rloop
class) must carry its own ``__doc__``; one inherited unchanged from an
asyncio class may have its docstring where asyncio has it, on a base class
(``inspect.getdoc``, as ``help()`` finds it).
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import sys
from typing import Any

import pytest

rloop = pytest.importorskip("rloop", reason="rloop is not importable")

def public_names(*classes: type) -> list[str]:
    names = {
        name
        for cls in classes
        for name in dir(cls)
        if not name.startswith("_") and callable(getattr(cls, name))
    }
    return sorted(names)


def undocumented(obj: Any, spec: type, names: list[str] | None = None) -> list[str]:
    """The methods of `obj` (a class or an instance) named in asyncio's class
    `spec` (or `names`) that have no docstring."""
    cls = obj if isinstance(obj, type) else type(obj)
    missing = []
    for name in public_names(spec) if names is None else names:
        attr = getattr(obj, name)
        if not isinstance(obj, type) and name in getattr(obj, "__dict__", {}):
            owner: type | None = None  # bound on the instance (rloop's hot methods)
        else:
            owner = next(k for k in cls.__mro__ if name in vars(k))
        if owner is None or owner.__module__.startswith("rloop"):
            doc = attr.__doc__
        else:
            # asyncio's own method: documented where asyncio documents it,
            # if not on the class itself (3.11's UDP transport is no
            # DatagramTransport subclass), then in the class it implements.
            doc = inspect.getdoc(attr) or inspect.getdoc(getattr(spec, name))
        if not (doc and doc.strip()):
            missing.append(f"{cls.__qualname__}.{name}")
    return missing


def loop_classes() -> list[Any]:
    classes = [pytest.param(rloop.RLoop, id="RLoop")]
    tokio = getattr(rloop, "TokioLoop", None)
    marks = [] if tokio is not None else [pytest.mark.skip(reason="rloop has no TokioLoop")]
    classes.append(pytest.param(tokio, id="TokioLoop", marks=marks))
    return classes


@pytest.mark.parametrize("loop_class", loop_classes())
def test_loop_methods(loop_class: type) -> None:
    names = public_names(asyncio.AbstractEventLoop)
    assert undocumented(loop_class, asyncio.AbstractEventLoop, names) == []


def test_core_class_and_handles() -> None:
    core = rloop._rloop.BaseEventLoop
    core_names = [n for n in public_names(asyncio.AbstractEventLoop) if n in vars(core)]
    assert core_names, "the core defines none of asyncio's loop methods?"
    assert undocumented(core, asyncio.AbstractEventLoop, core_names) == []
    for cls in (core, rloop.Handle, rloop.TimerHandle, rloop._rloop.SocketTransport):
        assert cls.__doc__, cls
    assert undocumented(rloop.Handle, asyncio.Handle) == []
    assert undocumented(rloop.TimerHandle, asyncio.TimerHandle) == []


class _Exited(asyncio.SubprocessProtocol):
    def __init__(self, exited: asyncio.Future[None]) -> None:
        self.exited = exited

    def process_exited(self) -> None:
        self.exited.set_result(None)


async def transports_missing() -> list[str]:
    """Makes one transport of each kind rloop has, and checks each."""
    loop = asyncio.get_running_loop()
    missing: list[str] = []

    a, b = socket.socketpair()
    stream, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
    missing += undocumented(stream, asyncio.Transport)
    missing += undocumented(rloop._rloop.SocketTransport, asyncio.Transport)
    stream.close()
    b.close()

    udp, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    missing += undocumented(udp, asyncio.DatagramTransport)
    udp.close()

    rsock, wsock = socket.socketpair()  # pipe transports take sockets too
    reader, _ = await loop.connect_read_pipe(asyncio.Protocol, rsock)
    writer, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, wsock)
    missing += undocumented(reader, asyncio.ReadTransport)
    missing += undocumented(writer, asyncio.WriteTransport)
    reader.close()
    writer.close()
    await asyncio.sleep(0)

    exited: asyncio.Future[None] = loop.create_future()
    proc, _ = await loop.subprocess_exec(
        lambda: _Exited(exited), sys.executable, "-c", "pass", stdin=None, stdout=None
    )
    await exited
    missing += undocumented(proc, asyncio.SubprocessTransport)
    proc.close()
    return missing


@pytest.mark.parametrize("loop", ["rloop", "tokio"])
def test_transports(loop: str) -> None:
    if loop == "tokio" and not hasattr(rloop, "TokioLoop"):
        pytest.skip("rloop has no TokioLoop")
    assert rloop.run(transports_missing(), loop=loop) == []
