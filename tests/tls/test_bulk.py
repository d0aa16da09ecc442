"""TLS bulk traffic over TCP on every loop, held to what stock asyncio of the
running Python does: 16 MiB each way, eight bulk connections at once,
close_notify behind queued data (a
close() flushes what is queued first), and many handshakes at once."""

from __future__ import annotations

import asyncio
import os
import resource

import pytest
from conftest import run
from tls_helpers import (
    MIB,
    Contexts,
    Recorder,
    fixture_tls,  # noqa: F401 - the tls fixture
    port_of,
    record_loop_errors,
    sha256,
    stream_echo,
)

# -- bulk transfer -------------------------------------------------------------


@pytest.mark.parametrize("direction", ["echo", "server_sends"])
def test_16_mib_over_tls(loop: asyncio.AbstractEventLoop, tls: Contexts, direction: str) -> None:
    """16 MiB through TLS streams with drain(): "echo" has the client send
    16 MiB while the server echoes it back; "server_sends" has the server
    send 16 MiB to the client. What arrives is byte-for-byte what was sent
    (sha256), and both ends close cleanly."""
    payload = os.urandom(16 * MIB)

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        assert await reader.read() == b""  # the client closes once it has it all
        writer.close()
        await writer.wait_closed()

    async def main() -> tuple[str, str]:
        handler = stream_echo if direction == "echo" else send
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls.server)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port_of(server), ssl=tls.client, server_hostname="localhost"
        )

        async def upload() -> None:
            writer.write(payload)
            await writer.drain()

        if direction == "echo":
            _, got = await asyncio.gather(upload(), reader.readexactly(len(payload)))
        else:
            got = await reader.readexactly(len(payload))
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return sha256(got), sha256(payload)

    got, sent = run(loop, main(), timeout=60)
    assert got == sent


def test_concurrent_bulk_streams_stay_apart(loop: asyncio.AbstractEventLoop, tls: Contexts) -> None:
    """Eight TLS connections of one loop echo 1 MiB each at the same time,
    every one its own bytes: each gets back exactly what it sent (sha256).
    Both ends of every connection are in this loop, so records of sixteen
    connections are read and decrypted interleaved (rloop's connections
    share the loop's one TLS buffer: nothing of one may reach another)."""
    payloads = [os.urandom(MIB) for _ in range(8)]

    async def one(port: int, payload: bytes) -> str:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls.client, server_hostname="localhost"
        )

        async def upload() -> None:
            # In pieces, so that the connections' records interleave.
            for at in range(0, len(payload), 64 * 1024):
                writer.write(payload[at : at + 64 * 1024])
                await writer.drain()

        _, got = await asyncio.gather(upload(), reader.readexactly(len(payload)))
        writer.close()
        await writer.wait_closed()
        return sha256(got)

    async def main() -> list[str]:
        server = await asyncio.start_server(stream_echo, "127.0.0.1", 0, ssl=tls.server)
        port = port_of(server)
        got = await asyncio.gather(*[one(port, p) for p in payloads])
        server.close()
        await server.wait_closed()
        return list(got)

    assert run(loop, main(), timeout=60) == [sha256(p) for p in payloads]


# -- close_notify behind queued data -------------------------------------------


def test_close_flushes_queued_data_before_close_notify(
    loop: asyncio.AbstractEventLoop, tls: Contexts
) -> None:
    """The server writes 16 MiB and calls close() at once, in the same step:
    the kernel's socket buffers take a few MiB at most, so close() is called
    with most of the data still queued in the loop. The client reads every
    byte (sha256), then gets the EOF (the server's close_notify comes after
    the data), then connection_lost(None); the server's wait_closed() ends."""
    payload = os.urandom(16 * MIB)

    async def main() -> tuple[str, list[str], BaseException | None]:
        errors = record_loop_errors(loop)
        closed: asyncio.Future[None] = loop.create_future()

        async def write_and_close(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            writer.write(payload)
            writer.close()
            await writer.wait_closed()
            closed.set_result(None)

        server = await asyncio.start_server(write_and_close, "127.0.0.1", 0, ssl=tls.server)
        rec = Recorder(loop)
        await loop.create_connection(
            lambda: rec, "127.0.0.1", port_of(server), ssl=tls.client, server_hostname="localhost"
        )
        exc = await rec.lost
        await closed
        server.close()
        await server.wait_closed()
        assert errors == []
        return sha256(rec.data), rec.events, exc

    got, events, exc = run(loop, main(), timeout=30)
    assert got == sha256(payload)
    assert (events, exc) == (["made", "data", "eof", "lost"], None)


# -- many handshakes at once ---------------------------------------------------


def test_many_concurrent_handshakes(loop: asyncio.AbstractEventLoop, tls: Contexts) -> None:
    """1000 TLS clients connect at once to a TLS start_server echo, each
    sending a line and reading it back: every handshake and exchange
    completes, in well under the time limit on a 2-core machine."""
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8 * n), hard))

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def one(port: int, i: int) -> bytes:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls.client, server_hostname="localhost"
        )
        writer.write(b"%d\n" % i)
        line = await reader.readline()
        writer.close()
        await writer.wait_closed()
        return line

    async def main() -> list[bytes]:
        errors = record_loop_errors(loop)
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=tls.server, backlog=n)
        port = port_of(server)
        replies = await asyncio.gather(*[one(port, i) for i in range(n)])
        server.close()
        await server.wait_closed()
        assert errors == []
        return list(replies)

    # About 1.5 s on an idle 2-core machine, several times that on a loaded
    # one (a debug build, a parallel job): the bound leaves room for it.
    assert run(loop, main(), timeout=60) == [b"%d\n" % i for i in range(n)]
