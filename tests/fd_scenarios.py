"""One file descriptor per connection (shared by tests/tcp and tests/unix).

asyncio's transport owns its socket's one fd, whichever way the connection
was made, and ``get_extra_info('socket')`` is that socket: a process can
hold as many connections as it may open fds. The socket stays usable until
connection_lost, and is closed then.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket

from conftest import run
from net_helpers import Endpoint, Recorder, endpoint

__all__ = [
    "endpoint",
    "test_one_fd_per_connection",
    "test_socket_given_as_sock_is_the_transport_socket",
]

N = 20


def fd_count() -> int:
    """Open socket fds of this process (the loop may open other fds, e.g. a
    signal wakeup pipe at its first blocking poll, whenever it needs them)."""
    gc.collect()
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # closed meanwhile (the listing's own fd)
            pass
    return count


async def _connections(
    loop: asyncio.AbstractEventLoop, endpoint: Endpoint, count: int
) -> tuple[list[asyncio.Transport], list[Recorder], list[asyncio.Transport], list[Recorder]]:
    """`count` connections to a new server: client transports and protocols,
    accepted transports and protocols."""
    accepted: list[Recorder] = []
    all_accepted = loop.create_future()

    def factory() -> Recorder:
        accepted.append(Recorder(loop))
        if len(accepted) == count:
            all_accepted.set_result(None)
        return accepted[-1]

    server = await endpoint.serve(loop, factory)
    clients = [await endpoint.connect(loop, server, lambda: Recorder(loop)) for _ in range(count)]
    await all_accepted  # the server's side may come after its client's
    await asyncio.gather(*(p.made for p in accepted))
    server.close()  # stops listening; the connections stay
    return (
        [t for t, _ in clients],
        [p for _, p in clients],
        [p.transport for p in accepted],  # type: ignore[misc]
        accepted,
    )


def test_one_fd_per_connection(loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
    async def main() -> tuple[int, int, list[int]]:
        # Warm-up: whatever the loop creates lazily (executor, caches) exists now.
        warm = await _connections(loop, endpoint, 1)
        for t in warm[0]:
            t.close()
        await asyncio.gather(*(p.lost for p in warm[1] + warm[3]))

        before = fd_count()
        client_ts, client_ps, server_ts, server_ps = await _connections(loop, endpoint, N)
        socks = []
        for t in client_ts + server_ts:
            sock = t.get_extra_info("socket")
            # A usable socket, as asyncio's: the connection's own fd.
            assert sock.fileno() >= 0
            assert sock.getsockname() == t.get_extra_info("sockname")
            assert sock.getpeername() == t.get_extra_info("peername")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
            socks.append(sock)
        opened = fd_count() - before
        for t in client_ts:
            t.close()
        await asyncio.gather(*(p.lost for p in client_ps + server_ps))
        closed = fd_count() - before
        return opened, closed, [s.fileno() for s in socks]

    opened, closed, filenos = run(loop, main())
    assert opened == 2 * N  # one per end; the listener was open before
    assert closed == 0
    assert filenos == [-1] * (2 * N)  # closed after connection_lost


def test_socket_given_as_sock_is_the_transport_socket(
    loop: asyncio.AbstractEventLoop, endpoint: Endpoint
) -> None:
    """create_connection(sock=...) takes no second fd, and the caller's
    socket is closed once the connection is lost."""

    async def main() -> tuple[int, int, int]:
        accepted: list[Recorder] = []
        made = loop.create_future()

        def factory() -> Recorder:
            accepted.append(Recorder(loop))
            made.set_result(None)
            return accepted[-1]

        server = await endpoint.serve(loop, factory)
        sock = endpoint.client_socket(server)
        sock.setblocking(False)
        await made  # the server's side of the connection
        await accepted[0].made
        before = fd_count()
        if endpoint.kind == "tcp":
            transport, protocol = await loop.create_connection(lambda: Recorder(loop), sock=sock)
        else:
            transport, protocol = await loop.create_unix_connection(
                lambda: Recorder(loop), sock=sock
            )
        during = fd_count() - before
        assert transport.get_extra_info("socket").fileno() == sock.fileno()
        transport.close()
        await asyncio.gather(protocol.lost, accepted[0].lost)  # type: ignore[attr-defined]
        after = fd_count() - before
        server.close()
        return during, after, sock.fileno()

    during, after, fileno = run(loop, main())
    # No fd taken; then the caller's socket and the server's side are closed.
    assert (during, after, fileno) == (0, -2, -1)
