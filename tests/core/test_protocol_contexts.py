"""The context of the protocol methods of pipes, datagram endpoints and
subprocesses: the one current where they were set up, as asyncio's (see
tests/context_scenarios.py for TCP and Unix connections)."""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import sys

import pytest
from conftest import run, xfail_for

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outer")


def test_read_pipe(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[tuple[str, str]] = []
    done = loop.create_future()

    class Reader(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            seen.append(("connection_made", VAR.get()))

        def data_received(self, data: bytes) -> None:
            seen.append(("data_received", VAR.get()))

        def eof_received(self) -> None:
            seen.append(("eof_received", VAR.get()))

        def connection_lost(self, exc: Exception | None) -> None:
            seen.append(("connection_lost", VAR.get()))
            done.set_result(None)

    rfd, wfd = os.pipe()

    async def setup() -> None:
        VAR.set("caller")
        await loop.connect_read_pipe(Reader, os.fdopen(rfd, "rb", 0))

    async def main() -> None:
        await loop.create_task(setup())
        VAR.set("main")
        os.write(wfd, b"data")
        os.close(wfd)
        await done

    run(loop, main())
    assert [name for name, _ in seen] == [
        "connection_made",
        "data_received",
        "eof_received",
        "connection_lost",
    ]
    assert {value for _, value in seen} == {"caller"}


def test_datagram_endpoint(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[tuple[str, str]] = []
    got = loop.create_future()

    class Receiver(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            seen.append(("connection_made", VAR.get()))

        def datagram_received(self, data: bytes, addr: object) -> None:
            seen.append(("datagram_received", VAR.get()))
            got.set_result(None)

        def connection_lost(self, exc: Exception | None) -> None:
            seen.append(("connection_lost", VAR.get()))

    async def setup() -> asyncio.DatagramTransport:
        VAR.set("caller")
        transport, _ = await loop.create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
        return transport

    async def main() -> None:
        transport = await loop.create_task(setup())
        VAR.set("main")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.sendto(b"x", transport.get_extra_info("sockname"))
            await got
        transport.close()
        await asyncio.sleep(0)  # connection_lost is scheduled by close()

    run(loop, main())
    assert [name for name, _ in seen][:2] == ["connection_made", "datagram_received"]
    assert {value for name, value in seen if name != "connection_lost"} == {"caller"}


def test_subprocess_protocol(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    if sys.version_info < (3, 12):
        # 3.11's default child watcher reports the exit from its own thread,
        # through call_soon_threadsafe in that thread's context.
        xfail_for(request, ["asyncio"], "process_exited in the watcher's context", loop_name)
    seen: list[tuple[str, str]] = []
    exited = loop.create_future()

    class Child(asyncio.SubprocessProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            seen.append(("connection_made", VAR.get()))

        def pipe_data_received(self, fd: int, data: bytes) -> None:
            seen.append(("pipe_data_received", VAR.get()))

        def process_exited(self) -> None:
            seen.append(("process_exited", VAR.get()))
            exited.set_result(None)

    async def setup() -> asyncio.SubprocessTransport:
        VAR.set("caller")
        transport, _ = await loop.subprocess_exec(
            Child, sys.executable, "-c", "print('hi')", stdin=None
        )
        return transport

    async def main() -> None:
        transport = await loop.create_task(setup())
        VAR.set("main")
        await exited
        transport.close()

    run(loop, main())
    names = [name for name, _ in seen]
    assert names[0] == "connection_made" and "process_exited" in names
    assert {value for _, value in seen} == {"caller"}
