"""The TLS handshake over TCP on every loop, held to what stock asyncio of
the running Python does: handshake timeout and verification failures
(a wrong hostname), client certificates, ALPN."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from conftest import run
from tls_helpers import (
    Contexts,
    fixture_tls,  # noqa: F401 - the tls fixture
    port_of,
    record_loop_errors,
)

# -- handshake timeout ---------------------------------------------------------


async def _handshake_timeout_scenario(
    loop: asyncio.AbstractEventLoop, client: ssl.SSLContext
) -> tuple[BaseException | None, float, bytes, list[dict[str, Any]]]:
    """A TLS client with ssl_handshake_timeout=0.2 against a plain TCP server
    that reads but never answers: what the client gets, how long it took,
    what the server read before the connection ended, the handler's errors."""
    errors = record_loop_errors(loop)
    server_read: asyncio.Future[bytes] = loop.create_future()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_read.set_result(await reader.read())
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    start = loop.time()
    exc: BaseException | None = None
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1",
            port_of(server),
            ssl=client,
            server_hostname="localhost",
            ssl_handshake_timeout=0.2,
        )
        writer.close()
    except Exception as e:  # noqa: BLE001 - the exception is the outcome
        exc = e
    elapsed = loop.time() - start
    read = await server_read
    server.close()
    await server.wait_closed()
    return exc, elapsed, read, errors


@pytest.fixture(scope="module")
def asyncio_handshake_timeout(tls: Contexts) -> BaseException | None:
    """What stock asyncio's client gets from the handshake-timeout scenario."""
    ref = asyncio.new_event_loop()
    try:
        exc, *_ = ref.run_until_complete(
            asyncio.wait_for(_handshake_timeout_scenario(ref, tls.client), 5)
        )
    finally:
        ref.close()
    return exc


def test_handshake_timeout(
    loop: asyncio.AbstractEventLoop,
    tls: Contexts,
    asyncio_handshake_timeout: BaseException | None,
) -> None:
    """ssl_handshake_timeout=0.2 against a server that never answers the
    ClientHello: the client fails after ~0.2 s with the exception type stock
    asyncio raises on this Python (found by running the same scenario on
    asyncio's loop: ConnectionAbortedError on 3.11-3.13), and the connection
    is closed (the server reads the ClientHello, then EOF)."""
    assert asyncio_handshake_timeout is not None  # asyncio's client did fail
    exc, elapsed, read, errors = run(loop, _handshake_timeout_scenario(loop, tls.client))
    assert isinstance(exc, type(asyncio_handshake_timeout)), repr(exc)
    assert 0.18 <= elapsed < 2.0  # ~0.2 s (timers may round to the ms)
    assert read[:1] == b"\x16"  # a TLS handshake record, then EOF
    assert errors == []


# -- wrong hostname ------------------------------------------------------------


def test_wrong_hostname(loop: asyncio.AbstractEventLoop, tls: Contexts) -> None:
    """server_hostname="wrong.example" against a certificate for localhost:
    ssl.SSLCertVerificationError with OpenSSL's verify_code 62
    (X509_V_ERR_HOSTNAME_MISMATCH) and reason CERTIFICATE_VERIFY_FAILED, as
    on asyncio. The server's handler never runs, the server goes on serving
    (a good client after it is answered), the exception handler is quiet."""

    async def main() -> tuple[BaseException, bytes, list[str], list[dict[str, Any]]]:
        errors = record_loop_errors(loop)
        handled: list[str] = []

        async def echo_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handled.append("handler")
            writer.write(await reader.readexactly(4))
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(echo_once, "127.0.0.1", 0, ssl=tls.server)
        port = port_of(server)
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await asyncio.open_connection(
                "127.0.0.1", port, ssl=tls.client, server_hostname="wrong.example"
            )
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls.client, server_hostname="localhost"
        )
        writer.write(b"good")
        echoed = await reader.readexactly(4)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return info.value, echoed, handled, errors

    exc, echoed, handled, errors = run(loop, main())
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert exc.verify_code == 62
    assert exc.reason == "CERTIFICATE_VERIFY_FAILED"
    assert exc.verify_message.startswith("Hostname mismatch")
    assert echoed == b"good"
    assert handled == ["handler"]  # the good client's only
    assert errors == []


# -- client certificates -------------------------------------------------------


@pytest.mark.parametrize("case", ["present", "missing-TLSv1.2", "missing-TLSv1.3"])
def test_client_certificate_required(
    loop: asyncio.AbstractEventLoop, tls: Contexts, case: str
) -> None:
    """A server with verify_mode=CERT_REQUIRED. With a client certificate the
    connection works and the server sees it (peercert). Without one, as on
    stock asyncio: over TLS 1.2 the handshake fails and the client gets
    ConnectionResetError (asyncio's server drops the connection without
    flushing its alert); over TLS 1.3 the client's handshake completes
    (its certificate goes in its last flight), then the server drops it and
    the client reads EOF (b""). Either way the server's handler never runs
    and the exception handler is quiet; the server goes on serving."""
    server_ctx = tls.server_context(require_client_cert=True)
    version = {"missing-TLSv1.2": ssl.TLSVersion.TLSv1_2}.get(case, ssl.TLSVersion.TLSv1_3)
    client_ctx = tls.client_context(with_cert=case == "present", maximum_version=version)
    good_ctx = tls.client_context(with_cert=True)

    async def main() -> tuple[str, Any, list[Any], list[dict[str, Any]]]:
        errors = record_loop_errors(loop)
        peers: list[Any] = []

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peers.append(writer.get_extra_info("peercert")["subjectAltName"])
            writer.write(await reader.readexactly(4))
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_ctx)
        port = port_of(server)
        outcome: Any
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
            )
        except Exception as exc:  # noqa: BLE001 - the exception is the outcome
            stage, outcome = "connect", exc
        else:
            if case == "present":
                writer.write(b"mtls")
            try:
                stage, outcome = "read", await reader.read(100)
            except Exception as exc:  # noqa: BLE001 - the exception is the outcome
                stage, outcome = "read", exc
            writer.close()
            await writer.wait_closed()
        if case != "present":
            # The server still serves a client with a certificate.
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=good_ctx, server_hostname="localhost"
            )
            writer.write(b"good")
            assert await reader.readexactly(4) == b"good"
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return stage, outcome, peers, errors

    stage, outcome, peers, errors = run(loop, main())
    assert peers == [(("DNS", "client.example"),)]  # the good client's only
    if case == "present":
        assert (stage, outcome) == ("read", b"mtls")
    elif case == "missing-TLSv1.2":
        assert stage == "connect"
        assert isinstance(outcome, ConnectionResetError), repr(outcome)
    else:
        assert (stage, outcome) == ("read", b"")
    assert errors == []


# -- ALPN ----------------------------------------------------------------------


def test_alpn(loop: asyncio.AbstractEventLoop, tls: Contexts) -> None:
    """Server offers ["h2", "http/1.1"], client ["http/1.1"]: both ends'
    ssl_object report "http/1.1" as the selected protocol."""
    server_ctx = tls.server_context()
    server_ctx.set_alpn_protocols(["h2", "http/1.1"])
    client_ctx = tls.client_context()
    client_ctx.set_alpn_protocols(["http/1.1"])

    async def main() -> tuple[str | None, str | None]:
        server_side: asyncio.Future[str | None] = loop.create_future()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            server_side.set_result(writer.get_extra_info("ssl_object").selected_alpn_protocol())
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_ctx)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port_of(server), ssl=client_ctx, server_hostname="localhost"
        )
        client_side = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        on_server = await server_side
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return client_side, on_server

    assert run(loop, main()) == ("http/1.1", "http/1.1")
