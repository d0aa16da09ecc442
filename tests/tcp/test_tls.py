"""TLS (ssl=, start_tls) on TCP and Unix sockets: bytes both ways, the peer's
certificate, verification failures and bad arguments, as asyncio's own loop
gives them. Certificates come from a throwaway CA (trustme)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import tempfile
from collections.abc import Iterator
from typing import Any, cast

import pytest
from conftest import run

trustme = pytest.importorskip("trustme")


class Contexts:
    def __init__(self) -> None:
        ca = trustme.CA()
        self.server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(self.server)
        self.client = ssl.create_default_context()
        ca.configure_trust(self.client)


@pytest.fixture(scope="module")
def tls() -> Contexts:
    return Contexts()


async def _upper_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def test_streams_echo_and_peer_certificate(loop: asyncio.AbstractEventLoop, tls: Contexts) -> None:
    async def main() -> tuple[bytes, Any, bool]:
        server = await asyncio.start_server(_upper_echo, "127.0.0.1", 0, ssl=tls.server)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls.client, server_hostname="localhost"
        )
        writer.write(b"secret")
        await writer.drain()
        got = await reader.readexactly(6)
        peercert = writer.get_extra_info("peercert")
        in_tls = writer.get_extra_info("ssl_object") is not None
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got, peercert["subjectAltName"], in_tls

    got, names, in_tls = run(loop, main())
    assert got == b"SECRET"
    assert ("DNS", "localhost") in names
    assert in_tls


def test_megabyte_both_ways(loop: asyncio.AbstractEventLoop, tls: Contexts) -> None:
    data = bytes(range(256)) * 4096

    async def main() -> bytes:
        server = await asyncio.start_server(_upper_echo, "127.0.0.1", 0, ssl=tls.server)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls.client, server_hostname="localhost"
        )
        writer.write(data)
        writer.write_eof() if writer.can_write_eof() else None
        got = await reader.readexactly(len(data))
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == data.upper()


def test_protocols_see_data_then_connection_lost(
    loop: asyncio.AbstractEventLoop, tls: Contexts
) -> None:
    class Collect(asyncio.Protocol):
        def __init__(self) -> None:
            self.data = b""
            self.lost: asyncio.Future[Exception | None] = loop.create_future()

        def data_received(self, data: bytes) -> None:
            self.data += data

        def connection_lost(self, exc: Exception | None) -> None:
            self.lost.set_result(exc)

    class SayHelloAndClose(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # (uvloop's transports are not asyncio.Transport instances.)
            tr = cast(asyncio.Transport, transport)
            tr.write(b"hello")
            tr.close()

    async def main() -> tuple[bytes, Exception | None]:
        server = await loop.create_server(SayHelloAndClose, "127.0.0.1", 0, ssl=tls.server)
        port = server.sockets[0].getsockname()[1]
        _, proto = await loop.create_connection(
            Collect, "127.0.0.1", port, ssl=tls.client, server_hostname="localhost"
        )
        exc = await proto.lost
        server.close()
        await server.wait_closed()
        return proto.data, exc

    assert run(loop, main()) == (b"hello", None)


@pytest.mark.parametrize("case", ["untrusted", "wrong_name"])
def test_verification_failure(loop: asyncio.AbstractEventLoop, tls: Contexts, case: str) -> None:
    client = ssl.create_default_context() if case == "untrusted" else tls.client
    name = "localhost" if case == "untrusted" else "wrong.example"

    async def main() -> None:
        server = await asyncio.start_server(_upper_echo, "127.0.0.1", 0, ssl=tls.server)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname=name)
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main())


def test_start_tls_upgrades_a_plain_connection(
    loop: asyncio.AbstractEventLoop, tls: Contexts
) -> None:
    async def plain_then_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"GO\n")
        await writer.drain()
        await writer.start_tls(tls.server)
        data = await reader.read(100)
        writer.write(b"tls:" + data)
        await writer.drain()
        writer.close()

    async def main() -> tuple[bytes, bool]:
        server = await asyncio.start_server(plain_then_tls, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"STARTTLS\n")
        await writer.drain()
        assert await reader.readline() == b"GO\n"
        await writer.start_tls(tls.client, server_hostname="localhost")
        writer.write(b"hi")
        await writer.drain()
        got = await reader.read(100)
        in_tls = writer.get_extra_info("ssl_object") is not None
        writer.close()
        server.close()
        await server.wait_closed()
        return got, in_tls

    assert run(loop, main()) == (b"tls:hi", True)


@pytest.fixture
def unix_path() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as d:
        yield os.path.join(d, "tls.sock")


def test_unix_socket(loop: asyncio.AbstractEventLoop, tls: Contexts, unix_path: str) -> None:
    async def main() -> bytes:
        server = await asyncio.start_unix_server(_upper_echo, unix_path, ssl=tls.server)
        reader, writer = await asyncio.open_unix_connection(
            unix_path, ssl=tls.client, server_hostname="localhost"
        )
        writer.write(b"over unix")
        await writer.drain()
        got = await reader.readexactly(9)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == b"OVER UNIX"


def test_ssl_with_sock_and_no_host_needs_server_hostname(
    loop: asyncio.AbstractEventLoop, tls: Contexts
) -> None:
    with socket.socket() as sock, pytest.raises(ValueError, match="server_hostname"):
        run(loop, loop.create_connection(asyncio.Protocol, sock=sock, ssl=tls.client))


def test_server_hostname_without_ssl_is_refused(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(ValueError, match="server_hostname is only meaningful with ssl"):
        run(
            loop,
            loop.create_connection(asyncio.Protocol, "127.0.0.1", 1, server_hostname="x"),
        )
