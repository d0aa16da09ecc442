"""add_reader / remove_reader / add_writer / remove_writer."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest
from conftest import noop, run_forever_bounded, xfail_for

FdOrObj = int | socket.socket

UVLOOP_REMOVE_RETURNS_NONE = "uvloop's remove_reader()/remove_writer() return None"


def _as(kind: str, sock: socket.socket) -> FdOrObj:
    return sock.fileno() if kind == "fd" else sock


KINDS = pytest.mark.parametrize("kind", ["fd", "fileobj"])


@KINDS
def test_reader_fires_when_data_arrives(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket], kind: str
) -> None:
    rsock, wsock = pair
    got: list[Any] = []

    def on_readable(tag: str) -> None:
        got.append((tag, rsock.recv(100)))
        loop.stop()

    loop.add_reader(_as(kind, rsock), on_readable, "tag")
    loop.call_later(0.01, wsock.send, b"hello")
    run_forever_bounded(loop)
    assert got == [("tag", b"hello")]
    loop.remove_reader(_as(kind, rsock))


def test_reader_not_called_without_data(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    rsock, _ = pair
    got: list[str] = []
    loop.add_reader(rsock, got.append, "readable")
    loop.call_later(0.03, loop.stop)
    run_forever_bounded(loop)
    assert got == []
    loop.remove_reader(rsock)


def test_reader_fires_repeatedly_while_readable(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    rsock, wsock = pair
    count = [0]

    def on_readable() -> None:
        count[0] += 1  # level-triggered: not reading keeps it readable
        if count[0] == 3:
            loop.remove_reader(rsock)
            loop.stop()

    wsock.send(b"x")
    loop.add_reader(rsock, on_readable)
    run_forever_bounded(loop)
    assert count[0] == 3


@KINDS
def test_writer_fires_when_writable(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket], kind: str
) -> None:
    _, wsock = pair
    got: list[Any] = []

    def on_writable(*args: Any) -> None:
        got.append(args)
        loop.remove_writer(_as(kind, wsock))
        loop.stop()

    loop.add_writer(_as(kind, wsock), on_writable, 1, 2)
    run_forever_bounded(loop)
    assert got == [(1, 2)]


def test_writer_waits_for_buffer_space(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    rsock, wsock = pair
    # Fill the send buffer until the socket would block.
    try:
        while True:
            wsock.send(b"x" * 65536)
    except BlockingIOError:
        pass
    events: list[str] = []

    def drain() -> None:
        events.append("drain")
        try:
            while rsock.recv(1 << 20):
                pass
        except BlockingIOError:
            pass

    def on_writable() -> None:
        events.append("writable")
        loop.remove_writer(wsock)
        loop.stop()

    loop.add_writer(wsock, on_writable)
    loop.call_later(0.03, drain)
    run_forever_bounded(loop)
    assert events == ["drain", "writable"]


@KINDS
def test_remove_reader_return_value(
    loop: asyncio.AbstractEventLoop,
    pair: tuple[socket.socket, socket.socket],
    kind: str,
    loop_name: str,
    request: pytest.FixtureRequest,
) -> None:
    xfail_for(request, ["uvloop"], UVLOOP_REMOVE_RETURNS_NONE, loop_name)
    rsock, _ = pair
    assert loop.remove_reader(_as(kind, rsock)) is False
    loop.add_reader(_as(kind, rsock), noop)
    assert loop.remove_reader(_as(kind, rsock)) is True
    assert loop.remove_reader(_as(kind, rsock)) is False


@KINDS
def test_remove_writer_return_value(
    loop: asyncio.AbstractEventLoop,
    pair: tuple[socket.socket, socket.socket],
    kind: str,
    loop_name: str,
    request: pytest.FixtureRequest,
) -> None:
    xfail_for(request, ["uvloop"], UVLOOP_REMOVE_RETURNS_NONE, loop_name)
    _, wsock = pair
    assert loop.remove_writer(_as(kind, wsock)) is False
    loop.add_writer(_as(kind, wsock), noop)
    assert loop.remove_writer(_as(kind, wsock)) is True
    assert loop.remove_writer(_as(kind, wsock)) is False


def test_remove_by_fd_after_add_by_fileobj(
    loop: asyncio.AbstractEventLoop,
    pair: tuple[socket.socket, socket.socket],
    loop_name: str,
    request: pytest.FixtureRequest,
) -> None:
    xfail_for(request, ["uvloop"], UVLOOP_REMOVE_RETURNS_NONE, loop_name)
    rsock, wsock = pair
    loop.add_reader(rsock, noop)
    loop.add_writer(wsock, noop)
    assert loop.remove_reader(rsock.fileno()) is True
    assert loop.remove_writer(wsock.fileno()) is True


def test_removed_reader_does_not_fire(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    rsock, wsock = pair
    got: list[str] = []
    loop.add_reader(rsock, got.append, "reader")
    loop.remove_reader(rsock)
    wsock.send(b"data")
    loop.call_later(0.03, loop.stop)
    run_forever_bounded(loop)
    assert got == []


def _turns(loop: asyncio.AbstractEventLoop, n: int = 3) -> None:
    """Runs `n` iterations of the loop (each polls for I/O)."""
    for _ in range(n):
        loop.run_until_complete(asyncio.sleep(0))


def _read_when_readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    """Adds a reader to `sock`, runs the loop until it fires, and returns
    what it read."""
    got: list[bytes] = []

    def on_readable() -> None:
        got.append(sock.recv(100))
        loop.remove_reader(sock)
        loop.stop()

    loop.add_reader(sock, on_readable)
    run_forever_bounded(loop)
    assert got, "the reader never fired"
    return got[0]


def test_reader_added_again_after_data_came_while_removed(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    # Data that arrived while no reader was set is there for the next one.
    rsock, wsock = pair
    got: list[str] = []
    loop.add_reader(rsock, got.append, "removed")
    loop.remove_reader(rsock)
    wsock.send(b"early")
    _turns(loop)
    assert got == []
    assert _read_when_readable(loop, rsock) == b"early"
    # Removed and added again with nothing in between: still only on data.
    loop.add_reader(rsock, got.append, "removed")
    loop.remove_reader(rsock)
    # Sent once the loop is waiting: only a live registration reports it.
    loop.call_later(0.01, wsock.send, b"late")
    assert _read_when_readable(loop, rsock) == b"late"
    assert got == []


def test_reader_on_a_new_socket_with_a_removed_readers_fd_number(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # remove_reader, close, and the fd number comes back for another socket.
    old_r, old_w = socket.socketpair()
    number = old_r.fileno()
    loop.add_reader(old_r, noop)
    loop.remove_reader(old_r)
    _turns(loop)
    old_r.close()
    old_w.close()
    a, b = socket.socketpair()
    if a.fileno() != number:
        os.dup2(a.fileno(), number)
        a.close()
        a = socket.socket(fileno=number)
    try:
        a.setblocking(False)
        # Sent once the loop is waiting: only a live registration reports it.
        loop.call_later(0.01, b.send, b"new")
        assert _read_when_readable(loop, a) == b"new"
    finally:
        a.close()
        b.close()


def test_removed_reader_socket_becomes_a_transport(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bytes:
        received: asyncio.Future[bytes] = loop.create_future()

        class Reply(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                self.transport.write(data.upper())  # type: ignore[attr-defined]

        class Client(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                if not received.done():
                    received.set_result(data)

        server = await loop.create_server(Reply, "127.0.0.1", 0)
        sock = socket.create_connection(server.sockets[0].getsockname()[:2])
        sock.setblocking(False)
        loop.add_reader(sock, noop)
        loop.remove_reader(sock)
        transport, _ = await loop.create_connection(Client, sock=sock)
        transport.write(b"adopted")
        data = await asyncio.wait_for(received, 10)
        transport.close()
        server.close()
        await server.wait_closed()
        return data

    assert loop.run_until_complete(main()) == b"ADOPTED"


def test_replacing_reader(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    rsock, wsock = pair
    got: list[str] = []

    def new_reader() -> None:
        got.append("new")
        rsock.recv(100)
        loop.stop()

    loop.add_reader(rsock, got.append, "old")
    loop.add_reader(rsock.fileno(), new_reader)
    wsock.send(b"data")
    run_forever_bounded(loop)
    assert got == ["new"]
    loop.remove_reader(rsock)


def test_replacing_writer(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    _, wsock = pair
    got: list[str] = []

    def new_writer() -> None:
        got.append("new")
        loop.remove_writer(wsock)
        loop.stop()

    loop.add_writer(wsock, got.append, "old")
    loop.add_writer(wsock, new_writer)
    run_forever_bounded(loop)
    assert got == ["new"]


def test_reader_and_writer_on_same_socket(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    sock, peer = pair
    events: list[str] = []

    def on_writable() -> None:
        events.append("writable")
        loop.remove_writer(sock)
        peer.send(b"ping")

    def on_readable() -> None:
        events.append(f"readable:{sock.recv(10).decode()}")
        loop.remove_reader(sock)
        loop.stop()

    loop.add_reader(sock, on_readable)
    loop.add_writer(sock, on_writable)
    run_forever_bounded(loop)
    assert events == ["writable", "readable:ping"]


def test_reader_on_peer_close(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    rsock, wsock = pair
    got: list[bytes] = []

    def on_readable() -> None:
        got.append(rsock.recv(100))
        loop.remove_reader(rsock)
        loop.stop()

    loop.add_reader(rsock, on_readable)
    loop.call_soon(wsock.close)
    run_forever_bounded(loop)
    assert got == [b""]


def test_reader_exception_goes_to_handler(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    rsock, wsock = pair
    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: (contexts.append(ctx), lp.stop()))

    def on_readable() -> None:
        loop.remove_reader(rsock)
        raise ZeroDivisionError

    loop.add_reader(rsock, on_readable)
    wsock.send(b"x")
    run_forever_bounded(loop)
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)


def test_get_running_loop_in_reader(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    rsock, wsock = pair
    seen: list[object] = []

    def on_readable() -> None:
        seen.append(asyncio.get_running_loop())
        loop.remove_reader(rsock)
        loop.stop()

    loop.add_reader(rsock, on_readable)
    wsock.send(b"x")
    run_forever_bounded(loop)
    assert seen == [loop]


@pytest.mark.parametrize("method", ["add_reader", "add_writer"])
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not a file", "Invalid file object: 'not a file'"),
        (None, "Invalid file object: None"),
        (-1, "Invalid file descriptor: -1"),
    ],
)
def test_add_bad_fd(
    loop: asyncio.AbstractEventLoop, method: str, bad: object, message: str
) -> None:
    with pytest.raises(ValueError) as info:
        getattr(loop, method)(bad, noop)
    assert str(info.value) == message


@pytest.mark.parametrize("method", ["remove_reader", "remove_writer"])
def test_remove_bad_fd(loop: asyncio.AbstractEventLoop, method: str) -> None:
    with pytest.raises(ValueError, match=r"^Invalid file object: 'x'$"):
        getattr(loop, method)("x")
    with pytest.raises(ValueError, match=r"^Invalid file descriptor: -1$"):
        getattr(loop, method)(-1)


def test_object_with_bad_fileno(loop: asyncio.AbstractEventLoop) -> None:
    class BadFileno:
        def fileno(self) -> str:
            return "nope"

    with pytest.raises(ValueError, match="Invalid file object"):
        loop.add_reader(BadFileno(), noop)


@pytest.mark.parametrize("method", ["add_reader", "add_writer"])
def test_add_on_closed_loop(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, socket.socket], method: str
) -> None:
    loop.close()
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        getattr(loop, method)(pair[0], noop)


@pytest.mark.parametrize("method", ["remove_reader", "remove_writer"])
def test_remove_on_closed_loop(
    loop: asyncio.AbstractEventLoop,
    pair: tuple[socket.socket, socket.socket],
    method: str,
    loop_name: str,
    request: pytest.FixtureRequest,
) -> None:
    xfail_for(request, ["uvloop"], UVLOOP_REMOVE_RETURNS_NONE, loop_name)
    loop.close()
    assert getattr(loop, method)(pair[0]) is False
