"""Fault injection in a pytest suite: a real aiohttp server and client under
latency and reset faults, on rloop, with no proxy process in between.

    pip install rloop aiohttp pytest
    pytest examples/faults_aiohttp_test.py

Each test applies a `rloop.faults.Plan` to the aiohttp server (every
connection it accepts) or to the loop (the client's connections too), and
takes it off again with the `with` block.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import rloop
from rloop import faults

web = pytest.importorskip("aiohttp.web")
aiohttp = pytest.importorskip("aiohttp")

BODY = bytes(range(256)) * 1024  # 256 KiB


async def echo(request: Any) -> Any:
    return web.Response(body=await request.read())


async def start_app() -> tuple[Any, Any, str]:
    app = web.Application()
    app.add_routes([web.post("/echo", echo)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server  # the asyncio Server of the site
    port = server.sockets[0].getsockname()[1]
    return runner, server, f"http://127.0.0.1:{port}"


def on_rloop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Runs the coroutine test on a fresh RLoop, at most 30 s."""

    def run() -> None:
        rloop.run(asyncio.wait_for(test(), 30))

    run.__name__ = test.__name__
    return run


@on_rloop
async def test_latency_slows_every_response_and_loses_nothing() -> None:
    loop = asyncio.get_running_loop()
    runner, server, base = await start_app()
    try:
        plan = faults.Plan(seed=1).latency(100, jitter_ms=20, direction="downstream")
        with faults.apply(server, plan):
            async with aiohttp.ClientSession() as session:
                start = loop.time()
                async with session.post(f"{base}/echo", data=BODY) as resp:
                    got = await resp.read()
                assert loop.time() - start >= 0.080
        assert hashlib.sha256(got).digest() == hashlib.sha256(BODY).digest()
    finally:
        await runner.cleanup()


@on_rloop
async def test_reset_is_a_client_error_and_the_server_recovers() -> None:
    runner, server, base = await start_app()
    try:
        async with aiohttp.ClientSession() as session:
            reset = faults.Plan().reset_peer(after_ms=0)
            with faults.apply(server, reset), pytest.raises(aiohttp.ClientError):
                async with session.post(f"{base}/echo", data=BODY) as resp:
                    await resp.read()
            # The plan is off: the same server answers again.
            async with session.post(f"{base}/echo", data=b"again") as resp:
                assert await resp.read() == b"again"
    finally:
        await runner.cleanup()


@on_rloop
async def test_client_side_faults_through_the_loop() -> None:
    loop = asyncio.get_running_loop()
    runner, _server, base = await start_app()
    try:
        # A loop plan reaches the connections the client opens as well.
        plan = faults.Plan().connect_error(errno.ECONNREFUSED, every=1)
        with faults.apply(loop, plan):
            async with aiohttp.ClientSession() as session:
                with pytest.raises(aiohttp.ClientConnectorError):
                    await session.post(f"{base}/echo", data=b"x")
        plan = faults.Plan().slicer(1000, 200, delay_us=200, direction="downstream")
        with faults.apply(loop, plan):
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{base}/echo", data=BODY) as resp,
            ):
                assert await resp.read() == BODY
    finally:
        await runner.cleanup()
