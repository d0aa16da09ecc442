"""TCP-specific loop APIs: create_server/create_connection options, Server,
getaddrinfo/getnameinfo, the sock_* functions, bad input, and TLS refusal."""

from __future__ import annotations

import asyncio
import re
import socket
import weakref
from typing import Any

import pytest
from conftest import run, xfail_for
from net_helpers import Echo, Recorder


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


async def _line_echoed(line: bytes, *where: Any, **how: Any) -> bytes:
    """Sends `line` over a connection open_connection(*where, **how) opens
    and returns the line read back."""
    reader, writer = await asyncio.open_connection(*where, **how)
    writer.write(line)
    echoed = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return echoed


def test_create_server_host_list_and_family(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> set[int]:
        hosts = ["127.0.0.1", "::1"] if _has_ipv6() else ["127.0.0.1"]
        server = await loop.create_server(Echo, hosts, 0)
        families = {s.family for s in server.sockets}
        assert len(server.sockets) == len(hosts)
        server.close()
        await server.wait_closed()
        v4 = await loop.create_server(Echo, "127.0.0.1", 0, family=socket.AF_INET)
        assert {s.family for s in v4.sockets} == {socket.AF_INET}
        v4.close()
        await v4.wait_closed()
        return families

    families = run(loop, main())
    assert socket.AF_INET in families


def test_create_server_sock_and_reuse(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bytes:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = await loop.create_server(Echo, sock=sock, backlog=5)
        assert server.get_loop() is loop
        assert server.is_serving()
        port = server.sockets[0].getsockname()[1]
        line = await _line_echoed(b"ping\n", "127.0.0.1", port)
        server.close()
        await server.wait_closed()
        # reuse_port lets two servers share a port.
        a = await loop.create_server(Echo, "127.0.0.1", 0, reuse_port=True)
        port = a.sockets[0].getsockname()[1]
        b = await loop.create_server(Echo, "127.0.0.1", port, reuse_port=True)
        for srv in (a, b):
            srv.close()
            await srv.wait_closed()
        return line

    assert run(loop, main()) == b"ping\n"


def test_sockets_whose_family_attribute_is_wrong(loop: asyncio.AbstractEventLoop) -> None:
    # socket.fromfd(fd, AF_UNIX, ...) names a TCP socket AF_UNIX (uvicorn's
    # --fd does this); asyncio serves and connects it as the TCP socket it is.
    async def main() -> tuple[bytes, bytes, str]:
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        served = socket.fromfd(listener.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
        listener.close()
        peers: list[Any] = []

        class Recording(Echo):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                peers.append(transport.get_extra_info("peername"))
                super().connection_made(transport)

        server = await loop.create_server(Recording, sock=served)
        served_line = await _line_echoed(b"served\n", "127.0.0.1", port)
        # A connected socket named AF_UNIX, handed to create_connection.
        plain = socket.create_connection(("127.0.0.1", port))
        named = socket.fromfd(plain.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
        plain.close()
        connected_line = await _line_echoed(b"connected\n", sock=named)
        server.close()
        await server.wait_closed()
        return served_line, connected_line, peers[0][0]

    assert run(loop, main()) == (b"served\n", b"connected\n", "127.0.0.1")


def test_server_async_with_and_start_serving(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bool, bool, bool]:
        server = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False)
        before = server.is_serving()
        async with server:
            await server.start_serving()
            during = server.is_serving()
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"x\n")
            assert await reader.readline() == b"x\n"
            writer.close()
            await writer.wait_closed()
        return before, during, server.is_serving()

    assert run(loop, main()) == (False, True, False)


def test_create_connection_local_addr_and_sock(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        host, port = server.sockets[0].getsockname()
        rec = Recorder(loop)
        transport, _ = await loop.create_connection(
            lambda: rec, host, port, local_addr=("127.0.0.1", 0)
        )
        assert transport.get_extra_info("sockname")[0] == "127.0.0.1"
        transport.close()
        await rec.lost
        sock = socket.create_connection((host, port))
        rec2 = Recorder(loop)
        transport2, _ = await loop.create_connection(lambda: rec2, sock=sock)
        rec2.expect = 3
        transport2.write(b"abc")
        await rec2.got_all
        transport2.close()
        await rec2.lost
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_happy_eyeballs_and_interleave(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(request, ["uvloop"], "uvloop has no happy_eyeballs_delay/interleave", loop_name)

    async def main() -> bytes:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        rec = Recorder(loop)
        rec.expect = 2
        transport, _ = await loop.create_connection(
            lambda: rec, "localhost", port, happy_eyeballs_delay=0.05, interleave=1
        )
        transport.write(b"hi")
        await rec.got_all
        transport.close()
        await rec.lost
        server.close()
        await server.wait_closed()
        return bytes(rec.data)

    assert run(loop, main()) == b"hi"


def test_connect_accepted_socket(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bytes:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        listener.close()
        rec = Recorder(loop)
        transport, _ = await loop.connect_accepted_socket(lambda: rec, accepted)
        rec.expect = 5
        client.sendall(b"hello")
        await rec.got_all
        transport.write(b"back")
        data = await loop.run_in_executor(None, client.recv, 4)
        transport.close()
        await rec.lost
        client.close()
        return bytes(rec.data) + data

    assert run(loop, main()) == b"helloback"


def test_getaddrinfo_getnameinfo(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        infos = await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        assert infos == socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        name = await loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST)
        assert name[0] == "127.0.0.1"
        with pytest.raises(socket.gaierror):
            await loop.getaddrinfo("no-such-host.invalid", 80)

    run(loop, main())


def test_sock_functions(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bytes, int, bytes]:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        client = socket.socket()
        client.setblocking(False)
        accept = loop.create_task(loop.sock_accept(listener))
        await loop.sock_connect(client, listener.getsockname())
        conn, _ = await accept
        conn.setblocking(False)
        recv = loop.create_task(loop.sock_recv(conn, 100))
        await asyncio.sleep(0)
        await loop.sock_sendall(client, b"first")
        first = await recv
        buf = bytearray(10)
        await loop.sock_sendall(client, b"second")
        n = await loop.sock_recv_into(conn, buf)
        big = b"z" * (4 << 20)
        sender = loop.create_task(loop.sock_sendall(conn, big))
        got = bytearray()
        while len(got) < len(big):
            got += await loop.sock_recv(client, 1 << 20)
        await sender
        for s in (listener, client, conn):
            s.close()
        assert bytes(got) == big
        return first, n, bytes(buf[:n])

    assert run(loop, main()) == (b"first", 6, b"second")


def test_sock_datagram_functions(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(request, ["uvloop"], "uvloop has no sock_recvfrom/sock_sendto", loop_name)

    async def main() -> tuple[bytes, int, bytes]:
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (a, b):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        recv = loop.create_task(loop.sock_recvfrom(b, 100))
        await asyncio.sleep(0)
        await loop.sock_sendto(a, b"dgram", b.getsockname())
        data, addr = await recv
        assert addr == a.getsockname()
        buf = bytearray(16)
        await loop.sock_sendto(a, b"into", b.getsockname())
        n, addr2 = await loop.sock_recvfrom_into(b, buf)
        assert addr2 == a.getsockname()
        a.close()
        b.close()
        return data, n, bytes(buf[:n])

    assert run(loop, main()) == (b"dgram", 4, b"into")


def test_bad_arguments(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        sock = socket.socket()
        try:
            with pytest.raises(ValueError):
                await loop.create_server(Echo, "127.0.0.1", 0, sock=sock)
            with pytest.raises(ValueError):
                await loop.create_connection(Echo)
            with pytest.raises(ValueError):
                await loop.create_server(Echo)
            with pytest.raises(TypeError):
                await loop.create_server(Echo, "127.0.0.1", 0, ssl=True)  # type: ignore[arg-type]
            with pytest.raises(ValueError):
                await loop.create_connection(Echo, "127.0.0.1", 1, server_hostname="x")
        finally:
            sock.close()

    run(loop, main())


def test_bind_error_is_oserror(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(OSError) as info:
            await loop.create_server(Echo, "127.0.0.1", port, reuse_address=False)
        assert info.value.errno is not None
        server.close()
        await server.wait_closed()

    run(loop, main())


# rloop-only: behaviour stock asyncio 3.11 has not got, or refuses differently.


@pytest.fixture
def rloop_loop(loop_name: str, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
    if loop_name not in ("rloop", "tokio"):
        pytest.skip("rloop-specific behaviour")
    return loop


def test_close_clients_and_abort_clients(rloop_loop: asyncio.AbstractEventLoop) -> None:
    loop = rloop_loop

    async def main() -> tuple[list[BaseException | None], bool]:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        recs = [Recorder(loop) for _ in range(3)]
        for rec in recs:
            await loop.create_connection(lambda rec=rec: rec, "127.0.0.1", port)  # type: ignore[misc]
        while len(server._clients) < 3:  # type: ignore[attr-defined]
            await asyncio.sleep(0.001)
        server.close_clients()  # type: ignore[attr-defined]
        excs = [await rec.lost for rec in recs]
        more = Recorder(loop)
        server2 = await loop.create_server(lambda: more, "127.0.0.1", 0)
        port2 = server2.sockets[0].getsockname()[1]
        peer = Recorder(loop)
        await loop.create_connection(lambda: peer, "127.0.0.1", port2)
        await more.made
        server2.abort_clients()  # type: ignore[attr-defined]
        await peer.lost
        for srv in (server, server2):
            srv.close()
            await srv.wait_closed()
        return excs, more.lost.done()

    excs, aborted = run(loop, main())
    assert excs == [None, None, None]
    assert aborted


class _Unreading(asyncio.Protocol):
    """Never reads: the peer's writes back up."""

    transports: list[asyncio.Transport]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.pause_reading()  # type: ignore[attr-defined]
        self.transports.append(transport)  # type: ignore[arg-type]


def test_transport_repr(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    """asyncio's layout: state, fd, read= and write=<state, bufsize=N>."""
    xfail_for(request, ["uvloop"], "uvloop's transports have a repr of their own", loop_name)

    async def main() -> list[str]:
        accepted: list[asyncio.Transport] = []
        _Unreading.transports = accepted
        server = await loop.create_server(_Unreading, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, protocol = await loop.create_connection(
            lambda: Recorder(loop), "127.0.0.1", port
        )
        seen = [repr(transport)]
        transport.pause_reading()
        seen.append(repr(transport))
        transport.resume_reading()
        transport.write(b"x" * (16 << 20))  # more than the kernel's buffers take
        size = transport.get_write_buffer_size()
        assert size > 0
        seen.append(repr(transport).replace(f"bufsize={size}>", "bufsize=N>"))
        transport.abort()
        seen.append(repr(transport))
        await protocol.lost
        seen.append(repr(transport))
        for peer in accepted:  # it reads nothing, so it would never see the end
            peer.abort()
        server.close()
        await server.wait_closed()
        name = type(transport).__name__
        return [re.sub(r"fd=\d+", "fd=F", s.replace(f"<{name} ", "<T ")) for s in seen]

    assert run(loop, main()) == [
        "<T fd=F read=polling write=<idle, bufsize=0>>",
        "<T fd=F read=idle write=<idle, bufsize=0>>",
        "<T fd=F read=polling write=<polling, bufsize=N>>",
        "<T closing fd=F read=idle write=<idle, bufsize=0>>",
        "<T closed fd=F>",  # the transport has let go of its loop
    ]


@pytest.mark.parametrize("debug", [False, True], ids=["normal", "debug"])
def test_failing_protocol_factory_reported_in_debug_only(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest, debug: bool
) -> None:
    """A protocol factory that raises drops the connection; asyncio tells the
    exception handler in debug mode only."""
    xfail_for(request, ["uvloop"], "uvloop reports it always, and keeps the connection", loop_name)
    contexts: list[dict[str, Any]] = []
    reported = loop.create_future()

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        contexts.append(context)
        if not reported.done():
            reported.set_result(None)

    def factory() -> asyncio.Protocol:
        raise RuntimeError("no protocol today")

    loop.set_exception_handler(handler)
    loop.set_debug(debug)

    async def main() -> bytes:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if debug:
            # The context holds the exception, whose traceback may hold the
            # socket (asyncio's does): wait for the report, not for the end.
            await reported
            data = b""
        else:
            data = await reader.read()  # the server side is dropped at once
        writer.close()
        server.close()
        await server.wait_closed()
        return data

    assert run(loop, main()) == b""
    messages = [c.get("message") for c in contexts]
    if debug:
        assert messages == ["Error on transport creation for incoming connection"]
        assert isinstance(contexts[0]["exception"], RuntimeError)
    else:
        assert messages == []


def test_transport_methods_as_asyncio_takes_them(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    """write() by keyword, is_closing() through and after close, the
    argument errors, and a transport that takes attributes and weak
    references, as asyncio's does."""
    xfail_for(request, ["uvloop"], "uvloop's write() takes no keyword", loop_name)

    async def main() -> tuple[bytes, list[bool], list[type[BaseException]], bool]:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, protocol = await loop.create_connection(
            lambda: Recorder(loop), "127.0.0.1", port
        )
        protocol.expect = len(b"by keyword and by position")
        transport.write(data=b"by keyword ")
        transport.write(memoryview(b"and by position"))
        await protocol.got_all
        errors: list[type[BaseException]] = []
        for bad in ((), (b"a", b"b"), ("text",)):
            try:
                transport.write(*bad)  # type: ignore[arg-type]
            except BaseException as exc:  # noqa: BLE001 - the type is the check
                errors.append(type(exc))
        transport.note = "kept"  # type: ignore[attr-defined]
        ref = weakref.ref(transport)
        closing = [transport.is_closing()]
        transport.close()
        closing.append(transport.is_closing())
        await protocol.lost
        closing.append(transport.is_closing())
        server.close()
        await server.wait_closed()
        kept = ref() is transport and transport.note == "kept"  # type: ignore[attr-defined]
        return bytes(protocol.data), closing, errors, kept

    data, closing, errors, kept = run(loop, main())
    assert data == b"by keyword and by position"
    assert closing == [False, True, True]
    assert errors == [TypeError] * 3
    assert kept
