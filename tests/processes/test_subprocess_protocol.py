"""loop.subprocess_exec / subprocess_shell with a SubprocessProtocol: the
order of the protocol's callbacks, the transport's close, children of a
loop in another thread, and a loop closed while a child runs. RLoop and
TokioLoop run each test with a pidfd per child and with a thread per child
(watch_modes.py); the tests at the end are about rloop's child watcher
itself and run on those two only."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import os
import signal
import sys
import threading
from typing import Any

import pytest
from conftest import make_loop, run, xfail_for

from processes.watch_modes import watched_loop_name  # noqa: F401 - the fixture

PIPE = asyncio.subprocess.PIPE
DEVNULL = asyncio.subprocess.DEVNULL
PY = sys.executable
SLEEPER = (PY, "-c", "import time; time.sleep(60)")


class Recorder(asyncio.SubprocessProtocol):
    """Records every callback; ``done`` is set by connection_lost."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.events: list[Any] = []
        self.transport: Any = None
        self.done: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's is not an asyncio.SubprocessTransport subclass.)
        self.transport = transport
        self.events.append("made")

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.events.append(("data", fd, data))

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self) -> None:
        assert self.transport is not None
        self.events.append(("exited", self.transport.get_returncode()))

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", exc))
        self.done.set_result(None)


def per_fd(events: list[Any], fd: int) -> tuple[bytes, list[Any]]:
    """The bytes received on ``fd`` and its other events, in order."""
    data = b"".join(e[2] for e in events if e[0] == "data" and e[1] == fd)
    rest = [e[0] if e[0] == "data" else e for e in events if isinstance(e, tuple) and e[1] == fd]
    # Consecutive chunks count as one "data".
    squashed = [e for i, e in enumerate(rest) if e != "data" or i == 0 or rest[i - 1] != "data"]
    return data, squashed


def test_callback_order(loop: asyncio.AbstractEventLoop) -> None:
    """connection_made first, then on each pipe its data and one
    pipe_connection_lost, process_exited once with the code known, and
    connection_lost last. (Between pipes and process_exited asyncio
    promises no order.)"""

    async def main() -> list[Any]:
        code = (
            "import sys\n"
            "data = sys.stdin.buffer.read()\n"
            "sys.stdout.buffer.write(data.upper()); sys.stdout.flush()\n"
            "sys.stderr.buffer.write(b'err'); sys.exit(5)"
        )
        transport, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), PY, "-c", code, stdin=PIPE, stdout=PIPE, stderr=PIPE
        )
        assert transport.get_returncode() is None
        stdin = transport.get_pipe_transport(0)
        stdin.write(b"abc")
        stdin.write_eof()
        await proto.done
        transport.close()
        return proto.events

    events = run(loop, main())
    assert events[0] == "made"
    assert events[-1] == ("lost", None)
    assert [e for e in events if e[0] == "exited"] == [("exited", 5)]
    assert per_fd(events, 0) == (b"", [("pipe_lost", 0, None)])
    assert per_fd(events, 1) == (b"ABC", ["data", ("pipe_lost", 1, None)])
    assert per_fd(events, 2) == (b"err", ["data", ("pipe_lost", 2, None)])
    assert len(events) == len(set(map(str, events)))  # nothing twice, chunks aside


def test_child_that_exits_at_once(loop: asyncio.AbstractEventLoop) -> None:
    """However soon the child exits, connection_made comes first."""

    async def main() -> list[Any]:
        _, proto = await loop.subprocess_exec(
            lambda: Recorder(loop), PY, "-c", "import os; os._exit(9)", stdin=None
        )
        await proto.done
        return proto.events

    events = run(loop, main())
    assert events[0] == "made"
    assert ("exited", 9) in events
    assert events[-1] == ("lost", None)
    assert sorted(e[1] for e in events if e[0] == "pipe_lost") == [1, 2]


def test_shell_protocol(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> list[Any]:
        transport, proto = await loop.subprocess_shell(
            lambda: Recorder(loop), "echo from the shell; exit 2", stdin=None, stderr=None
        )
        await proto.done
        transport.close()
        return proto.events

    events = run(loop, main())
    assert per_fd(events, 1) == (b"from the shell\n", ["data", ("pipe_lost", 1, None)])
    assert ("exited", 2) in events
    assert events[-1] == ("lost", None)


def test_transport_close_kills_a_running_child(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[int | None, list[Any]]:
        transport, proto = await loop.subprocess_exec(lambda: Recorder(loop), *SLEEPER)
        transport.close()
        await proto.done
        return transport.get_returncode(), proto.events

    returncode, events = run(loop, main())
    assert returncode == -signal.SIGKILL
    assert ("exited", -signal.SIGKILL) in events
    assert events[-1] == ("lost", None)


def test_subprocess_from_another_thread(loop_name: str) -> None:
    """A loop running in a thread other than the main one starts children
    and learns of their exit."""

    def in_thread() -> tuple[bytes, int | None]:
        other = make_loop(loop_name)

        async def main() -> tuple[bytes, int | None]:
            code = "import sys; sys.stdout.write(sys.stdin.read())"
            proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdin=PIPE, stdout=PIPE)
            out, _ = await proc.communicate(b"from a thread")
            return out, proc.returncode

        try:
            return run(other, main())
        finally:
            other.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(in_thread).result(10) == (b"from a thread", 0)


def test_closing_the_loop_with_a_running_child(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    """loop.close() neither fails nor kills the child nor reports anything;
    the transport can still be closed (which kills the child) afterwards."""
    xfail_for(request, ["uvloop"], "uvloop's transport fails to close after its loop", loop_name)

    async def start() -> tuple[asyncio.SubprocessTransport, Recorder]:
        return await loop.subprocess_exec(
            lambda: Recorder(loop), *SLEEPER, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL
        )

    transport, proto = run(loop, start())
    pid = transport.get_pid()
    loop.close()
    killed = False
    try:
        os.kill(pid, 0)  # still there
        assert proto.events == ["made"]
        transport.close()
        killed = True
    finally:
        if not killed:
            os.kill(pid, signal.SIGKILL)


# rloop's child watcher itself (RLoop and TokioLoop only).


@pytest.fixture
def rloop_name(loop_name: str) -> str:
    if loop_name not in ("rloop", "tokio"):
        pytest.skip("rloop's child watcher")
    return loop_name


def watcher_threads(pid: int) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"rloop-waitpid-{pid}"]


def fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def test_closed_loop_child_is_reaped_and_no_fd_leaks(rloop_name: str) -> None:
    """After the loop is closed a thread reaps the child when it ends (no
    zombie), and the pidfd is closed."""
    loop = make_loop(rloop_name)
    before = fds()

    async def start() -> asyncio.SubprocessTransport:
        transport, _ = await loop.subprocess_exec(
            asyncio.SubprocessProtocol, *SLEEPER, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL
        )
        return transport

    transport = run(loop, start())
    pid = transport.get_pid()
    loop.close()
    assert not fds() - before
    reapers = watcher_threads(pid)
    assert len(reapers) == 1
    os.kill(pid, signal.SIGKILL)
    reapers[0].join(5)
    assert not reapers[0].is_alive()
    with pytest.raises(ChildProcessError):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    transport.close()  # a no-op: its Popen finds the child gone


def test_one_thread_per_child_only_without_pidfd(
    rloop_name: str, loop: asyncio.AbstractEventLoop
) -> None:
    from rloop import child_watcher

    async def main() -> tuple[int, int]:
        proc = await asyncio.create_subprocess_exec(*SLEEPER)
        threads = len(watcher_threads(proc.pid))
        proc.kill()
        return threads, await proc.wait()

    threads, returncode = run(loop, main())
    assert returncode == -signal.SIGKILL
    assert threads == (0 if child_watcher.pidfd_usable() else 1)


def test_pidfd_open_failing_falls_back_to_a_thread(
    rloop_name: str, loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    def out_of_fds(pid: int, flags: int = 0) -> int:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(os, "pidfd_open", out_of_fds, raising=False)

    async def main() -> tuple[bytes, int | None]:
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "print('fine'); raise SystemExit(3)", stdout=PIPE
        )
        out, _ = await proc.communicate()
        return out, proc.returncode

    assert run(loop, main()) == (b"fine\n", 3)


def test_status_taken_by_popen_is_reported(
    rloop_name: str, loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """The child was reaped by its own Popen (through the transport's
    'subprocess' extra) before the watcher: the transport reports Popen's
    code, not asyncio's 255 for a lost status."""

    async def main() -> int:
        proc = await asyncio.create_subprocess_exec(PY, "-c", "raise SystemExit(6)")
        popen = proc._transport.get_extra_info("subprocess")  # type: ignore[attr-defined]
        assert popen.wait() == 6  # blocks the loop until the child is gone
        return await proc.wait()

    assert run(loop, main()) == 6
    assert "255" not in caplog.text
