"""HTTPS on rloop, as an app would run it: an aiohttp server and client over
TLS, and uvicorn started from its command line with ``--ssl-keyfile``,
``--ssl-certfile`` and ``--loop rloop:new_event_loop`` (or the TokioLoop
factory). Certificates come from a throwaway CA (trustme).

    pip install rloop aiohttp uvicorn trustme pytest
    pytest examples/https_test.py

Each test runs on RLoop and on TokioLoop.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import rloop

trustme = pytest.importorskip("trustme")
aiohttp = pytest.importorskip("aiohttp")
web = pytest.importorskip("aiohttp.web")

EXAMPLES = Path(__file__).parent
LOOPS = {"rloop": "rloop:new_event_loop", "tokio": "rloop:new_tokio_event_loop"}
SIZES = (0, 10, 100_000, 4 << 20)


def body(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The server's key and chain as files (what uvicorn reads) and both
    sides' contexts (what aiohttp takes)."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    folder = tmp_path_factory.mktemp("certs")
    key, chain = folder / "key.pem", folder / "chain.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(chain, key)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return {"key": key, "chain": chain, "server": server, "client": client}


async def post_every_size(url: str, context: ssl.SSLContext) -> list[str]:
    """POSTs a body of each of SIZES to `url` with aiohttp's client; the
    answers' texts."""
    answers = []
    async with aiohttp.ClientSession() as session:
        for size in SIZES:
            async with session.post(url, data=body(size), ssl=context) as resp:
                assert resp.status == 200
                answers.append(await resp.text())
    return answers


async def digest(request: Any) -> Any:
    data = await request.read()
    loop = type(asyncio.get_running_loop()).__name__
    return web.Response(text=f"{hashlib.sha256(data).hexdigest()} {loop}")


@pytest.mark.parametrize("loop", list(LOOPS))
def test_aiohttp_server_and_client_over_https(loop: str, certs: dict[str, Any]) -> None:
    async def main() -> list[str]:
        app = web.Application(client_max_size=8 << 20)
        app.add_routes([web.post("/digest", digest)])
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certs["server"])
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            return await post_every_size(f"https://127.0.0.1:{port}/digest", certs["client"])
        finally:
            await runner.cleanup()

    answers = rloop.run(asyncio.wait_for(main(), 60), loop=loop)
    expected_loop = {"rloop": "RLoop", "tokio": "TokioLoop"}[loop]
    for size, answer in zip(SIZES, answers, strict=True):
        assert answer == f"{hashlib.sha256(body(size)).hexdigest()} {expected_loop}"


@pytest.mark.parametrize("loop", list(LOOPS))
def test_uvicorn_command_line_with_tls(loop: str, certs: dict[str, Any]) -> None:
    pytest.importorskip("uvicorn")
    # uvicorn serves a socket this test has bound (--fd), so no port is
    # guessed; connections wait in its backlog until uvicorn accepts them.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    command = [
        sys.executable, "-m", "uvicorn", "asgi_app:app", "--app-dir", str(EXAMPLES),
        "--fd", str(listener.fileno()), "--loop", LOOPS[loop],
        "--ssl-keyfile", str(certs["key"]), "--ssl-certfile", str(certs["chain"]),
    ]  # fmt: skip
    server = subprocess.Popen(
        command, pass_fds=[listener.fileno()], stderr=subprocess.PIPE, text=True
    )
    listener.close()

    client = post_every_size(f"https://localhost:{port}/upload", certs["client"])
    try:
        answers = rloop.run(asyncio.wait_for(client, 60), loop=loop)
    finally:
        server.terminate()
        _, log = server.communicate(timeout=30)
    expected_loop = {"rloop": "RLoop", "tokio": "TokioLoop"}[loop]
    for size, answer in zip(SIZES, answers, strict=True):
        assert answer == f"hello from {expected_loop}: POST /upload ({size} bytes)\n"
    assert "Uvicorn running on" in log
