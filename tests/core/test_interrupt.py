"""A signal with a Python-level handler interrupts a loop idle in its poll.

Ctrl-C (Python's default SIGINT handler) raises KeyboardInterrupt out of
``run_forever()``, and a handler of another signal that raises gets its
exception out of it, however the loop waits (nothing to do, a server
listening), whichever thread the signal is delivered to (the main thread,
or a thread of the default executor), and next to ``add_signal_handler``
or a wakeup fd of the program's own, which the loop leaves as it found
them.

The signals are sent to a child interpreter, so that a loop that is not
interrupted cannot take the test run with it: the child prints "ready"
once its loop is about to wait, the test waits until the child's main
thread sleeps (in the poll) and sends the signal; a watchdog thread in the
child ends it (status 3) if the loop was not interrupted in time.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import proc_wait
import pytest
from conftest import RUN_TIMEOUT, make_loop, run_forever_bounded, xfail_for

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or not hasattr(signal, "pthread_kill"), reason="Unix signals"
)

_CHILD = (
    inspect.getsource(proc_wait)
    + """
import asyncio, os, signal, socket, sys, threading

name, setup, signame, delivery, bound = sys.argv[1:6]
bound = float(bound)
sig = getattr(signal, signame)
if name == "asyncio":
    loop = asyncio.new_event_loop()
elif name == "uvloop":
    import uvloop
    loop = uvloop.new_event_loop()
else:
    import rloop
    loop = rloop.new_event_loop() if name == "rloop" else rloop.new_tokio_event_loop()


class FromHandler(Exception):
    pass


def raising_handler(signum, frame):
    raise FromHandler(signal.Signals(signum).name)


if sig != signal.SIGINT:
    signal.signal(sig, raising_handler)


def exception_handler(loop, context):
    # The handler's exception was taken for a callback's.
    print("in the exception handler:", repr(context.get("exception")), flush=True)
    os._exit(4)


loop.set_exception_handler(exception_handler)


def watchdog():
    print("not interrupted", flush=True)
    os._exit(3)


timer = threading.Timer(2 * bound, watchdog)
timer.daemon = True

if setup == "server":
    server = loop.run_until_complete(loop.create_server(asyncio.Protocol, "127.0.0.1", 0))
elif setup == "signal_handler":
    loop.add_signal_handler(signal.SIGUSR2, lambda: None)
elif setup == "own_wakeup_fd":
    own_r, own_w = socket.socketpair()
    own_w.setblocking(False)
    signal.set_wakeup_fd(own_w.fileno())
wakeup_before = signal.set_wakeup_fd(-1)
signal.set_wakeup_fd(wakeup_before)

release = threading.Event()
handler_removed = threading.Event()
work_done = []
main_tid = threading.main_thread().native_id


def add_and_remove_handler():
    # In the running loop, after it has waited once.
    loop.add_signal_handler(signal.SIGUSR2, lambda: None)
    loop.remove_signal_handler(signal.SIGUSR2)
    handler_removed.set()


def work():
    # In an executor thread, while the loop waits for this: the signal is
    # delivered to this thread, not to the loop's.
    if setup == "handler_removed":
        handler_removed.wait(bound)
    wait_sleeping(os.getpid(), main_tid, bound)
    signal.pthread_kill(threading.get_ident(), sig)
    release.wait(bound)
    work_done.append(True)


def ready():
    print("ready", flush=True)


timer.start()
try:
    if delivery == "thread":
        # The executor's thread exists and idles before the work is queued.
        loop.run_until_complete(loop.run_in_executor(None, lambda: None))
        if setup == "handler_removed":
            loop.call_later(0.001, add_and_remove_handler)
        loop.run_until_complete(loop.run_in_executor(None, work))
    else:
        loop.call_soon(ready)
        loop.run_forever()
except (KeyboardInterrupt, FromHandler) as exc:
    print(type(exc).__name__, exc, "- after the work" if work_done else "", flush=True)
else:
    print("run ended without an exception", flush=True)
release.set()
wakeup_after = signal.set_wakeup_fd(-1)
print("wakeup fd kept:", wakeup_after == wakeup_before, flush=True)
timer.cancel()
if setup == "server":
    server.close()
    loop.run_until_complete(server.wait_closed())
loop.close()
"""
)


def _run_child(loop_name: str, setup: str, signame: str, delivery: str) -> list[str]:
    """The child's output lines; sends the signal itself for `process`."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, loop_name, setup, signame, delivery, str(RUN_TIMEOUT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        if delivery == "process":
            assert proc.stdout is not None
            lines.append(proc.stdout.readline().strip())
            if lines == ["ready"]:
                proc_wait.wait_sleeping(proc.pid, proc.pid, RUN_TIMEOUT)
                os.kill(proc.pid, getattr(signal, signame))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lines += out.splitlines()
    assert proc.returncode == 0, (lines, err)
    return lines


UVLOOP_HANDLER_IN_CALLBACK = (
    "uvloop runs Python's signal handlers in a callback of its own: an exception"
    " from one goes to the exception handler, not out of run_forever()"
)


def _expected(signame: str) -> str:
    return "KeyboardInterrupt" if signame == "SIGINT" else f"FromHandler {signame}"


@pytest.mark.parametrize(
    ("setup", "signame"),
    [
        ("idle", "SIGINT"),
        ("server", "SIGINT"),
        ("signal_handler", "SIGINT"),
        ("own_wakeup_fd", "SIGINT"),
        ("idle", "SIGUSR1"),
        ("server", "SIGUSR1"),
        ("signal_handler", "SIGUSR1"),
    ],
)
def test_signal_interrupts_idle_loop(
    loop_name: str, setup: str, signame: str, request: pytest.FixtureRequest
) -> None:
    """kill(pid, sig) while the loop waits in its poll: the handler's
    exception leaves run_forever(), and the wakeup fd is as it was."""
    if signame != "SIGINT":
        xfail_for(request, ["uvloop"], UVLOOP_HANDLER_IN_CALLBACK, loop_name)
    lines = _run_child(loop_name, setup, signame, "process")
    assert [line.strip() for line in lines] == [
        "ready",
        _expected(signame),
        "wakeup fd kept: True",
    ]


@pytest.mark.parametrize(
    ("setup", "signame"),
    [
        ("idle", "SIGINT"),
        ("idle", "SIGUSR1"),
        ("signal_handler", "SIGINT"),
        ("handler_removed", "SIGINT"),
    ],
)
def test_signal_to_executor_thread_interrupts_loop(
    loop_name: str, setup: str, signame: str, request: pytest.FixtureRequest
) -> None:
    """A signal delivered to an executor thread (pthread_kill) while the
    loop waits for that thread's work: run_until_complete() raises the
    handler's exception before the work ends. Also after add_signal_handler
    and remove_signal_handler in the same run (the wakeup fd they set and
    reset is the loop's again)."""
    if signame != "SIGINT":
        xfail_for(request, ["uvloop"], UVLOOP_HANDLER_IN_CALLBACK, loop_name)
    if setup in ("idle", "handler_removed"):
        xfail_for(
            request,
            ["asyncio"],
            "asyncio sets no wakeup fd of its own: a signal handled in another"
            " thread does not wake its selector",
            loop_name,
        )
    lines = _run_child(loop_name, setup, signame, "thread")
    assert [line.strip() for line in lines] == [_expected(signame), "wakeup fd kept: True"]


# --- the wakeup fd, in this process (no signal is sent) -----------------------


@pytest.fixture
def _wakeup_fd_restored() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGUSR1,)}
    wakeup = signal.set_wakeup_fd(-1)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(wakeup)


def _wakeup_fd() -> int:
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd)
    return fd


@pytest.mark.usefixtures("_wakeup_fd_restored")
def test_no_wakeup_fd_left_after_run(loop: asyncio.AbstractEventLoop) -> None:
    """A loop that waited in its poll leaves no wakeup fd behind."""
    loop.call_later(0.001, loop.stop)
    run_forever_bounded(loop)
    assert _wakeup_fd() == -1


@pytest.mark.usefixtures("_wakeup_fd_restored")
def test_own_wakeup_fd_kept(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    """The program's own wakeup fd stays in place while the loop runs, and
    after."""
    xfail_for(
        request, ["uvloop"], "uvloop puts its own wakeup fd in place while it runs", loop_name
    )
    rsock, wsock = socket.socketpair()
    try:
        wsock.setblocking(False)
        signal.set_wakeup_fd(wsock.fileno())
        during: list[int] = []
        loop.call_later(0.001, lambda: (during.append(_wakeup_fd()), loop.stop()))
        run_forever_bounded(loop)
        assert during == [wsock.fileno()]
        assert _wakeup_fd() == wsock.fileno()
    finally:
        rsock.close()
        wsock.close()


@pytest.mark.usefixtures("_wakeup_fd_restored")
def test_signal_handler_added_while_running(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    """add_signal_handler() in a running loop (as uvicorn calls it): its
    wakeup fd outlives the run, its handler runs in the next one, and
    removing it leaves no wakeup fd."""
    xfail_for(
        request, ["uvloop"], "uvloop's signal wakeup fd is in place only while it runs", loop_name
    )
    got: list[str] = []

    def add() -> None:
        loop.add_signal_handler(signal.SIGUSR1, lambda: (got.append("usr1"), loop.stop()))
        loop.call_later(0.001, loop.stop)

    loop.call_soon(add)
    run_forever_bounded(loop)
    assert _wakeup_fd() != -1
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    run_forever_bounded(loop)
    assert got == ["usr1"]
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert _wakeup_fd() == -1
    loop.call_later(0.001, loop.stop)
    run_forever_bounded(loop)
    assert _wakeup_fd() == -1


def test_loop_in_another_thread_leaves_wakeup_fd(loop_name: str) -> None:
    """A loop run outside the main thread (where a wakeup fd cannot be
    set) runs, and leaves the main thread's wakeup fd alone."""
    errors: list[BaseException] = []

    def in_thread() -> None:
        thread_loop = make_loop(loop_name)
        try:
            thread_loop.call_later(0.001, thread_loop.stop)
            run_forever_bounded(thread_loop)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)
        finally:
            thread_loop.close()

    before = _wakeup_fd()
    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(RUN_TIMEOUT)
    assert not thread.is_alive()
    assert errors == []
    assert _wakeup_fd() == before
