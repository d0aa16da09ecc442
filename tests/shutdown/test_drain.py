"""rloop.drain(): a server's connections end gracefully, none cut short
before the timeout, nothing lost.

drain is rloop's API, so these run on RLoop and TokioLoop (the same
assertions); test_not_rloop.py checks the other loops are refused. The
bytes a client receives are compared with what the server sent by sha256.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import resource
from typing import Any

import pytest
import rloop
from conftest import RLOOP_NAMES, RUN_TIMEOUT, rloop_loop_name, run

PAYLOAD = random.Random(12).randbytes(4 * 1024 * 1024)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


# The rloop loops (overrides the suite's fixture, which has every loop).
loop_name = pytest.fixture(params=RLOOP_NAMES, name="loop_name")(rloop_loop_name)


class Sender(asyncio.Protocol):
    """Writes `payload` when connected; closes only if `close_after`."""

    def __init__(self, payload: bytes, close_after: bool = False) -> None:
        self.payload = payload
        self.close_after = close_after
        self.transport: Any = None
        self.connected = asyncio.get_running_loop().create_future()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.payload)
        if self.close_after:
            transport.close()
        self.connected.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


class Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def read_all(reader: asyncio.StreamReader, pause: float = 0.0) -> bytes:
    """Everything until EOF, `pause` seconds between reads (a slow reader)."""
    chunks = []
    while chunk := await reader.read(64 * 1024):
        chunks.append(chunk)
        if pause:
            await asyncio.sleep(pause)
    return b"".join(chunks)


async def start(factory: Any, **kwargs: Any) -> tuple[Any, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0, **kwargs)
    return server, server.sockets[0].getsockname()[1]


def test_slow_reader_gets_everything(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        protocols: list[Sender] = []

        def factory() -> Sender:
            protocols.append(Sender(PAYLOAD))
            return protocols[-1]

        server, port = await start(factory)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await protocols[0].connected
        transport = protocols[0].transport
        assert transport.get_write_buffer_size() > 0  # the reader has not read yet
        sent_before = transport._io_counts()[1]
        receiving = asyncio.ensure_future(read_all(reader, pause=0.002))
        report = await rloop.drain(server, RUN_TIMEOUT, close_idle_after=0.2)
        received = await receiving
        assert hashlib.sha256(received).hexdigest() == PAYLOAD_SHA
        assert (report.drained, report.aborted) == (1, 0)
        assert report.bytes_flushed == len(PAYLOAD) - sent_before
        assert 0.2 <= report.duration < RUN_TIMEOUT
        assert await protocols[0].lost is None
        assert not server.is_serving()
        writer.close()

    run(loop, main(), 2 * RUN_TIMEOUT)


def test_connection_closed_by_its_protocol(loop: asyncio.AbstractEventLoop) -> None:
    """Without close_idle_after, a connection ends when its protocol closes
    it, however long it is quiet before (a slow request is not cut)."""

    class SlowAnswer(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            asyncio.get_running_loop().call_later(0.3, self.answer, data)

        def answer(self, data: bytes) -> None:
            self.transport.write(b"answer to " + data)
            self.transport.close()

    async def main() -> None:
        server, port = await start(SlowAnswer)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"request")
        await writer.drain()
        report = await rloop.drain(server, RUN_TIMEOUT)
        assert await read_all(reader) == b"answer to request"
        assert (report.drained, report.aborted) == (1, 0)
        # The answer and the close came between two looks of the drain:
        # the counters, kept after the connection ended, still count it.
        assert report.bytes_flushed == len(b"answer to request")
        assert report.duration < RUN_TIMEOUT
        writer.close()

    run(loop, main(), 2 * RUN_TIMEOUT)


def test_idle_keep_alive_clients_are_closed(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, port = await start(Echo)
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        for i, (reader, writer) in enumerate(clients):
            writer.write(b"request %d" % i)
            assert await reader.readexactly(len(b"request %d" % i)) == b"request %d" % i
        report = await rloop.drain(server, RUN_TIMEOUT, close_idle_after=0.1)
        for reader, writer in clients:
            assert await reader.read() == b""  # EOF: closed, not reset
            writer.close()
        assert (report.drained, report.aborted, report.bytes_flushed) == (5, 0, 0)
        assert 0.1 <= report.duration < RUN_TIMEOUT

    run(loop, main(), 2 * RUN_TIMEOUT)


def test_client_that_never_reads_is_aborted(loop: asyncio.AbstractEventLoop) -> None:
    timeout = 0.5

    async def main() -> None:
        protocols: list[Sender] = []

        def factory() -> Sender:
            protocols.append(Sender(PAYLOAD * 8))
            return protocols[-1]

        server, port = await start(factory)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024)
        await protocols[0].connected
        started = loop.time()
        report = await rloop.drain(server, timeout, close_idle_after=0.05)
        elapsed = loop.time() - started
        assert (report.drained, report.aborted, report.bytes_flushed) == (0, 1, 0)
        assert timeout <= report.duration <= elapsed < timeout + 1.0
        assert await protocols[0].lost is None
        try:
            received = len(await read_all(reader))
        except ConnectionResetError:
            received = -1
        assert received < len(PAYLOAD * 8)
        writer.close()

    run(loop, main(), 2 * RUN_TIMEOUT)


def test_a_thousand_connections(loop: asyncio.AbstractEventLoop) -> None:
    count = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * count + 100:
        needed = 2 * count + 100
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))

    async def main() -> None:
        server, port = await start(lambda: Sender(b"hello"), backlog=count)
        clients = await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", port) for _ in range(count))
        )
        greetings = await asyncio.gather(*(r.readexactly(5) for r, _ in clients))
        assert greetings == [b"hello"] * count
        report = await rloop.drain(server, RUN_TIMEOUT, close_idle_after=0.05)
        assert (report.drained, report.aborted, report.bytes_flushed) == (count, 0, 0)
        eofs = await asyncio.gather(*(r.read() for r, _ in clients))
        assert eofs == [b""] * count
        for _, writer in clients:
            writer.close()

    try:
        run(loop, main(), 4 * RUN_TIMEOUT)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_streams_writer_closed_with_buffered_data(loop: asyncio.AbstractEventLoop) -> None:
    """A handler that writes and closes at once: its buffered data reaches
    the (slow) reader before the FIN, and the drain waits for it."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(PAYLOAD)
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        first = await reader.readexactly(1)  # the handler has run
        receiving = asyncio.ensure_future(read_all(reader, pause=0.002))
        report = await rloop.drain(server, RUN_TIMEOUT)
        received = first + await receiving
        assert hashlib.sha256(received).hexdigest() == PAYLOAD_SHA
        assert (report.drained, report.aborted) == (1, 0)
        assert 0 < report.bytes_flushed < len(PAYLOAD)
        writer.close()

    run(loop, main(), 2 * RUN_TIMEOUT)


def test_streams_idle_writer_is_flushed_then_closed(loop: asyncio.AbstractEventLoop) -> None:
    """A handler that writes and then waits for its client: the drain
    flushes its StreamWriter, closes it once idle, and the handler sees EOF."""
    handler_saw: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(PAYLOAD)
        handler_saw.append(await reader.read())

    async def main() -> None:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        first = await reader.readexactly(1)
        receiving = asyncio.ensure_future(read_all(reader, pause=0.002))
        report = await rloop.drain(server, RUN_TIMEOUT, close_idle_after=0.2)
        received = first + await receiving
        assert hashlib.sha256(received).hexdigest() == PAYLOAD_SHA
        assert (report.drained, report.aborted) == (1, 0)
        assert handler_saw == [b""]
        writer.close()

    run(loop, main(), 2 * RUN_TIMEOUT)


def test_serve_forever_ends_with_the_drain(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, port = await start(Echo)
        serving = asyncio.ensure_future(server.serve_forever())
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        draining = asyncio.ensure_future(rloop.drain(server, RUN_TIMEOUT))
        done, _ = await asyncio.wait([serving, draining], timeout=0.2)
        assert not done  # the connection is open: both wait
        writer.close()  # the client ends it
        report = await draining
        assert (report.drained, report.aborted) == (1, 0)
        with pytest.raises(asyncio.CancelledError):
            await serving

    run(loop, main())


def test_cancelled_drain_aborts_and_a_second_drain_joins(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, port = await start(lambda: Sender(PAYLOAD * 8))
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024)
        await reader.readexactly(1)
        first = asyncio.ensure_future(rloop.drain(server, None))
        await asyncio.sleep(0)  # the first drain starts
        second = asyncio.ensure_future(rloop.drain(server, 0.0))
        done, _ = await asyncio.wait([first, second], timeout=0.2)
        assert not done  # the second waits for the first, with no time limit
        first.cancel()
        report = await second
        assert (report.drained, report.aborted, report.bytes_flushed) == (0, 1, 0)
        with pytest.raises(asyncio.CancelledError):
            await first
        # Drained: drain() again has nothing to do.
        assert await rloop.drain(server) == rloop.DrainReport(0, 0, 0, pytest.approx(0, abs=0.1))
        writer.close()

    run(loop, main())


def test_drain_without_connections(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, _ = await start(Echo)
        report = await rloop.drain(server)
        assert (report.drained, report.aborted, report.bytes_flushed) == (0, 0, 0)
        assert not server.is_serving()
        assert server.sockets == ()
        await server.wait_closed()

    run(loop, main())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": "1"}, TypeError),
        ({"timeout": -1}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"close_idle_after": True}, TypeError),
        ({"close_idle_after": -0.5}, ValueError),
    ],
)
def test_bad_arguments(
    loop: asyncio.AbstractEventLoop, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    async def main() -> None:
        server, _ = await start(Echo)
        with pytest.raises(error):
            await rloop.drain(server, **kwargs)
        assert server.is_serving()  # refused before anything happened
        server.close()

    run(loop, main())
