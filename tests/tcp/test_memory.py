"""Memory per connection stays small: an open connection that has read and
written costs a few KiB (its objects), not a read buffer of its own.

A generous bound, on every loop with the same assertion: 400 connection
pairs (both ends in this process), each having echoed 1 KiB, may grow the
process by at most 32 KiB per pair. A 256 KiB buffer per connection (what
rloop had) grows it by over 270 KiB per pair. benchmarks/memory.py measures
the real figures.
"""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import run

PAIRS = 400
BOUND_PER_PAIR = 32 * 1024


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class Client(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.got = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(b"x" * 1024)

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got >= 1024 and not self.done.done():
            self.done.set_result(None)


def test_open_connections_cost_little_memory(loop: asyncio.AbstractEventLoop) -> None:
    async def open_pairs(server: Any, count: int) -> list[Any]:
        port = server.sockets[0].getsockname()[1]
        made = []
        for _ in range(count):
            done = loop.create_future()
            transport, _ = await loop.create_connection(
                lambda done=done: Client(done), "127.0.0.1", port
            )
            made.append((transport, done))
        await asyncio.gather(*(d for _, d in made))
        return [t for t, _ in made]

    async def main() -> None:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        # Warm up: allocator pools, lazily made objects of the loop.
        for t in await open_pairs(server, 20):
            t.close()
        await asyncio.sleep(0.1)
        before = rss()
        transports = await open_pairs(server, PAIRS)
        grown = rss() - before
        for t in transports:
            t.close()
        server.close()
        assert grown / PAIRS < BOUND_PER_PAIR, f"{grown / PAIRS / 1024:.1f} KiB per pair"

    run(loop, main(), timeout=30)
