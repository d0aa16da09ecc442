"""loop.sock_accept, sock_recvfrom, sock_recvfrom_into and sock_sendto:
results, waiting, cancellation, errors and reader/writer bookkeeping, as
asyncio's own (rloop's try and wait are in Rust, src/sock_call.rs)."""

from __future__ import annotations

import asyncio
import errno
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run, xfail_for

NO_DATAGRAM_CALLS = "uvloop has no sock_recvfrom/sock_sendto"


@pytest.fixture
def dgram_loop(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> asyncio.AbstractEventLoop:
    """The loop, for a test of the datagram calls (which uvloop lacks)."""
    xfail_for(request, ["uvloop"], NO_DATAGRAM_CALLS, loop_name)
    return loop


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
def udp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    yield a, b
    a.close()
    b.close()


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_accept_waits_then_gives_a_non_blocking_connection(
    loop: asyncio.AbstractEventLoop, listener: socket.socket
) -> None:
    async def main() -> tuple[bool, float | None, bool, bytes, bool]:
        accept = asyncio.ensure_future(loop.sock_accept(listener))
        await _turns(5)
        waited = not accept.done()
        client = socket.create_connection(listener.getsockname())
        try:
            conn, address = await asyncio.wait_for(accept, 10)
            same_peer = address == client.getsockname()
            client.sendall(b"hello")
            data = await asyncio.wait_for(loop.sock_recv(conn, 100), 10)
            conn.close()
        finally:
            client.close()
        # The reader the wait added is gone (uvloop's remove_reader
        # returns None for False).
        return waited, conn.gettimeout(), same_peer, data, bool(loop.remove_reader(listener))

    assert run(loop, main()) == (True, 0.0, True, b"hello", False)


def test_accept_of_a_waiting_connection_does_not_wait(
    loop: asyncio.AbstractEventLoop, listener: socket.socket
) -> None:
    client = socket.create_connection(listener.getsockname())

    async def main() -> tuple[str, str]:
        conn, address = await asyncio.wait_for(loop.sock_accept(listener), 10)
        conn.close()
        return address, client.getsockname()

    try:
        got, expected = run(loop, main())
    finally:
        client.close()
    assert got == expected


def test_cancelled_accept_leaves_the_connection_to_the_next(
    loop: asyncio.AbstractEventLoop, listener: socket.socket
) -> None:
    """A cancelled sock_accept takes no connection: the next one gets it."""

    async def main() -> tuple[bool, bool]:
        first = asyncio.ensure_future(loop.sock_accept(listener))
        await _turns(3)
        first.cancel()
        await _turns(3)
        reader_left = bool(loop.remove_reader(listener))
        client = socket.create_connection(listener.getsockname())
        try:
            conn, address = await asyncio.wait_for(loop.sock_accept(listener), 10)
            conn.close()
            return reader_left, address == client.getsockname()
        finally:
            client.close()

    assert run(loop, main()) == (False, True)


def test_accept_on_a_closed_socket_raises(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(request, ["uvloop"], "uvloop raises ValueError for fd -1", loop_name)
    sock = socket.socket()
    sock.setblocking(False)
    sock.close()

    async def main() -> None:
        await loop.sock_accept(sock)

    with pytest.raises(OSError) as info:
        run(loop, main())
    assert info.value.errno == errno.EBADF


@pytest.mark.parametrize("call", ["sock_accept", "sock_recvfrom", "sock_sendto"])
def test_debug_mode_refuses_a_blocking_socket(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest, call: str
) -> None:
    if call != "sock_accept":
        xfail_for(request, ["uvloop"], NO_DATAGRAM_CALLS, loop_name)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    loop.set_debug(True)
    args = {
        "sock_accept": (),
        "sock_recvfrom": (10,),
        "sock_sendto": (b"x", ("127.0.0.1", 9)),
    }[call]

    async def main() -> None:
        await getattr(loop, call)(sock, *args)

    try:
        with pytest.raises(ValueError, match="the socket must be non-blocking"):
            run(loop, main())
    finally:
        sock.close()


def test_recvfrom_waits_and_gives_the_sender(
    dgram_loop: asyncio.AbstractEventLoop, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    loop = dgram_loop
    a, b = udp_pair

    async def main() -> tuple[bool, bytes, bool, bool]:
        recv = asyncio.ensure_future(loop.sock_recvfrom(b, 100))
        await _turns(5)
        waited = not recv.done()
        a.sendto(b"dgram", b.getsockname())
        data, address = await asyncio.wait_for(recv, 10)
        return waited, data, address == a.getsockname(), bool(loop.remove_reader(b))

    assert run(loop, main()) == (True, b"dgram", True, False)


def test_recvfrom_over_ipv6_gives_the_sockets_own_address_format(
    dgram_loop: asyncio.AbstractEventLoop,
) -> None:
    loop = dgram_loop
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    a = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        try:
            for s in (a, b):
                s.bind(("::1", 0))
                s.setblocking(False)
        except OSError:
            pytest.skip("no ::1 here")

        async def main() -> tuple[bytes, tuple[str, int, int, int]]:
            recv = asyncio.ensure_future(loop.sock_recvfrom(b, 100))
            await _turns(2)
            await loop.sock_sendto(a, b"six", b.getsockname())
            return await asyncio.wait_for(recv, 10)

        data, address = run(loop, main())
        assert data == b"six"
        assert address == a.getsockname() and len(address) == 4
    finally:
        a.close()
        b.close()


def test_recvfrom_into_reads_len_buf_by_default_and_nbytes_when_given(
    dgram_loop: asyncio.AbstractEventLoop, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    loop = dgram_loop
    a, b = udp_pair

    async def main() -> list[object]:
        out: list[object] = []
        buf = bytearray(4)
        waiting = asyncio.ensure_future(loop.sock_recvfrom_into(b, buf))
        await _turns(3)
        out.append(waiting.done())
        a.sendto(b"0123456789", b.getsockname())
        n, address = await asyncio.wait_for(waiting, 10)
        out += [n, bytes(buf), address == a.getsockname()]
        buf = bytearray(8)
        a.sendto(b"abcdefgh", b.getsockname())
        await _turns(2)
        n, _ = await asyncio.wait_for(loop.sock_recvfrom_into(b, buf, 3), 10)
        out += [n, bytes(buf)]
        out.append(bool(loop.remove_reader(b)))
        return out

    assert run(loop, main()) == [
        False,
        4,
        b"0123",
        True,
        3,
        b"abc\0\0\0\0\0",
        False,
    ]


def test_recvfrom_into_a_read_only_buffer_raises_type_error(
    dgram_loop: asyncio.AbstractEventLoop, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    loop = dgram_loop
    _, b = udp_pair

    async def main() -> None:
        await loop.sock_recvfrom_into(b, b"read-only")

    with pytest.raises(TypeError):
        run(loop, main())


def test_cancelled_recvfrom_takes_nothing(
    dgram_loop: asyncio.AbstractEventLoop, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    loop = dgram_loop
    a, b = udp_pair

    async def main() -> tuple[bool, bytes]:
        recv = asyncio.ensure_future(loop.sock_recvfrom(b, 100))
        await _turns(3)
        recv.cancel()
        await _turns(3)
        reader_left = bool(loop.remove_reader(b))
        a.sendto(b"kept", b.getsockname())
        data, _ = await asyncio.wait_for(loop.sock_recvfrom(b, 100), 10)
        return reader_left, data

    assert run(loop, main()) == (False, b"kept")


def _full_unix_datagram_pair(tmp_path: Path) -> tuple[socket.socket, socket.socket, str]:
    """A sender and a receiver (bound to the returned path) whose queue is
    full: the sender's next sendto would block."""
    path = str(tmp_path / "receiver")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.setblocking(False)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.setblocking(False)
    for _ in range(100_000):
        try:
            sender.sendto(b"f", path)
        except BlockingIOError:
            return sender, receiver, path
    sender.close()
    receiver.close()
    pytest.skip("this system's datagram queue never filled")


def _drain(sock: socket.socket) -> int:
    n = 0
    while True:
        try:
            sock.recv(16)
        except BlockingIOError:
            return n
        n += 1


def test_sendto_waits_while_the_peer_is_full(
    dgram_loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    loop = dgram_loop
    sender, receiver, path = _full_unix_datagram_pair(tmp_path)

    async def main() -> tuple[bool, int, bool, bytes]:
        send = asyncio.ensure_future(loop.sock_sendto(sender, b"last", path))
        await _turns(5)
        waited = not send.done()
        queued = _drain(receiver)
        n = await asyncio.wait_for(send, 10)
        writer_left = bool(loop.remove_writer(sender))
        return waited, n, writer_left, receiver.recv(16) if queued else b""

    try:
        assert run(loop, main()) == (True, 4, False, b"last")
    finally:
        sender.close()
        receiver.close()


def test_cancelled_sendto_sends_nothing(
    dgram_loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    loop = dgram_loop
    sender, receiver, path = _full_unix_datagram_pair(tmp_path)

    async def main() -> tuple[bool, bool, list[bytes]]:
        send = asyncio.ensure_future(loop.sock_sendto(sender, b"never", path))
        await _turns(3)
        send.cancel()
        await _turns(3)
        cancelled = send.cancelled()
        writer_left = bool(loop.remove_writer(sender))
        got = []
        while True:
            try:
                got.append(receiver.recv(16))
            except BlockingIOError:
                break
        await _turns(3)
        return cancelled, writer_left, [d for d in got if d != b"f"]

    try:
        assert run(loop, main()) == (True, False, [])
    finally:
        sender.close()
        receiver.close()


def test_sendto_errors_are_the_sockets(
    dgram_loop: asyncio.AbstractEventLoop, udp_pair: tuple[socket.socket, socket.socket]
) -> None:
    loop = dgram_loop
    a, _ = udp_pair

    async def main() -> None:
        await loop.sock_sendto(a, "not bytes", ("127.0.0.1", 9))  # type: ignore[arg-type]

    with pytest.raises(TypeError):
        run(loop, main())


def test_connect_to_a_listener(loop: asyncio.AbstractEventLoop, listener: socket.socket) -> None:
    client = socket.socket()
    client.setblocking(False)

    async def main() -> tuple[object, bool, bool]:
        result = await asyncio.wait_for(loop.sock_connect(client, listener.getsockname()), 10)
        conn, address = await asyncio.wait_for(loop.sock_accept(listener), 10)
        conn.close()
        return result, address == client.getsockname(), bool(loop.remove_writer(client))

    try:
        assert run(loop, main()) == (None, True, False)
    finally:
        client.close()


def test_connect_resolves_a_host_name(
    loop: asyncio.AbstractEventLoop, listener: socket.socket
) -> None:
    client = socket.socket()
    client.setblocking(False)
    port = listener.getsockname()[1]

    async def main() -> str:
        await asyncio.wait_for(loop.sock_connect(client, ("localhost", port)), 10)
        return str(client.getpeername()[0])

    try:
        try:
            peer = run(loop, main())
        except OSError:
            pytest.skip("localhost does not resolve to 127.0.0.1 here")
        assert peer == "127.0.0.1"
    finally:
        client.close()


def test_connect_refused(loop: asyncio.AbstractEventLoop) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    address = probe.getsockname()
    probe.close()  # nothing listens there now
    client = socket.socket()
    client.setblocking(False)

    async def main() -> None:
        await asyncio.wait_for(loop.sock_connect(client, address), 10)

    try:
        with pytest.raises(ConnectionRefusedError) as info:
            run(loop, main())
        assert info.value.errno == errno.ECONNREFUSED
    finally:
        client.close()


def test_connect_with_a_short_address_raises_value_error(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(request, ["uvloop"], "uvloop raises TypeError, at the call", loop_name)
    client = socket.socket()
    client.setblocking(False)

    async def main() -> None:
        await loop.sock_connect(client, ("127.0.0.1",))

    try:
        with pytest.raises(ValueError):
            run(loop, main())
    finally:
        client.close()


def test_connect_over_a_unix_socket(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    path = str(tmp_path / "listener")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.setblocking(False)

    async def main() -> str:
        await asyncio.wait_for(loop.sock_connect(client, path), 10)
        return str(client.getpeername())

    try:
        assert run(loop, main()) == path
    finally:
        client.close()
        server.close()


@pytest.fixture
def connect_in_progress() -> Iterator[tuple[socket.socket, tuple[str, int]]]:
    """A listener whose backlog is full (it never accepts), and a fresh
    client socket: a connect to it stays in progress (its SYN is dropped)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    try:
        for _ in range(64):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(address)
            fillers.append(filler)
            _, writable, _ = select.select([], [filler], [], 0.2)
            if not writable:
                break
        else:
            pytest.skip("the backlog never filled")
        client = socket.socket()
        client.setblocking(False)
        yield client, address
        client.close()
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_cancelled_connect_leaves_no_writer(
    loop: asyncio.AbstractEventLoop,
    connect_in_progress: tuple[socket.socket, tuple[str, int]],
) -> None:
    client, address = connect_in_progress

    async def main() -> tuple[bool, bool, bool]:
        connect = asyncio.ensure_future(loop.sock_connect(client, address))
        await _turns(5)
        waited = not connect.done()
        connect.cancel()
        await _turns(3)
        return waited, connect.cancelled(), bool(loop.remove_writer(client))

    assert run(loop, main()) == (True, True, False)
