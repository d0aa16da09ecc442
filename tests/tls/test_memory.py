"""Memory per TLS connection on rloop: no TLS buffer of its own, and the C
heap trimmed after a burst of handshakes.

asyncio's TLS protocol holds a 256 KiB buffer per connection from the
start (over 512 KiB per pair of ends, both in this process). rloop's
connections share their loop's one buffer. What Python allocates per
pair (tracemalloc: exact, and blind to memory an earlier test freed,
unlike RSS) must stay under 40 KiB: about 16 KiB is measured, the objects
of two ends; a buffer of one TLS record per end, as rloop had before,
made it 49. rloop's loops only: stock asyncio's own protocol is not held
to it. The README has the process's real figures.
"""

from __future__ import annotations

import asyncio
import ssl
import tracemalloc
from typing import Any

import pytest
from conftest import RLOOP_NAMES, rloop_loop_name, run
from rloop import tls as rloop_tls
from tls_helpers import (
    Contexts,
    fixture_tls,  # noqa: F401 - the tls fixture
)

loop_name = pytest.fixture(params=RLOOP_NAMES, name="loop_name")(rloop_loop_name)

PAIRS = 150
BOUND_PER_PAIR = 40 * 1024


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def test_open_tls_connections_cost_no_big_buffer(
    loop: asyncio.AbstractEventLoop, tls: Contexts
) -> None:
    async def open_pairs(port: int, count: int) -> list[asyncio.StreamWriter]:
        writers = []
        for _ in range(count):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=tls.client, server_hostname="localhost"
            )
            writer.write(b"x" * 1024)
            assert await reader.readexactly(1024) == b"x" * 1024
            writers.append(writer)
        return writers

    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=tls.server)
        port = server.sockets[0].getsockname()[1]
        # Warm up: allocator pools, lazily made objects, OpenSSL's tables.
        for writer in await open_pairs(port, 10):
            writer.close()
        await asyncio.sleep(0.1)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            writers = await open_pairs(port, PAIRS)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        closing: list[Any] = []
        for writer in writers:
            writer.close()
            closing.append(writer.wait_closed())
        await asyncio.gather(*closing, return_exceptions=True)
        server.close()
        await server.wait_closed()
        assert grown / PAIRS < BOUND_PER_PAIR, f"{grown / PAIRS / 1024:.1f} KiB per pair"

    run(loop, main(), timeout=60)


BURST = 150


def test_a_burst_of_handshakes_is_followed_by_a_heap_trim(
    loop: asyncio.AbstractEventLoop, tls: Contexts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """150 clients connect at once (300 handshakes in flight, both ends in
    this process, one of them failing its hostname check): once they are
    done, the loop has trimmed the C heap once, and counts no handshake in
    flight."""
    trims: list[int] = []
    monkeypatch.setattr(rloop_tls._rloop, "trim_heap", lambda: trims.append(1))

    async def connect(port: int, hostname: str) -> bool:
        try:
            _, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=tls.client, server_hostname=hostname
            )
        except ssl.SSLCertVerificationError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    async def main() -> list[bool]:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=tls.server, backlog=BURST)
        port = server.sockets[0].getsockname()[1]
        names = ["localhost"] * (BURST - 1) + ["wrong.example"]
        done = await asyncio.gather(*(connect(port, name) for name in names))
        server.close()
        await server.wait_closed()
        return done

    done = run(loop, main(), timeout=60)
    assert done.count(True) == BURST - 1
    assert done[-1] is False
    handshakes = getattr(loop, "_rloop_tls_handshakes", None)
    assert handshakes is not None and handshakes.in_flight == 0
    assert len(trims) >= 1
