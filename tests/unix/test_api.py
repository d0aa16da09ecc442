"""Unix-socket specifics: create_unix_server path/sock handling, stale
socket files, and bad input."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from conftest import UNIX_SOCKET_CLEANUP, run, xfail_for
from net_helpers import Echo, Recorder


def test_unix_server_sock_argument(loop: asyncio.AbstractEventLoop, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "sock-arg.sock")

    async def main() -> bytes:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        server = await loop.create_unix_server(Echo, sock=sock)
        assert server.sockets[0].getsockname() == path
        rec = Recorder(loop)
        rec.expect = 4
        transport, _ = await loop.create_unix_connection(lambda: rec, path)
        transport.write(b"unix")
        await rec.got_all
        transport.close()
        await rec.lost
        server.close()
        await server.wait_closed()
        return bytes(rec.data)

    assert run(loop, main()) == b"unix"


def test_stale_socket_file_is_replaced(loop: asyncio.AbstractEventLoop, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "stale.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # leaves the file behind

    async def main() -> None:
        server = await loop.create_unix_server(Echo, path)
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b"ok\n")
        assert await reader.readline() == b"ok\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_unix_bad_arguments(loop: asyncio.AbstractEventLoop, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "bad.sock")

    async def main() -> None:
        tcp = socket.socket()
        try:
            with pytest.raises(ValueError):
                await loop.create_unix_server(Echo, path, sock=tcp)
            with pytest.raises(ValueError):
                await loop.create_unix_server(Echo, sock=tcp)
            with pytest.raises(ValueError):
                await loop.create_unix_connection(Echo)
            with pytest.raises(FileNotFoundError):
                await loop.create_unix_connection(Echo, os.path.join(str(tmp_path), "none"))
        finally:
            tcp.close()

    run(loop, main())


def test_unix_connection_sock_argument(loop: asyncio.AbstractEventLoop, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "conn-sock.sock")

    async def main() -> bytes:
        server = await loop.create_unix_server(Echo, path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        rec = Recorder(loop)
        rec.expect = 3
        transport, _ = await loop.create_unix_connection(lambda: rec, sock=sock)
        transport.write(b"abc")
        await rec.got_all
        transport.close()
        await rec.lost
        server.close()
        await server.wait_closed()
        return bytes(rec.data)

    assert run(loop, main()) == b"abc"


@pytest.mark.parametrize("how", ["path", "sock", "cleanup_socket=False", "replaced"])
def test_socket_file_at_close(loop: asyncio.AbstractEventLoop, tmp_path: object, how: str) -> None:
    # asyncio removes the file at close from 3.13 (create_unix_server's
    # cleanup_socket=True), unless told not to or the file is no longer the
    # server's; before 3.13 it leaves it and has no such keyword.
    if how == "cleanup_socket=False" and not UNIX_SOCKET_CLEANUP:
        pytest.skip("create_unix_server(cleanup_socket=) is 3.13+")
    path = os.path.join(str(tmp_path), f"{how}.sock")

    async def main() -> bool:
        if how == "sock":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
            server = await loop.create_unix_server(Echo, sock=sock)
        elif how == "cleanup_socket=False":
            server = await loop.create_unix_server(Echo, path, cleanup_socket=False)  # type: ignore[call-arg]
        else:
            server = await loop.create_unix_server(Echo, path)
        other = None
        if how == "replaced":  # another socket now lives at the path
            os.unlink(path)
            other = socket.socket(socket.AF_UNIX)
            other.bind(path)
        server.close()
        await server.wait_closed()
        if other is not None:
            other.close()
        return os.path.exists(path)

    removed = UNIX_SOCKET_CLEANUP and how in ("path", "sock")
    assert run(loop, main()) is not removed


@pytest.mark.skipif(UNIX_SOCKET_CLEANUP, reason="the keyword exists from 3.13")
def test_cleanup_socket_keyword_before_313(
    request: pytest.FixtureRequest,
    loop: asyncio.AbstractEventLoop,
    loop_name: str,
    tmp_path: object,
) -> None:
    xfail_for(request, ["uvloop"], "uvloop takes cleanup_socket= on every version", loop_name)
    path = os.path.join(str(tmp_path), "kw.sock")

    async def main() -> None:
        server = await loop.create_unix_server(Echo, path, cleanup_socket=True)  # type: ignore[call-arg]
        # Where it is taken (uvloop), the server is closed here and now: left
        # to the garbage collector, its socket would close some later test's
        # fd that reused the number.
        server.close()
        await server.wait_closed()

    with pytest.raises(TypeError, match="cleanup_socket"):
        run(loop, main())
