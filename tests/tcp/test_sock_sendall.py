"""loop.sock_sendall and loop.sock_recv_into, and what they and sock_recv
return: coroutines, as asyncio's (rloop's are native: src/sock_coro.rs)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import random
import socket
import struct

import pytest
from conftest import run, xfail_for

from tcp.test_sock_recv import bytes_to_a_reader


@pytest.fixture
def tcp_pair(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> tuple[socket.socket, socket.socket]:
    """tests/tcp's pair with the peer non-blocking too: these tests use the
    loop's socket methods on both ends."""
    ours, peer = tcp_pair
    peer.setblocking(False)
    return ours, peer


def test_they_are_coroutines(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair

    async def main() -> bytes:
        send = loop.sock_sendall(peer, b"ping")
        recv = loop.sock_recv(ours, 10)
        assert asyncio.iscoroutine(send)
        assert asyncio.iscoroutine(recv)
        task = asyncio.create_task(recv)
        assert await send is None
        return await task

    assert run(loop, main()) == b"ping"


def test_errors_come_when_awaited(loop: asyncio.AbstractEventLoop) -> None:
    sock = socket.socket()
    sock.setblocking(False)
    sock.close()
    coro = loop.sock_sendall(sock, b"x")  # no error yet
    with pytest.raises(OSError) as info:
        run(loop, coro)
    assert info.value.errno == errno.EBADF
    unused = loop.sock_recv(sock, 10)
    unused.close()  # closing one never started raises nothing


def test_not_bytes_is_type_error(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, _ = tcp_pair
    with pytest.raises(TypeError, match="bytes-like"):
        run(loop, loop.sock_sendall(ours, "text"))  # type: ignore[arg-type]


def test_any_bytes_like_is_sent_whole(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair
    # (Not a memoryview of a non-byte format such as array("i"): asyncio
    # counts its length in items against bytes sent, and may never finish.)

    async def main() -> bytes:
        await loop.sock_sendall(ours, bytearray(b"ab"))
        await loop.sock_sendall(ours, memoryview(b"xcdx")[1:3])
        await loop.sock_sendall(ours, b"")
        got = b""
        while len(got) < 4:
            got += await loop.sock_recv(peer, 65536)
        return got

    assert run(loop, main()) == b"abcd"


def test_waits_while_the_peer_does_not_read(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair
    payload = random.Random(4).randbytes(8 * 1024 * 1024)

    async def main() -> bytes:
        send = asyncio.ensure_future(loop.sock_sendall(ours, payload))
        await asyncio.sleep(0.05)
        assert not send.done()  # the socket buffers are full
        got = bytearray()
        while len(got) < len(payload):
            got += await loop.sock_recv(peer, 1 << 20)
        assert await send is None
        return bytes(got)

    got = run(loop, main(), timeout=20)
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()


def test_cancelled_send_leaves_no_writer(
    loop: asyncio.AbstractEventLoop,
    tcp_pair: tuple[socket.socket, socket.socket],
    loop_name: str,
    request: pytest.FixtureRequest,
) -> None:
    xfail_for(request, ["uvloop"], "uvloop's remove_writer returns None", loop_name)
    ours, _ = tcp_pair

    async def main() -> None:
        send = asyncio.ensure_future(loop.sock_sendall(ours, b"x" * (16 * 1024 * 1024)))
        await asyncio.sleep(0.05)
        send.cancel()
        with pytest.raises(asyncio.CancelledError):
            await send
        assert loop.remove_writer(ours) is False

    run(loop, main())


def test_data_being_sent_cannot_be_resized(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    """A waiting sock_sendall holds the buffer of its data, as a memoryview
    does: a bytearray cannot grow meanwhile (BufferError), and what arrives
    is what was given."""
    ours, peer = tcp_pair
    data = bytearray(random.Random(5).randbytes(8 * 1024 * 1024))
    expected = bytes(data)

    async def main() -> bytes:
        send = asyncio.ensure_future(loop.sock_sendall(ours, data))
        await asyncio.sleep(0.05)
        assert not send.done()  # the socket buffers are full
        with pytest.raises(BufferError):
            data.extend(b"more")
        got = bytearray()
        while len(got) < len(expected):
            got += await loop.sock_recv(peer, 1 << 20)
        await send
        data.extend(b"more")  # free again
        return bytes(got)

    assert run(loop, main(), timeout=20) == expected


def test_waiting_send_when_the_peer_resets(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair

    async def main() -> None:
        send = asyncio.ensure_future(loop.sock_sendall(ours, b"x" * (16 * 1024 * 1024)))
        await asyncio.sleep(0.05)
        assert not send.done()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()  # an RST, not a FIN
        with pytest.raises(OSError) as info:
            await send
        assert info.value.errno in (errno.ECONNRESET, errno.EPIPE)
        assert not loop.remove_writer(ours)

    run(loop, main(), timeout=20)


def test_recv_into_fills_the_buffer(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair

    async def main() -> tuple[int, bytes, int, bytes]:
        buf = bytearray(10)
        waiting = asyncio.ensure_future(loop.sock_recv_into(ours, buf))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await loop.sock_sendall(peer, b"hello")
        first = await waiting
        view = memoryview(bytearray(3))
        await loop.sock_sendall(peer, b"abcdef")
        second = await loop.sock_recv_into(ours, view)
        return first, bytes(buf[:first]), second, bytes(view[:second])

    assert run(loop, main()) == (5, b"hello", 3, b"abc")


def test_recv_into_waiting_when_the_peer_resets(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair

    async def main() -> None:
        buf = bytearray(10)
        waiting = asyncio.ensure_future(loop.sock_recv_into(ours, buf))
        await asyncio.sleep(0)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()  # an RST, not a FIN
        with pytest.raises(ConnectionResetError) as info:
            await waiting
        assert info.value.errno == errno.ECONNRESET
        assert buf == bytearray(10)

    run(loop, main())


def test_recv_into_cancelled_wait_leaves_no_reader(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair

    async def main() -> tuple[bytes, bytes, bytes]:
        buf = bytearray(10)
        waiting = asyncio.ensure_future(loop.sock_recv_into(ours, buf))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # Its reader is gone (uvloop's remove_reader returns None).
        assert not loop.remove_reader(ours)
        # The cancelled wait took nothing and wrote nothing.
        first = await bytes_to_a_reader(loop, ours, peer, b"after")
        peer.sendall(b"again")
        n = await loop.sock_recv_into(ours, buf)
        return first, bytes(buf[:n]), bytes(buf[n:])

    assert run(loop, main()) == (b"after", b"again", bytes(5))


def test_recv_into_a_read_only_buffer_is_type_error(
    loop: asyncio.AbstractEventLoop, tcp_pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = tcp_pair
    peer.send(b"x")
    with pytest.raises(TypeError, match="read-write bytes-like"):
        run(loop, loop.sock_recv_into(ours, b"read-only"))
