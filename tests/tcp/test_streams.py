"""asyncio streams over TCP: what the reader is fed, and by whom.

rloop's transports feed asyncio's own StreamReader themselves (without
calling StreamReaderProtocol.data_received), so these tests pin what that
must keep: every byte in order through the reader's flow control, the
user's own protocol and reader subclasses still called, and asyncio's
error when the reader's buffer cannot grow.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from conftest import run, xfail_for
from tls_helpers import Contexts, fixture_tls  # noqa: F401 - the tls fixture

LIMIT = 1024


def _payload(size: int) -> bytes:
    return b"".join(b"line %07d %s\n" % (i, b"x" * (i % 200)) for i in range(size // 100))[:size]


def test_every_byte_through_a_small_limit(loop: asyncio.AbstractEventLoop) -> None:
    """2 MiB through a reader with a 1 KiB limit: the transport pauses past
    twice the limit while nobody reads, and every byte arrives in order
    through readline, readexactly and read."""
    payload = _payload(2 * 1024 * 1024)

    async def main() -> tuple[bool, str]:
        done: asyncio.Future[tuple[bool, str]] = loop.create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Nobody reads until the transport stops reading.
            deadline = loop.time() + 5.0
            while writer.transport.is_reading() and loop.time() < deadline:  # type: ignore[attr-defined]
                await asyncio.sleep(0.001)
            paused = not writer.transport.is_reading()  # type: ignore[attr-defined]
            got = hashlib.sha256()
            n = 0
            while True:
                if n % 3 == 0:
                    chunk = await reader.readline()
                elif n % 3 == 1:
                    try:
                        chunk = await reader.readexactly(1500)
                    except asyncio.IncompleteReadError as exc:
                        chunk = exc.partial
                else:
                    chunk = await reader.read(700)
                if not chunk:
                    break
                got.update(chunk)
                n += 1
            writer.close()
            done.set_result((paused, got.hexdigest()))

        server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=LIMIT)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        writer.write_eof()
        result = await done
        writer.close()
        server.close()
        await server.wait_closed()
        return result

    paused, digest = run(loop, main())
    assert paused
    assert digest == hashlib.sha256(payload).hexdigest()


class _RecordingProtocol(asyncio.StreamReaderProtocol):
    def __init__(self, reader: asyncio.StreamReader, seen: list[bytes]) -> None:
        super().__init__(reader)
        self.seen = seen

    def data_received(self, data: bytes) -> None:
        self.seen.append(bytes(data))
        super().data_received(data)


class _RecordingReader(asyncio.StreamReader):
    def __init__(self, seen: list[bytes]) -> None:
        super().__init__()
        self.seen = seen

    def feed_data(self, data: bytes) -> None:
        self.seen.append(bytes(data))
        super().feed_data(data)


def _through(
    loop: asyncio.AbstractEventLoop,
    make_reader: Any,
    make_protocol: Any,
    data: bytes,
    tls: Contexts | None = None,
) -> bytes:
    """Sends `data` to a server whose connection gets the reader
    `make_reader()` and the protocol `make_protocol(reader)`, and returns
    what that reader read (the client is asyncio's own streams)."""

    async def main() -> bytes:
        made: asyncio.Queue[tuple[asyncio.StreamReader, Any]] = asyncio.Queue()

        def factory() -> asyncio.StreamReaderProtocol:
            reader = make_reader()
            protocol: asyncio.StreamReaderProtocol = make_protocol(reader)
            made.put_nowait((reader, protocol))  # the protocol only holds a weakref
            return protocol

        server_ssl = tls.server if tls else None
        server = await loop.create_server(factory, "127.0.0.1", 0, ssl=server_ssl)
        port = server.sockets[0].getsockname()[1]
        client_ssl = tls.client if tls else None
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ssl)
        writer.write(data)
        if tls is None:
            writer.write_eof()
        reader, protocol = await made.get()
        if tls is not None:
            result = await reader.readexactly(len(data))
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()
            return result
        result = await reader.read()
        protocol._transport.close()  # the server's side, half-closed by the EOF
        writer.close()
        server.close()
        await server.wait_closed()
        return result

    return run(loop, main())


@pytest.mark.parametrize("over_tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("subclass", ["protocol", "reader"])
def test_subclass_methods_are_called(
    loop: asyncio.AbstractEventLoop, over_tls: bool, subclass: str, tls: Contexts
) -> None:
    """A user's StreamReaderProtocol.data_received or StreamReader.feed_data
    override sees every chunk, as asyncio calls it."""
    seen: list[bytes] = []
    data = _payload(300_000)
    if subclass == "protocol":
        make_reader: Any = asyncio.StreamReader
        make_protocol: Any = lambda reader: _RecordingProtocol(reader, seen)
    else:
        make_reader = lambda: _RecordingReader(seen)
        make_protocol = asyncio.StreamReaderProtocol
    got = _through(loop, make_reader, make_protocol, data, tls if over_tls else None)
    assert got == data
    assert b"".join(seen) == data


def test_buffer_that_cannot_grow_is_a_fatal_error(
    request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop, loop_name: str
) -> None:
    """Data arriving while the reader's buffer is exported (a memoryview of
    it alive) cannot be appended: asyncio's feed_data raises BufferError,
    the transport reports it as a failed data_received and closes, and the
    reader then raises it."""

    async def main() -> tuple[str, type[BaseException]]:
        reported: asyncio.Future[str] = loop.create_future()
        outcome: asyncio.Future[type[BaseException]] = loop.create_future()
        first = asyncio.Event()

        def handler(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if not reported.done():
                reported.set_result(context["message"])

        loop.set_exception_handler(handler)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readexactly(1)  # 'a' read, 'b' left in the buffer
            view = memoryview(reader._buffer)  # type: ignore[attr-defined]
            first.set()
            await reported
            view.release()
            try:
                await reader.read(10)
                await reader.read(10)
                outcome.set_result(type(None))
            except BaseException as exc:  # noqa: BLE001 - the type is the result
                outcome.set_result(type(exc))
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ab")
        await first.wait()
        writer.write(b"c")
        message = await reported
        exc_type = await outcome
        writer.close()
        server.close()
        await server.wait_closed()
        return message, exc_type

    xfail_for(request, ["uvloop"], "uvloop reports it as 'Fatal error on transport'", loop_name)
    message, exc_type = run(loop, main())
    assert exc_type is BufferError
    assert message == "Fatal error: protocol.data_received() call failed."
