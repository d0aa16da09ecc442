"""loop.sendfile() over TCP (shared with tests/unix: see sendfile_scenarios),
and the transports that are not sent to natively: TLS (read and written by
asyncio's fallback) and UDP (not supported)."""

from __future__ import annotations

import asyncio
import os
import tempfile

import pytest
from conftest import run
from net_helpers import tls_contexts
from sendfile_helpers import Sink, digest, no_uvloop
from sendfile_scenarios import *


@pytest.mark.parametrize("fallback", [True, False])
def test_sendfile_over_tls_reads_and_writes(
    loop: asyncio.AbstractEventLoop,
    request: pytest.FixtureRequest,
    loop_name: str,
    fallback: bool,
) -> None:
    """A TLS transport has no native sendfile: asyncio's fallback sends the
    file through it; with fallback=False loop.sendfile() refuses."""
    no_uvloop(request, loop_name)
    server_ctx, client_ctx = tls_contexts()
    data = os.urandom(1 << 20)

    async def main() -> tuple[object, tuple[int, str], int]:
        receiver = Sink(loop)
        server = await loop.create_server(lambda: receiver, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(
            asyncio.Protocol, "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
        )
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.flush()
            f.seek(0)
            try:
                outcome: object = await loop.sendfile(transport, f, 10, fallback=fallback)
            except RuntimeError as e:
                outcome = str(e).split(" for transport")[0]
            position = f.tell()
        transport.close()
        await receiver.lost
        server.close()
        await server.wait_closed()
        return outcome, digest(receiver.data), position

    if fallback:
        expected = (len(data) - 10, digest(data[10:]), len(data))
    else:
        expected = ("fallback is disabled and native sendfile is not supported", digest(b""), 0)
    assert run(loop, main(), timeout=30) == expected


def test_sendfile_udp_not_supported(
    loop: asyncio.AbstractEventLoop, request: pytest.FixtureRequest, loop_name: str
) -> None:
    no_uvloop(request, loop_name)

    async def main() -> tuple[str, int]:
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        try:
            with tempfile.TemporaryFile() as f:
                f.write(b"data")
                f.seek(0)
                with pytest.raises(RuntimeError) as info:
                    await loop.sendfile(transport, f)  # type: ignore[arg-type]
                return str(info.value).split(" for transport")[0], f.tell()
        finally:
            transport.close()

    assert run(loop, main()) == ("sendfile is not supported", 0)

