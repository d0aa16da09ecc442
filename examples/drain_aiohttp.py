"""Graceful shutdown of an aiohttp server with rloop.drain.

    python examples/drain_aiohttp.py            # serves on 127.0.0.1:8080
    curl localhost:8080/slow & kill -TERM <pid>     # the slow request still completes
    python examples/drain_aiohttp.py --demo     # does that by itself and prints the outcome

On SIGTERM or Ctrl-C the server stops accepting, tells aiohttp to close
each connection once its request in flight is answered (idle keep-alive
connections close at once), and drains: every response is flushed to its
client, however slowly it reads, and whatever is still open after 30
seconds is aborted. A second signal aborts at once.

The server is made with loop.create_server(runner.server, ...), aiohttp's
low-level way, so that the code holds the asyncio server to drain.
"""

import asyncio
import hashlib
import os
import signal
import sys

import rloop
from aiohttp import ClientSession, ClientTimeout, web

DRAIN_TIMEOUT = 30.0
BIG = os.urandom(16 * 1024 * 1024)


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello\n")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(2)  # a request in flight when the signal comes
    return web.Response(text="slow, but answered\n")


async def big(request: web.Request) -> web.Response:
    return web.Response(body=BIG)


async def serve(port: int, started: asyncio.Future[int] | None = None) -> None:
    loop = asyncio.get_running_loop()
    app = web.Application()
    app.add_routes([web.get("/", hello), web.get("/slow", slow), web.get("/big", big)])
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    assert runner.server is not None
    server = await loop.create_server(runner.server, "127.0.0.1", port)
    print(f"serving on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)

    signalled = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signalled.set)
    if started is not None:
        started.set_result(server.sockets[0].getsockname()[1])
    await signalled.wait()

    print("shutting down: draining", flush=True)
    server.close()  # no new connection from here on
    for connection in runner.server.connections:
        # aiohttp's own: finish the request in flight (if any), then close.
        connection.close()
    draining = asyncio.ensure_future(rloop.drain(server, DRAIN_TIMEOUT))
    signalled.clear()
    second = asyncio.ensure_future(signalled.wait())
    await asyncio.wait([draining, second], return_when=asyncio.FIRST_COMPLETED)
    if not draining.done():
        print("second signal: aborting", flush=True)
        draining.cancel()  # a cancelled drain aborts what is still open
        await asyncio.gather(draining, return_exceptions=True)
    else:
        second.cancel()
        print(draining.result(), flush=True)
    await runner.cleanup()


async def demo() -> None:
    """The server, a slow request and a slow download, then SIGTERM."""
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    serving = asyncio.ensure_future(serve(0, started))
    port = await started
    base = f"http://127.0.0.1:{port}"
    async with ClientSession(timeout=ClientTimeout(total=60)) as session:

        async def get_slow() -> str:
            async with session.get(f"{base}/slow") as resp:
                return await resp.text()

        async def download_slowly() -> bytes:
            async with session.get(f"{base}/big") as resp:
                body = bytearray()
                async for chunk in resp.content.iter_chunked(256 * 1024):
                    body += chunk
                    await asyncio.sleep(0.01)  # a slow reader
                return bytes(body)

        assert await (await session.get(base)).text() == "hello\n"  # a keep-alive connection
        slow_request = asyncio.ensure_future(get_slow())
        download = asyncio.ensure_future(download_slowly())
        await asyncio.sleep(0.5)  # both requests are in flight
        os.kill(os.getpid(), signal.SIGTERM)
        print("slow request:", (await slow_request).strip())
        body = await download
        intact = hashlib.sha256(body).digest() == hashlib.sha256(BIG).digest()
        print(f"download: {len(body)} bytes, intact: {intact}")
    await serving
    print(f"loop: {type(asyncio.get_running_loop()).__name__}")


if __name__ == "__main__":
    rloop.run(demo() if "--demo" in sys.argv else serve(8080))
