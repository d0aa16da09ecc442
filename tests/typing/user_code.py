"""Ordinary user code of rloop, type-checked by ``mypy --strict`` (test_type_check.py).

It is also run (``python user_code.py``), so what is checked is code that
works. The ``# type: ignore[...]`` lines in ``_rejected`` are mistakes a
precise stub must catch: ``--strict`` warns about an unused ignore, so a
stub that let one through (an ``Any``) fails the check.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import os
import signal
import socket
import sys
import tempfile

import rloop
from rloop import faults


class Echo(asyncio.Protocol):
    transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class Client(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[bytes]) -> None:
        self.done = done

    def data_received(self, data: bytes) -> None:
        if not self.done.done():
            self.done.set_result(data)


class Collect(asyncio.SubprocessProtocol):
    def __init__(self, exited: asyncio.Future[None]) -> None:
        self.exited = exited
        self.out = bytearray()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        assert isinstance(data, bytes)
        self.out += data

    def process_exited(self) -> None:
        self.exited.set_result(None)


def square(x: int) -> int:
    return x * x


async def protocols(loop: rloop.RLoop | rloop.TokioLoop) -> None:
    server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=10)
    if sys.version_info >= (3, 13):
        server2 = await loop.create_server(Echo, "127.0.0.1", 0, keep_alive=True)
        server2.close()
        await server2.wait_closed()
    port: int = server.sockets[0].getsockname()[1]
    done: asyncio.Future[bytes] = loop.create_future()
    transport, client = await loop.create_connection(lambda: Client(done), "127.0.0.1", port)
    assert isinstance(client, Client)
    transport.write(b"ping")
    assert await done == b"ping"
    transport.close()
    if sys.version_info >= (3, 12):
        transport, _ = await loop.create_connection(
            asyncio.Protocol, "127.0.0.1", port, all_errors=True
        )
        transport.close()
    server.close()
    await server.wait_closed()


async def streams() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello\n")
        line: bytes = await reader.readline()
        assert line == b"hello\n"
        writer.close()
        await writer.wait_closed()


async def callbacks(loop: rloop.RLoop | rloop.TokioLoop) -> None:
    fired = asyncio.Event()
    handle: asyncio.Handle = loop.call_soon(square, 2)
    handle.cancel()
    assert handle.cancelled()
    timer: asyncio.TimerHandle = loop.call_later(0.001, fired.set)
    when: float = timer.when()
    assert when >= loop.time() - 1
    loop.call_at(loop.time() + 0.001, square, 3)
    loop.call_soon_threadsafe(fired.set)
    await fired.wait()

    value: int = await loop.run_in_executor(None, square, 7)
    assert value == 49
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert await loop.run_in_executor(pool, square, 2) == 4
    task: asyncio.Task[int] = loop.create_task(asyncio.sleep(0, 5), name="five")
    assert await task == 5

    got = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, got.set)
    signal.raise_signal(signal.SIGUSR1)
    await got.wait()
    assert loop.remove_signal_handler(signal.SIGUSR1)

    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    loop.add_reader(a, got.clear)
    assert loop.remove_reader(a)
    await loop.sock_sendall(b, b"x")
    data: bytes = await loop.sock_recv(a, 10)
    assert data == b"x"
    a.close()
    b.close()
    infos = await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    assert infos[0][4][0] == "127.0.0.1"

    def on_error(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        print(context["message"])

    loop.set_exception_handler(on_error)
    loop.set_exception_handler(None)


async def more_io(loop: rloop.RLoop | rloop.TokioLoop) -> None:
    udp, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    udp.sendto(b"x", udp.get_extra_info("sockname"))
    udp.close()

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "sock")
        server = await loop.create_unix_server(Echo, path)
        transport, _ = await loop.create_unix_connection(asyncio.Protocol, path)
        transport.close()
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(os.path.join(folder, "raw"))
        listener.listen()
        listener.setblocking(False)
        client = socket.socket(socket.AF_UNIX)
        client.setblocking(False)
        await loop.sock_connect(client, os.path.join(folder, "raw"))
        accepted, _ = await loop.sock_accept(listener)
        for s in (accepted, client, listener):
            s.close()
        server.close()
        await server.wait_closed()

    rfd, wfd = os.pipe()
    with open(rfd, "rb", buffering=0) as pipe:  # noqa: ASYNC230 - a pipe: does not block
        reader, _ = await loop.connect_read_pipe(asyncio.Protocol, pipe)
        reader.close()
    os.close(wfd)

    if sys.version_info >= (3, 12):
        loop.set_task_factory(asyncio.eager_task_factory)
    loop.set_task_factory(None)
    assert loop.get_task_factory() is None


async def processes(loop: rloop.RLoop | rloop.TokioLoop) -> None:
    exited: asyncio.Future[None] = loop.create_future()
    transport, protocol = await loop.subprocess_exec(
        lambda: Collect(exited), sys.executable, "-c", "print('hi')", stdin=None
    )
    await exited
    assert transport.get_returncode() == 0
    transport.close()
    assert bytes(protocol.out).strip() == b"hi"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "pass", stdout=asyncio.subprocess.PIPE
    )
    assert await proc.wait() == 0


async def graceful_shutdown(loop: rloop.RLoop | rloop.TokioLoop) -> None:
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    report: rloop.DrainReport = await rloop.drain(server, 5.0, close_idle_after=0.5)
    assert (report.drained, report.aborted, report.bytes_flushed) == (0, 0, 0)
    seconds: float = report.duration
    assert seconds >= 0


async def fault_injection(loop: rloop.RLoop | rloop.TokioLoop) -> None:
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    plan: faults.Plan = faults.Plan(seed=1).latency(5, direction="upstream").limit_data(100)
    with faults.apply(server, plan) as handle:
        assert not handle.removed
    assert handle.removed
    on_loop = faults.apply(loop, faults.Plan().connect_error(errno.ECONNREFUSED, every=3))
    on_loop.remove()
    server.close()


async def main() -> str:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, (rloop.RLoop, rloop.TokioLoop))
    await protocols(loop)
    await streams()
    await callbacks(loop)
    await more_io(loop)
    await processes(loop)
    await graceful_shutdown(loop)
    await fault_injection(loop)
    if sys.version_info >= (3, 12):
        await loop.shutdown_default_executor(timeout=5)
    else:
        await loop.shutdown_default_executor()
    return type(loop).__name__


def _rejected(loop: rloop.RLoop, tokio: rloop.TokioLoop) -> None:
    """Never called: each line is a mistake the stubs must catch."""
    loop.call_soon(square, "not an int")  # type: ignore[arg-type]
    tokio.call_later("soon", square, 1)  # type: ignore[arg-type]
    loop.create_task(square(2))  # type: ignore[arg-type]
    loop.run_in_executor(None, square, 1, 2)  # type: ignore[arg-type]
    loop.add_signal_handler("SIGINT", print)  # type: ignore[arg-type]
    name: str = loop.time()  # type: ignore[assignment]
    text: str = loop.run_in_executor(None, square, 1).result()  # type: ignore[assignment]
    rloop.run(square(3))  # type: ignore[call-overload]
    rloop.EventLoopPolicy(loop=1)  # type: ignore[arg-type]
    _ = rloop.drain(loop)  # type: ignore[arg-type]
    rloop.run(main(), shutdown_signals=signal.SIGTERM)  # type: ignore[call-overload]
    maybe: str = rloop.run(main(), shutdown_signals=[signal.SIGTERM])  # type: ignore[assignment]
    faults.Plan().latency(5, direction="sideways")  # type: ignore[arg-type]
    faults.apply("server", faults.Plan())  # type: ignore[arg-type]
    print(name, text, maybe)


def policy_loop(name: str | None = None) -> asyncio.AbstractEventLoop:
    return rloop.EventLoopPolicy(name).new_event_loop()


def run_all() -> None:
    assert rloop.run(main()) == "RLoop"
    assert rloop.run(main(), loop="tokio") == "TokioLoop"
    assert rloop.run(main(), debug=True, loop_factory=rloop.new_tokio_event_loop) == "TokioLoop"
    # No signal comes: run() returns what main() returned.
    ended: str | None = rloop.run(main(), shutdown_signals=(signal.SIGTERM,), shutdown_timeout=5)
    assert ended == "RLoop"

    with asyncio.Runner(loop_factory=rloop.new_event_loop) as runner:
        assert runner.run(main()) == "RLoop"

    for cls in (rloop.RLoop, rloop.TokioLoop):
        loop = cls()
        try:
            loop.set_debug(False)
            assert loop.run_until_complete(main()) == cls.__name__
            assert loop.run_until_complete(loop.create_task(asyncio.sleep(0, 1))) == 1
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
        assert loop.is_closed()

    tokio = policy_loop("tokio")
    assert isinstance(tokio, rloop.TokioLoop)
    tokio.close()
    rloop.install()
    rloop.install("tokio")


if __name__ == "__main__":
    run_all()
