"""A server's life with clients connected (closing it, serve_forever()
cancelled, a refused connection), over both TCP (tests/tcp) and Unix
sockets (tests/unix), on every loop, with the same assertions. The `kind`
fixture of each folder picks the family."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from conftest import (
    SERVE_FOREVER_CLOSES_CLIENTS,
    UNIX_SOCKET_CLEANUP,
    WAIT_CLOSED_WAITS_FOR_CLIENTS,
    run,
    xfail_for,
)
from net_helpers import DEADLINE, Echo, Endpoint, Recorder, endpoint, wait_made

__all__ = [
    "endpoint",
    "test_close_server_with_clients_connected",
    "test_refused_connection",
    "test_serve_forever_cancelled",
    "test_serve_forever_cancelled_with_hanging_client",
]


def test_close_server_with_clients_connected(
    request: pytest.FixtureRequest,
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    endpoint: Endpoint,
) -> None:
    async def main() -> tuple[bool, bytes]:
        protos: list[Recorder] = []

        def factory() -> Recorder:
            protos.append(Recorder(loop))
            return protos[-1]

        server = await endpoint.serve(loop, factory)
        address = endpoint.address(server)
        reader, writer = await endpoint.open(server)
        await asyncio.wait_for(wait_made(protos), DEADLINE)
        server.close()
        assert not server.is_serving()
        # New connections fail once the server is closed: refused, or, where
        # the running asyncio removes a Unix server's file at close (3.13+),
        # the path is gone...
        refused: type[OSError] = ConnectionRefusedError
        if endpoint.kind == "unix":
            assert os.path.exists(address) != UNIX_SOCKET_CLEANUP
            if UNIX_SOCKET_CLEANUP:
                refused = FileNotFoundError
        with pytest.raises(refused):
            await _connect_to(loop, endpoint, address)
        # ...but the established one still works.
        assert protos[0].transport is not None
        protos[0].transport.write(b"still here")
        data = await reader.readexactly(10)
        closed_early = False
        waiter = loop.create_task(server.wait_closed())
        await asyncio.sleep(0.01)
        closed_early = waiter.done()
        protos[0].transport.close()
        await waiter
        writer.close()
        await writer.wait_closed()
        return closed_early, data

    if WAIT_CLOSED_WAITS_FOR_CLIENTS:
        xfail_for(request, ["uvloop"], "uvloop's wait_closed() does not wait for clients", loop_name)
    closed_early, data = run(loop, main())
    assert data == b"still here"
    # wait_closed() returns only once the last client is gone: asyncio does
    # so from 3.12 on. 3.11's returns at once (CPython gh-79033, fixed in
    # 3.12); rloop keeps the fixed behaviour there too, so on 3.11 only
    # rloop's is pinned.
    if WAIT_CLOSED_WAITS_FOR_CLIENTS or type(loop).__module__.startswith("rloop"):
        assert not closed_early


async def _connect_to(loop: asyncio.AbstractEventLoop, endpoint: Endpoint, address: object) -> None:
    if endpoint.kind == "tcp":
        host, port = address  # type: ignore[misc]
        await loop.create_connection(asyncio.Protocol, host, port)
    else:
        await loop.create_unix_connection(asyncio.Protocol, address)  # type: ignore[arg-type]


def test_refused_connection(loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
    if endpoint.kind == "tcp":
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        address: object = probe.getsockname()
        probe.close()  # bound, never listened: nothing accepts there now
    else:
        probe = socket.socket(socket.AF_UNIX)
        probe.bind(endpoint.path)
        address = endpoint.path
        probe.close()  # the path exists, nobody listens on it
    with pytest.raises(ConnectionRefusedError):
        run(loop, _connect_to(loop, endpoint, address))


def test_serve_forever_cancelled(loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
    async def main() -> tuple[bool, bool]:
        server = await endpoint.serve(loop, Echo, start_serving=False)
        assert not server.is_serving()
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        assert server.is_serving()
        reader, writer = await endpoint.open(server)
        writer.write(b"hi\n")
        assert await reader.readline() == b"hi\n"
        writer.close()
        await writer.wait_closed()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return server.is_serving(), len(server.sockets) == 0

    assert run(loop, main()) == (False, True)


def test_serve_forever_cancelled_with_hanging_client(
    request: pytest.FixtureRequest,
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    endpoint: Endpoint,
) -> None:
    # Cancelling serve_forever() (Ctrl-C in asyncio.run) while a client is
    # connected: from 3.14 asyncio closes the server's connections and so
    # returns; before, it waits for the client to leave.
    if not WAIT_CLOSED_WAITS_FOR_CLIENTS:
        pytest.skip("3.11's wait_closed() does not wait for clients: nothing to tell apart")
    if not SERVE_FOREVER_CLOSES_CLIENTS:
        xfail_for(
            request, ["uvloop"], "uvloop's wait_closed() does not wait for clients", loop_name
        )
    protos: list[Recorder] = []

    def factory() -> Recorder:
        protos.append(Recorder(loop))
        return protos[-1]

    async def main() -> bool:
        server = await endpoint.serve(loop, factory)
        task = loop.create_task(server.serve_forever())
        _reader, writer = await endpoint.open(server)
        await asyncio.wait_for(wait_made(protos), DEADLINE)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=0.5)
        returned = task in done
        # The server ends the connection: serve_forever() returns in any case.
        assert protos[0].transport is not None
        protos[0].transport.close()
        await asyncio.wait_for(protos[0].lost, DEADLINE)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, DEADLINE)
        writer.close()
        return returned

    assert run(loop, main()) == SERVE_FOREVER_CLOSES_CLIENTS
