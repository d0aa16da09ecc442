"""Memory per connection stays small: an open connection that has read and
written costs a few KiB (its objects), not a read buffer of its own.

A generous bound, on every loop with the same assertion: 400 connection
pairs (both ends in this process), each having echoed 1 KiB, may grow the
process by at most 32 KiB per pair. A 256 KiB buffer per connection (what
rloop had) grows it by over 270 KiB per pair. Once every one of those
connections has closed (connection_lost on both ends), the process keeps at
most 12 KiB per pair: asyncio keeps some 3 KiB, uvloop 1.4, RLoop and
TokioLoop under 1 (free memory of the C allocator and of Python's, not yet
handed back). benchmarks/memory.py measures the real figures.
"""

from __future__ import annotations

import asyncio
import gc
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


#: What the process may keep per pair once every connection has closed
#: (see the module docs); a read buffer left behind per connection would
#: keep far more.
KEPT_PER_PAIR = 12 * 1024


class Tally:
    """Counts server-side connection_lost calls; `all_lost` is done at
    `expected` of them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, expected: int) -> None:
        self.count = 0
        self.expected = expected
        self.all_lost: asyncio.Future[None] = loop.create_future()


class Counted(Echo):
    """Echo that reports its connection_lost to the current tally."""

    def __init__(self, tallies: list[Tally]) -> None:
        self.tallies = tallies

    def connection_lost(self, exc: Exception | None) -> None:
        tally = self.tallies[-1]
        tally.count += 1
        if tally.count == tally.expected:
            tally.all_lost.set_result(None)


class LostClient(Client):
    def __init__(self, done: asyncio.Future[None], lost: asyncio.Future[None]) -> None:
        super().__init__(done)
        self.lost = lost

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(None)


def test_memory_comes_back_after_connections_close(loop: asyncio.AbstractEventLoop) -> None:
    # Open PAIRS pairs, echo 1 KiB on each, close them all and wait for
    # every connection_lost on both ends: the process is back near where
    # it started.
    tallies: list[Tally] = []

    async def cycle(server: Any, count: int) -> None:
        tallies.append(Tally(loop, count))
        port = server.sockets[0].getsockname()[1]
        made = []
        for _ in range(count):
            done, lost = loop.create_future(), loop.create_future()
            transport, _ = await loop.create_connection(
                lambda done=done, lost=lost: LostClient(done, lost), "127.0.0.1", port
            )
            made.append((transport, done, lost))
        await asyncio.gather(*(d for _, d, _ in made))
        for transport, _, _ in made:
            transport.close()
        await asyncio.gather(*(lost for _, _, lost in made))
        await tallies[-1].all_lost
        made.clear()

    async def main() -> int:
        server = await loop.create_server(lambda: Counted(tallies), "127.0.0.1", 0)
        await cycle(server, 20)  # warm up, as above
        gc.collect()
        before = rss()
        await cycle(server, PAIRS)
        gc.collect()
        kept = rss() - before
        server.close()
        return kept

    kept = run(loop, main(), timeout=30)
    assert kept / PAIRS < KEPT_PER_PAIR, f"{kept / PAIRS / 1024:.1f} KiB kept per pair"
