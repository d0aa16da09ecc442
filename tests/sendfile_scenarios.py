"""loop.sendfile() over TCP (tests/tcp) and Unix sockets (tests/unix), on
every loop, with the same assertions: what arrives, in which order, what
sendfile returns and raises, where it leaves the file position, and the
transport around it (writes refused meanwhile, flow control, reading).

Stock asyncio sends natively (os.sendfile) with fallback=False; rloop's
actors do (sendfile(2)). uvloop has no loop.sendfile() at all
(NotImplementedError): its runs are strict expected failures. The peers'
protocols and the other pieces these scenarios share are in
sendfile_helpers.py.
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
from typing import IO, Any

import pytest
from conftest import run, xfail_for
from net_helpers import Endpoint, endpoint
from sendfile_helpers import (
    ALWAYS_MOVES_POSITION,
    BIG,
    Pair,
    big_data,
    big_file,
    digest,
    no_uvloop,
    start_sendfile,
)

__all__ = [
    "big_data",
    "big_file",
    "endpoint",
    "test_sendfile_abort_under_it",
    "test_sendfile_bad_arguments",
    "test_sendfile_cancelled",
    "test_sendfile_close_during_it_sends_the_file_first",
    "test_sendfile_closing_transport",
    "test_sendfile_empty_file",
    "test_sendfile_not_a_regular_file",
    "test_sendfile_offset_and_count",
    "test_sendfile_peer_closes_mid_file",
    "test_sendfile_queued_writes_go_first",
    "test_sendfile_second_one_refused",
    "test_sendfile_whole_file",
    "test_sendfile_writes_refused_meanwhile",
]

@pytest.mark.parametrize("side", ["client", "server"])
def test_sendfile_whole_file(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    request: pytest.FixtureRequest,
    loop_name: str,
    big_data: bytes,
    big_file: IO[bytes],
    side: str,
) -> None:
    no_uvloop(request, loop_name)

    async def main() -> tuple[int, int, bool, tuple[int, str]]:
        pair = Pair(loop, endpoint)
        transport, sender, receiver = await pair.open(side)
        sent = await loop.sendfile(transport, big_file, fallback=False)
        reading = transport.is_reading()
        transport.write_eof()
        await receiver.eof
        await pair.close(sender, receiver)
        return sent, big_file.tell(), reading, digest(receiver.data)

    assert run(loop, main(), timeout=30) == (BIG, BIG, True, digest(big_data))


# (offset, count): from the start, from inside, a slice, past the end, a
# count beyond the file, the last byte, at and after the end.
CASES = [
    (0, None),
    (1000, None),
    (1000, 2000),
    (BIG // 2, None),
    (0, BIG + 100),
    (3, 1 << 40),
    (BIG - 1, 10),
    (BIG, None),
    (BIG + 10, 5),
]


@pytest.mark.parametrize(("offset", "count"), CASES)
def test_sendfile_offset_and_count(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    request: pytest.FixtureRequest,
    loop_name: str,
    big_data: bytes,
    big_file: IO[bytes],
    offset: int,
    count: int | None,
) -> None:
    no_uvloop(request, loop_name)
    big_file.seek(123)  # sendfile reads at `offset`, wherever the file is

    async def main() -> tuple[int, int, tuple[int, str]]:
        pair = Pair(loop, endpoint)
        transport, sender, receiver = await pair.open()
        sent = await loop.sendfile(transport, big_file, offset, count, fallback=False)
        transport.write_eof()
        await receiver.eof
        await pair.close(sender, receiver)
        return sent, big_file.tell(), digest(receiver.data)

    expected = big_data[offset:] if count is None else big_data[offset : offset + count]
    if expected:
        position = offset + len(expected)
    else:
        # sendfile(2) was called and sent nothing (the offset is at or past
        # the end): 3.14 moves the position to the offset, 3.11-3.13 not.
        position = offset if ALWAYS_MOVES_POSITION else 123
    assert run(loop, main(), timeout=30) == (len(expected), position, digest(expected))


def test_sendfile_queued_writes_go_first(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    request: pytest.FixtureRequest,
    loop_name: str,
    big_data: bytes,
    big_file: IO[bytes],
) -> None:
    """Bytes written before the sendfile (still queued, the protocol told to
    pause) go out first, then the file, then what is written after it; the
    protocol is resumed as the queue drains, before the sendfile returns."""
    no_uvloop(request, loop_name)

    async def main() -> tuple[int, list[str], int, tuple[int, str]]:
        pair = Pair(loop, endpoint)
        transport, sender, receiver = await pair.open(paused=True)
        prefix = bytearray()
        for i in range(512):  # bounded: kernel buffers hold a few MiB at most
            chunk = bytes([i % 251]) * 65536
            transport.write(chunk)
            prefix += chunk
            if "pause_writing" in sender.events:
                break
        queued = transport.get_write_buffer_size()
        assert queued > 0
        task = await start_sendfile(loop, transport, big_file, fallback=False)
        receiver.resume()
        sent = await task
        events = list(sender.events)
        suffix = b"the end" * 1000
        transport.write(suffix)
        transport.writelines([b"and ", b"more"])
        transport.write_eof()
        await receiver.eof
        await pair.close(sender, receiver)
        assert receiver.data[: len(prefix)] == prefix
        expected = bytes(prefix) + big_data + suffix + b"and more"
        return sent, events, big_file.tell(), digest(receiver.data) == digest(expected)

    assert run(loop, main(), timeout=30) == (
        BIG,
        ["pause_writing", "resume_writing"],
        BIG,
        True,
    )


def test_sendfile_writes_refused_meanwhile(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    request: pytest.FixtureRequest,
    loop_name: str,
    big_data: bytes,
    big_file: IO[bytes],
) -> None:
    no_uvloop(request, loop_name)

    async def main() -> tuple[list[str], int, bool, tuple[int, str]]:
        pair = Pair(loop, endpoint)
        transport, sender, receiver = await pair.open(paused=True)
        task = await start_sendfile(loop, transport, big_file, fallback=False)
        refused = []
        for attempt in (
            lambda: transport.write(b"data"),
            lambda: transport.write(b""),
            lambda: transport.writelines([b"data"]),
        ):
            with pytest.raises(RuntimeError, match="sendfile is in progress") as info:
                attempt()
            refused.append(str(info.value).split(";")[1].strip())
        reading = transport.is_reading()  # asyncio pauses reading meanwhile
        receiver.resume()
        sent = await task
        transport.write(b"after")
        transport.write_eof()
        await receiver.eof
        await pair.close(sender, receiver)
        return refused, sent, reading, digest(receiver.data)

    assert run(loop, main(), timeout=30) == (
        ["sendfile is in progress"] * 3,
        BIG,
        False,
        digest(big_data + b"after"),
    )


def test_sendfile_second_one_refused(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    request: pytest.FixtureRequest,
    loop_name: str,
    big_data: bytes,
    big_file: IO[bytes],
) -> None:
    """A second sendfile on a transport while one runs raises RuntimeError
    and leaves the first alone. (asyncio's raises KeyError, from its table
    of transports.)"""
    xfail_for(
        request, ["asyncio", "uvloop"], "asyncio's second sendfile raises KeyError", loop_name
    )

    async def main() -> tuple[str, int, tuple[int, str]]:
        pair = Pair(loop, endpoint)
        transport, sender, receiver = await pair.open(paused=True)
        task = await start_sendfile(loop, transport, big_file, fallback=False)
        try:
            with tempfile.TemporaryFile() as other:
                other.write(b"other")
                other.seek(0)
                with pytest.raises(RuntimeError) as info:
                    await loop.sendfile(transport, other, fallback=False)
        finally:
            receiver.resume()
            sent = await task
        transport.write_eof()
        await receiver.eof
        await pair.close(sender, receiver)
        return str(info.value), sent, digest(receiver.data)

    assert run(loop, main(), timeout=30) == (
        "unable to sendfile; sendfile is in progress",
        BIG,
        digest(big_data),
    )


def test_sendfile_peer_closes_mid_file(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    request: pytest.FixtureRequest,
    loop_name: str,
    big_data: bytes,
    big_file: IO[bytes],
) -> None:
    """The peer closes after 1 KiB: sendfile raises a ConnectionError, the
    file position says how much was sent, and the transport ends."""
    no_uvloop(request, loop_name)

    async def main() -> tuple[bool, int, bool, bool]:
        pair = Pair(loop, endpoint)
        transport, sender, receiver = await pair.open(close_after=1024)
        with pytest.raises(ConnectionError):
            await loop.sendfile(transport, big_file, fallback=False)
        position = big_file.tell()
        await receiver.lost
        received = bytes(receiver.data)
        await sender.lost
        assert pair.server is not None
        pair.server.close()
        await pair.server.wait_closed()
        return (
            received == big_data[: len(received)],
            len(received),
            1024 <= len(received) < BIG and 1024 <= position < BIG,
            transport.is_closing(),
        )

    prefix_ok, received, within, closing = run(loop, main(), timeout=30)
    assert (prefix_ok, within, closing) == (True, True, True), received


def test_sendfile_cancelled(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    request: pytest.FixtureRequest,
    loop_name: str,
    big_data: bytes,
    big_file: IO[bytes],
) -> None:
    """Cancelled mid-file: what was sent stays sent, the file position is
    left alone (asyncio's), and the transport goes on: writes work again,
    and arrive after the part of the file that was sent."""
    no_uvloop(request, loop_name)

    async def main() -> tuple[bool, bool, bool, bool]:
        pair = Pair(loop, endpoint)
        transport, sender, receiver = await pair.open(paused=True)
        task = await start_sendfile(loop, transport, big_file, fallback=False)
        task.cancel()
        cancelled = False
        try:
            await task
        except asyncio.CancelledError:
            cancelled = True
        position = big_file.tell()
        transport.write(b"after")
        transport.write_eof()
        receiver.resume()
        await receiver.eof
        await pair.close(sender, receiver)
        data = bytes(receiver.data)
        part = len(data) - len(b"after")
        # The position stays where it was; asyncio's own moves it to what
        # was sent when the cancel meets a writer callback already due (its
        # race, seen on a loaded machine), so that is taken too.
        return cancelled, position in (0, part), data == big_data[:part] + b"after", part < BIG

    assert run(loop, main(), timeout=30) == (True, True, True, True)


def test_sendfile_close_during_it_sends_the_file_first(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    request: pytest.FixtureRequest,
    loop_name: str,
    big_data: bytes,
    big_file: IO[bytes],
) -> None:
    """close() flushes what was queued, the file included: the sendfile
    completes, then the connection ends. (asyncio's sendfile never returns
    then: the transport closes its socket under it.)"""
    xfail_for(
        request,
        ["asyncio", "uvloop"],
        "asyncio's sendfile hangs when the transport is closed under it",
        loop_name,
    )

    async def main() -> tuple[int, BaseException | None, tuple[int, str]]:
        pair = Pair(loop, endpoint)
        transport, sender, receiver = await pair.open(paused=True)
        task = await start_sendfile(loop, transport, big_file, fallback=False)
        transport.close()
        receiver.resume()
        done, _ = await asyncio.wait([task], timeout=3)
        if not done:
            task.cancel()
            pytest.fail("sendfile did not return")
        sent = task.result()
        exc = await sender.lost
        await receiver.eof
        await pair.close(sender, receiver)
        return sent, exc, digest(receiver.data)

    assert run(loop, main(), timeout=30) == (BIG, None, digest(big_data))


def test_sendfile_abort_under_it(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    request: pytest.FixtureRequest,
    loop_name: str,
    big_file: IO[bytes],
) -> None:
    """abort() ends the connection at once; the sendfile fails with a
    ConnectionError. (asyncio's never returns then.)"""
    xfail_for(
        request,
        ["asyncio", "uvloop"],
        "asyncio's sendfile hangs when the transport is aborted under it",
        loop_name,
    )

    async def main() -> tuple[str, BaseException | None]:
        pair = Pair(loop, endpoint)
        transport, sender, receiver = await pair.open(paused=True)
        task = await start_sendfile(loop, transport, big_file, fallback=False)
        transport.abort()
        done, _ = await asyncio.wait([task], timeout=2)
        if not done:
            task.cancel()
            pytest.fail("sendfile did not return")
        exc = task.exception()
        lost = await sender.lost
        await pair.close(sender, receiver)
        return type(exc).__name__, lost

    assert run(loop, main()) == ("ConnectionError", None)


def test_sendfile_closing_transport(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    request: pytest.FixtureRequest,
    loop_name: str,
    big_file: IO[bytes],
) -> None:
    no_uvloop(request, loop_name)

    async def main() -> tuple[str, int, int]:
        pair = Pair(loop, endpoint)
        transport, sender, receiver = await pair.open()
        transport.close()
        with pytest.raises(RuntimeError) as info:
            await loop.sendfile(transport, big_file)
        await pair.close(sender, receiver)
        return str(info.value), len(receiver.data), big_file.tell()

    assert run(loop, main()) == ("Transport is closing", 0, 0)


def test_sendfile_empty_file(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    request: pytest.FixtureRequest,
    loop_name: str,
) -> None:
    no_uvloop(request, loop_name)

    async def main() -> tuple[int, int, bytes]:
        pair = Pair(loop, endpoint)
        transport, sender, receiver = await pair.open()
        with tempfile.TemporaryFile() as f:
            sent = await loop.sendfile(transport, f, fallback=False)
            position = f.tell()
        transport.write(b"x")
        transport.write_eof()
        await receiver.eof
        await pair.close(sender, receiver)
        return sent, position, bytes(receiver.data)

    assert run(loop, main()) == (0, 0, b"x")


def _unreadable_by_sendfile(source: str, data: bytes) -> Any:
    """A file object sendfile(2) cannot send from: no descriptor, or a pipe."""
    if source == "bytesio":
        return io.BytesIO(data)
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return os.fdopen(r, "rb")


@pytest.mark.parametrize("source", ["bytesio", "pipe"])
@pytest.mark.parametrize("fallback", [False, True])
def test_sendfile_not_a_regular_file(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    request: pytest.FixtureRequest,
    loop_name: str,
    source: str,
    fallback: bool,
) -> None:
    """No descriptor, or one sendfile(2) cannot read from: not available
    natively; with fallback=True the file is read and written instead."""
    no_uvloop(request, loop_name)
    data = b"0123456789" * 1000

    async def main(file: Any) -> tuple[object, bytes]:
        pair = Pair(loop, endpoint)
        transport, sender, receiver = await pair.open()
        try:
            outcome: object = await loop.sendfile(
                transport, file, 0, len(data), fallback=fallback
            )
        except (OSError, RuntimeError) as e:  # SendfileNotAvailableError is one
            outcome = e
        transport.write_eof()
        await receiver.eof
        await pair.close(sender, receiver)
        return outcome, bytes(receiver.data)

    with _unreadable_by_sendfile(source, data) as file:
        outcome, received = run(loop, main(file))
    if source == "bytesio":
        expected = (len(data), data) if fallback else ("not a regular file", b"")
    elif ALWAYS_MOVES_POSITION:
        # 3.14 moves a pipe's position after sendfile(2) failed: ESPIPE.
        expected = ("Illegal seek", b"")
    elif fallback:
        # The fallback sends it, then cannot seek the pipe.
        expected = ("File or stream is not seekable.", data)
    else:
        expected = ("os.sendfile call failed", b"")
    if isinstance(outcome, BaseException):
        if "Illegal seek" in expected:
            assert isinstance(outcome, OSError)
            outcome = outcome.strerror
        else:
            if not fallback:
                assert isinstance(outcome, asyncio.SendfileNotAvailableError)
            outcome = str(outcome)
    assert (outcome, received) == expected


@pytest.mark.parametrize(
    ("offset", "count", "mode", "error"),
    [
        (-1, None, "rb", ValueError("offset must be a non-negative integer (got -1)")),
        ("1", None, "rb", TypeError("offset must be a non-negative integer (got '1')")),
        (0, 0, "rb", ValueError("count must be a positive integer (got 0)")),
        (0, 1.5, "rb", TypeError("count must be a positive integer (got 1.5)")),
        (0, None, "r", ValueError("file should be opened in binary mode")),
    ],
)
def test_sendfile_bad_arguments(
    loop: asyncio.AbstractEventLoop,
    endpoint: Endpoint,
    request: pytest.FixtureRequest,
    loop_name: str,
    offset: Any,
    count: Any,
    mode: str,
    error: Exception,
) -> None:
    no_uvloop(request, loop_name)

    async def main(file: IO[Any]) -> tuple[BaseException, bytes]:
        pair = Pair(loop, endpoint)
        transport, sender, receiver = await pair.open()
        with pytest.raises(type(error)) as info:
            await loop.sendfile(transport, file, offset, count)
        transport.write_eof()
        await receiver.eof
        await pair.close(sender, receiver)
        return info.value, bytes(receiver.data)

    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(b"data")
        tmp.flush()
        with open(tmp.name, mode) as file:
            raised, received = run(loop, main(file))
    assert (str(raised), received) == (str(error), b"")
