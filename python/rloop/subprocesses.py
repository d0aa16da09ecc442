"""subprocess_exec and subprocess_shell (asyncio.create_subprocess_exec and
create_subprocess_shell run on them).

These are asyncio's own Unix implementations, taken from the stdlib at
import time: the child watcher of the current policy reports the exit
through call_soon_threadsafe, and the child's pipes are pipe transports
(pipes.py).
"""

from __future__ import annotations

from asyncio import base_events, unix_events

from .borrow import borrow


class SubprocessMixin:
    locals().update(
        borrow(
            base_events.BaseEventLoop,
            ["subprocess_exec", "subprocess_shell", "_log_subprocess"],
        )
    )
    locals().update(
        borrow(
            unix_events._UnixSelectorEventLoop,
            ["_make_subprocess_transport", "_child_watcher_callback"],
        )
    )
