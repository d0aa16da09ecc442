"""loop.sock_recv: results, waiting, errors and reader bookkeeping, as
asyncio's own (rloop's try and wait are in Rust, src/sock_recv.rs)."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import struct

import pytest
from conftest import run, xfail_for


def _reset(peer: socket.socket) -> None:
    """Closes peer with an RST instead of a FIN."""
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()


def test_data_already_there(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair
    peer.sendall(b"ready")

    async def main() -> bytes:
        # The bytes are on their way over loopback: wait until readable
        # with a plain select-style reader, then sock_recv must not wait.
        readable = asyncio.Event()
        loop.add_reader(ours, readable.set)
        await readable.wait()
        loop.remove_reader(ours)
        return await loop.sock_recv(ours, 100)

    assert run(loop, main()) == b"ready"


def test_waits_for_data(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair

    async def main() -> tuple[bool, bytes]:
        recv = asyncio.ensure_future(loop.sock_recv(ours, 100))
        for _ in range(5):
            await asyncio.sleep(0)
        waited = not recv.done()
        peer.sendall(b"later")
        return waited, await recv

    assert run(loop, main()) == (True, b"later")


def test_waits_round_after_round(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    """One socket, 300 rounds. In most, sock_recv waits and the peer sends
    only then; in every third, the bytes come while nothing waits and the
    loop goes round a few times before sock_recv is called; in every
    fifth, the peer sends more than is asked and the rest comes next. A
    loop that keeps the socket's registration between waits (TokioLoop
    and RLoop do) must still see every byte, in order, and no wait hangs."""
    ours, peer = tcp_pair

    async def recv_5(first: bytes = b"") -> bytes:
        data = first
        while len(data) < 5:
            data += await loop.sock_recv(ours, 5 - len(data))
        return data

    async def main() -> tuple[list[bytes], list[bytes], int]:
        sent: list[bytes] = []
        got: list[bytes] = []
        waited = 0
        for i in range(300):
            message = b"%05d" % i
            if i % 3 == 0:
                peer.sendall(message)
                for _ in range(3):
                    await asyncio.sleep(0)
                got.append(await recv_5())
            elif i % 5 == 0:
                peer.sendall(message + b"+rest")
                got.append(await recv_5())
                got.append(await recv_5())
                sent.append(message)
                message = b"+rest"
            else:
                recv = asyncio.ensure_future(loop.sock_recv(ours, 5))
                await asyncio.sleep(0)
                waited += not recv.done()
                peer.sendall(message)
                got.append(await recv_5(await recv))
            sent.append(message)
        return sent, got, waited

    sent, got, waited = run(loop, main(), timeout=30)
    assert got == sent
    assert waited > 100


async def bytes_to_a_reader(
    loop: asyncio.AbstractEventLoop, ours: socket.socket, peer: socket.socket, data: bytes
) -> bytes:
    """What a plain reader callback on `ours` reads once `peer` sends `data`
    (the reader is removed again)."""
    got: asyncio.Future[bytes] = loop.create_future()
    loop.add_reader(ours, lambda: got.done() or got.set_result(ours.recv(100)))
    peer.sendall(data)
    try:
        return await got
    finally:
        loop.remove_reader(ours)


def test_returns_at_most_n_then_the_rest(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair
    peer.sendall(b"0123456789")

    async def main() -> bytes:
        got = b""
        while len(got) < 10:
            part = await loop.sock_recv(ours, 4)
            assert 0 < len(part) <= 4
            got += part
        return got

    assert run(loop, main()) == b"0123456789"


def test_large_n_small_data(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair

    async def main() -> bytes:
        recv = asyncio.ensure_future(loop.sock_recv(ours, 1 << 20))
        await asyncio.sleep(0)
        peer.sendall(b"tiny")
        return await recv

    assert run(loop, main()) == b"tiny"


def test_zero_n_gives_empty_bytes(
    loop: asyncio.AbstractEventLoop,
    tcp_pair: tuple[socket.socket, socket.socket],
    loop_name: str,
    request: pytest.FixtureRequest,
) -> None:
    xfail_for(request, ["uvloop"], "uvloop's sock_recv(sock, 0) waits for data", loop_name)
    ours, _ = tcp_pair
    # Stock asyncio answers at once; one second is plenty.
    assert run(loop, loop.sock_recv(ours, 0), timeout=1.0) == b""


def test_peer_close_gives_empty_bytes(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair

    async def main() -> bytes:
        recv = asyncio.ensure_future(loop.sock_recv(ours, 100))
        await asyncio.sleep(0)
        peer.shutdown(socket.SHUT_WR)
        return await recv

    assert run(loop, main()) == b""


def test_peer_reset_raises_connection_reset(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair

    async def main() -> None:
        recv = asyncio.ensure_future(loop.sock_recv(ours, 100))
        await asyncio.sleep(0)
        _reset(peer)
        with pytest.raises(ConnectionResetError) as info:
            await recv
        assert info.value.errno == errno.ECONNRESET

    run(loop, main())


def test_cancelled_wait_leaves_no_reader(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair

    async def main() -> tuple[bytes, bytes]:
        recv = asyncio.ensure_future(loop.sock_recv(ours, 100))
        await asyncio.sleep(0)
        recv.cancel()
        with pytest.raises(asyncio.CancelledError):
            await recv
        # Its reader is gone (uvloop's remove_reader returns None).
        assert not loop.remove_reader(ours)
        # The cancelled wait took nothing: the next bytes go to whoever
        # asks next, a reader callback first, then sock_recv.
        first = await bytes_to_a_reader(loop, ours, peer, b"after")
        peer.sendall(b"again")
        return first, await loop.sock_recv(ours, 100)

    assert run(loop, main()) == (b"after", b"again")


def test_negative_n_is_value_error(
    loop: asyncio.AbstractEventLoop,
    tcp_pair: tuple[socket.socket, socket.socket],
    loop_name: str,
    request: pytest.FixtureRequest,
) -> None:
    xfail_for(request, ["uvloop"], "uvloop's sock_recv(sock, -1) waits for data", loop_name)
    ours, _ = tcp_pair
    with pytest.raises(ValueError):
        run(loop, loop.sock_recv(ours, -1), timeout=1.0)


def test_closed_socket_is_bad_fd(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(
        request, ["uvloop"], "uvloop's sock_recv on a closed socket raises its own way", loop_name
    )
    sock = socket.socket()
    sock.setblocking(False)
    sock.close()
    with pytest.raises(OSError) as info:
        run(loop, loop.sock_recv(sock, 10))
    assert info.value.errno == errno.EBADF


def test_fd_of_a_transport_is_refused(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, _ = tcp_pair

    async def main() -> None:
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
        try:
            with pytest.raises(RuntimeError, match="is used by transport"):
                await loop.sock_recv(ours, 10)
        finally:
            transport.abort()

    run(loop, main())


def test_blocking_socket_refused_in_debug_mode(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, _ = tcp_pair
    ours.setblocking(True)
    loop.set_debug(True)
    with pytest.raises(ValueError, match="the socket must be non-blocking"):
        run(loop, loop.sock_recv(ours, 10))


def test_ssl_socket_refused(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(request, ["uvloop"], "uvloop's sock_recv accepts an SSLSocket", loop_name)
    context = ssl.create_default_context()
    with (
        socket.socket() as raw,
        context.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False) as tls,
        pytest.raises(TypeError, match="SSLSocket"),
    ):
        run(loop, loop.sock_recv(tls, 10))


def test_fds_of_a_closed_transport_are_free(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    """Once a transport made from a socket has closed, the fd numbers it
    used may belong to new sockets, which sock_recv takes."""
    ours, _ = tcp_pair

    async def main() -> tuple[bytes, bytes, bool]:
        lost: asyncio.Future[None] = loop.create_future()

        class Lost(asyncio.Protocol):
            def connection_lost(self, exc: Exception | None) -> None:
                lost.set_result(None)

        freed = ours.fileno()
        transport, _ = await loop.create_connection(Lost, sock=ours)
        transport.abort()
        await lost
        # The lowest free numbers: the ones the transport let go of.
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            b.setblocking(False)
            b.send(b"to a")
            a.send(b"to b")
            got_a = await loop.sock_recv(a, 10)
            got_b = await loop.sock_recv(b, 10)
            return got_a, got_b, freed in (a.fileno(), b.fileno())

    got_a, got_b, reused = run(loop, main())
    assert (got_a, got_b) == (b"to a", b"to b")
    assert reused


def test_a_reused_fd_number_is_waited_on_anew(loop: asyncio.AbstractEventLoop) -> None:
    """A socket waits in sock_recv, gets its bytes and is closed; the new
    socket that gets its fd number waits in sock_recv too, and gets what
    its peer sends. (A loop that keeps an fd's registration between waits
    must see that the number names another file now; rloop skips that
    check only for the very socket object that waited last.)"""

    async def wait_then_send(ours: socket.socket, peer: socket.socket, data: bytes) -> bytes:
        recv = loop.create_task(loop.sock_recv(ours, 100))
        # Runs after the task's first step, which found nothing and waits.
        loop.call_soon(peer.send, data)
        return await recv

    async def main() -> tuple[list[bytes], bool]:
        got = []
        first, first_peer = socket.socketpair()
        freed = {first.fileno(), first_peer.fileno()}
        with first, first_peer:
            first.setblocking(False)
            for i in range(3):
                got.append(await wait_then_send(first, first_peer, b"first %d" % i))
        second, second_peer = socket.socketpair()
        with second, second_peer:
            second.setblocking(False)
            second_peer.setblocking(False)
            reused = {second.fileno(), second_peer.fileno()} == freed
            for i in range(3):
                got.append(await wait_then_send(second, second_peer, b"second %d" % i))
                got.append(await wait_then_send(second_peer, second, b"back %d" % i))
        return got, reused

    got, reused = run(loop, main())
    assert reused
    assert got == [b"first 0", b"first 1", b"first 2"] + [
        m for i in range(3) for m in (b"second %d" % i, b"back %d" % i)
    ]
