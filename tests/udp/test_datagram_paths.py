"""The per-datagram paths of a UDP endpoint (rloop runs them in Rust for an
IPv4/IPv6 endpoint): the sender's address as Python's socket module gives
it, replies to that address or to any other, the kinds of data sendto takes,
send errors, a protocol swapped mid-stream, many peers, a transport used
after its socket closed, and a connected endpoint's sends and errors. Every loop, the same assertions;
127.0.0.1 and ::1 only."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import socket
from asyncio import selector_events
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import run, xfail_for

from udp.test_datagram import Recorder, _has_ipv6

#: sendto(b"") sends an empty datagram (3.13+); before, it sent nothing.
SENDS_EMPTY_DATAGRAMS: bool = "if not data" not in inspect.getsource(
    vars(selector_events)["_SelectorDatagramTransport"].sendto
)


class Echo(Recorder):
    """Sends every datagram back as it came."""

    def datagram_received(self, data: bytes, addr: Any) -> None:
        super().datagram_received(data, addr)
        assert self.transport is not None
        self.transport.sendto(data, addr)


def _client(family: socket.AddressFamily, host: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


async def _recv(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.sock_recv(sock, 70000), 10)


@contextlib.asynccontextmanager
async def _heard_from_a_client(
    loop: asyncio.AbstractEventLoop,
) -> AsyncIterator[tuple[Any, Recorder, socket.socket, Any]]:
    """A server endpoint on 127.0.0.1 that has received one datagram from a
    client socket: (the server, its protocol, the client, the address the
    datagram came from). Both are closed after."""
    server, rec = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
    client = _client(socket.AF_INET, "127.0.0.1")
    try:
        client.sendto(b"hi", server.get_extra_info("sockname"))
        _, addr = await rec.datagrams.get()
        yield server, rec, client, addr
    finally:
        client.close()
        server.close()


@pytest.mark.parametrize(
    ("server_host", "client_host"),
    [("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("::", "127.0.0.1")],
    ids=["ipv4", "ipv6", "ipv4-mapped"],
)
def test_sender_address_is_the_socket_modules(
    loop: asyncio.AbstractEventLoop, server_host: str, client_host: str
) -> None:
    # The address datagram_received gets is the tuple socket.recvfrom would
    # give: (host, port) for IPv4; (host, port, flowinfo, scope_id) for
    # IPv6, an IPv4 sender of a dual-stack socket as ::ffff:a.b.c.d.
    if ":" in server_host and not _has_ipv6():
        pytest.skip("no IPv6 loopback")

    async def main() -> None:
        server, echo = await loop.create_datagram_endpoint(Echo, local_addr=(server_host, 0))
        port = server.get_extra_info("sockname")[1]
        family = socket.AF_INET6 if ":" in client_host else socket.AF_INET
        target = ("::1" if server_host == "::1" else "127.0.0.1", port)
        clients = [_client(family, client_host) for _ in range(3)]
        try:
            for round_ in range(2):
                for i, client in enumerate(clients):
                    word = b"%d-%d" % (round_, i)
                    client.sendto(word, target)
                    assert await _recv(client) == word
                    data, addr = await echo.datagrams.get()
                    name = client.getsockname()
                    if server_host == "::":
                        name = ("::ffff:" + name[0], name[1], 0, 0)
                    assert (data, addr, type(addr)) == (word, name, tuple)
                    assert [type(x) for x in addr] == [type(x) for x in name]
        finally:
            for client in clients:
                client.close()
            server.close()

    run(loop, main())


@pytest.mark.parametrize("by_name", [False, True], ids=["addresses", "host-name"])
def test_replies_to_any_form_of_the_address(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest, by_name: bool
) -> None:
    # The tuple received, a copy of it, one built by hand, or one naming
    # the host all reach the same peer.
    if by_name:
        xfail_for(request, ["uvloop"], "uvloop's sendto takes no host name", loop_name)

    async def main() -> None:
        async with _heard_from_a_client(loop) as (server, _, client, addr):
            port = client.getsockname()[1]
            forms = [("localhost", port)] if by_name else [addr, addr[:1] + addr[1:], ("127.0.0.1", port)]
            for n, to in enumerate(forms):
                server.sendto(b"reply %d" % n, to)
                assert await _recv(client) == b"reply %d" % n

    run(loop, main())


def test_sendto_takes_any_bytes_like_object(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> list[bytes]:
        async with _heard_from_a_client(loop) as (server, _, client, addr):
            for data in (b"bytes", bytearray(b"bytearray"), memoryview(b"xmemoryview")[1:]):
                server.sendto(data, addr)
            return [await _recv(client) for _ in range(3)]

    assert run(loop, main()) == [b"bytes", b"bytearray", b"memoryview"]


def test_sendto_of_nothing_as_the_running_python(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    # An empty datagram is sent (3.13+) or nothing is (before); the
    # datagram sent after it tells which.
    if SENDS_EMPTY_DATAGRAMS:
        xfail_for(request, ["uvloop"], "uvloop never sends an empty datagram", loop_name)

    async def main() -> list[bytes]:
        async with _heard_from_a_client(loop) as (server, _, client, addr):
            server.sendto(b"", addr)
            server.sendto(b"last", addr)
            return [await _recv(client) for _ in range(2 if SENDS_EMPTY_DATAGRAMS else 1)]

    assert run(loop, main()) == ([b"", b"last"] if SENDS_EMPTY_DATAGRAMS else [b"last"])


def test_a_failed_send_goes_to_error_received(loop: asyncio.AbstractEventLoop) -> None:
    # A datagram larger than UDP carries: EMSGSIZE to error_received, and
    # the transport goes on.
    async def main() -> None:
        async with _heard_from_a_client(loop) as (server, rec, client, addr):
            server.sendto(b"x" * 70000, addr)
            exc = await asyncio.wait_for(rec.errors.get(), 10)
            assert isinstance(exc, OSError)
            assert exc.errno == errno.EMSGSIZE
            assert not server.is_closing()
            server.sendto(b"still here", addr)
            assert await _recv(client) == b"still here"

    run(loop, main())


def test_a_protocol_set_mid_stream_gets_the_next_datagrams(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # Datagrams waiting together: the first one's handler swaps the
    # protocol, and the rest go to the new one.
    async def main() -> tuple[list[bytes], list[bytes]]:
        second = Recorder()

        class Swapping(Recorder):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                super().datagram_received(data, addr)
                assert self.transport is not None
                self.transport.set_protocol(second)

        server, first = await loop.create_datagram_endpoint(
            Swapping, local_addr=("127.0.0.1", 0)
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for i in range(4):
                sender.sendto(b"%d" % i, server.get_extra_info("sockname"))
            got_second = [(await asyncio.wait_for(second.datagrams.get(), 10))[0] for _ in range(3)]
        server.close()
        return [first.datagrams.get_nowait()[0]], got_second

    assert run(loop, main()) == ([b"0"], [b"1", b"2", b"3"])


def test_a_server_answers_more_peers_than_it_keeps(loop: asyncio.AbstractEventLoop) -> None:
    # 1,100 senders, one after the other, each from a new port: every one
    # is answered at its own address.
    async def main() -> int:
        server, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        answered = 0
        try:
            for i in range(1100):
                with _client(socket.AF_INET, "127.0.0.1") as client:
                    client.sendto(b"%d" % i, server.get_extra_info("sockname"))
                    answered += await _recv(client) == b"%d" % i
        finally:
            server.close()
        return answered

    assert run(loop, main(), timeout=60) == 1100


def test_sendto_after_close_sends_nothing_through_a_reused_fd(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # Once connection_lost has run, the transport's socket is closed and a
    # new socket may get its fd: a sendto then must not go out through it.
    async def main() -> bytes:
        async with _heard_from_a_client(loop) as (server, rec, peer, addr):
            server.close()
            await rec.lost
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as new:
                with contextlib.suppress(Exception):  # asyncio's own raises here
                    server.sendto(b"stale", addr)
                new.sendto(b"sentinel", peer.getsockname())
                return await _recv(peer)

    assert run(loop, main()) == b"sentinel"


def test_a_connected_endpoint_sends_to_its_peer(loop: asyncio.AbstractEventLoop) -> None:
    # Made with remote_addr: sendto(data) and sendto(data, None) reach the
    # peer; so does the peer's own address; another address is refused.
    async def main() -> None:
        peer = _client(socket.AF_INET, "127.0.0.1")
        address = peer.getsockname()
        client, rec = await loop.create_datagram_endpoint(Recorder, remote_addr=address)
        try:
            client.sendto(b"one")
            client.sendto(b"two", None)
            client.sendto(b"three", address)
            assert [await _recv(peer) for _ in range(3)] == [b"one", b"two", b"three"]
            with pytest.raises(ValueError):
                client.sendto(b"four", ("127.0.0.2", address[1]))
            # And what the peer sends back comes with the peer's address.
            peer.sendto(b"back", client.get_extra_info("sockname"))
            assert await asyncio.wait_for(rec.datagrams.get(), 10) == (b"back", address)
        finally:
            client.close()
            peer.close()

    run(loop, main())


def test_a_connected_endpoint_reports_a_refused_send(loop: asyncio.AbstractEventLoop) -> None:
    # The peer's port is closed: the ICMP error reaches error_received,
    # as ConnectionRefusedError, from the next receive or send.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        address = gone.getsockname()

    async def main() -> list[type[BaseException]]:
        client, rec = await loop.create_datagram_endpoint(Recorder, remote_addr=address)
        try:
            errors = []
            for _ in range(2):
                client.sendto(b"anyone?")
                errors.append(type(await asyncio.wait_for(rec.errors.get(), 10)))
            assert not client.is_closing()
            return errors
        finally:
            client.close()

    assert run(loop, main()) == [ConnectionRefusedError, ConnectionRefusedError]
