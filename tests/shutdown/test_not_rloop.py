"""rloop.drain() refuses a server that is not rloop's, with a TypeError
that says so (stock asyncio's and uvloop's servers cannot report what their
connections sent)."""

from __future__ import annotations

import asyncio

import pytest
import rloop
from conftest import run


def test_drain_needs_an_rloop_server(loop_name: str, loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        if loop_name in ("rloop", "tokio"):
            assert await rloop.drain(server) == rloop.DrainReport(
                0, 0, 0, pytest.approx(0, abs=0.1)
            )
            return
        with pytest.raises(TypeError, match="needs a server of an rloop loop"):
            await rloop.drain(server)
        assert server.is_serving()
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_not_a_server() -> None:
    with pytest.raises(TypeError, match="not builtins.object"):
        asyncio.run(rloop.drain(object()))  # type: ignore[arg-type]
