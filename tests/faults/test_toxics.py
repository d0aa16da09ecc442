"""rloop.faults: each toxic's effect, measured exactly, on both rloop loops.

Faults are rloop's own API (no other loop has them), so these run on RLoop
and TokioLoop with the same assertions. Times are loop times
(``loop.time()``), the clock the toxics' deadlines run on; the upper bounds
are generous, the lower bounds exact.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import random
from typing import Any

import pytest
from conftest import RLOOP_NAMES, rloop_loop_name, run
from rloop import faults

HOST = "127.0.0.1"


# The rloop loops (overrides the suite's fixture, which has every loop).
loop_name = pytest.fixture(params=RLOOP_NAMES, name="loop_name")(rloop_loop_name)


class Recorder(asyncio.Protocol):
    """Records each data_received chunk with its loop time, the EOF and the
    connection_lost exception; optionally echoes."""

    def __init__(self, echo: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.echo = echo
        self.chunks: list[tuple[float, bytes]] = []
        self.transport: Any = None
        self.made = loop.create_future()
        self.eof = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.made.set_result(transport)

    def data_received(self, data: bytes) -> None:
        self.chunks.append((self.loop.time(), data))
        if self.echo:
            self.transport.write(data)

    def eof_received(self) -> None:
        if not self.eof.done():
            self.eof.set_result(self.loop.time())

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)

    def data(self) -> bytes:
        return b"".join(c for _, c in self.chunks)


async def serve(protocol: type[asyncio.Protocol] = Recorder, **kw: Any) -> tuple[Any, list[Any]]:
    """A server whose protocols are collected in the returned list."""
    loop = asyncio.get_running_loop()
    made: list[Any] = []

    def factory() -> Any:
        p = protocol(**kw)
        made.append(p)
        return p

    server = await loop.create_server(factory, HOST, 0)
    return server, made


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


async def first(made: list[Any]) -> Any:
    """The first protocol of a server, once it has connected."""
    while not made:
        await asyncio.sleep(0)
    await made[0].made
    return made[0]


async def read_all(reader: asyncio.StreamReader) -> bytes:
    return await reader.read()


def test_latency_upstream_delays_each_chunk(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, made = await serve()
        with faults.apply(server, faults.Plan().latency(80, direction="upstream")):
            _, w = await asyncio.open_connection(HOST, port_of(server))
            proto = await first(made)
            sent = loop.time()
            w.write(b"ping")
            while not proto.chunks:
                await asyncio.sleep(0.005)
            at, data = proto.chunks[0]
            assert data == b"ping"
            assert 0.080 <= at - sent < 0.6
            w.close()
        server.close()

    run(loop, main())


def test_latency_downstream_on_a_client_transport(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, _made = await serve(echo=True)
        r, w = await asyncio.open_connection(HOST, port_of(server))
        faults.apply(w, faults.Plan().latency(60, direction="downstream"))
        start = loop.time()
        w.write(b"x" * 100)
        assert await r.readexactly(100) == b"x" * 100
        assert 0.060 <= loop.time() - start < 0.6
        w.close()
        server.close()

    run(loop, main())


def slices_received(loop: asyncio.AbstractEventLoop, plan: faults.Plan, payload: bytes) -> list[int]:
    async def main() -> list[int]:
        server, made = await serve()
        faults.apply(server, plan)
        _, w = await asyncio.open_connection(HOST, port_of(server))
        proto = await first(made)
        w.write(payload)
        w.write_eof()
        await asyncio.wait_for(proto.eof, 5)
        assert proto.data() == payload
        w.close()
        server.close()
        return [len(c) for _, c in proto.chunks]

    return run(loop, main())


def test_slicer_upstream_sizes_reach_the_protocol(loop: asyncio.AbstractEventLoop) -> None:
    plan = faults.Plan().slicer(10, direction="upstream")
    assert slices_received(loop, plan, bytes(range(95))) == [10] * 9 + [5]


def test_seeded_slicer_repeats_exactly(loop: asyncio.AbstractEventLoop) -> None:
    payload = random.Random(3).randbytes(3000)

    def sizes(seed: int) -> list[int]:
        plan = faults.Plan(seed=seed).slicer(100, 60, delay_us=100, direction="upstream")
        return slices_received(loop, plan, payload)

    a, b, c = sizes(7), sizes(7), sizes(8)
    assert a == b
    assert a != c
    assert sum(a) == 3000
    assert all(40 <= n <= 160 for n in a[:-1])


def test_limit_data_downstream_cuts_at_the_exact_byte(loop: asyncio.AbstractEventLoop) -> None:
    payload = random.Random(5).randbytes(50_000)

    async def main() -> None:
        server, made = await serve()
        faults.apply(server, faults.Plan().limit_data(12_345, direction="downstream"))
        r, w = await asyncio.open_connection(HOST, port_of(server))
        proto = await first(made)
        proto.transport.write(payload)
        got = await asyncio.wait_for(r.read(), 5)
        assert len(got) == 12_345
        assert hashlib.sha256(got).digest() == hashlib.sha256(payload[:12_345]).digest()
        # The proxy-like close reaches the local side too.
        await asyncio.wait_for(proto.eof, 5)
        w.close()
        server.close()

    run(loop, main())


def test_limit_data_upstream_delivers_exactly_n_then_eof(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, made = await serve()
        faults.apply(server, faults.Plan().limit_data(7, direction="upstream"))
        _, w = await asyncio.open_connection(HOST, port_of(server))
        proto = await first(made)
        w.write(b"0123456789abcdef")
        await asyncio.wait_for(proto.eof, 5)
        assert proto.data() == b"0123456"
        w.close()
        server.close()

    run(loop, main())


def test_bandwidth_spreads_the_bytes(loop: asyncio.AbstractEventLoop) -> None:
    payload = bytes(30_000)

    async def main() -> None:
        server, made = await serve()
        faults.apply(server, faults.Plan().bandwidth(100, direction="downstream"))
        r, w = await asyncio.open_connection(HOST, port_of(server))
        proto = await first(made)
        start = loop.time()
        proto.transport.write(payload)
        got = await r.readexactly(len(payload))
        elapsed = loop.time() - start
        assert got == payload
        # 30 kB at 100 kB/s: 0.3 s (the first 20 ms step leaves at once).
        assert 0.26 <= elapsed < 2.0
        w.close()
        server.close()

    run(loop, main())


def test_timeout_passes_nothing_then_closes(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, made = await serve()
        faults.apply(server, faults.Plan().timeout(150, direction="upstream"))
        # The toxic's clock starts when the server accepts, so before the
        # client hears of its connection: time from before connecting.
        start = loop.time()
        r, w = await asyncio.open_connection(HOST, port_of(server))
        proto = await first(made)
        w.write(b"never seen")
        assert await asyncio.wait_for(r.read(), 5) == b""
        assert 0.150 <= loop.time() - start < 1.5
        at = await asyncio.wait_for(proto.eof, 5)
        assert at - start >= 0.150
        assert proto.data() == b""
        w.close()
        server.close()

    run(loop, main())


def test_reset_peer_is_a_reset_on_both_sides(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, made = await serve()
        faults.apply(server, faults.Plan().reset_peer(50))
        client = Recorder()
        await loop.create_connection(lambda: client, HOST, port_of(server))
        proto = await first(made)
        start = loop.time()
        local = await asyncio.wait_for(proto.lost, 5)
        remote = await asyncio.wait_for(client.lost, 5)
        assert isinstance(local, ConnectionResetError)
        assert isinstance(remote, ConnectionResetError)
        assert loop.time() - start >= 0.040
        server.close()

    run(loop, main())


def test_slow_close_holds_the_fin_back(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, made = await serve()
        faults.apply(server, faults.Plan().slow_close(120))
        r, w = await asyncio.open_connection(HOST, port_of(server))
        proto = await first(made)
        start = loop.time()
        proto.transport.write(b"bye")
        proto.transport.close()
        assert await asyncio.wait_for(r.read(), 5) == b"bye"
        assert 0.120 <= loop.time() - start < 1.5
        assert await asyncio.wait_for(proto.lost, 5) is None
        w.close()
        server.close()

    run(loop, main())


def test_read_error_after_bytes(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, made = await serve()
        faults.apply(server, faults.Plan().read_error(errno.ECONNRESET, after_bytes=5))
        _, w = await asyncio.open_connection(HOST, port_of(server))
        proto = await first(made)
        w.write(b"0123456789")
        exc = await asyncio.wait_for(proto.lost, 5)
        assert isinstance(exc, ConnectionResetError)
        assert exc.errno == errno.ECONNRESET
        assert proto.data() == b"01234"
        w.close()
        server.close()

    run(loop, main())


def test_write_error_after_bytes(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, made = await serve()
        faults.apply(server, faults.Plan().write_error(errno.EPIPE, after_bytes=3))
        r, w = await asyncio.open_connection(HOST, port_of(server))
        proto = await first(made)
        proto.transport.write(b"abcdef")
        exc = await asyncio.wait_for(proto.lost, 5)
        assert isinstance(exc, BrokenPipeError)
        assert await asyncio.wait_for(r.read(), 5) == b"abc"
        w.close()
        server.close()

    run(loop, main())


def test_panic_ends_only_that_connection(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, made = await serve(echo=True)
        _r1, w1 = await asyncio.open_connection(HOST, port_of(server))
        p1 = await first(made)
        faults.apply(p1.transport, faults.Plan().panic(after_bytes=4))
        r2, w2 = await asyncio.open_connection(HOST, port_of(server))
        w1.write(b"12345678")
        exc = await asyncio.wait_for(p1.lost, 5)
        assert exc is not None and "panic" in str(exc)
        assert p1.data() == b"1234"
        # The loop and the other connection go on.
        w2.write(b"still here")
        assert await r2.readexactly(10) == b"still here"
        for w in (w1, w2):
            w.close()
        server.close()

    run(loop, main())


def test_accept_error_every_nth(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, made = await serve(echo=True)
        faults.apply(server, faults.Plan().accept_error(errno.ECONNABORTED, every=2))
        outcomes = []
        for i in range(4):
            r, w = await asyncio.open_connection(HOST, port_of(server))
            w.write(b"hi")
            try:
                outcomes.append(await asyncio.wait_for(r.read(2), 5))
            except ConnectionResetError:
                outcomes.append(b"")
            w.close()
        assert outcomes == [b"hi", b"", b"hi", b""]
        assert len(made) == 2
        server.close()

    run(loop, main())


def test_accept_error_out_of_resources_is_reported(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        contexts: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, ctx: contexts.append(ctx))
        server, made = await serve()
        faults.apply(server, faults.Plan().accept_error(errno.EMFILE))
        _r, w = await asyncio.open_connection(HOST, port_of(server))
        while not contexts:
            await asyncio.sleep(0.01)
        assert contexts[0]["message"] == "socket.accept() out of system resource"
        assert contexts[0]["exception"].errno == errno.EMFILE
        assert not made
        w.close()
        server.close()

    run(loop, main())


def test_connect_error_on_the_loop(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, _ = await serve()
        handle = faults.apply(loop, faults.Plan().connect_error(errno.ECONNREFUSED, every=2))
        _, w = await asyncio.open_connection(HOST, port_of(server))
        w.close()
        with pytest.raises(ConnectionRefusedError) as info:
            await asyncio.open_connection(HOST, port_of(server))
        assert info.value.errno == errno.ECONNREFUSED
        assert "Connect call failed" in str(info.value)
        handle.remove()
        for _ in range(2):
            _, w = await asyncio.open_connection(HOST, port_of(server))
            w.close()
        server.close()

    run(loop, main())


def test_loop_plan_reaches_client_connections(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, _ = await serve(echo=True)
        with faults.apply(loop, faults.Plan().limit_data(4, direction="upstream")):
            r, w = await asyncio.open_connection(HOST, port_of(server))
            w.write(b"abcdefgh")
            # The server's echo is cut too (the loop plan is on both ends),
            # so at most 4 bytes come back before the EOF.
            assert await asyncio.wait_for(r.read(), 5) == b"abcd"[: 4]
            w.close()
        server.close()

    run(loop, main())


def test_remove_releases_what_was_held(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, made = await serve()
        handle = faults.apply(server, faults.Plan().latency(30_000, direction="upstream"))
        _, w = await asyncio.open_connection(HOST, port_of(server))
        proto = await first(made)
        w.write(b"held")
        await asyncio.sleep(0.05)
        assert proto.chunks == []
        start = loop.time()
        handle.remove()
        assert handle.removed
        while not proto.chunks:
            await asyncio.sleep(0.005)
        assert proto.data() == b"held"
        assert loop.time() - start < 1.0
        handle.remove()  # idempotent
        w.close()
        server.close()

    run(loop, main())


def test_nothing_lost_through_latency_and_slicer(loop: asyncio.AbstractEventLoop) -> None:
    payload = random.Random(9).randbytes(4 * 1024 * 1024)

    async def main() -> None:
        server, _made = await serve(echo=True)
        plan = (
            faults.Plan(seed=2)
            .latency(5, 3, direction="upstream")
            .slicer(40_000, 20_000, direction="downstream")
        )
        faults.apply(server, plan)
        r, w = await asyncio.open_connection(HOST, port_of(server))

        async def send() -> None:
            for i in range(0, len(payload), 65536):
                w.write(payload[i : i + 65536])
                await w.drain()

        sender = asyncio.ensure_future(send())
        got = await asyncio.wait_for(r.readexactly(len(payload)), 20)
        await sender
        assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
        w.close()
        server.close()

    run(loop, main(), timeout=30)


def test_toxicity_zero_never_applies(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, made = await serve()
        faults.apply(server, faults.Plan().limit_data(1, direction="upstream", toxicity=0.0))
        _, w = await asyncio.open_connection(HOST, port_of(server))
        proto = await first(made)
        w.write(b"all of it")
        w.write_eof()
        await asyncio.wait_for(proto.eof, 5)
        assert proto.data() == b"all of it"
        w.close()
        server.close()

    run(loop, main())


def test_bad_input(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(ValueError):
        faults.Plan().latency(-1)
    with pytest.raises(TypeError):
        faults.Plan().latency("10")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        faults.Plan().latency(1, direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        faults.Plan().limit_data(1, toxicity=1.5)
    with pytest.raises(ValueError):
        faults.Plan().accept_error(errno.EMFILE, every=0)
    with pytest.raises(TypeError):
        faults.Plan(seed="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        faults.apply(object(), faults.Plan())
    with pytest.raises(TypeError):
        faults.apply(loop, "not a plan")  # type: ignore[arg-type]
    other = asyncio.new_event_loop()
    try:
        with pytest.raises(TypeError):
            faults.apply(other, faults.Plan())
    finally:
        other.close()
    loop.close()
    with pytest.raises(RuntimeError):
        faults.apply(loop, faults.Plan())


class BufferedRecorder(asyncio.BufferedProtocol):
    """Records the size of each buffer_updated call."""

    def __init__(self) -> None:
        self.buf = bytearray(1000)
        self.sizes: list[int] = []
        self.data = bytearray()
        self.transport: Any = None
        self.made = asyncio.get_running_loop().create_future()
        self.eof = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.made.set_result(transport)

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.sizes.append(nbytes)
        self.data += self.buf[:nbytes]

    def eof_received(self) -> None:
        self.eof.set_result(None)


def test_slicer_reaches_a_buffered_protocol(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server, made = await serve(BufferedRecorder)
        faults.apply(server, faults.Plan().slicer(7, direction="upstream").latency(10, direction="upstream"))
        _, w = await asyncio.open_connection(HOST, port_of(server))
        proto = await first(made)
        w.write(bytes(range(30)))
        w.write_eof()
        await asyncio.wait_for(proto.eof, 5)
        assert proto.sizes == [7, 7, 7, 7, 2]
        assert bytes(proto.data) == bytes(range(30))
        w.close()
        server.close()

    run(loop, main())
