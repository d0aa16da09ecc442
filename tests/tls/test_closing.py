"""TLS connections that end early, over TCP on every loop, held to what stock
asyncio of the running Python does: a peer that closes without
close_notify (a FIN or an RST), and a client that aborts or cancels during
the handshake.

The peer that closes without close_notify is a blocking socket in a thread
driving ``ssl.SSLObject`` by hand (tls_helpers.BlockingTLS), so what it
does doesn't depend on the loop under test."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from conftest import run, xfail_for
from tls_helpers import (
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
    reset_on_close,
)

# -- peer closing without close_notify -----------------------------------------


@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("side", ["client", "server"])
def test_peer_closes_without_close_notify(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    request: pytest.FixtureRequest,
    tls: Contexts,
    listener: socket.socket,
    side: str,
    how: str,
) -> None:
    """After the handshake and one exchange ("hello" to us, "ack" back), the
    peer closes the TCP connection with no close_notify: a plain close (FIN)
    or a reset (RST). ``side`` is the role the loop under test plays. Stock
    asyncio: a FIN is an EOF (eof_received, then connection_lost(None)); an
    RST is connection_lost(ConnectionResetError); the exception handler is
    not called."""
    if how == "fin":
        xfail_for(
            request,
            ["uvloop"],
            "uvloop's TLS transport calls no eof_received() when the peer closes"
            " without close_notify (asyncio: eof_received, then connection_lost(None))",
            loop_name,
        )

    class AckHello(Recorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.data == b"hello":
                assert self.transport is not None
                self.transport.write(b"ack")

    def peer_body(tls_peer: BlockingTLS) -> bytes:
        tls_peer.handshake()
        tls_peer.send(b"hello")
        ack = tls_peer.recv_exactly(3)  # all we were sent is read: a close is a FIN
        if how == "rst":
            reset_on_close(tls_peer.sock)
        tls_peer.sock.close()
        return ack

    def raw_server() -> bytes:
        return peer_body(BlockingTLS(accept(listener), tls.server, server_side=True))

    async def main() -> tuple[list[str], BaseException | None, bytes, list[dict[str, Any]]]:
        errors = record_loop_errors(loop)
        protos: list[AckHello] = []

        def factory() -> AckHello:
            protos.append(AckHello(loop))
            return protos[-1]

        if side == "client":
            peer = Peer(loop, raw_server)
            await loop.create_connection(
                factory,
                *listener.getsockname(),
                ssl=tls.client,
                server_hostname="localhost",
            )
            server = None
        else:
            server = await loop.create_server(factory, "127.0.0.1", 0, ssl=tls.server)
            port = port_of(server)

            def raw_client() -> bytes:
                sock = connect(port)
                return peer_body(
                    BlockingTLS(sock, tls.client, server_side=False, server_hostname="localhost")
                )

            peer = Peer(loop, raw_client)
        ack = await peer.done
        exc = await protos[0].lost
        if server is not None:
            server.close()
            await server.wait_closed()
        return protos[0].events, exc, ack, errors

    events, exc, ack, errors = run(loop, main())
    assert ack == b"ack"
    if how == "fin":
        assert (events, exc) == (["made", "data", "eof", "lost"], None)
    else:
        assert events == ["made", "data", "lost"]
        assert isinstance(exc, ConnectionResetError)
    assert errors == []


# -- abort during the handshake ------------------------------------------------


@pytest.mark.parametrize("how", ["start_tls_abort", "create_connection_cancel"])
def test_abort_during_handshake(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    request: pytest.FixtureRequest,
    tls: Contexts,
    how: str,
) -> None:
    """The server has the ClientHello and never answers; the client gives up:
    "start_tls_abort" aborts the plain transport under a pending start_tls,
    "create_connection_cancel" cancels a pending create_connection(ssl=...).
    Stock asyncio: start_tls then returns None (its waiter is woken with no
    error) and the plain protocol, whose transport start_tls took over, gets
    no connection_lost; the cancelled create_connection raises CancelledError
    and the app protocol is never made. Either way the server reads the
    ClientHello then EOF, nothing hangs, the exception handler is quiet."""
    if how == "start_tls_abort":
        xfail_for(
            request,
            ["uvloop"],
            "uvloop's start_tls returns its (closed) TLS transport when the transport"
            " under it is aborted mid-handshake (asyncio returns None)",
            loop_name,
        )

    async def main() -> tuple[Any, list[str], bytes, list[dict[str, Any]]]:
        errors = record_loop_errors(loop)
        got_hello: asyncio.Future[None] = loop.create_future()
        server_read: asyncio.Future[bytes] = loop.create_future()

        class Silent(asyncio.Protocol):
            def __init__(self) -> None:
                self.data = b""

            def data_received(self, data: bytes) -> None:
                self.data += data
                if not got_hello.done():
                    got_hello.set_result(None)

            def eof_received(self) -> bool | None:
                server_read.set_result(self.data)
                return None

        server = await loop.create_server(Silent, "127.0.0.1", 0)
        port = port_of(server)
        rec = Recorder(loop)
        pending: asyncio.Future[Any]
        if how == "start_tls_abort":
            transport, _ = await loop.create_connection(lambda: rec, "127.0.0.1", port)
            pending = asyncio.ensure_future(
                loop.start_tls(transport, rec, tls.client, server_hostname="localhost")
            )
            await got_hello
            transport.abort()
        else:
            pending = asyncio.ensure_future(
                loop.create_connection(
                    lambda: rec, "127.0.0.1", port, ssl=tls.client, server_hostname="localhost"
                )
            )
            await got_hello
            pending.cancel()
        outcome: Any
        try:
            outcome = await pending
        except BaseException as exc:  # noqa: BLE001 - CancelledError is the outcome
            outcome = exc
        read = await server_read
        server.close()
        await server.wait_closed()
        return outcome, rec.events, read, errors

    outcome, events, read, errors = run(loop, main())
    if how == "start_tls_abort":
        assert outcome is None
        assert events == ["made"]  # the plain connection_made only
    else:
        assert isinstance(outcome, asyncio.CancelledError)
        assert events == []
    assert read[:1] == b"\x16"
    assert errors == []
