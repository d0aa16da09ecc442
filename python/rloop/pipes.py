"""connect_read_pipe and connect_write_pipe, and the pipe transports they
make (also the plumbing of subprocesses).

These are asyncio's own Unix implementations, taken from the stdlib at
import time: its pipe transports only need call_soon, create_future and
the private _add_reader/_remove_reader/_add_writer/_remove_writer, which the
Rust core provides.
"""

from __future__ import annotations

import types
from asyncio import base_events, unix_events
from typing import Any

from .borrow import borrow


def documented(func: Any, doc: str) -> Any:
    """A copy of asyncio's function `func` with the docstring `doc`, for
    the borrowed methods asyncio gives none (also used by sockets.py and
    subprocesses.py).

    asyncio's own function is left as it is: the copy shares its code.
    """
    copy = types.FunctionType(
        func.__code__, func.__globals__, func.__name__, func.__defaults__, func.__closure__
    )
    copy.__kwdefaults__ = func.__kwdefaults__
    copy.__qualname__ = func.__qualname__
    copy.__doc__ = doc
    return copy


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
