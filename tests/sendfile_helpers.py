"""What the sendfile scenarios (sendfile_scenarios.py) share: the two
peers' protocols, a connection made of them, a big file, and a sendfile
started in a task."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import pytest
from conftest import xfail_for
from net_helpers import Endpoint

#: A native sendfile that called sendfile(2) moves the file position even
#: with nothing sent (3.14); before, only when something was sent. Read
#: from the helper asyncio's Unix loop moves it with.
ALWAYS_MOVES_POSITION: bool = "total_sent" not in inspect.signature(
    asyncio.unix_events._UnixSelectorEventLoop._sock_sendfile_update_filepos
).parameters

BIG = 8 << 20  # more than loopback TCP and Unix sockets buffer between peers
NO_UVLOOP = "uvloop has no loop.sendfile() (NotImplementedError)"


def no_uvloop(request: pytest.FixtureRequest, loop_name: str) -> None:
    xfail_for(request, ["uvloop"], NO_UVLOOP, loop_name)


def digest(data: bytes | bytearray) -> tuple[int, str]:
    return len(data), hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def big_data() -> bytes:
    return os.urandom(BIG)


@pytest.fixture
def big_file(big_data: bytes) -> Iterator[IO[bytes]]:
    with tempfile.TemporaryFile() as f:
        f.write(big_data)
        f.flush()
        f.seek(0)
        yield f


class Sink(asyncio.Protocol):
    """The receiving peer: keeps what arrives; may start paused or close
    its side after some bytes."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, paused: bool = False, close_after: int = 0
    ) -> None:
        self.data = bytearray()
        self.paused = paused
        self.close_after = close_after
        self.transport: asyncio.Transport | None = None
        self.made: asyncio.Future[None] = loop.create_future()
        self.eof: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.paused:
            transport.pause_reading()  # type: ignore[attr-defined]
        self.made.set_result(None)

    def resume(self) -> None:
        assert self.transport is not None
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.data += data
        if self.close_after and len(self.data) >= self.close_after:
            assert self.transport is not None
            self.transport.close()

    def eof_received(self) -> None:
        self.eof.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.eof.done():
            self.eof.set_result(None)
        self.lost.set_result(exc)


class Sender(asyncio.Protocol):
    """The sending side's protocol: records flow-control calls and the end."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.events: list[str] = []
        self.transport: asyncio.Transport | None = None
        self.made: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.made.set_result(None)

    def pause_writing(self) -> None:
        self.events.append("pause_writing")

    def resume_writing(self) -> None:
        self.events.append("resume_writing")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


class Pair:
    """A connection over the endpoint: a Sender on one side, a Sink on the
    other; `side` says which side sends (the accepted one or the client)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
        self.loop = loop
        self.endpoint = endpoint
        self.server: asyncio.AbstractServer | None = None

    async def open(self, side: str = "client", **sink: Any) -> tuple[asyncio.Transport, Sender, Sink]:
        sender = Sender(self.loop)
        receiver = Sink(self.loop, **sink)
        server_protocol = sender if side == "server" else receiver
        self.server = await self.endpoint.serve(self.loop, lambda: server_protocol)
        client_protocol = receiver if side == "server" else sender
        await self.endpoint.connect(self.loop, self.server, lambda: client_protocol)
        await sender.made
        await receiver.made
        assert sender.transport is not None
        return sender.transport, sender, receiver

    async def close(self, sender: Sender, receiver: Sink) -> None:
        for proto in (sender, receiver):
            if proto.transport is not None:
                proto.transport.close()
        await sender.lost
        await receiver.lost
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def start_sendfile(
    loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, file: IO[bytes], **kw: Any
) -> asyncio.Task[int]:
    """A task that is inside loop.sendfile() when this returns."""
    started: asyncio.Future[None] = loop.create_future()

    async def send() -> int:
        started.set_result(None)
        return await loop.sendfile(transport, file, **kw)

    task = loop.create_task(send())
    # Retrieved: a test that fails early (uvloop) must not leave it unseen.
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    await started
    return task
