"""loop.sendfile() on rloop's TCP and Unix transports, zero-copy.

The file is sent by the connection's actor in Rust with sendfile(2), as a
segment of its write stream behind the bytes already written (see
src/transport/sendfile.rs and actors/src/sendfile.rs). This is the loop's
``_sendfile_native``, which asyncio's own ``loop.sendfile()`` calls for
transports that declare ``_SendfileMode.TRY_NATIVE``; when it raises
SendfileNotAvailableError, ``loop.sendfile()`` falls back to reading the file
and writing it (unless ``fallback=False``). What it checks and raises, the
file position afterwards and when writes are refused are those of asyncio's
selector loop.
"""

from __future__ import annotations

import asyncio
import io
import os
from typing import Any

from .transports import SocketTransport
from .versions import SENDFILE_ALWAYS_MOVES_POSITION


def _check_params(file: Any, offset: Any, count: Any) -> None:
    """The arguments asyncio refuses, with its exceptions and messages."""
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


def _sent_until(file: Any, fileno: int, offset: int, sent: int, started: bool) -> None:
    """Moves the file position past what was sent, when asyncio does: once
    sendfile(2) was called and (before 3.14) something was sent. Through a
    seekable file object, which then drops what it had read ahead; else on
    the descriptor, as asyncio does (an unseekable file fails with
    asyncio's OSError then)."""
    if not started or not (sent or SENDFILE_ALWAYS_MOVES_POSITION):
        return
    seekable = getattr(file, "seekable", None)
    if seekable is not None and hasattr(file, "seek") and seekable():
        file.seek(offset + sent)
    else:
        os.lseek(fileno, offset + sent, os.SEEK_SET)


async def sendfile_native(
    self: asyncio.AbstractEventLoop,
    transp: asyncio.BaseTransport,
    file: Any,
    offset: int,
    count: int | None,
) -> int:
    """Send *count* bytes (None: up to the end) of *file* from *offset*."""
    if not isinstance(transp, SocketTransport):
        raise asyncio.SendfileNotAvailableError("sendfile syscall is not supported")
    _check_params(file, offset, count)
    try:
        fileno = file.fileno()
    except (AttributeError, io.UnsupportedOperation):
        raise asyncio.SendfileNotAvailableError("not a regular file")
    try:
        size = os.fstat(fileno).st_size
    except OSError:
        raise asyncio.SendfileNotAvailableError("not a regular file")
    if not (count or size):
        return 0  # an empty file, as asyncio sees it
    waiter: asyncio.Future[tuple[int, bool, BaseException | None]] = self.create_future()
    resume_reading = transp.is_reading()
    transp.pause_reading()  # as asyncio does, until the file is sent
    core = transp._core
    try:
        core._sendfile_start(waiter, fileno, offset, count)
    except BaseException:
        if resume_reading:
            transp.resume_reading()
        raise
    try:
        sent, started, exc = await waiter
    except asyncio.CancelledError:
        # Cancelled, the actor stops sending and asyncio leaves the file
        # position alone; unless the file was sent just before.
        if waiter.done() and not waiter.cancelled():
            sent, started, _ = waiter.result()
            _sent_until(file, fileno, offset, sent, started)
        raise
    finally:
        core._sendfile_end()
        if resume_reading:
            transp.resume_reading()
    _sent_until(file, fileno, offset, sent, started)
    if exc is not None:
        raise exc
    return sent
