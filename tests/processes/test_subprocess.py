"""asyncio.create_subprocess_exec / create_subprocess_shell: output, input,
exit codes, signals and errors, as asyncio's own loop gives them."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest
from conftest import run, xfail_for

PIPE = asyncio.subprocess.PIPE
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
