"""The ``loop_name`` fixture of the subprocess tests: every loop of the
suite, plus RLoop and TokioLoop a second time with their child watcher's
fallback (a thread per child, as on a kernel without pidfds), so that both
ways of learning of a child's exit pass the same assertions.

A test module uses it by importing it: ``from processes.watch_modes import
watched_loop_name``. (The fixture is called ``loop_name``, like the one it
replaces, so ``loop`` and the tests take it as theirs.)
"""

from __future__ import annotations

import pytest
from conftest import LOOP_NAMES, loop_skip_reason

#: "<loop>-thread": that loop, with the thread-per-child watcher.
WATCH_MODES: tuple[str, ...] = (*LOOP_NAMES, "rloop-thread", "tokio-thread")


@pytest.fixture(params=WATCH_MODES, name="loop_name")
def watched_loop_name(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name, _, mode = request.param.partition("-")
    reason = loop_skip_reason(name)
    if reason is not None:
        pytest.skip(reason)
    if mode == "thread":
        from rloop import child_watcher

        # Read when a loop makes its watcher, at its first subprocess.
        monkeypatch.setattr(child_watcher, "pidfd_usable", lambda: False)
    return name
