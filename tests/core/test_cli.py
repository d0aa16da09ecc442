"""``python -m rloop``: a program run through it sees what ``python`` gives it.

Each case runs the same program twice, as ``python ARGS`` (the specification)
and as ``python -m rloop --loop NAME ARGS``, and compares what the program
observes (argv, sys.path[0], its globals, ``__main__``), its exit status and
its stderr; only the event loop it gets differs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from conftest import loop_class_name, loop_skip_reason

PROBE = """
import asyncio, json, pickle, sys
import sibling  # beside the script: found only if sys.path[0] is its folder

class Point:  # pickled by reference to __main__
    pass

async def loop_name():
    return type(asyncio.get_running_loop()).__name__

g = dict(globals())
loader = g.get("__loader__")
print(json.dumps({
    "argv": sys.argv,
    "path0": sys.path[0],
    "file": g.get("__file__"),
    "name": __name__,
    "package": g.get("__package__"),
    "spec": getattr(g.get("__spec__"), "name", None),
    "loader": [type(loader).__name__, getattr(loader, "name", None)],
    "cached": g.get("__cached__", "absent"),
    "keys": sorted(k for k in g if k.startswith("__")),
    "main_is_globals": vars(sys.modules["__main__"]) is globals(),
    "code": sys._getframe().f_code.co_filename,
    "sibling": sibling.VALUE,
    "pickles": type(pickle.loads(pickle.dumps(Point()))) is Point,
    "loop": asyncio.run(loop_name()),
}))
"""

FAILING = """
import sys

def inner(how):
    if how == "exit":
        sys.exit(3)
    if how == "message":
        sys.exit("bye")
    if how == "interrupt":
        raise KeyboardInterrupt
    try:
        {}["missing"]
    except KeyError:
        raise ValueError("boom")

inner(sys.argv[1])
"""


@pytest.fixture(params=["rloop", "tokio"])
def loop_option(request: pytest.FixtureRequest) -> str:
    reason = loop_skip_reason(request.param)
    if reason is not None:
        pytest.skip(reason)
    name: str = request.param
    return name


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """scripts/probe.py beside scripts/sibling.py, a link to it, the package
    pkg with a module and a __main__, the same as a folder app/ and a zip."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "probe.py").write_text(PROBE)
    (scripts / "sibling.py").write_text("VALUE = 'sibling'\n")
    (scripts / "failing.py").write_text(FAILING)
    (tmp_path / "link.py").symlink_to(scripts / "probe.py")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tool.py").write_text(PROBE.replace("import sibling", "from pkg import sibling"))
    (pkg / "sibling.py").write_text("VALUE = 'sibling'\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "__main__.py").write_text(PROBE)
    (app / "sibling.py").write_text("VALUE = 'sibling'\n")
    with zipfile.ZipFile(tmp_path / "app.zip", "w") as zf:
        zf.write(app / "__main__.py", "__main__.py")
        zf.write(app / "sibling.py", "sibling.py")
    return tmp_path


def _run(args: list[str], cwd: Path, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RLOOP_LOOP"} | env_vars
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _both(
    args: list[str], loop_option: str, cwd: Path
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    return _run(args, cwd), _run(["-m", "rloop", "--loop", loop_option, *args], cwd)


@pytest.mark.parametrize(
    "args",
    [
        ["scripts/probe.py", "a", "--loop", "-m", "x"],
        ["./scripts/../scripts/probe.py"],
        ["link.py"],
        ["-m", "pkg.tool", "--flag"],
        ["app", "x"],
        ["app.zip"],
    ],
    ids=["relative", "unnormalised", "symlink", "module", "folder", "zip"],
)
def test_program_sees_what_python_gives(project: Path, loop_option: str, args: list[str]) -> None:
    plain, ours = _both(args, loop_option, project)
    assert plain.returncode == 0, plain.stderr
    assert ours.returncode == 0, ours.stderr
    expected = json.loads(plain.stdout)
    seen = json.loads(ours.stdout)
    assert expected.pop("loop") == "_UnixSelectorEventLoop"
    assert seen.pop("loop") == loop_class_name(loop_option)
    assert seen == expected
    assert (seen["sibling"], seen["pickles"], seen["main_is_globals"]) == ("sibling", True, True)


def test_absolute_script_path(project: Path, loop_option: str) -> None:
    plain, ours = _both([str(project / "scripts" / "probe.py")], loop_option, project / "pkg")
    expected, seen = json.loads(plain.stdout), json.loads(ours.stdout)
    expected.pop("loop"), seen.pop("loop")
    assert seen == expected
    assert seen["path0"] == str((project / "scripts").resolve())


@pytest.mark.parametrize("how", ["exit", "message", "error", "interrupt"])
def test_exit_status_and_traceback(project: Path, loop_option: str, how: str) -> None:
    plain, ours = _both(["scripts/failing.py", how], loop_option, project)
    expected_status = {"exit": 3, "message": 1, "error": 1, "interrupt": -signal.SIGINT}[how]
    assert plain.returncode == expected_status
    assert ours.returncode == expected_status
    # The traceback starts at the script's own frame, as python's does.
    assert ours.stderr == plain.stderr
    if how == "error":
        assert 'File "' + str(project / "scripts" / "failing.py") in ours.stderr
        assert "rloop" not in ours.stderr and "runpy" not in ours.stderr


def test_missing_script_and_module(project: Path, loop_option: str) -> None:
    for args in (["nosuch.py"], ["-m", "nosuch_module"]):
        plain, ours = _both(args, loop_option, project)
        assert (ours.returncode, ours.stderr) == (plain.returncode, plain.stderr)
    assert plain.returncode == 1  # the module; a missing script is 2
    assert _run(["nosuch.py"], project).returncode == 2


def test_usage(project: Path) -> None:
    nothing = _run(["-m", "rloop"], project)
    assert nothing.returncode == 2
    assert "usage: python -m rloop" in nothing.stderr
    assert "SCRIPT | -m MODULE" in nothing.stderr
    assert "args" not in nothing.stderr.lower().split("usage:")[0]
    helped = _run(["-m", "rloop", "--help"], project)
    assert helped.returncode == 0
    assert "-m MODULE" in helped.stdout
    bad = _run(["-m", "rloop", "--loop", "nope", "x.py"], project)
    assert bad.returncode == 2
    assert "--loop" in bad.stderr


def test_loop_from_environment(project: Path) -> None:
    reason = loop_skip_reason("tokio")
    if reason is not None:
        pytest.skip(reason)
    proc = _run(["-m", "rloop", "scripts/probe.py"], project, RLOOP_LOOP="tokio")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["loop"] == "TokioLoop"


def test_code_runs_in_real_main_module(project: Path, loop_option: str) -> None:
    """Objects defined by the program belong to the module ``__main__`` that
    ``sys.modules`` holds after it ran too (atexit handlers see it)."""
    (project / "late.py").write_text(
        textwrap.dedent(
            """
            import atexit, sys
            VALUE = 42
            atexit.register(lambda: print(sys.modules["__main__"].VALUE))
            """
        )
    )
    plain, ours = _both(["late.py"], loop_option, project)
    assert plain.stdout == ours.stdout == "42\n"
