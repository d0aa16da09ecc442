"""loop.create_datagram_endpoint and the UDP transport: datagrams both ways,
addresses, errors, close and bad input, as asyncio's own loop gives them.
Everything on 127.0.0.1 (and ::1 when the machine has it)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from conftest import run, xfail_for


class Recorder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.datagrams: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.errors: asyncio.Queue[Exception] = asyncio.Queue()
        self.lost: asyncio.Future[Exception | None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        self.errors.put_nowait(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)


class Echo(Recorder):
    def datagram_received(self, data: bytes, addr: Any) -> None:
        super().datagram_received(data, addr)
        assert self.transport is not None
        self.transport.sendto(data.upper(), addr)


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_echo_both_ways(loop: asyncio.AbstractEventLoop, host: str) -> None:
    if host == "::1" and not _has_ipv6():
        pytest.skip("no IPv6 loopback")

    async def main() -> None:
        server, echo = await loop.create_datagram_endpoint(Echo, local_addr=(host, 0))
        address = server.get_extra_info("sockname")
        client, rec = await loop.create_datagram_endpoint(Recorder, remote_addr=address[:2])
        assert client.get_extra_info("peername")[:2] == address[:2]
        for word in (b"one", b"two", b"three"):
            client.sendto(word)
            data, addr = await rec.datagrams.get()
            assert (data, addr[:2]) == (word.upper(), address[:2])
        seen = [echo.datagrams.get_nowait()[0] for _ in range(3)]
        assert seen == [b"one", b"two", b"three"]
        client.close()
        server.close()
        assert await rec.lost is None
        assert await echo.lost is None

    run(loop, main())


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_largest_datagrams_arrive_whole(loop: asyncio.AbstractEventLoop, host: str) -> None:
    # UDP's largest payload over IPv4 (65,507 bytes), and over IPv6 on
    # loopback (65,527), each received in one piece.
    if host == "::1" and not _has_ipv6():
        pytest.skip("no IPv6 loopback")
    size = 65507 if host == "127.0.0.1" else 65527

    async def main() -> list[int]:
        server, rec = await loop.create_datagram_endpoint(Recorder, local_addr=(host, 0))
        address = server.get_extra_info("sockname")[:2]
        family = socket.AF_INET if host == "127.0.0.1" else socket.AF_INET6
        with socket.socket(family, socket.SOCK_DGRAM) as sender:
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            payloads = [bytes([i]) * size for i in range(3)] + [b"small"]
            got = []
            for payload in payloads:  # one at a time: no receive buffer overflows
                sender.sendto(payload, address)
                got.append((await asyncio.wait_for(rec.datagrams.get(), 10))[0])
        server.close()
        assert got == payloads
        return [len(g) for g in got]

    assert run(loop, main()) == [size, size, size, 5]


def test_nothing_is_delivered_after_close_or_while_paused(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(
        request, ["uvloop"], "uvloop delivers the datagrams it already read after pause_reading",
        loop_name,
    )  # fmt: skip

    # Datagrams queued together: the protocol pauses reading on the first,
    # resumes later, and closes the transport on the third.
    class Stopping(Recorder):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            super().datagram_received(data, addr)
            assert self.transport is not None
            events.append(data)
            if data == b"0":
                self.transport.pause_reading()  # type: ignore[attr-defined]
                loop.call_soon(self.resume)
            if data == b"2":
                self.transport.close()

        def resume(self) -> None:
            events.append("resumed")
            self.transport.resume_reading()  # type: ignore[union-attr]

    events: list[bytes | str] = []

    async def main() -> list[bytes]:
        server, rec = await loop.create_datagram_endpoint(Stopping, local_addr=("127.0.0.1", 0))
        address = server.get_extra_info("sockname")[:2]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for i in range(6):
                sender.sendto(str(i).encode(), address)
            assert await asyncio.wait_for(rec.lost, 10) is None
        got = []
        while not rec.datagrams.empty():
            got.append(rec.datagrams.get_nowait()[0])
        return got

    assert run(loop, main()) == [b"0", b"1", b"2"]
    assert events == [b"0", "resumed", b"1", b"2"]


def test_datagrams_read_together_survive_a_raising_protocol(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Datagrams queued together, and datagram_received raises on the
    second: the loop's exception handler gets it, the endpoint stays open,
    and every datagram still comes, in order (a loop that reads several
    before it delivers them must not lose those read with the one that
    raised)."""

    class Raising(Recorder):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            super().datagram_received(data, addr)
            if data == b"1":
                raise RuntimeError("boom")

    errors: list[BaseException | None] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context.get("exception")))

    async def main() -> list[bytes]:
        server, rec = await loop.create_datagram_endpoint(Raising, local_addr=("127.0.0.1", 0))
        address = server.get_extra_info("sockname")[:2]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for i in range(6):
                sender.sendto(str(i).encode(), address)
            got = [(await asyncio.wait_for(rec.datagrams.get(), 10))[0] for _ in range(6)]
        assert not server.is_closing()
        server.close()
        return got

    assert run(loop, main()) == [str(i).encode() for i in range(6)]
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)


def test_unconnected_endpoint_sends_to_any_address(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, echo = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        address = server.get_extra_info("sockname")
        free, rec = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        free.sendto(b"hello", address)
        data, addr = await rec.datagrams.get()
        assert (data, addr) == (b"HELLO", address)
        _, sender = await echo.datagrams.get()
        assert sender == free.get_extra_info("sockname")
        free.close()
        server.close()

    run(loop, main())


def test_existing_socket(loop: asyncio.AbstractEventLoop) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)

    async def main() -> bytes:
        transport, rec = await loop.create_datagram_endpoint(Recorder, sock=sock)
        assert transport.get_extra_info("socket").fileno() == sock.fileno()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.sendto(b"to the socket", sock.getsockname())
            data, _ = await rec.datagrams.get()
        transport.close()
        await rec.lost
        return data

    assert run(loop, main()) == b"to the socket"


def test_refused_port_reports_error_received(loop: asyncio.AbstractEventLoop) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        closed_address = gone.getsockname()

    async def main() -> Exception:
        client, rec = await loop.create_datagram_endpoint(Recorder, remote_addr=closed_address)
        client.sendto(b"anyone?")
        exc = await rec.errors.get()
        client.close()
        return exc

    assert isinstance(run(loop, main()), ConnectionRefusedError)


def test_abort_ends_at_once(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> Exception | None:
        transport, rec = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        transport.abort()
        assert transport.is_closing()
        return await rec.lost

    assert run(loop, main()) is None


def test_sendto_refuses_non_bytes(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        transport, _ = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        try:
            with pytest.raises(TypeError):
                transport.sendto("text", transport.get_extra_info("sockname"))  # type: ignore[arg-type]
        finally:
            transport.close()

    run(loop, main())


def test_no_address_and_no_family_is_value_error(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(ValueError):
        run(loop, loop.create_datagram_endpoint(Recorder))


def test_socket_of_the_transport_is_refused_to_sock_recv(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        transport, _ = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        sock = socket.socket(fileno=transport.get_extra_info("socket").fileno())
        try:
            with pytest.raises(RuntimeError, match="is used by transport"):
                await loop.sock_recv(sock, 10)
        finally:
            sock.detach()
            transport.close()

    run(loop, main())
