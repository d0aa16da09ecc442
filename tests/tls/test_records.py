"""The steady state of a TLS connection over TCP on every loop, held to what
stock asyncio of the running Python does: what write() takes, writes that
outrun the peer (write flow control), a BufferedProtocol application, and
records that arrive together (data, then close_notify, in one segment).

rloop runs these paths in Rust (src/tls), handing anything unusual to
asyncio's own code: these tests walk both sides of each of those turns."""

from __future__ import annotations

import asyncio
import os
import random
import socket
from typing import cast

import pytest
from conftest import run
from tls_helpers import (
    BlockingTLS,
    Contexts,
    Peer,
    Recorder,
    accept,
    fixture_listener,  # noqa: F401 - the listener fixture
    fixture_tls,  # noqa: F401 - the tls fixture
    port_of,
    sha256,
    stream_echo,
)


def test_write_takes_bytes_like_objects_only(
    loop: asyncio.AbstractEventLoop, tls: Contexts
) -> None:
    """bytes, bytearray and memoryview (empty ones too) reach the peer in
    order; a str or an int is a TypeError and sends nothing."""

    async def main() -> tuple[bytes, list[str]]:
        server = await asyncio.start_server(stream_echo, "127.0.0.1", 0, ssl=tls.server)
        transport, proto = await loop.create_connection(
            lambda: Recorder(loop),
            "127.0.0.1",
            port_of(server),
            ssl=tls.client,
            server_hostname="localhost",
        )
        refused = []
        for bad in ("text", 42):
            try:
                transport.write(bad)  # type: ignore[arg-type]
            except TypeError:
                refused.append(type(bad).__name__)
        transport.write(b"")
        transport.write(b"one,")
        transport.write(bytearray(b"two,"))
        transport.write(memoryview(b"xthree,")[1:])
        transport.write(bytearray())
        transport.write(memoryview(b""))
        got = await proto.received(14)
        transport.close()
        await proto.lost
        server.close()
        await server.wait_closed()
        return got, refused

    got, refused = run(loop, main())
    assert got == b"one,two,three,"
    assert refused == ["str", "int"]


def test_many_small_writes_in_one_step(loop: asyncio.AbstractEventLoop, tls: Contexts) -> None:
    """Two thousand writes of 1 to 600 bytes in one step, echoed back: every
    byte in order (sha256)."""
    rng = random.Random(11)
    pieces = [os.urandom(rng.randint(1, 600)) for _ in range(2000)]
    payload = b"".join(pieces)

    async def main() -> bytes:
        server = await asyncio.start_server(stream_echo, "127.0.0.1", 0, ssl=tls.server)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port_of(server), ssl=tls.client, server_hostname="localhost"
        )
        for piece in pieces:
            writer.write(piece)
        got = await reader.readexactly(len(payload))
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got

    assert sha256(run(loop, main(), timeout=30)) == sha256(payload)


def test_write_flow_control(loop: asyncio.AbstractEventLoop, tls: Contexts) -> None:
    """A server writes 64 KiB at a time to a client that does not read:
    pause_writing() comes with the write buffer at or above its high-water
    mark. Once the client reads, resume_writing() comes, and the client gets
    every byte written, in order."""
    chunk = os.urandom(64 * 1024)

    class Writer(asyncio.Protocol):
        def __init__(self) -> None:
            self.calls: list[str] = []
            self.sizes: list[int] = []
            self.written = 0
            self.paused: asyncio.Future[None] = loop.create_future()
            self.resumed: asyncio.Future[None] = loop.create_future()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # (uvloop's transports are not asyncio.Transport instances.)
            transport = cast(asyncio.WriteTransport, transport)
            self.transport = transport
            high = transport.get_write_buffer_limits()[1]
            self.high = high
            # Up to 64 MiB, a safety bound: pause_writing stops it well before.
            while not self.paused.done() and self.written < 64 * 1024 * 1024:
                transport.write(chunk)
                self.written += len(chunk)

        def pause_writing(self) -> None:
            self.calls.append("pause")
            self.sizes.append(self.transport.get_write_buffer_size())
            if not self.paused.done():
                self.paused.set_result(None)

        def resume_writing(self) -> None:
            self.calls.append("resume")
            if not self.resumed.done():
                self.resumed.set_result(None)

    writers: list[Writer] = []

    def factory() -> Writer:
        writers.append(Writer())
        return writers[-1]

    async def main() -> tuple[list[str], bool, str, str]:
        server = await loop.create_server(factory, "127.0.0.1", 0, ssl=tls.server)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port_of(server), ssl=tls.client, server_hostname="localhost"
        )
        while not writers:
            await asyncio.sleep(0)
        proto = writers[0]
        await proto.paused
        at_pause = proto.sizes[0] >= proto.high
        got = await reader.readexactly(proto.written)
        await proto.resumed
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        sent = sha256(chunk * (proto.written // len(chunk)))
        return proto.calls[:2], at_pause, sha256(got), sent

    calls, at_pause, got, sent = run(loop, main(), timeout=30)
    assert calls == ["pause", "resume"]
    assert at_pause
    assert got == sent


def test_buffered_protocol_application(loop: asyncio.AbstractEventLoop, tls: Contexts) -> None:
    """A BufferedProtocol behind TLS with a 100-byte buffer gets 256 KiB in
    order (sha256), then eof_received and connection_lost(None)."""
    payload = os.urandom(256 * 1024)

    class Small(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buffer = bytearray(100)
            # A memoryview, as asyncio's TLS layer slices what it is given
            # (a bytearray's slice would be a copy).
            self.view = memoryview(self.buffer)
            self.data = bytearray()
            self.events: list[str] = []
            self.lost: asyncio.Future[BaseException | None] = loop.create_future()

        def get_buffer(self, sizehint: int) -> memoryview:
            return self.view

        def buffer_updated(self, nbytes: int) -> None:
            self.data += self.buffer[:nbytes]

        def eof_received(self) -> None:
            self.events.append("eof")

        def connection_lost(self, exc: BaseException | None) -> None:
            self.events.append("lost")
            self.lost.set_result(exc)

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> tuple[str, list[str], BaseException | None]:
        server = await asyncio.start_server(send, "127.0.0.1", 0, ssl=tls.server)
        _, proto = await loop.create_connection(
            Small, "127.0.0.1", port_of(server), ssl=tls.client, server_hostname="localhost"
        )
        exc = await proto.lost
        server.close()
        await server.wait_closed()
        return sha256(proto.data), proto.events, exc

    got, events, exc = run(loop, main(), timeout=30)
    assert got == sha256(payload)
    assert events == ["eof", "lost"]
    assert exc is None


def send_then_close_notify(listener: socket.socket, tls: Contexts, parts: list[bytes]) -> bytes:
    """The peer: accepts, shakes hands, then sends ``parts`` as one record
    each and its close_notify, all in one send; returns what it then gets
    up to our close_notify."""
    with accept(listener) as sock:
        peer = BlockingTLS(sock, tls.server, server_side=True)
        peer.handshake()
        for part in parts:
            peer.write(part)
        try:
            peer.obj.unwrap()
        except OSError:  # SSLWantReadError: our close_notify is queued
            pass
        peer.flush()
        return peer.recv_until_close_notify()


@pytest.mark.parametrize("records", [1, 3])
def test_data_and_close_notify_in_one_segment(
    loop: asyncio.AbstractEventLoop,
    tls: Contexts,
    listener: socket.socket,
    records: int,
) -> None:
    """The peer sends one or three data records and its close_notify in one
    segment: the protocol gets all the data, then eof_received, then
    connection_lost(None), and the peer gets our close_notify."""
    parts = [b"part-%d;" % i for i in range(records)]

    async def main() -> tuple[list[str], bytes, BaseException | None, bytes]:
        peer = Peer(loop, lambda: send_then_close_notify(listener, tls, parts))
        _, proto = await loop.create_connection(
            lambda: Recorder(loop),
            *listener.getsockname(),
            ssl=tls.client,
            server_hostname="localhost",
        )
        exc = await proto.lost
        return proto.events, bytes(proto.data), exc, await peer.done

    events, data, exc, peer_got = run(loop, main())
    assert events == ["made", "data", "eof", "lost"]
    assert data == b"".join(parts)
    assert exc is None
    assert peer_got == b""


@pytest.mark.parametrize("app", ["protocol", "streams"])
def test_records_of_every_size_in_one_burst(
    loop: asyncio.AbstractEventLoop,
    tls: Contexts,
    listener: socket.socket,
    app: str,
) -> None:
    """The peer sends 300 records of 1 byte to 16 KiB (some 1.3 MB) and its
    close_notify in one send, so that each read from the socket holds many
    records, and records cross reads: the application (a Protocol, or a
    StreamReader) gets every byte in order, then the end of the stream."""
    rng = random.Random(5)
    parts = [os.urandom(rng.choice([1, 100, 1024, 5000, 16384])) for _ in range(300)]
    payload = b"".join(parts)

    async def main() -> tuple[bytes, list[str]]:
        peer = Peer(loop, lambda: send_then_close_notify(listener, tls, parts))
        host, port = listener.getsockname()[:2]
        if app == "streams":
            reader, writer = await asyncio.open_connection(
                host, port, ssl=tls.client, server_hostname="localhost"
            )
            got = await reader.read()
            writer.close()
            await writer.wait_closed()
            events = ["eof"] if reader.at_eof() else []
        else:
            _, proto = await loop.create_connection(
                lambda: Recorder(loop), host, port, ssl=tls.client, server_hostname="localhost"
            )
            await proto.lost
            got = bytes(proto.data)
            events = [e for e in proto.events if e != "data"]
        await peer.done
        return got, events

    got, events = run(loop, main(), timeout=30)
    assert sha256(got) == sha256(payload)
    assert events == (["eof"] if app == "streams" else ["made", "eof", "lost"])
