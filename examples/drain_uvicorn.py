"""Graceful shutdown of uvicorn on rloop, bounded by rloop.drain.

    python examples/drain_uvicorn.py            # serves on 127.0.0.1:8000
    curl localhost:8000/slow & kill -TERM <pid>     # the slow request still completes
    python examples/drain_uvicorn.py --demo     # does that by itself and prints the outcome

uvicorn handles SIGTERM and Ctrl-C itself: it stops accepting and asks
each connection to close once its response is sent (idle keep-alive
connections close at once). Then it waits, with no limit unless
``timeout_graceful_shutdown`` is set, and a client that never reads its
response keeps it waiting. The server below drains instead: responses are
flushed, however slowly their clients read, and whatever is still open
after DRAIN_TIMEOUT seconds is aborted; then uvicorn's own shutdown
(lifespan) goes on. A second Ctrl-C is uvicorn's force quit.
"""

import asyncio
import hashlib
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import rloop
import uvicorn

DRAIN_TIMEOUT = 30.0
BIG = os.urandom(16 * 1024 * 1024)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(2)  # a request in flight when the signal comes
        body = b"slow, but answered\n"
    elif scope["path"] == "/big":
        body = BIG
    else:
        body = b"hello\n"
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class DrainingServer(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connection from here on
        for connection in list(self.server_state.connections):
            connection.shutdown()  # uvicorn's: close once the response is sent
        reports = await asyncio.gather(*(rloop.drain(s, DRAIN_TIMEOUT) for s in self.servers))
        for report in reports:
            print(report, flush=True)
        await super().shutdown(sockets)  # nothing left to wait for: lifespan shutdown


async def demo(server: DrainingServer) -> None:
    """The server, a slow request and a slow download, then SIGTERM."""
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]

    async def get(path: str, pause: float = 0.0) -> bytes:
        """The body of an HTTP/1.0 response (the server closes after it)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        response = bytearray()
        while chunk := await reader.read(256 * 1024):
            response += chunk
            await asyncio.sleep(pause)  # a slow reader
        writer.close()
        return bytes(response.partition(b"\r\n\r\n")[2])

    slow_request = asyncio.ensure_future(get("/slow"))
    download = asyncio.ensure_future(get("/big", pause=0.01))
    await asyncio.sleep(0.5)  # both requests are in flight
    os.kill(os.getpid(), signal.SIGTERM)
    print("slow request:", (await slow_request).decode().strip())
    body = await download
    intact = hashlib.sha256(body).digest() == hashlib.sha256(BIG).digest()
    print(f"download: {len(body)} bytes, intact: {intact}")
    await serving
    print(f"loop: {type(asyncio.get_running_loop()).__name__}")


if __name__ == "__main__":
    port = 0 if "--demo" in sys.argv else 8000
    server = DrainingServer(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off"))
    rloop.run(demo(server) if "--demo" in sys.argv else server.serve())
