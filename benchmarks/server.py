"""One benchmark server: a single event loop serving one kind of workload.

Usage::

    python benchmarks/server.py --loop uvloop --kind protocol --port 0 [--cpu 0]

Kinds (all on 127.0.0.1):

* ``sockets``  - TCP echo with ``loop.sock_accept``/``sock_recv``/``sock_sendall``;
* ``streams``  - TCP echo with ``asyncio.start_server`` (StreamReader/StreamWriter);
* ``protocol`` - TCP echo with an ``asyncio.Protocol``;
* ``bufproto`` - TCP echo with an ``asyncio.BufferedProtocol``;
* ``http``     - minimal HTTP/1.1 keep-alive server (``asyncio.Protocol``) answering
  every GET with a fixed small response carrying Content-Length;
* ``tls``      - the ``streams`` echo over TLS (``start_server(..., ssl=ctx)``);
* ``https``    - the ``http`` Protocol over TLS (``create_server(..., ssl=ctx)``);
* ``udp``      - UDP echo with a ``DatagramProtocol`` (``create_datagram_endpoint``):
  every datagram is sent back to where it came from.

The TLS kinds need ``--cert`` and ``--key`` (PEM files; ``run.py`` makes a throwaway
self-signed pair for 127.0.0.1). The context is
``ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)`` with that pair loaded and
otherwise default settings (TLS 1.2 minimum; the load client negotiates TLS 1.3).

Once listening it prints ``READY port=P pid=N loop=module.Class`` and serves until it
is terminated or ``--max-seconds`` passed. ``--check`` only creates the loop, prints
its class and exits (used by the runner to detect which loops are installed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import ssl
import sys
from typing import cast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from loops import LoopUnavailable, describe, new_loop

KINDS: tuple[str, ...] = (
    "sockets", "streams", "protocol", "bufproto", "http", "tls", "https", "udp"
)  # fmt: skip
TLS_KINDS: tuple[str, ...] = ("tls", "https")
HOST = "127.0.0.1"
READ_SIZE = 64 * 1024

HTTP_BODY = b"Hello, World!"
HTTP_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: " + str(len(HTTP_BODY)).encode() + b"\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n" + HTTP_BODY
)
MAX_HEADER = 64 * 1024


class EchoDatagram(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)


class EchoProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not every loop's transport subclasses asyncio.Transport (uvloop's do not).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class EchoBufferedProtocol(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray(READ_SIZE)
        self.view = memoryview(self.buffer)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not every loop's transport subclasses asyncio.Transport (uvloop's do not).
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        assert self.transport is not None
        # The receive buffer is reused for the next read, so hand the transport
        # its own copy (a transport may keep unsent data by reference).
        self.transport.write(bytes(self.view[:nbytes]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive: one fixed response per request header block (GET only)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not every loop's transport subclasses asyncio.Transport (uvloop's do not).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        pending = self.pending + data if self.pending else data
        start = 0
        responses = 0
        close = False
        while True:
            end = pending.find(b"\r\n\r\n", start)
            if end < 0:
                break
            head = pending[start:end]
            if b"lose" in head and b"connection: close" in head.lower():
                close = True
            responses += 1
            start = end + 4
            if close:
                break
        self.pending = pending[start:]
        if responses:
            transport.write(HTTP_RESPONSE * responses)
        if close or len(self.pending) > MAX_HEADER:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def _sock_echo(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
    try:
        while True:
            data = await loop.sock_recv(conn, READ_SIZE)
            if not data:
                break
            await loop.sock_sendall(conn, data)
    except OSError:
        pass
    finally:
        conn.close()


async def _serve_sockets(loop: asyncio.AbstractEventLoop, listener: socket.socket) -> None:
    tasks: set[asyncio.Task[None]] = set()
    while True:
        conn, _ = await loop.sock_accept(listener)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setblocking(False)
        task = loop.create_task(_sock_echo(loop, conn))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def _stream_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """A default server-side TLS context holding ``cert`` and ``key``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def start(
    loop: asyncio.AbstractEventLoop, kind: str, port: int, ctx: ssl.SSLContext | None = None
) -> int:
    """Start serving ``kind`` (``ctx``: the TLS context of the TLS kinds); return the port."""
    if kind == "sockets":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, port))
        listener.listen(512)
        listener.setblocking(False)
        loop.create_task(_serve_sockets(loop, listener))
        return int(listener.getsockname()[1])
    if kind == "udp":
        transport, _ = await loop.create_datagram_endpoint(EchoDatagram, local_addr=(HOST, port))
        return int(transport.get_extra_info("sockname")[1])
    if kind == "streams":
        server = await asyncio.start_server(_stream_echo, HOST, port, backlog=512)
    elif kind == "protocol":
        server = await loop.create_server(EchoProtocol, HOST, port, backlog=512)
    elif kind == "bufproto":
        server = await loop.create_server(EchoBufferedProtocol, HOST, port, backlog=512)
    elif kind == "http":
        server = await loop.create_server(HttpProtocol, HOST, port, backlog=512)
    elif kind == "tls":
        server = await asyncio.start_server(_stream_echo, HOST, port, backlog=512, ssl=ctx)
    elif kind == "https":
        server = await loop.create_server(HttpProtocol, HOST, port, backlog=512, ssl=ctx)
    else:
        raise SystemExit(f"unknown --kind {kind!r} (choose from {', '.join(KINDS)})")
    return int(server.sockets[0].getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loop", required=True)
    parser.add_argument("--kind", choices=KINDS, default="protocol")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--check", action="store_true", help="only report the loop class")
    parser.add_argument("--cert", default=None, help="PEM certificate (tls, https kinds)")
    parser.add_argument("--key", default=None, help="PEM private key (tls, https kinds)")
    args = parser.parse_args()
    ctx = None
    if args.kind in TLS_KINDS and not args.check:
        if not (args.cert and args.key):
            parser.error(f"--kind {args.kind} needs --cert and --key")
        ctx = server_context(args.cert, args.key)

    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        # Before the loop exists, so every thread it starts inherits the mask.
        os.sched_setaffinity(0, {args.cpu})
    try:
        loop = new_loop(args.loop)
    except LoopUnavailable as exc:
        print(f"UNAVAILABLE {exc}", flush=True)
        return 3
    if args.check:
        print(f"LOOP {describe(loop)}", flush=True)
        loop.close()
        return 0

    port = loop.run_until_complete(start(loop, args.kind, args.port, ctx))
    loop.call_later(args.max_seconds, loop.stop)
    print(f"READY port={port} pid={os.getpid()} loop={describe(loop)}", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
