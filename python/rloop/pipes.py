"""connect_read_pipe and connect_write_pipe, and the pipe transports they
make (also the plumbing of subprocesses).

These are asyncio's own Unix implementations, taken from the stdlib at
import time: its pipe transports only need call_soon, create_future and
the private _add_reader/_remove_reader/_add_writer/_remove_writer, which the
Rust core provides.
"""

from __future__ import annotations

from asyncio import base_events, unix_events

from .borrow import borrow, documented


class PipesMixin:
    connect_read_pipe = documented(
        base_events.BaseEventLoop.connect_read_pipe,
        """Connect the read end of the pipe `pipe` (a file-like object) to the loop.

        Return (transport, protocol): a ReadTransport, and the protocol made
        by protocol_factory(), which receives what the pipe delivers.""",
    )
    connect_write_pipe = documented(
        base_events.BaseEventLoop.connect_write_pipe,
        """Connect the write end of the pipe `pipe` (a file-like object) to the loop.

        Return (transport, protocol): a WriteTransport to write to the pipe
        with, and the protocol made by protocol_factory().""",
    )
    locals().update(
        borrow(
            unix_events._UnixSelectorEventLoop,
            ["_make_read_pipe_transport", "_make_write_pipe_transport"],
        )
    )
