"""The thread contract: every protocol method and callback runs on the thread
that runs the loop, with that loop as the running loop.

The loop runs in a thread of its own (not the main thread), so a callback
run anywhere else (the main thread, a worker of the loop's runtime) shows.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from conftest import make_loop

DEADLINE = 10.0


def run_in_thread(loop_name: str) -> tuple[int, list[tuple[str, int, bool]]]:
    """Runs an echo exchange and a timer on a loop in a new thread; returns
    that thread's ident and, per callback, (where, thread ident, whether
    get_running_loop() was the loop)."""

    def body() -> tuple[bytes, int, list[tuple[str, int, bool]]]:
        loop = make_loop(loop_name)
        seen: list[tuple[str, int, bool]] = []

        def note(where: str) -> None:
            seen.append((where, threading.get_ident(), asyncio.get_running_loop() is loop))

        class Echo(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                note("server connection_made")
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                note("server data_received")
                self.transport.write(data)  # type: ignore[attr-defined]
                self.transport.close()

            def connection_lost(self, exc: Exception | None) -> None:
                note("server connection_lost")
                server_lost.set_result(exc)

        class Client(asyncio.Protocol):
            def __init__(self) -> None:
                self.got = b""

            def data_received(self, data: bytes) -> None:
                note("client data_received")
                self.got += data

            def connection_lost(self, exc: Exception | None) -> None:
                note("client connection_lost")
                client_lost.set_result(self.got)

        async def main() -> bytes:
            timer_fired = loop.create_future()
            loop.call_later(0.001, lambda: (note("timer"), timer_fired.set_result(None)))
            server = await loop.create_server(Echo, "127.0.0.1", 0)
            host, port = server.sockets[0].getsockname()[:2]
            transport, _ = await loop.create_connection(Client, host, port)
            transport.write(b"ping")
            got: bytes = await client_lost
            await server_lost
            await timer_fired
            server.close()
            await server.wait_closed()
            return got

        try:
            server_lost: asyncio.Future[Exception | None] = loop.create_future()
            client_lost: asyncio.Future[bytes] = loop.create_future()
            echo = loop.run_until_complete(asyncio.wait_for(main(), DEADLINE))
            return echo, threading.get_ident(), seen
        finally:
            loop.close()

    # The executor's thread runs the loop; its exceptions reach this thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        echo, thread, seen = pool.submit(body).result(timeout=DEADLINE + 5)
    assert echo == b"ping"
    return thread, seen


def test_protocol_and_timer_callbacks_run_on_the_loop_thread(loop_name: str) -> None:
    loop_thread, seen = run_in_thread(loop_name)
    assert loop_thread != threading.get_ident()
    assert {where for where, _, _ in seen} == {
        "timer",
        "server connection_made",
        "server data_received",
        "server connection_lost",
        "client data_received",
        "client connection_lost",
    }
    assert [(w, ident) for w, ident, _ in seen if ident != loop_thread] == []
    assert [w for w, _, running in seen if not running] == []
