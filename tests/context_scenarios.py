"""The contextvars.Context a transport's protocol runs in (shared by
tests/tcp and tests/unix).

asyncio runs every protocol method of a connection in (a copy of) the
context current where the connection was set up: the caller of
create_connection / connect_accepted_socket, or, for a server's
connections, where the server was made (the protocol factory call
included). Tracing and logging libraries keep their state in context
variables and rely on it.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
from typing import Any

import pytest
from conftest import run, xfail_for
from net_helpers import Endpoint, endpoint, tls_contexts

__all__ = [
    "endpoint",
    "test_client_protocol_runs_in_callers_context",
    "test_flow_control_runs_in_connection_context",
    "test_server_protocols_run_in_servers_context",
]

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outer")


class Seen(asyncio.Protocol):
    """Records VAR in each of its methods."""

    def __init__(self, seen: list[tuple[str, str]], done: asyncio.Future[None]) -> None:
        self.seen, self.done = seen, done
        self.note("factory")

    def note(self, what: str) -> None:
        self.seen.append((what, VAR.get()))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.note("connection_made")

    def data_received(self, data: bytes) -> None:
        self.note("data_received")
        self.transport.write(data)

    def eof_received(self) -> bool:
        self.note("eof_received")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.note("connection_lost")
        self.done.set_result(None)


class BufferedSeen(Seen, asyncio.BufferedProtocol):
    def get_buffer(self, sizehint: int) -> bytearray:
        self.note("get_buffer")
        self.buffer = bytearray(1024)
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.note("buffer_updated")
        self.transport.write(bytes(self.buffer[:nbytes]))


def _dedup(seen: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in seen:
        if not out or out[-1] != item:
            out.append(item)
    return out


@pytest.mark.parametrize("flavour", ["plain", "buffered", "tls"])
def test_server_protocols_run_in_servers_context(
    loop: asyncio.AbstractEventLoop, endpoint: Endpoint, flavour: str
) -> None:
    seen: list[tuple[str, str]] = []
    server_tls, client_tls = tls_contexts() if flavour == "tls" else (None, None)
    protocol = BufferedSeen if flavour == "buffered" else Seen

    async def serve() -> asyncio.AbstractServer:
        VAR.set("server")  # in this task's context only
        return await endpoint.serve(loop, lambda: protocol(seen, done), ssl=server_tls)

    async def client(server: asyncio.AbstractServer) -> bytes:
        VAR.set("client")
        if endpoint.kind == "tcp":
            host, port = endpoint.address(server)
            reader, writer = await asyncio.open_connection(
                host, port, ssl=client_tls, server_hostname="localhost" if client_tls else None
            )
        else:
            reader, writer = await asyncio.open_unix_connection(
                endpoint.path, ssl=client_tls, server_hostname="localhost" if client_tls else None
            )
        writer.write(b"ping")
        echoed = await reader.readexactly(4)
        if client_tls:
            writer.close()  # close_notify: the server's protocol sees EOF
        else:
            writer.write_eof()
        await done
        writer.close()
        return echoed

    async def main() -> bytes:
        server = await loop.create_task(serve())
        VAR.set("main")
        echoed = await loop.create_task(client(server))
        server.close()
        await server.wait_closed()
        return echoed

    done = loop.create_future()
    assert run(loop, main()) == b"ping"
    names = [name for name, _ in _dedup(seen)]
    assert names[:2] == ["factory", "connection_made"]
    assert names[-1] == "connection_lost"
    assert {value for _, value in seen} == {"server"}, seen


@pytest.mark.parametrize("how", ["address", "sock", "accepted"])
def test_client_protocol_runs_in_callers_context(
    loop: asyncio.AbstractEventLoop, endpoint: Endpoint, how: str
) -> None:
    seen: list[tuple[str, str]] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()

    peers: list[socket.socket] = []

    async def connect(server: asyncio.AbstractServer) -> None:
        VAR.set("caller")
        factory = lambda: Seen(seen, done)
        if how == "address":
            transport, _ = await endpoint.connect(loop, server, factory)
        elif how == "sock":
            sock = endpoint.client_socket(server)
            sock.setblocking(False)
            if endpoint.kind == "tcp":
                transport, _ = await loop.create_connection(factory, sock=sock)
            else:
                transport, _ = await loop.create_unix_connection(factory, sock=sock)
        else:
            # A connection accepted outside the loop, handed over.
            family = socket.AF_INET if endpoint.kind == "tcp" else socket.AF_UNIX
            with socket.socket(family) as listener:
                listener.bind(("127.0.0.1", 0) if endpoint.kind == "tcp" else "")
                listener.listen()
                peer = socket.socket(family)
                peer.connect(listener.getsockname())
                conn, _ = listener.accept()
            conn.setblocking(False)
            peers.append(peer)
            await loop.connect_accepted_socket(factory, conn)
            # The peer sends, then shuts down: the transport sees data and EOF.
            peer.sendall(b"hello")
            peer.shutdown(socket.SHUT_WR)
            return
        transport.write(b"hello")

    async def main() -> None:
        VAR.set("main")
        server = await endpoint.serve(loop, lambda: _StreamsEcho(echo))
        await loop.create_task(connect(server))
        await done
        for peer in peers:
            peer.close()
        server.close()
        await server.wait_closed()

    done = loop.create_future()
    run(loop, main())
    names = [name for name, _ in _dedup(seen)]
    assert names[:2] == ["factory", "connection_made"]
    assert "data_received" in names and names[-1] == "connection_lost"
    assert {value for name, value in seen if name != "factory"} == {"caller"}, seen


def _StreamsEcho(handler: Any) -> asyncio.StreamReaderProtocol:
    reader = asyncio.StreamReader()
    return asyncio.StreamReaderProtocol(reader, handler)


def test_flow_control_runs_in_connection_context(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    request: pytest.FixtureRequest,
    endpoint: Endpoint,
) -> None:
    """pause_writing/resume_writing, whoever writes: the connection's
    context (asyncio calls them in the writer's own; uvloop as here)."""
    xfail_for(request, ["asyncio"], "asyncio calls them in the writer's context", loop_name)
    seen: list[tuple[str, str]] = []
    resumed = loop.create_future()

    class Flow(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def pause_writing(self) -> None:
            seen.append(("pause_writing", VAR.get()))

        def resume_writing(self) -> None:
            seen.append(("resume_writing", VAR.get()))
            resumed.set_result(None)

    class Sink(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transport.pause_reading()  # type: ignore[attr-defined]
            sink.set_result(transport)

    sink: asyncio.Future[Any] = loop.create_future()

    async def connect(server: asyncio.AbstractServer) -> asyncio.Transport:
        VAR.set("connection")
        transport, _ = await endpoint.connect(loop, server, Flow)
        return transport

    async def main() -> None:
        server = await endpoint.serve(loop, Sink)
        transport = await loop.create_task(connect(server))
        VAR.set("writer")  # another context writes
        transport.set_write_buffer_limits(high=1, low=0)
        transport.write(b"x" * (16 << 20))  # more than the kernel buffers
        peer = await sink
        peer.resume_reading()
        await resumed
        transport.close()
        peer.close()
        server.close()
        await server.wait_closed()

    run(loop, main())
    assert seen == [("pause_writing", "connection"), ("resume_writing", "connection")]
