"""start_tls mid-stream and pause_reading around the handshake, over TCP on
every loop, held to what stock asyncio of the running Python does: a server
that upgrades after reading a greeting whose segment also holds the peer's
ClientHello, a server that upgrades right after writing its greeting, and a
protocol that pauses reading in connection_made (called when the handshake
completes).

Where a peer must put exact bytes on the wire (a TLS record in the same
segment as plain bytes), it is a blocking socket in a thread driving
``ssl.SSLObject`` by hand (tls_helpers.BlockingTLS), so what it does
doesn't depend on the loop under test."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import cast

from conftest import run
from tls_helpers import (
    MIB,
    BlockingTLS,
    Contexts,
    Peer,
    Recorder,
    accept,
    connect,
    fixture_listener,  # noqa: F401 - the listener fixture
    fixture_tls,  # noqa: F401 - the tls fixture
    port_of,
    record_loop_errors,
    sha256,
)

# -- start_tls mid-stream ------------------------------------------------------

GREETING = b"220 ready for TLS\r\n"


class GreetingReader(asyncio.BufferedProtocol):
    """Reads exactly len(GREETING) plain bytes (its buffer never offers room
    for more), then pauses reading. Bytes offered after that are kept in
    ``extra`` (there should be none)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.buf = bytearray(len(GREETING))
        self.got = 0
        self.extra = bytearray()
        self._spill = bytearray(1 << 16)
        self.done: asyncio.Future[bytes] = loop.create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview | bytearray:
        if self.got < len(self.buf):
            return memoryview(self.buf)[self.got :]
        return self._spill

    def buffer_updated(self, nbytes: int) -> None:
        if self.got == len(self.buf):
            self.extra += self._spill[:nbytes]
            return
        self.got += nbytes
        if self.got == len(self.buf):
            assert self.transport is not None
            self.transport.pause_reading()
            self.done.set_result(bytes(self.buf))


def test_start_tls_after_greeting_with_client_hello_in_the_same_segment(
    loop: asyncio.AbstractEventLoop, tls: Contexts, listener: socket.socket
) -> None:
    """A plain connection whose peer sends a greeting and its TLS ClientHello
    in one send (one TCP segment). Our side reads exactly the greeting (a
    BufferedProtocol whose buffer holds no more), pauses reading, and calls
    loop.start_tls(server_side=True): the ClientHello already waiting behind
    the greeting must reach TLS, not be lost, so the handshake completes and
    data flows both ways; our close sends close_notify."""

    def raw_peer() -> tuple[bytes, bytes]:
        conn = accept(listener)
        peer = BlockingTLS(conn, tls.client, server_side=False, server_hostname="localhost")
        peer.handshake(prefix=GREETING)  # greeting + ClientHello in one sendall
        peer.send(b"ping")
        pong = peer.recv_exactly(4)
        rest = peer.recv_until_close_notify()
        peer.close_notify()
        conn.close()
        return pong, rest

    async def main() -> tuple[bytes, bytes, list[str], BaseException | None, tuple[bytes, bytes]]:
        errors = record_loop_errors(loop)
        peer = Peer(loop, raw_peer)
        reader = GreetingReader(loop)
        transport, _ = await loop.create_connection(lambda: reader, *listener.getsockname())
        greeting = await reader.done
        rec = Recorder(loop)
        tls_transport = await loop.start_tls(transport, rec, tls.server, server_side=True)
        assert tls_transport is not None
        ping = await rec.received(4)
        tls_transport.write(b"pong")
        tls_transport.close()
        exc = await rec.lost
        peer_saw = await peer.done
        assert errors == []
        return greeting, ping, rec.events, exc, peer_saw

    greeting, ping, events, exc, peer_saw = run(loop, main())
    assert greeting == GREETING
    assert ping == b"ping"
    assert peer_saw == (b"pong", b"")
    # start_tls does not call connection_made on the protocol it is given;
    # the peer's answering close_notify is an EOF.
    assert (events, exc) == (["data", "eof", "lost"], None)


def test_start_tls_server_speaks_right_after_greeting(
    loop: asyncio.AbstractEventLoop, tls: Contexts
) -> None:
    """The server writes a plain greeting and at once (no drain) calls
    loop.start_tls(server_side=True), then writes a welcome over TLS as
    soon as the handshake is done. The client reads the greeting with a
    Protocol, then calls loop.start_tls: it gets the greeting alone and
    intact (nothing of TLS mixed in), then the welcome over TLS."""

    async def main() -> tuple[bytes, bytes, bytes, list[str]]:
        errors = record_loop_errors(loop)
        server_rec = Recorder(loop)
        upgraded: asyncio.Future[asyncio.Transport] = loop.create_future()

        class GreetThenTLS(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                tr = cast(asyncio.Transport, transport)
                tr.write(GREETING)
                task = loop.create_task(
                    loop.start_tls(tr, server_rec, tls.server, server_side=True)
                )
                task.add_done_callback(self.upgraded)

            def upgraded(self, task: asyncio.Task[asyncio.Transport | None]) -> None:
                tls_tr = task.result()
                assert tls_tr is not None
                tls_tr.write(b"welcome")
                upgraded.set_result(tls_tr)

        server = await loop.create_server(GreetThenTLS, "127.0.0.1", 0)
        plain = Recorder(loop)
        transport, _ = await loop.create_connection(lambda: plain, "127.0.0.1", port_of(server))
        await plain.received(len(GREETING))
        rec = Recorder(loop)
        tls_transport = await loop.start_tls(
            transport, rec, tls.client, server_hostname="localhost"
        )
        assert tls_transport is not None
        welcome = await rec.received(7)
        tls_transport.write(b"bye")
        bye = await server_rec.received(3)
        tls_transport.close()
        assert await server_rec.lost is None
        await rec.lost
        (await upgraded).close()
        server.close()
        await server.wait_closed()
        assert errors == []
        return bytes(plain.data), welcome, bye, plain.events

    plain_data, welcome, bye, plain_events = run(loop, main())
    assert plain_data == GREETING
    assert plain_events == ["made", "data"]  # the plain protocol got nothing more
    assert (welcome, bye) == (b"welcome", b"bye")


# -- pause_reading during the handshake ----------------------------------------


def test_pause_reading_in_connection_made(loop: asyncio.AbstractEventLoop, tls: Contexts) -> None:
    """The server's app protocol pauses reading in connection_made (called
    when the handshake completes). The client's 1 MiB of data follows its
    last handshake flight in the same send, so it is there as soon as the
    handshake is: none of it is delivered while reading is paused; after
    resume_reading() all of it arrives (sha256), then the client's
    close_notify gives eof_received and connection_lost(None)."""
    payload = os.urandom(MIB)

    class PausedAtStart(Recorder):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            cast(asyncio.Transport, transport).pause_reading()

    async def main() -> tuple[list[str], str, BaseException | None, bytes]:
        errors = record_loop_errors(loop)
        rec = PausedAtStart(loop)
        server = await loop.create_server(lambda: rec, "127.0.0.1", 0, ssl=tls.server)
        port = port_of(server)

        def raw_client() -> bytes:
            sock = connect(port)
            peer = BlockingTLS(sock, tls.client, server_side=False, server_hostname="localhost")
            peer.handshake(flush=False)
            peer.write(payload)
            peer.flush()  # Finished + the payload's first records in one send
            done = peer.recv_exactly(4)
            peer.close_notify()
            sock.close()
            return done

        peer = Peer(loop, raw_client)
        await rec.made
        # Nothing marks "data not delivered": give a wrong delivery time to show.
        await asyncio.sleep(0.3)
        rec.events.append("resume")
        assert rec.transport is not None
        rec.transport.resume_reading()
        await rec.received(len(payload))
        rec.transport.write(b"done")
        done = await peer.done
        exc = await rec.lost
        server.close()
        await server.wait_closed()
        assert errors == []
        return rec.events, sha256(rec.data), exc, done

    events, digest, exc, done = run(loop, main(), timeout=10)
    assert events == ["made", "resume", "data", "eof", "lost"]
    assert digest == sha256(payload)
    assert exc is None
    assert done == b"done"
