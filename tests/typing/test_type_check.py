"""Type checkers accept ordinary rloop user code (issue 15).

mypy checks ``user_code.py`` against the rloop it finds the way a user's
mypy would: the installed package, with its ``py.typed`` marker and its
stubs (``loop.pyi``, ``policy.pyi``, ``_rloop.pyi``), through the same
interpreter as this test. It runs in a temporary folder, with no
configuration file and a fresh cache, so nothing of the repository (no
``python/`` folder, no ``pyproject.toml``) takes part.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

USER_CODE = Path(__file__).with_name("user_code.py")
TIMEOUT = 300


def mypy(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy", reason="mypy is not installed (pip install '.[test]')")
    pytest.importorskip("rloop", reason="rloop is not importable")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file=",
            f"--cache-dir={tmp_path / 'mypy-cache'}",
            *options,
            str(USER_CODE),
        ],
        cwd=tmp_path,
        capture_output=True,
        check=False,
        text=True,
        timeout=TIMEOUT,
    )


def test_mypy_strict_accepts_user_code(tmp_path: Path) -> None:
    # --strict includes --warn-unused-ignores: the mistakes user_code.py
    # marks with "type: ignore" must be caught, or the check fails.
    result = mypy(tmp_path, "--strict")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_default_mode_accepts_user_code(tmp_path: Path) -> None:
    result = mypy(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_user_code_runs(tmp_path: Path) -> None:
    """What is type-checked is code that works on both loops."""
    rloop = pytest.importorskip("rloop", reason="rloop is not importable")
    if not hasattr(rloop, "TokioLoop"):
        pytest.skip("rloop has no TokioLoop")
    result = subprocess.run(
        [sys.executable, str(USER_CODE)],
        cwd=tmp_path,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
