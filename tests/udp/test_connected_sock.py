"""A datagram endpoint on a socket that comes connected (``sock=``):
``sendto(data)`` without an address goes to the connected peer, as the
documentation of DatagramTransport.sendto says and uvloop does, also when
the peer has no name (one end of ``socketpair(AF_UNIX, SOCK_DGRAM)``) and
when the datagram has to wait in the write buffer; an explicit address is
treated as the running asyncio treats it.

Stock asyncio (3.11 to 3.15 at least) sends nothing to an unnamed peer: its
transport tells a connected socket by the truth of its ``peername``, ``''``
there, and calls ``sock.sendto(data, None)``, a TypeError that closes the
transport. Whether the running asyncio does is found out by trying it
(:func:`asyncio_sends_to_unnamed_peer`); where it does not, the tests that
need it are its expected failures.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import tempfile
from collections.abc import Iterator

import pytest
from conftest import run, xfail_for

from udp.test_datagram import Recorder


@functools.cache
def asyncio_sends_to_unnamed_peer() -> bool:
    """Whether the running Python's asyncio sends ``sendto(data)`` to the
    unnamed peer of a connected ``sock=`` (a datagram socketpair)."""
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda loop, context: None)  # its fatal write error
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        a.setblocking(False)
        b.setblocking(False)
        endpoint = loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=a)
        transport, _ = loop.run_until_complete(endpoint)
        transport.sendto(b"?")  # delivered at once between Unix sockets, if sent
        try:
            return b.recv(1) == b"?"
        except BlockingIOError:
            return False
        finally:
            transport.close()
            loop.run_until_complete(asyncio.sleep(0))
    finally:
        a.close()
        b.close()
        loop.close()


def xfail_asyncio_without_unnamed_peer(request: pytest.FixtureRequest, loop_name: str) -> None:
    if loop_name == "asyncio" and not asyncio_sends_to_unnamed_peer():
        xfail_for(
            request,
            ["asyncio"],
            "asyncio's datagram transport calls sock.sendto(data, None) when the "
            "connected peer's name is '' (its test of a connected socket)",
            loop_name,
        )


def connected_pair(kind: str) -> tuple[socket.socket, socket.socket]:
    """Two non-blocking datagram sockets connected to each other."""
    if kind == "unix":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    else:
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        a.connect(b.getsockname())
        b.connect(a.getsockname())
    a.setblocking(False)
    b.setblocking(False)
    return a, b


@pytest.fixture
def unix_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = connected_pair("unix")
    with a, b:
        yield a, b


def fill(sock: socket.socket) -> int:
    """Send one-byte datagrams until the kernel takes no more; how many."""
    count = 0
    while True:
        try:
            sock.send(b"f")
        except BlockingIOError:
            return count
        count += 1


async def received_or_error(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, rec: Recorder
) -> bytes | Exception:
    """The next datagram on *sock* or the protocol's next error, whichever
    comes first."""
    recv = asyncio.ensure_future(loop.sock_recv(sock, 100))
    error = asyncio.ensure_future(rec.errors.get())
    done, pending = await asyncio.wait({recv, error}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.wait(pending)
    result = done.pop().result()
    assert isinstance(result, (bytes, Exception))
    return result


@pytest.mark.parametrize("kind", ["unix", "udp"])
def test_sendto_without_address_goes_to_the_connected_peer(
    loop: asyncio.AbstractEventLoop, loop_name: str, kind: str, request: pytest.FixtureRequest
) -> None:
    if kind == "unix":
        xfail_asyncio_without_unnamed_peer(request, loop_name)
    a, b = connected_pair(kind)

    async def main() -> None:
        transport, rec = await loop.create_datagram_endpoint(Recorder, sock=a)
        assert transport.get_extra_info("peername") == a.getpeername()
        assert transport.get_extra_info("socket").fileno() == a.fileno()
        transport.sendto(b"to the peer")
        assert not transport.is_closing()
        assert await loop.sock_recv(b, 100) == b"to the peer"
        b.send(b"back")
        assert await rec.datagrams.get() == (b"back", None if kind == "unix" else b.getsockname())
        transport.sendto(b"again")
        assert await loop.sock_recv(b, 100) == b"again"
        assert rec.errors.empty()
        transport.close()
        assert await rec.lost is None

    with a, b:
        run(loop, main())


def test_sendto_without_address_waits_in_the_write_buffer(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    unix_pair: tuple[socket.socket, socket.socket],
    request: pytest.FixtureRequest,
) -> None:
    """The kernel takes no more: the datagrams wait in the transport's
    buffer, go out in order as the peer reads, and close() waits for them."""
    xfail_asyncio_without_unnamed_peer(request, loop_name)
    a, b = unix_pair

    async def main() -> None:
        transport, rec = await loop.create_datagram_endpoint(Recorder, sock=a)
        filled = fill(a)
        transport.sendto(b"one")
        transport.sendto(b"two")
        assert not transport.is_closing()
        assert transport.get_write_buffer_size() > 0  # type: ignore[attr-defined]
        transport.close()
        received = [await loop.sock_recv(b, 100) for _ in range(filled + 2)]
        assert received == [b"f"] * filled + [b"one", b"two"]
        assert await rec.lost is None
        assert rec.errors.empty()

    run(loop, main())


def test_gone_peer_is_error_received(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    unix_pair: tuple[socket.socket, socket.socket],
    request: pytest.FixtureRequest,
) -> None:
    """A send to a closed peer is an error for the protocol, not the end
    of the transport."""
    xfail_asyncio_without_unnamed_peer(request, loop_name)
    a, b = unix_pair

    async def main() -> None:
        transport, rec = await loop.create_datagram_endpoint(Recorder, sock=a)
        b.close()
        transport.sendto(b"anyone?")
        assert not transport.is_closing()
        assert isinstance(await rec.errors.get(), ConnectionRefusedError)
        assert not transport.is_closing()
        transport.close()
        assert await rec.lost is None

    run(loop, main())


def test_explicit_address_on_connected_unix_socket_is_sent_to(
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    unix_pair: tuple[socket.socket, socket.socket],
    request: pytest.FixtureRequest,
) -> None:
    """asyncio hands an explicit address to sock.sendto: a path where no
    socket is gives FileNotFoundError, reported to error_received."""
    xfail_for(
        request,
        ["uvloop"],
        "uvloop refuses any address on a connected socket (EISCONN)",
        loop_name,
    )
    a, b = unix_pair

    async def main() -> None:
        transport, rec = await loop.create_datagram_endpoint(Recorder, sock=a)
        with tempfile.TemporaryDirectory(prefix="rloop-test-") as folder:
            transport.sendto(b"elsewhere", os.path.join(folder, "nobody"))
            assert isinstance(await rec.errors.get(), FileNotFoundError)
        assert not transport.is_closing()
        with pytest.raises(BlockingIOError):
            b.recv(100)
        transport.close()
        assert await rec.lost is None

    run(loop, main())


def test_explicit_address_on_connected_udp_socket_goes_to_the_peer(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    """asyncio sends with sock.send on a socket connected to a named peer,
    whatever address sendto is given."""
    xfail_for(
        request,
        ["uvloop"],
        "uvloop refuses any address on a connected socket (EISCONN)",
        loop_name,
    )
    a, b = connected_pair("udp")
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    other.setblocking(False)

    async def main() -> None:
        transport, rec = await loop.create_datagram_endpoint(Recorder, sock=a)
        transport.sendto(b"to whom?", other.getsockname())
        assert await received_or_error(loop, b, rec) == b"to whom?"
        with pytest.raises(BlockingIOError):
            other.recv(100)
        assert rec.errors.empty()
        transport.close()
        assert await rec.lost is None

    with a, b, other:
        run(loop, main())
