"""A loop kept busy by callbacks still serves I/O.

rloop polls less often while callbacks are always waiting and polls find
nothing (see src/busy_poll.rs); these tests pin down that I/O is still
seen, in asyncio's order, however busy the loop is.
"""

from __future__ import annotations

import asyncio
import socket

from conftest import run, run_forever_bounded


def test_reader_fires_while_callbacks_spin(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    rsock, wsock = pair
    spins = 0
    got: list[bytes] = []

    def spin() -> None:
        nonlocal spins
        spins += 1
        if not got:
            loop.call_soon(spin)

    def on_readable() -> None:
        got.append(rsock.recv(100))
        loop.remove_reader(rsock)
        loop.stop()

    loop.add_reader(rsock, on_readable)
    loop.call_soon(spin)
    # Many polls come back empty before the data is sent.
    loop.call_later(0.02, wsock.send, b"ping")
    run_forever_bounded(loop)
    assert got == [b"ping"]
    assert spins > 100


def test_each_write_is_seen_while_tasks_ping_pong(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    rsock, wsock = pair
    seen: list[bytes] = []

    async def ping_pong(done: asyncio.Event) -> int:
        switches = 0
        while not done.is_set():
            await asyncio.sleep(0)
            switches += 1
        return switches

    async def main() -> tuple[int, int]:
        done = asyncio.Event()
        first = asyncio.create_task(ping_pong(done))
        second = asyncio.create_task(ping_pong(done))
        for message in (b"one", b"two", b"three"):
            arrived = asyncio.Event()

            def on_readable(arrived: asyncio.Event = arrived) -> None:
                seen.append(rsock.recv(100))
                loop.remove_reader(rsock)
                arrived.set()

            loop.add_reader(rsock, on_readable)
            # Let the tasks spin with the reader idle, then write.
            for _ in range(200):
                await asyncio.sleep(0)
            wsock.send(message)
            await arrived.wait()
        done.set()
        return await first, await second

    switches = run(loop, main())
    assert seen == [b"one", b"two", b"three"]
    assert min(switches) >= 600


def test_connection_data_arrives_while_tasks_spin(loop: asyncio.AbstractEventLoop) -> None:
    received = bytearray()

    async def main() -> None:
        got_all = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while len(received) < 5:
                chunk = await reader.read(100)
                if not chunk:
                    break
                received.extend(chunk)
            got_all.set()
            writer.close()

        async def spin() -> None:
            while not got_all.is_set():
                await asyncio.sleep(0)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        spinner = asyncio.create_task(spin())
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for part in (b"he", b"llo"):
            for _ in range(200):
                await asyncio.sleep(0)
            writer.write(part)
            await writer.drain()
        await got_all.wait()
        await spinner
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(loop, main())
    assert bytes(received) == b"hello"


def test_undrained_reader_fires_again_while_callbacks_spin(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    """asyncio's readers are level-triggered: one that reads a byte per
    call is called until the data is gone, even on a loop kept busy."""
    rsock, wsock = pair
    wsock.send(b"abcde")
    got: list[bytes] = []
    spins = 0

    def spin() -> None:
        nonlocal spins
        spins += 1
        if len(got) < 5:
            loop.call_soon(spin)

    def on_readable() -> None:
        got.append(rsock.recv(1))
        if len(got) == 5:
            loop.remove_reader(rsock)
            loop.stop()

    loop.add_reader(rsock, on_readable)
    loop.call_soon(spin)
    run_forever_bounded(loop)
    assert got == [b"a", b"b", b"c", b"d", b"e"]
    assert spins >= 5
