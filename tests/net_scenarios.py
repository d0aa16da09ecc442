"""Connection scenarios run over both TCP (tests/tcp) and Unix sockets
(tests/unix), on every loop, with the same assertions. The `kind` fixture of
each folder picks the family. A server's own life (closing it with
clients connected, serve_forever() cancelled) is in server_scenarios.py."""

from __future__ import annotations

import asyncio
import resource
import socket
import struct

import pytest
from conftest import run, xfail_for
from net_helpers import (
    DEADLINE,
    Echo,
    Endpoint,
    Recorder,
    endpoint,
    fd_count,
    wait_lost,
    wait_made,
)

__all__ = [
    "endpoint",
    "test_abort_drops_pending_data",
    "test_buffered_protocol_echo",
    "test_close_flushes_pending_data",
    "test_echo_sizes",
    "test_eof_received_true_keeps_half_open",
    "test_extra_info",
    "test_half_close_client_side",
    "test_many_concurrent_connections",
    "test_no_fd_leak",
    "test_pause_reading_stops_data_received",
    "test_peer_reset",
    "test_protocol_error_reaches_handler_and_loop_goes_on",
    "test_resume_writing_after_close_may_still_write",
    "test_streams_echo",
    "test_write_bad_input",
    "test_write_buffer_flow_control",
]


@pytest.mark.parametrize("size", [1, 1000, 65536, 1 << 20, 16 << 20])
def test_echo_sizes(loop: asyncio.AbstractEventLoop, endpoint: Endpoint, size: int) -> None:
    async def main() -> bytes:
        server = await endpoint.serve(loop, Echo)
        rec = Recorder(loop)
        rec.expect = size
        transport, _ = await endpoint.connect(loop, server, lambda: rec)
        payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
        transport.write(payload)
        await rec.got_all
        transport.close()
        await rec.lost
        server.close()
        await server.wait_closed()
        assert bytes(rec.data) == payload
        return bytes(rec.data)

    assert len(run(loop, main(), timeout=30)) == size


def test_streams_echo(loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> list[bytes]:
        if endpoint.kind == "tcp":
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
        else:
            server = await asyncio.start_unix_server(handle, endpoint.path)
        reader, writer = await endpoint.open(server)
        replies = []
        for word in (b"alpha\n", b"beta\n", b"gamma\n"):
            writer.write(word)
            await writer.drain()
            replies.append(await reader.readline())
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return replies

    assert run(loop, main()) == [b"ALPHA\n", b"BETA\n", b"GAMMA\n"]


class BufferedEcho(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.buf = bytearray(4096)
        self.sizes: list[int] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.sizes.append(nbytes)
        self.transport.write(bytes(self.buf[:nbytes]))

    def eof_received(self) -> bool:
        self.transport.close()
        return False


def test_buffered_protocol_echo(loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
    protos: list[BufferedEcho] = []

    def factory() -> BufferedEcho:
        protos.append(BufferedEcho())
        return protos[-1]

    async def main() -> bytes:
        server = await endpoint.serve(loop, factory)
        rec = Recorder(loop)
        payload = b"xyz" * 100_000
        rec.expect = len(payload)
        transport, _ = await endpoint.connect(loop, server, lambda: rec)
        transport.write(payload)
        await rec.got_all
        transport.close()
        await rec.lost
        server.close()
        await server.wait_closed()
        return bytes(rec.data)

    assert run(loop, main()) == b"xyz" * 100_000
    # The protocol's 4 KiB buffer bounds every read.
    assert protos and max(protos[0].sizes) <= 4096


def test_many_concurrent_connections(loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8 * n), hard))

    async def one(server: asyncio.AbstractServer, i: int) -> bytes:
        reader, writer = await endpoint.open(server)
        writer.write(b"%d\n" % i)
        line = await reader.readline()
        writer.close()
        await writer.wait_closed()
        return line

    async def main() -> list[bytes]:
        server = await endpoint.serve(loop, Echo, backlog=n)
        replies = await asyncio.gather(*[one(server, i) for i in range(n)])
        server.close()
        await server.wait_closed()
        return replies

    assert run(loop, main(), timeout=60) == [b"%d\n" % i for i in range(n)]


def test_peer_reset(loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
    if endpoint.kind == "unix":
        pytest.skip("SO_LINGER reset is a TCP notion")

    async def main() -> BaseException | None:
        rec = Recorder(loop)
        server = await endpoint.serve(loop, lambda: rec)
        peer = endpoint.client_socket(server)
        await rec.made
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()  # RST
        exc = await rec.lost
        server.close()
        await server.wait_closed()
        return exc

    exc = run(loop, main())
    assert isinstance(exc, ConnectionResetError)


def test_half_close_client_side(loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
    """The client sends EOF; the server still answers, then closes."""
    server_rec: list[Recorder] = []

    class Answering(Recorder):
        def eof_received(self) -> bool:
            super().eof_received()
            assert self.transport is not None
            self.transport.write(b"got " + bytes(self.data))
            self.transport.close()
            return True

    def factory() -> Recorder:
        server_rec.append(Answering(loop))
        return server_rec[-1]

    async def main() -> tuple[bytes, list[str]]:
        server = await endpoint.serve(loop, factory)
        rec = Recorder(loop)
        transport, _ = await endpoint.connect(loop, server, lambda: rec)
        assert transport.can_write_eof()
        transport.write(b"question")
        transport.write_eof()
        with pytest.raises(RuntimeError):
            transport.write(b"more")
        await rec.eof
        await rec.lost
        await server_rec[0].lost
        server.close()
        await server.wait_closed()
        return bytes(rec.data), server_rec[0].events

    data, events = run(loop, main())
    assert data == b"got question"
    assert events == ["made", "data", "eof", "lost"]


def test_eof_received_true_keeps_half_open(
    loop: asyncio.AbstractEventLoop, endpoint: Endpoint
) -> None:
    """The server half-closes first; the client keeps its side open and answers."""

    async def main() -> bytes:
        client = Recorder(loop)
        client.keep_open_on_eof = True
        server_proto = Recorder(loop)
        server = await endpoint.serve(loop, lambda: server_proto)
        transport, _ = await endpoint.connect(loop, server, lambda: client)
        await server_proto.made
        assert server_proto.transport is not None
        server_proto.transport.write(b"ping")
        server_proto.transport.write_eof()
        await client.eof
        assert not transport.is_closing()
        transport.write(b"pong")
        server_proto.expect = 4
        await server_proto.got_all
        transport.close()
        await client.lost
        await server_proto.lost
        server.close()
        await server.wait_closed()
        return bytes(server_proto.data)

    assert run(loop, main()) == b"pong"


def test_pause_reading_stops_data_received(
    loop: asyncio.AbstractEventLoop, endpoint: Endpoint
) -> None:
    async def main() -> None:
        rec = Recorder(loop)
        server = await endpoint.serve(loop, lambda: rec)
        peer = endpoint.client_socket(server)
        await rec.made
        assert rec.transport is not None
        assert rec.transport.is_reading()
        rec.transport.pause_reading()
        assert not rec.transport.is_reading()
        peer.sendall(b"while paused")
        # Several full loop iterations with data waiting in the socket.
        for _ in range(20):
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        assert bytes(rec.data) == b""
        rec.expect = len(b"while paused")
        rec.transport.resume_reading()
        assert rec.transport.is_reading()
        await rec.got_all
        assert bytes(rec.data) == b"while paused"
        peer.close()
        await rec.lost
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_write_buffer_flow_control(loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
    async def main() -> list[str]:
        rec = Recorder(loop)
        server = await endpoint.serve(loop, lambda: rec)
        peer = endpoint.client_socket(server)
        peer.setblocking(False)
        await rec.made
        transport = rec.transport
        assert transport is not None
        transport.set_write_buffer_limits(high=16384, low=4096)
        assert transport.get_write_buffer_limits() == (4096, 16384)
        chunk = b"x" * 65536
        while "pause_writing" not in rec.events:
            transport.write(chunk)
        assert transport.get_write_buffer_size() > 16384
        # Drain the peer until the transport catches up.
        while "resume_writing" not in rec.events:
            try:
                peer.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.001)
        assert transport.get_write_buffer_size() <= 4096
        peer.close()
        await rec.lost
        server.close()
        await server.wait_closed()
        return [e for e in rec.events if e.endswith("_writing")]

    assert run(loop, main()) == ["pause_writing", "resume_writing"]


def _read_all(peer: socket.socket) -> bytes:
    chunks = []
    while chunk := peer.recv(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def test_close_flushes_pending_data(loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
    size = 8 << 20

    async def main() -> tuple[int, BaseException | None]:
        rec = Recorder(loop)
        server = await endpoint.serve(loop, lambda: rec)
        peer = endpoint.client_socket(server)
        await rec.made
        assert rec.transport is not None
        rec.transport.write(b"a" * size)
        assert rec.transport.get_write_buffer_size() > 0
        rec.transport.close()
        assert rec.transport.is_closing()
        received = await loop.run_in_executor(None, _read_all, peer)
        exc = await rec.lost
        peer.close()
        server.close()
        await server.wait_closed()
        return len(received), exc

    assert run(loop, main(), timeout=30) == (size, None)


class _TrailerOnResume(Recorder):
    """Writes a trailer from resume_writing(), as asyncio's SSL protocol
    writes its close_notify once a closing transport drains."""

    def resume_writing(self) -> None:
        super().resume_writing()
        assert self.transport is not None
        self.transport.write(b"TRAILER")


def test_resume_writing_after_close_may_still_write(
    loop: asyncio.AbstractEventLoop, endpoint: Endpoint
) -> None:
    size = 16 << 20

    async def main() -> tuple[bytes, list[str], BaseException | None]:
        rec = _TrailerOnResume(loop)
        server = await endpoint.serve(loop, lambda: rec)
        peer = endpoint.client_socket(server, rcvbuf=1 << 16)
        await rec.made
        assert rec.transport is not None
        rec.transport.write(b"a" * size)
        assert rec.events[-1] == "pause_writing"
        rec.transport.close()
        received = await loop.run_in_executor(None, _read_all, peer)
        exc = await rec.lost
        peer.close()
        server.close()
        await server.wait_closed()
        return received[size - 3 :], rec.events[-2:], exc

    # The protocol hears resume_writing() before connection_lost(), and what
    # it writes then still goes out before the close.
    assert run(loop, main(), timeout=30) == (b"aaaTRAILER", ["resume_writing", "lost"], None)


def test_abort_drops_pending_data(loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
    size = 8 << 20

    async def main() -> tuple[int, BaseException | None]:
        rec = Recorder(loop)
        server = await endpoint.serve(loop, lambda: rec)
        peer = endpoint.client_socket(server)
        await rec.made
        assert rec.transport is not None
        rec.transport.write(b"a" * size)
        rec.transport.abort()
        assert rec.transport.is_closing()
        exc = await rec.lost
        try:
            received = await loop.run_in_executor(None, _read_all, peer)
        except ConnectionResetError:
            received = b""
        peer.close()
        server.close()
        await server.wait_closed()
        return len(received), exc

    got, exc = run(loop, main(), timeout=30)
    assert got < size
    assert exc is None


def test_protocol_error_reaches_handler_and_loop_goes_on(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    loop_name: str,
    request: pytest.FixtureRequest,
) -> None:
    xfail_for(request, ["uvloop"], "uvloop words the exception-handler message its own way", loop_name)
    contexts: list[dict[str, object]] = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    class Failing(Recorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if data.startswith(b"boom"):
                raise ZeroDivisionError("protocol bug")

    protos: list[Recorder] = []

    def factory() -> Recorder:
        protos.append(Failing(loop))
        return protos[-1]

    async def main() -> tuple[bytes, BaseException | None]:
        server = await endpoint.serve(loop, factory)
        bad, _ = await endpoint.connect(loop, server, lambda: Recorder(loop))
        bad.write(b"boom")
        exc = await asyncio.wait_for(wait_lost(protos, 0), DEADLINE)
        # Another connection on the same server still works.
        good_rec = Recorder(loop)
        good, _ = await endpoint.connect(loop, server, lambda: good_rec)
        good.write(b"fine")
        await asyncio.wait_for(wait_made(protos, 1), DEADLINE)
        while bytes(protos[1].data) != b"fine":
            await asyncio.sleep(0.001)
        good.close()
        bad.close()
        server.close()
        await server.wait_closed()
        return bytes(protos[1].data), exc

    data, exc = run(loop, main())
    assert data == b"fine"
    assert isinstance(exc, ZeroDivisionError)
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)
    assert contexts[0]["message"] == "Fatal error: protocol.data_received() call failed."
    assert contexts[0]["protocol"] is protos[0]


def test_extra_info(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    loop_name: str,
    request: pytest.FixtureRequest,
) -> None:
    xfail_for(request, ["uvloop"], "uvloop's transports are not asyncio.Transport instances", loop_name)

    async def main() -> None:
        rec = Recorder(loop)
        server = await endpoint.serve(loop, lambda: rec)
        client_rec = Recorder(loop)
        transport, _ = await endpoint.connect(loop, server, lambda: client_rec)
        await rec.made
        assert isinstance(transport, asyncio.Transport)
        sock = transport.get_extra_info("socket")
        assert sock is not None
        assert transport.get_extra_info("nonexistent", "dflt") == "dflt"
        assert transport.get_protocol() is client_rec
        if endpoint.kind == "tcp":
            assert transport.get_extra_info("peername") == endpoint.address(server)
            assert rec.transport is not None
            assert rec.transport.get_extra_info("peername") == transport.get_extra_info(
                "sockname"
            )
            assert sock.family == socket.AF_INET
        else:
            assert transport.get_extra_info("peername") == endpoint.path
            assert sock.family == socket.AF_UNIX
        transport.close()
        await rec.lost
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_write_bad_input(loop: asyncio.AbstractEventLoop, endpoint: Endpoint) -> None:
    async def main() -> None:
        server = await endpoint.serve(loop, Echo)
        rec = Recorder(loop)
        transport, _ = await endpoint.connect(loop, server, lambda: rec)
        with pytest.raises(TypeError):
            transport.write("text")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            transport.set_write_buffer_limits(high=1, low=2)
        transport.write(b"")  # nothing, no error
        transport.close()
        await rec.lost
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_no_fd_leak(loop_name: str, endpoint: Endpoint) -> None:
    from conftest import make_loop

    def scenario() -> None:
        loop = make_loop(loop_name)
        try:

            async def main() -> None:
                server = await endpoint.serve(loop, Echo)
                for how in ("close", "abort", "peer"):
                    rec = Recorder(loop)
                    transport, _ = await endpoint.connect(loop, server, lambda r=rec: r)
                    transport.write(b"x" * 100_000)
                    if how == "close":
                        transport.close()
                    elif how == "abort":
                        transport.abort()
                    else:
                        transport.write_eof()
                    await rec.lost
                _reader, writer = await endpoint.open(server)
                writer.close()
                await writer.wait_closed()
                server.close()
                await server.wait_closed()

            run(loop, main())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    scenario()  # warm-up: lazily created fds (executor, caches) exist now
    before = fd_count()
    scenario()
    assert fd_count() == before
