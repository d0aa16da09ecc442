"""loop.connect_read_pipe / connect_write_pipe: bytes, end of file,
connection_lost and bad input, as asyncio's own loop gives them."""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

import pytest
from conftest import run


class Reader(asyncio.Protocol):
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.events.append(data)

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", exc))
        self.done.set_result(None)


def test_read_pipe_data_eof_and_lost(loop: asyncio.AbstractEventLoop) -> None:
    rfd, wfd = os.pipe()
    pipe = open(rfd, "rb", buffering=0)  # noqa: SIM115 - the transport closes it

    async def main() -> list[Any]:
        _, proto = await loop.connect_read_pipe(Reader, pipe)
        os.write(wfd, b"through the pipe")
        os.close(wfd)
        await proto.done
        return proto.events

    events = run(loop, main())
    assert events[0] == "made"
    assert b"".join(e for e in events if isinstance(e, bytes)) == b"through the pipe"
    assert events[-2:] == ["eof", ("lost", None)]


def test_write_pipe_bytes_arrive_and_close(loop: asyncio.AbstractEventLoop) -> None:
    rfd, wfd = os.pipe()
    lost: list[Any] = []
    pipe = open(wfd, "wb", buffering=0)  # noqa: SIM115 - the transport closes it

    class Writer(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            lost.append(exc)

    async def main() -> None:
        transport, _ = await loop.connect_write_pipe(Writer, pipe)
        transport.write(b"one ")
        transport.writelines([b"two ", b"three"])
        transport.close()
        while not lost:
            await asyncio.sleep(0)

    try:
        run(loop, main())
        got = b""
        while chunk := os.read(rfd, 100):
            got += chunk
    finally:
        os.close(rfd)
    assert got == b"one two three"
    assert lost == [None]


def test_write_pipe_sees_the_reader_go(loop: asyncio.AbstractEventLoop) -> None:
    """Nothing is written, the read end is closed: the write transport
    finds out by itself (it watches its fd for errors) and ends."""
    rfd, wfd = os.pipe()
    pipe = open(wfd, "wb", buffering=0)  # noqa: SIM115 - the transport closes it

    class Writer(asyncio.Protocol):
        def __init__(self) -> None:
            self.lost: asyncio.Future[Exception | None] = loop.create_future()

        def connection_lost(self, exc: Exception | None) -> None:
            self.lost.set_result(exc)

    async def main() -> Exception | None:
        transport, proto = await loop.connect_write_pipe(Writer, pipe)
        os.close(rfd)
        exc = await proto.lost
        assert transport.is_closing()
        return exc

    assert run(loop, main()) is None


def test_read_pipe_pause_and_resume(loop: asyncio.AbstractEventLoop) -> None:
    rfd, wfd = os.pipe()
    pipe = open(rfd, "rb", buffering=0)  # noqa: SIM115 - the transport closes it

    async def main() -> tuple[list[Any], list[Any]]:
        transport, proto = await loop.connect_read_pipe(Reader, pipe)
        transport.pause_reading()
        assert not transport.is_reading()
        os.write(wfd, b"held")
        for _ in range(20):
            await asyncio.sleep(0)
        while_paused = list(proto.events)
        transport.resume_reading()
        os.close(wfd)
        await proto.done
        return while_paused, proto.events

    while_paused, events = run(loop, main())
    assert while_paused == ["made"]
    assert b"held" in events


def test_regular_file_is_refused(loop: asyncio.AbstractEventLoop, loop_name: str) -> None:
    if loop_name == "uvloop":
        pytest.skip("uvloop aborts the process (a libuv assertion) on a regular file")
    with tempfile.TemporaryFile() as f:

        async def main() -> None:
            await loop.connect_read_pipe(asyncio.Protocol, f)

        with pytest.raises(ValueError, match="only"):
            run(loop, main())
