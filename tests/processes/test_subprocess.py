"""asyncio.create_subprocess_exec / create_subprocess_shell: output, input,
exit codes, signals, the child's stdio, environment and errors, as
asyncio's own loop gives them. RLoop and TokioLoop run each test twice:
with a pidfd per child and with a thread per child (watch_modes.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import warnings

import pytest
from conftest import run, xfail_for

from processes.watch_modes import watched_loop_name  # noqa: F401 - the fixture

PIPE = asyncio.subprocess.PIPE
DEVNULL = asyncio.subprocess.DEVNULL
STDOUT = asyncio.subprocess.STDOUT
PY = sys.executable


def test_exec_stdout_and_exit_code(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bytes, int | None]:
        proc = await asyncio.create_subprocess_exec(PY, "-c", "print('hi')", stdout=PIPE)
        out, _ = await proc.communicate()
        return out, proc.returncode

    assert run(loop, main()) == (b"hi\n", 0)


def test_shell_stdin_stdout_stderr(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bytes, bytes, int | None]:
        proc = await asyncio.create_subprocess_shell(
            "cat; echo oops >&2; exit 3", stdin=PIPE, stdout=PIPE, stderr=PIPE
        )
        out, err = await proc.communicate(b"fed to cat")
        return out, err, proc.returncode

    assert run(loop, main()) == (b"fed to cat", b"oops\n", 3)


def test_streamed_lines(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> list[bytes]:
        code = "import sys\nfor i in range(3): print(i, flush=True)"
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdout=PIPE)
        assert proc.stdout is not None
        lines = [line async for line in proc.stdout]
        assert await proc.wait() == 0
        return lines

    assert run(loop, main()) == [b"0\n", b"1\n", b"2\n"]


def test_large_input_and_output(loop: asyncio.AbstractEventLoop) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB: more than any pipe buffer

    async def main() -> bytes:
        code = "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdin=PIPE, stdout=PIPE)
        out, _ = await proc.communicate(data)
        assert proc.returncode == 0
        return out

    assert run(loop, main()) == data


@pytest.mark.parametrize("how", ["kill", "terminate", "send_signal"])
def test_signals_end_the_child(loop: asyncio.AbstractEventLoop, how: str) -> None:
    expected = {
        "kill": -signal.SIGKILL,
        "terminate": -signal.SIGTERM,
        "send_signal": -signal.SIGINT,
    }

    async def main() -> int:
        code = "import sys, time; print('up', flush=True); time.sleep(60)"
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdout=PIPE)
        assert proc.stdout is not None
        assert await proc.stdout.readline() == b"up\n"
        if how == "send_signal":
            proc.send_signal(signal.SIGINT)
        else:
            getattr(proc, how)()
        return await proc.wait()

    # SIGINT makes Python raise KeyboardInterrupt in the child, exit code 1
    # or -SIGINT depending on where it lands; the others cannot be caught.
    got = run(loop, main())
    if how == "send_signal":
        assert got in (-signal.SIGINT, 1)
    else:
        assert got == expected[how]


def test_child_that_does_not_read_its_input(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> int | None:
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass", stdin=PIPE)
        # The child is gone before the input is written: asyncio's
        # communicate ignores the broken pipe.
        await proc.communicate(b"x" * (1 << 20))
        return proc.returncode

    assert run(loop, main()) == 0


def test_missing_program_is_file_not_found(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        await asyncio.create_subprocess_exec("/nonexistent/program-rloop-test")

    with pytest.raises(FileNotFoundError):
        run(loop, main())


def test_text_mode_is_refused(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    xfail_for(request, ["uvloop"], "uvloop refuses text=True its own way", loop_name)

    async def main() -> None:
        await asyncio.create_subprocess_exec(PY, "-c", "pass", text=True)

    with pytest.raises(ValueError, match="text must be False"):
        run(loop, main())


def test_returncode_and_concurrent_waits(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[int | None, list[int], int | None]:
        code = "import sys; sys.stdin.read(); sys.exit(7)"
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdin=PIPE)
        before = proc.returncode  # blocked on its stdin: still running
        waits = [asyncio.ensure_future(proc.wait()) for _ in range(5)]
        assert proc.stdin is not None
        proc.stdin.close()
        codes = await asyncio.gather(*waits)
        return before, codes, proc.returncode

    assert run(loop, main()) == (None, [7] * 5, 7)


@pytest.mark.parametrize("how", ["kill", "terminate", "send_signal"])
def test_signal_after_the_end_is_process_lookup_error(
    loop: asyncio.AbstractEventLoop, how: str
) -> None:
    """Once the exit is known and the pipes are closed, the transport has
    finished (its protocol's connection_lost has run): signalling raises
    ProcessLookupError, not a stray kill(2)."""

    class Finished(asyncio.SubprocessProtocol):
        def __init__(self) -> None:
            self.out = bytearray()
            self.lost = loop.create_future()

        def pipe_data_received(self, fd: int, data: bytes | str) -> None:
            self.out += data if isinstance(data, bytes) else data.encode()

        def connection_lost(self, exc: Exception | None) -> None:
            self.lost.set_result(exc)

    async def main() -> int | None:
        transport, protocol = await loop.subprocess_exec(
            Finished, PY, "-c", "print('bye')", stdin=None, stderr=None
        )
        assert await protocol.lost is None
        assert bytes(protocol.out) == b"bye\n"
        with pytest.raises(ProcessLookupError):
            if how == "send_signal":
                transport.send_signal(signal.SIGTERM)
            else:
                getattr(transport, how)()
        code = transport.get_returncode()
        transport.close()
        return code

    assert run(loop, main()) == 0


def test_devnull_stdio(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bool, int]:
        # Reads EOF at once from /dev/null, and its output goes nowhere.
        code = "import sys; print('lost'); sys.exit(len(sys.stdin.read()))"
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", code, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL
        )
        no_pipes = proc.stdin is None and proc.stdout is None and proc.stderr is None
        return no_pipes, await proc.wait()

    assert run(loop, main()) == (True, 0)


def test_stderr_to_stdout(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bytes, bytes | None]:
        code = (
            "import sys\n"
            "sys.stdout.write('out '); sys.stdout.flush()\n"
            "sys.stderr.write('err'); sys.stderr.flush()"
        )
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdout=PIPE, stderr=STDOUT)
        assert proc.stderr is None
        return await proc.communicate()

    assert run(loop, main()) == (b"out err", None)


def test_stdio_from_and_to_file_descriptors(loop: asyncio.AbstractEventLoop) -> None:
    with tempfile.TemporaryFile() as src, tempfile.TemporaryFile() as dst:
        src.write(b"from a file")
        src.seek(0)

        async def main() -> int:
            code = "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])"
            proc = await asyncio.create_subprocess_exec(
                PY, "-c", code, stdin=src.fileno(), stdout=dst.fileno()
            )
            return await proc.wait()

        assert run(loop, main()) == 0
        dst.seek(0)
        assert dst.read() == b"elif a morf"


def test_preexec_fn_runs_in_the_child(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bytes:
        code = "import os; print(oct(os.umask(0)))"
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", code, stdout=PIPE, preexec_fn=lambda: os.umask(0o027)
        )
        out, _ = await proc.communicate()
        return out

    assert run(loop, main()) == b"0o27\n"


def test_pass_fds(loop: asyncio.AbstractEventLoop) -> None:
    rfd, wfd = os.pipe()

    async def main() -> int:
        code = f"import os; os.write({wfd}, b'through the passed fd')"
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, pass_fds=(wfd,))
        return await proc.wait()

    try:
        assert run(loop, main()) == 0
        os.close(wfd)
        got = b""
        while chunk := os.read(rfd, 100):
            got += chunk
    finally:
        os.close(rfd)
    assert got == b"through the passed fd"


def test_other_fds_are_not_inherited(
    loop: asyncio.AbstractEventLoop, loop_name: str, request: pytest.FixtureRequest
) -> None:
    """Without pass_fds the child gets none of the parent's other fds
    (the loop's own, a pidfd, the pipes of other children)."""
    xfail_for(request, ["uvloop"], "uvloop's children inherit some of its fds", loop_name)

    async def main() -> bytes:
        code = "import os; print(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))"
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdout=PIPE)
        out, _ = await proc.communicate()
        return out

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc")
    # 0, 1, 2 and the fd of the directory listdir reads.
    assert run(loop, main()) == b"[0, 1, 2, 3]\n"


def test_env_and_cwd(loop: asyncio.AbstractEventLoop) -> None:
    with tempfile.TemporaryDirectory() as where:

        async def main() -> bytes:
            code = "import os; print(os.environ.get('RLOOP_TEST_VAR'), os.getcwd())"
            proc = await asyncio.create_subprocess_exec(
                PY, "-c", code, stdout=PIPE, env={"RLOOP_TEST_VAR": "set"}, cwd=where
            )
            out, _ = await proc.communicate()
            return out

        assert run(loop, main()) == f"set {os.path.realpath(where)}\n".encode()


def test_shell_sees_env(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bytes, int | None]:
        proc = await asyncio.create_subprocess_shell(
            'echo "$RLOOP_TEST_VAR" | tr a-z A-Z; exit 4',
            stdout=PIPE,
            env={"RLOOP_TEST_VAR": "shell", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        out, _ = await proc.communicate()
        return out, proc.returncode

    assert run(loop, main()) == (b"SHELL\n", 4)


def test_no_warnings(loop: asyncio.AbstractEventLoop) -> None:
    """No child-watcher deprecation or runtime warning along the way (3.12
    and 3.13 deprecated the policy's child watchers)."""

    async def main() -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            proc = await asyncio.create_subprocess_exec(PY, "-c", "pass", stdout=PIPE)
            await proc.communicate()
        return [f"{w.category.__name__}: {w.message}" for w in caught]

    assert run(loop, main()) == []


@pytest.mark.skipif(sys.version_info < (3, 14), reason="asyncio's wait() waits for the pipes")
def test_wait_returns_while_a_grandchild_holds_the_pipes(loop: asyncio.AbstractEventLoop) -> None:
    """3.14's asyncio (gh-119710): wait() returns once the child exits, even
    if a grandchild keeps its stdout open. Before 3.14 it waits for the pipes."""

    async def main() -> int:
        # The grandchild inherits the pipes, says it is up, and holds them
        # until its stdin ends.
        grandchild = "import sys; print('up', flush=True); sys.stdin.read()"
        code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}])"
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdin=PIPE, stdout=PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert await proc.stdout.readline() == b"up\n"
            proc.kill()
            return await asyncio.wait_for(proc.wait(), 5)
        finally:
            proc.stdin.close()  # the grandchild ends
            await proc.stdout.read()

    assert run(loop, main()) == -signal.SIGKILL
