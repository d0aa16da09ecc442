"""What differs between the CPython versions rloop runs on (3.11 to 3.15).

Each difference is read once, at import, from the running interpreter's
asyncio (a feature check, not a version table, wherever one is possible),
so the rest of the package asks a name here instead of `sys.version_info`.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import warnings
from typing import Any

#: A Unix server removes its socket file when it closes, and
#: create_unix_server() takes cleanup_socket= (3.13+).
UNIX_SOCKET_CLEANUP: bool = (
    "cleanup_socket" in inspect.signature(asyncio.SelectorEventLoop.create_unix_server).parameters
)

#: A cancelled Server.serve_forever() closes the server's connections before
#: it waits for them (3.14; a hanging client would otherwise hang it). Read
#: from the names the running asyncio's serve_forever() uses, as this
#: change came with patch releases too.
SERVE_FOREVER_CLOSES_CLIENTS: bool = (
    "close_clients" in asyncio.base_events.Server.serve_forever.__code__.co_names
)

#: A native loop.sendfile() moves the file position to where it stopped
#: whenever it called sendfile(2), even with nothing sent (3.14); before,
#: only once something was sent. Read from the helper asyncio's Unix loop
#: moves it with, whose total_sent parameter went with that change.
_UPDATE_FILEPOS: Any = asyncio.unix_events._UnixSelectorEventLoop._sock_sendfile_update_filepos
SENDFILE_ALWAYS_MOVES_POSITION: bool = (
    "total_sent" not in _UPDATE_FILEPOS.__code__.co_varnames[: _UPDATE_FILEPOS.__code__.co_argcount]
)

# asyncio's private marker of old-style coroutine functions; 3.11's
# unittest.mock.AsyncMock still sets it, inspect does not know it.
_COROUTINE_MARKER: Any = getattr(asyncio.coroutines, "_is_coroutine", None)


def iscoroutinefunction(func: Any) -> bool:
    """asyncio.iscoroutinefunction(), which 3.14 deprecates, without the warning."""
    return inspect.iscoroutinefunction(func) or (
        _COROUTINE_MARKER is not None
        and getattr(func, "_is_coroutine", None) is _COROUTINE_MARKER
    )


def mark_coroutine_function(func: Any) -> None:
    """Make `func`, a plain function that returns a coroutine, pass for a
    coroutine function: inspect's mark from 3.12, asyncio's before (which
    iscoroutinefunction() above also reads)."""
    if hasattr(inspect, "markcoroutinefunction"):  # 3.12+
        inspect.markcoroutinefunction(func)
    elif _COROUTINE_MARKER is not None:
        func._is_coroutine = _COROUTINE_MARKER


def quietly_deprecated(fn: Any, *args: Any) -> Any:
    """Call an asyncio API that 3.14 deprecates (the event loop policies),
    without the DeprecationWarning: rloop's own policy support keeps working
    for as long as asyncio has policies, and says nothing on the user's
    behalf. The warning is the user's to get when they call asyncio's
    policy API themselves."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return fn(*args)


#: asyncio's default policy class; reading the name warns on 3.14+.
DefaultEventLoopPolicy: Any = quietly_deprecated(getattr, asyncio, "DefaultEventLoopPolicy")


def debug_mode_requested() -> bool:
    """Whether a new loop starts in debug mode, as asyncio decides it: under
    ``python -X dev``, or with PYTHONASYNCIODEBUG set (unless ``-E``)."""
    return bool(sys.flags.dev_mode) or (
        not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG"))
    )


def _write_type_error_prefix() -> str:
    """The text before the type's name in asyncio's write() TypeError, as
    the running asyncio words it (3.14 reworded it); asyncio's own check is
    the first thing its write() does, so asking it costs nothing."""
    write: Any = asyncio.selector_events._SelectorSocketTransport.write
    try:
        write(None, "")
    except TypeError as exc:
        text = str(exc)
        if text.endswith("'str'"):
            return text[: -len("'str'")]
    return "data argument must be a bytes-like object, not "


_WRITE_TYPE_ERROR_PREFIX = _write_type_error_prefix()


def write_type_error(data: object) -> TypeError:
    """The TypeError asyncio's transport.write() raises for `data`."""
    return TypeError(f"{_WRITE_TYPE_ERROR_PREFIX}{type(data).__name__!r}")


#: transport.writelines() joins the chunks into one bytes object (3.11,
#: asyncio.WriteTransport's); from 3.12 the selector transport queues a
#: memoryview of each, and takes any false value as nothing to write.
WRITELINES_JOINS: bool = (
    "writelines" not in asyncio.selector_events._SelectorSocketTransport.__dict__
)


def writelines_chunks(list_of_data: Any) -> list[Any]:
    """What transport.writelines(list_of_data) writes, checked as the
    running asyncio checks it (its exceptions, from the same operations)."""
    if WRITELINES_JOINS:
        return [b"".join(list_of_data)]
    if not list_of_data:
        return []
    return [memoryview(data) for data in list_of_data]
