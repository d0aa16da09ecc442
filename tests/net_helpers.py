"""Helpers shared by tests/tcp and tests/unix: one way to serve and connect
over either family, protocols that record what happens to them, and an fd
counter for leak checks."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import ssl
import tempfile
from collections.abc import Callable
from typing import Any

import pytest

DEADLINE = 10.0


def fd_count() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


class Endpoint:
    """Where a test server listens: TCP on 127.0.0.1 or a Unix socket path."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.path = ""
        if kind == "unix":
            self._dir = tempfile.TemporaryDirectory(prefix="rloop-test-")
            self.path = os.path.join(self._dir.name, "s.sock")

    def cleanup(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()

    async def serve(
        self, loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.BaseProtocol], **kw: Any
    ) -> asyncio.AbstractServer:
        if self.kind == "tcp":
            return await loop.create_server(factory, "127.0.0.1", 0, **kw)
        return await loop.create_unix_server(factory, self.path, **kw)

    def address(self, server: asyncio.AbstractServer) -> Any:
        sock = server.sockets[0]  # type: ignore[attr-defined]
        return sock.getsockname() if self.kind == "tcp" else self.path

    async def connect(
        self, loop: asyncio.AbstractEventLoop, server: asyncio.AbstractServer,
        factory: Callable[[], asyncio.BaseProtocol],
    ) -> tuple[asyncio.Transport, Any]:
        if self.kind == "tcp":
            host, port = self.address(server)
            return await loop.create_connection(factory, host, port)  # type: ignore[return-value]
        return await loop.create_unix_connection(factory, self.path)  # type: ignore[return-value]

    async def open(
        self, server: asyncio.AbstractServer
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.kind == "tcp":
            host, port = self.address(server)
            return await asyncio.open_connection(host, port)
        return await asyncio.open_unix_connection(self.path)

    def client_socket(
        self, server: asyncio.AbstractServer, rcvbuf: int | None = None
    ) -> socket.socket:
        """A blocking client socket connected to the server (for raw-socket
        peers), with a receive buffer of `rcvbuf` bytes if given (set before
        connecting: loopback TCP may otherwise take many megabytes at once)."""
        address = self.address(server)
        if self.kind == "tcp":
            sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
        else:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(DEADLINE)
        sock.connect(address)
        return sock


@pytest.fixture
def endpoint(kind: str) -> Any:
    ep = Endpoint(kind)
    yield ep
    ep.cleanup()


class Recorder(asyncio.Protocol):
    """Records every callback in order; futures resolve on milestones."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.events: list[str] = []
        self.data = bytearray()
        self.transport: asyncio.Transport | None = None
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self.eof = loop.create_future()
        self.keep_open_on_eof = False
        self.expect = 0
        self.got_all = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append("made")
        self.transport = transport  # type: ignore[assignment]
        self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data
        if self.expect and len(self.data) >= self.expect and not self.got_all.done():
            self.got_all.set_result(None)

    def eof_received(self) -> bool:
        self.events.append("eof")
        self.eof.set_result(None)
        return self.keep_open_on_eof

    def pause_writing(self) -> None:
        self.events.append("pause_writing")

    def resume_writing(self) -> None:
        self.events.append("resume_writing")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        if not self.lost.done():
            self.lost.set_result(exc)


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        self.transport.close()
        return False


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) TLS contexts from a throwaway CA (trustme), for
    "localhost" and 127.0.0.1; skips the test without trustme."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def wait_made(protos: list[Recorder], i: int = 0) -> None:
    """Until the i-th protocol made is connected."""
    while len(protos) <= i:
        await asyncio.sleep(0.001)
    await protos[i].made


async def wait_lost(protos: list[Recorder], i: int) -> BaseException | None:
    """Until the i-th protocol made has lost its connection; what it lost it with."""
    while len(protos) <= i:
        await asyncio.sleep(0.001)
    return await protos[i].lost
