"""The supervisor contract, through rloop's test-only fault hook
(`transport._inject_fault`): a panicking connection actor ends only its own
connection, with an exception, and the loop goes on; closing the loop ends
every connection with exactly one connection_lost. rloop loops only: stock
asyncio and uvloop have no actors to break."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest
from conftest import make_loop, run
from net_helpers import Echo, Recorder, fd_count


@pytest.fixture
def rloop_name(loop_name: str) -> str:
    if loop_name not in ("rloop", "tokio"):
        pytest.skip("needs rloop's fault-injection hook")
    return loop_name


def test_actor_panic_is_contained(rloop_name: str) -> None:
    loop = make_loop(rloop_name)
    contexts: list[dict[str, object]] = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    server_protos: list[Recorder] = []

    def factory() -> Recorder:
        server_protos.append(Recorder(loop))
        return server_protos[-1]

    async def main() -> tuple[BaseException | None, bytes, list[str]]:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        victim_peer = Recorder(loop)
        await loop.create_connection(lambda: victim_peer, "127.0.0.1", port)
        other_peer = Recorder(loop)
        other, _ = await loop.create_connection(lambda: other_peer, "127.0.0.1", port)
        while len(server_protos) < 2:
            await asyncio.sleep(0.001)
        victim = server_protos[0]
        await victim.made
        assert victim.transport is not None
        assert victim.transport._inject_fault(panic_on_read=1)  # type: ignore[attr-defined]
        assert victim_peer.transport is not None
        victim_peer.transport.write(b"trigger")
        exc = await victim.lost
        await victim_peer.lost  # the panicked actor's socket was closed
        # The other connection and the loop carry on.
        survivor = server_protos[1]
        survivor.expect = 5
        other.write(b"alive")
        await survivor.got_all
        other.close()
        await survivor.lost
        server.close()
        await server.wait_closed()
        return exc, bytes(survivor.data), victim.events

    try:
        exc, data, events = run(loop, main())
    finally:
        loop.close()
    assert isinstance(exc, RuntimeError)
    assert "panic" in str(exc)
    assert data == b"alive"
    assert events.count("lost") == 1
    assert any(isinstance(c.get("exception"), RuntimeError) for c in contexts)


def test_injected_socket_error_reaches_connection_lost(rloop_name: str) -> None:
    loop = make_loop(rloop_name)

    async def main() -> BaseException | None:
        rec = Recorder(loop)
        server = await loop.create_server(lambda: rec, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        peer = socket.create_connection(("127.0.0.1", port))
        await rec.made
        assert rec.transport is not None
        rec.transport._inject_fault(fail_next_write=errno.EPIPE)  # type: ignore[attr-defined]
        rec.transport.write(b"doomed")
        exc = await rec.lost
        peer.close()
        server.close()
        await server.wait_closed()
        return exc

    try:
        exc = run(loop, main())
    finally:
        loop.close()
    assert isinstance(exc, BrokenPipeError)
    assert exc.errno == errno.EPIPE


def test_loop_close_ends_every_connection(rloop_name: str) -> None:
    def scenario() -> list[Recorder]:
        loop = make_loop(rloop_name)
        recs = [Recorder(loop) for _ in range(5)]

        async def main() -> asyncio.AbstractServer:
            server = await loop.create_server(Echo, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            for rec in recs:
                await loop.create_connection(lambda r=rec: r, "127.0.0.1", port)  # type: ignore[misc]
            return server

        server = run(loop, main())
        server.close()
        loop.close()  # connections still open
        return recs

    scenario()
    before = fd_count()
    recs = scenario()
    assert all(rec.events.count("lost") == 1 for rec in recs)
    assert fd_count() == before
