"""Helpers shared by the TLS tests in tests/tls: certificates from a
throwaway CA (trustme) and the ``tls`` fixture, a protocol that records what
happens to it, and peers that put exact bytes on the wire.

Where a peer must put exact bytes on the wire (a TLS record in the same
segment as plain bytes, a close with no close_notify), it is a blocking
socket in a thread driving ``ssl.SSLObject`` over ``ssl.MemoryBIO`` by hand
(:class:`BlockingTLS`), so what it does doesn't depend on the loop under
test.

The fixtures (``tls``, ``listener``) are defined as ``fixture_<name>`` with
``name=<name>``, so a test module imports ``fixture_tls`` and its tests ask
for ``tls`` (no parameter shadows the import)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

trustme = pytest.importorskip("trustme")

#: Seconds a peer thread's blocking socket waits before it gives up.
PEER_TIMEOUT = 10.0
MIB = 1 << 20


# -- certificates --------------------------------------------------------------


class Contexts:
    """Server and client contexts from one throwaway CA; the server's
    certificate names localhost and 127.0.0.1, the client's (for client
    authentication) client.example."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.server_cert = self.ca.issue_cert("localhost", "127.0.0.1")
        self.client_cert = self.ca.issue_cert("client.example")
        self.server = self.server_context()
        self.client = self.client_context()

    def server_context(self, *, require_client_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(ctx)
        if require_client_cert:
            self.ca.configure_trust(ctx)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def client_context(
        self, *, with_cert: bool = False, maximum_version: ssl.TLSVersion | None = None
    ) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        if with_cert:
            self.client_cert.configure_cert(ctx)
        if maximum_version is not None:
            ctx.maximum_version = maximum_version
        return ctx


@pytest.fixture(scope="module", name="tls")
def fixture_tls() -> Contexts:
    """The contexts (one throwaway CA per test module)."""
    return Contexts()


# -- helpers -------------------------------------------------------------------


def record_loop_errors(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    """The contexts the loop's exception handler is called with, from now on."""
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    return errors


def port_of(server: asyncio.AbstractServer) -> int:
    return int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]


async def stream_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A start_server handler that echoes until EOF (with drain), then closes."""
    while data := await reader.read(1 << 16):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def sha256(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


class Recorder(asyncio.Protocol):
    """Records what happens to it: ``events`` is the order of the callbacks
    (consecutive data_received calls are one "data" entry), ``data`` every
    byte received, ``lost`` resolves with connection_lost's argument.
    ``await received(n)`` waits until n bytes have come."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.events: list[str] = []
        self.data = bytearray()
        self.made: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport instances.)
        self.transport = cast(asyncio.Transport, transport)
        self.events.append("made")
        self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data
        self._wake()

    def eof_received(self) -> bool | None:
        self.events.append("eof")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)

    async def received(self, n: int) -> bytes:
        if len(self.data) < n:
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._waiters.append((n, waiter))
            await waiter
        return bytes(self.data[:n])

    def _wake(self) -> None:
        for n, waiter in list(self._waiters):
            if len(self.data) >= n and not waiter.done():
                waiter.set_result(None)
                self._waiters.remove((n, waiter))


class Peer:
    """A blocking-socket peer running ``target`` in a thread; ``done``
    resolves (on the loop) with its return value or its exception."""

    def __init__(self, loop: asyncio.AbstractEventLoop, target: Callable[[], Any]) -> None:
        self.loop = loop
        self.done: asyncio.Future[Any] = loop.create_future()
        self.thread = threading.Thread(target=self._main, args=(target,), daemon=True)
        self.thread.start()

    def _main(self, target: Callable[[], Any]) -> None:
        value: Any = None
        error: BaseException | None = None
        try:
            value = target()
        except BaseException as exc:  # noqa: BLE001 - handed over to the loop
            error = exc
        try:
            self.loop.call_soon_threadsafe(self._settle, value, error)
        except RuntimeError:  # the loop is closed: the test has already failed
            pass

    def _settle(self, value: Any, error: BaseException | None) -> None:
        if self.done.done():
            return
        if error is None:
            self.done.set_result(value)
        else:
            self.done.set_exception(error)


@pytest.fixture(name="listener")
def fixture_listener() -> Iterator[socket.socket]:
    """A blocking listening socket on 127.0.0.1 for a thread peer to accept on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.settimeout(PEER_TIMEOUT)
        yield sock


def accept(listener: socket.socket) -> socket.socket:
    conn, _ = listener.accept()
    conn.settimeout(PEER_TIMEOUT)
    return conn


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT)


def reset_on_close(sock: socket.socket) -> None:
    """Make close() send an RST instead of a FIN (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class BlockingTLS:
    """TLS driven by hand over a blocking socket (ssl.SSLObject on MemoryBIOs):
    nothing reaches the wire but what a method sends, so a test can put plain
    bytes and TLS records in one send, or close without close_notify."""

    def __init__(
        self,
        sock: socket.socket,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
    ) -> None:
        self.sock = sock
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.obj = context.wrap_bio(
            self._in, self._out, server_side=server_side, server_hostname=server_hostname
        )

    def flush(self, prefix: bytes = b"") -> None:
        """Send ``prefix`` and the TLS bytes queued so far, in one send."""
        data = prefix + self._out.read()
        if data:
            self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(1 << 16)
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()

    def handshake(self, *, prefix: bytes = b"", flush: bool = True) -> None:
        """Do the handshake. ``prefix`` goes in the same send as our first TLS
        bytes; with flush=False our last flight stays queued for the next
        flush (to share a send with application data)."""
        while True:
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                self.flush(prefix)
                prefix = b""
                self._fill()
            else:
                if flush:
                    self.flush(prefix)
                return

    def write(self, data: bytes) -> None:
        """Queue ``data`` as TLS records, unsent until the next flush."""
        self.obj.write(data)

    def send(self, data: bytes) -> None:
        self.write(data)
        self.flush()

    def recv_exactly(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self._read(n - len(buf))
            if not chunk:
                raise ConnectionError(f"close_notify after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_until_close_notify(self) -> bytes:
        """Everything up to the peer's close_notify (SSLEOFError if the
        connection ends without one)."""
        buf = bytearray()
        while chunk := self._read(1 << 16):
            buf += chunk
        return bytes(buf)

    def _read(self, n: int) -> bytes:
        """Up to n bytes of application data; b"" once the peer's
        close_notify is read (SSLObject.read returns b"" then)."""
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                self.flush()
                self._fill()
            except ssl.SSLZeroReturnError:
                return b""

    def close_notify(self) -> None:
        """Send our close_notify (not waiting for the peer's)."""
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self.flush()
