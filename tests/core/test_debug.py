"""Debug mode: get/set_debug, slow callbacks, thread checks."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
from conftest import noop, run_forever_bounded


def test_get_set_debug(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(False)
    assert loop.get_debug() is False
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False


def test_slow_callback_duration_default(loop: asyncio.AbstractEventLoop) -> None:
    assert loop.slow_callback_duration == pytest.approx(0.1)  # type: ignore[attr-defined]


def slow_callback_marker() -> None:
    time.sleep(0.06)  # the slowness is what is being measured


def test_slow_callback_logged_in_debug(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(True)
    loop.slow_callback_duration = 0.03  # type: ignore[attr-defined]
    loop.call_soon(slow_callback_marker)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run_forever_bounded(loop)
    slow = [
        r
        for r in caplog.records
        if r.name == "asyncio" and r.levelno == logging.WARNING and "took" in r.getMessage()
    ]
    assert len(slow) == 1
    text = slow[0].getMessage()
    assert text.startswith("Executing ")
    assert "slow_callback_marker" in text
    assert "seconds" in text


def test_fast_callback_not_logged(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(True)
    loop.slow_callback_duration = 10.0  # type: ignore[attr-defined]
    loop.call_soon(slow_callback_marker)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run_forever_bounded(loop)
    assert not [r for r in caplog.records if "took" in r.getMessage()]


def test_slow_callback_not_logged_without_debug(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.set_debug(False)
    loop.slow_callback_duration = 0.01  # type: ignore[attr-defined]
    loop.call_soon(slow_callback_marker)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run_forever_bounded(loop)
    assert not [r for r in caplog.records if "took" in r.getMessage()]


NON_THREADSAFE: dict[str, Callable[[asyncio.AbstractEventLoop], object]] = {
    "call_soon": lambda lp: lp.call_soon(noop),
    "call_later": lambda lp: lp.call_later(10, noop),
    "call_at": lambda lp: lp.call_at(lp.time() + 10, noop),
}


@pytest.mark.parametrize("operation", sorted(NON_THREADSAFE))
def test_debug_non_threadsafe_call_from_other_thread(
    loop: asyncio.AbstractEventLoop, operation: str
) -> None:
    loop.set_debug(True)
    results: list[object] = []

    def from_thread() -> None:
        try:
            handle = NON_THREADSAFE[operation](loop)
            results.append(handle)
        except RuntimeError as exc:
            results.append(exc)
        loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=from_thread)
    loop.call_soon(thread.start)
    run_forever_bounded(loop)
    thread.join(5)
    assert not thread.is_alive()
    assert len(results) == 1
    assert isinstance(results[0], RuntimeError)
    assert str(results[0]) == (
        "Non-thread-safe operation invoked on an event loop other than the current one"
    )


def test_debug_call_soon_from_other_thread_allowed_when_not_running(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # asyncio only checks the thread while the loop runs.
    loop.set_debug(True)
    results: list[object] = []

    def from_thread() -> None:
        results.append(loop.call_soon(results.append, "ran"))

    thread = threading.Thread(target=from_thread)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert len(results) == 1 and not isinstance(results[0], BaseException)
    loop.call_soon(loop.stop)
    run_forever_bounded(loop)
    assert results[1:] == ["ran"]


def test_call_soon_threadsafe_from_other_thread_ok_in_debug(
    loop: asyncio.AbstractEventLoop,
) -> None:
    loop.set_debug(True)
    ran: list[str] = []

    def from_thread() -> None:
        loop.call_soon_threadsafe(ran.append, "threadsafe")
        loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=from_thread)
    loop.call_soon(thread.start)
    run_forever_bounded(loop)
    thread.join(5)
    assert ran == ["threadsafe"]


def test_debug_mode_source_traceback(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(True)
    handle = loop.call_soon(noop)
    assert "created at" in repr(handle)
    handle.cancel()
    loop.set_debug(False)
    handle = loop.call_soon(noop)
    assert "created at" not in repr(handle)
    handle.cancel()


# --- debug mode from the interpreter's flags and environment ----------------

_CHILD = """
import asyncio, sys
name = sys.argv[1]
if name == "asyncio":
    loop = asyncio.new_event_loop()
elif name == "uvloop":
    import uvloop
    loop = uvloop.new_event_loop()
else:
    import rloop
    loop = rloop.new_event_loop("tokio" if name == "tokio" else "rloop")
print(loop.get_debug())
loop.slow_callback_duration = 0.0  # every callback is slow: it is logged in debug mode
loop.call_soon(lambda: None)
loop.call_soon(loop.stop)
loop.run_forever()
loop.close()
"""


@pytest.mark.parametrize(
    ("flags", "env", "debug"),
    [
        ([], {}, False),
        (["-X", "dev"], {}, True),
        ([], {"PYTHONASYNCIODEBUG": "1"}, True),
        (["-E"], {"PYTHONASYNCIODEBUG": "1"}, False),
    ],
    ids=["default", "dev-mode", "env", "env-ignored"],
)
def test_debug_mode_from_interpreter(
    loop_name: str, flags: list[str], env: dict[str, str], debug: bool
) -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE")}
    if "-E" in flags:
        # -E also ignores PYTHONPATH: hand the child the parent's path explicitly.
        flags = [*flags, "-c", f"import sys; sys.path[:0] = {sys.path!r}; exec({_CHILD!r})"]
    else:
        flags = [*flags, "-c", _CHILD]
    proc = subprocess.run(
        [sys.executable, *flags, loop_name],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(debug)
    # Debug mode's checks are on, not only the flag: slow callbacks are logged.
    assert ("Executing <Handle" in proc.stderr) is debug, proc.stderr
