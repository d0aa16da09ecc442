#!/usr/bin/env python3
"""Run CPython's own ``test.test_asyncio`` suite against a chosen event loop.

Usage::

    python tools/conformance.py [--loop rloop|tokio|uvloop|asyncio]
                                [--modules m1,m2] [--timeout SECS] [--jobs N]
                                [--record] [--check] [--tolerance N]
    python tools/conformance.py --compare rloop [--baseline asyncio] [--python 3.X]
                                [--modules ...]

Every test module runs in its own subprocess (its own session / process group)
with a time limit; on timeout the whole group is killed with SIGKILL and the
module is reported as timed out (the tests finished before the hang still count,
and the test that was running is named).  The child uses unittest's own loader
and runner and streams one JSON line per event into a result file that the
parent parses; the unittest verbose output and any faulthandler dump go to a
per-module log file (``--log-dir``, default ``$TMPDIR/rloop-conformance/<loop>``).

Loop substitution (done in the child before the test module is imported)
-----------------------------------------------------------------------
* ``asyncio.unix_events._UnixDefaultEventLoopPolicy._loop_factory`` (which *is*
  ``asyncio.DefaultEventLoopPolicy`` on Unix) is replaced by the loop under
  test, and a fresh default policy is installed.  ``asyncio.new_event_loop()``,
  ``asyncio.get_event_loop()``, ``asyncio.run()``/``asyncio.Runner`` and
  ``unittest.IsolatedAsyncioTestCase`` all go through the policy, and so does
  the policy re-created lazily after ``asyncio.set_event_loop_policy(None)``
  (which every module calls in ``tearDownModule``).
  ``asyncio.new_event_loop`` itself is deliberately NOT patched: tests such as
  ``test_events.PolicyTests`` and ``test_runners`` install their own policies
  on purpose and must keep getting what those policies return.
* ``asyncio.SelectorEventLoop`` is replaced by a stand-in class whose
  construction accepts (and closes) the optional ``selector`` argument and
  returns the loop under test (``isinstance`` with it holds for that loop).
  ``test_events``, ``test_sock_lowlevel``, ``test_server``,
  ``test_buffered_proto``, ``test_sendfile`` and ``test_sslproto`` build their
  loops with ``asyncio.SelectorEventLoop(...)`` explicitly; without this they
  would silently test the stock loop.  On 3.13+ ``asyncio.EventLoop`` (the
  platform's loop class, which ``test_taskgroups``, ``test_tasks``,
  ``test_runners`` ... pass as ``loop_factory``) is replaced by the same
  stand-in.  (``test_events``/``test_sock_lowlevel``/
  ``test_sendfile`` therefore run their loop test mixins once per selector
  class -- epoll, poll, select -- each time against the loop under test.)
* Sanity check: the child creates loops through ``asyncio.new_event_loop()``,
  the policy after ``set_event_loop_policy(None)`` and ``SelectorEventLoop()``
  and verifies their class; any mismatch (a silent fallback to the stock loop)
  aborts the module and it is reported with status ``substitution-failed``.
  While the tests run, every loop created is counted: ``loops`` (loop under
  test) and ``stock_loops`` (per class name).  ``TestLoop`` (the virtual-time
  ``BaseEventLoop`` subclass from ``test_asyncio.utils`` that many
  ``test_tasks``/``test_futures`` tests use to test Future/Task semantics) is
  expected; any other stock loop created while a non-asyncio loop is under
  test is listed per test in ``fallback_tests`` (e.g. tests of custom
  policies) so that it can be reviewed.
* Harness shim (non-``asyncio`` loops only): ``test_asyncio.utils.TestCase.
  close_loop`` reads the private ``loop._default_executor``.  For loops that do
  not have that attribute (uvloop, maybe rloop) it is wrapped to call the public
  ``loop.shutdown_default_executor()`` instead; otherwise every test using the
  helper would error in its cleanup.  Shims applied are listed in the results.

Module selection
----------------
Default modules (loop-agnostic; they exercise the public loop API):
see ``DEFAULT_MODULES``.  Also runnable explicitly with ``--modules`` but not
in the default set: see ``OPTIONAL_MODULES`` (with reasons).  Never run
(``OUT_OF_SCOPE``): modules that test CPython's own loop implementation
classes, not the event loop API:

* test_base_events -- asyncio.base_events.BaseEventLoop internals (mocks
  private methods, _run_once, _ready/_scheduled, ...).
* test_selector_events -- BaseSelectorEventLoop and _SelectorTransport
  internals driven with mock selectors.
* test_proactor_events -- the Windows proactor loop/transports.
* test_windows_events -- Windows-only loop classes.
* test_windows_utils -- Windows-only helpers (pipes, Popen).

Not test modules at all: ``utils``, ``functional``, ``echo*.py``,
``__main__``.

Recorded numbers
----------------
``tools/conformance.json`` holds one entry per CPython minor version, since
``test.test_asyncio`` differs between versions (tests added, changed,
removed) and so does how many pass: ``versions["<X.Y>"]`` = ``{"python":
"<X.Y.Z recorded with>", "loops": {...}}``, and ``versions["<X.Y>"].loops
[<loop>].modules[<module>]`` = run, passed, failed, errors, skipped,
timed_out, status, collected, duration_s, failed_ids, error_ids, skipped_ids
(test ids without the ``test.test_asyncio.<module>.`` prefix).  The keys
beside ``versions`` (``default_modules``, ``optional_modules``,
``not_yet_for_rloop``, ``out_of_scope``) describe the tool, not a run.
``passed`` counts successes and expected failures; ``failed`` counts failures
and unexpected successes; ``errors`` includes errors in class/module
fixtures; run = passed + failed + errors + skipped.

Everything works on the running Python's entry (its ``X.Y``):

* ``--record`` writes that entry's numbers for the loop run (other loops and
  other Python versions are kept).
* ``--check`` re-runs and exits 1 when a module passes fewer tests than
  recorded for that loop on this Python (minus ``--tolerance``), when the
  loop substitution failed, or when nothing is recorded for that loop on this
  Python (the modules still run and are printed, then the check fails, so
  that a missing recording is noticed rather than passed).
* ``--compare LOOP`` prints, from the JSON only, the tests that pass on the
  baseline (default ``asyncio``) but fail/error/are skipped/were not reached
  on LOOP; ``--python X.Y`` compares another version's entry.

Default modules that this Python's ``test.test_asyncio`` does not have are
left out (with a notice).  ``tools/matrix.sh`` runs the check on every
CPython version the project supports.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
RESULTS_JSON = HERE / "conformance.json"
PACKAGE = "test.test_asyncio"
SCHEMA = 2  # 1: one Python's numbers at the top level; 2: per minor version

LOOPS: dict[str, tuple[str, str] | None] = {
    # name -> (module, attribute) of the loop class/factory; None = stock asyncio
    "asyncio": None,
    "uvloop": ("uvloop", "Loop"),
    "rloop": ("rloop", "RLoop"),
    "tokio": ("rloop", "TokioLoop"),
}

DEFAULT_MODULES: list[str] = [
    "test_futures",
    "test_futures2",
    "test_tasks",
    "test_taskgroups",
    "test_timeouts",
    "test_locks",
    "test_queues",
    "test_waitfor",
    "test_context",
    "test_pep492",
    "test_runners",
    "test_threads",
    "test_events",
    "test_streams",
    "test_server",
    "test_sock_lowlevel",
    "test_buffered_proto",
    "test_protocols",
    "test_transports",
    "test_subprocess",
    "test_ssl",
    "test_sslproto",
    "test_sendfile",
]

OPTIONAL_MODULES: dict[str, str] = {
    "test_unix_events": (
        "mostly unit tests of asyncio.unix_events internals: _UnixReadPipeTransport/"
        "_UnixWritePipeTransport built directly on a mock loop, the child-watcher "
        "classes and _UnixSelectorEventLoop signal handling via mocked selectors; "
        "only a handful of tests touch the public loop API. Run it with --modules "
        "test_unix_events if wanted."
    ),
}

OUT_OF_SCOPE: dict[str, str] = {
    "test_base_events": "tests asyncio.base_events.BaseEventLoop internals (CPython's loop class)",
    "test_selector_events": "tests BaseSelectorEventLoop/_SelectorTransport internals with mocks",
    "test_proactor_events": "tests the Windows proactor loop and its transports",
    "test_windows_events": "Windows-only loop classes",
    "test_windows_utils": "Windows-only helpers",
}

NOT_TEST_MODULES: dict[str, str] = {
    "utils": "shared test helpers, no tests",
    "functional": "shared test helpers (threaded servers), no tests",
    "echo": "helper script used by test_subprocess",
    "echo2": "helper script used by test_subprocess",
    "echo3": "helper script used by test_subprocess",
    "__main__": "package runner",
}

# Modules the rloop loops cannot run yet: they wait on features rloop does
# not have, so they only hang until the time limit. Skipped for rloop and
# tokio unless named with --modules; listed with the reason in the JSON.
NOT_YET: dict[str, str] = {}
RLOOP_LOOPS = ("rloop", "tokio")

# Single tests of asyncio's own implementation rather than of the loop API:
# they mock a private method of asyncio's loop classes or assert that an
# object is an instance of one of asyncio's private classes, so no other
# loop can pass them. Skipped on every loop, stock asyncio included, so the
# numbers of the loops compare; keyed "module:pattern", the pattern an
# fnmatch over the test id without the "test.test_asyncio.<module>." prefix.
ASYNCIO_INTERNALS: dict[str, str] = {
    **{
        f"test_events:*.test_call_soon_threadsafe_handle_{name}": (
            "asserts isinstance(handle, asyncio.events._ThreadSafeHandle), asyncio's private "
            "class; the assertion fails in the test's thread, which then never stops the loop, "
            "so the module hangs. rloop's call_soon_threadsafe handles have the behaviour "
            "(tests/core/test_threadsafe.py)"
        )
        for name in ("block_check_cancelled", "block_cancellation",
                     "cancel_same_thread", "cancel_other_thread")
    },
    "test_events:*.test_timeout_rounding": (
        "replaces the loop's private _run_once to count iterations"
    ),
    "test_events:*.test_create_server_multiple_hosts_ipv[46]": (
        "replaces the loop's private _start_serving/_stop_serving with mocks and mocks "
        "the socket module"
    ),
    "test_subprocess:*.test_create_subprocess_fails_with_inactive_watcher": (
        "installs an inactive child watcher in asyncio's policy (deprecated in 3.12, gone "
        "in 3.14) and expects the loop to consult it; rloop watches its children itself "
        "(python/rloop/child_watcher.py)"
    ),
    "test_subprocess:*.test_watcher_implementation": (
        "asserts that the loop's private _watcher is one of asyncio's private watcher classes"
    ),
    "test_subprocess:*.test_pid_not_reaped_before_exit_published": (
        "reads the private _threads table of the loop's private _watcher; rloop's thread "
        "fallback keeps the same rule (tests/processes)"
    ),
    "test_ssl:*.test_remote_shutdown_receives_trailing_data_on_slow_socket": (
        "(3.14+) mocks the transport's write() with a side effect that reads the selector "
        "transport's private _read_ready_cb and swaps its private _sock; elsewhere it fails "
        "there with AttributeError and the server thread waits forever. The flow it checks "
        "(writes after close() from resume_writing) is tests/net_scenarios.py's "
        "test_resume_writing_after_close_may_still_write"
    ),
    "test_sslproto:*.test_connection_lost_when_busy": (
        "builds a transport from a mock socket with the loop's private "
        "_make_socket_transport"
    ),
}

# Single tests that hang on rloop's loops for a cause tracked elsewhere.
# Skipped there (not on stock asyncio) so that the rest of their module
# runs and is checked.
KNOWN_HANGS: dict[str, str] = {}


def skip_reason(module: str, test_id: str, loop_name: str) -> str | None:
    """Why the test `test_id` of `module` is skipped on `loop_name`, if it is."""
    import fnmatch

    tables = [ASYNCIO_INTERNALS] + ([KNOWN_HANGS] if loop_name in RLOOP_LOOPS else [])
    for table in tables:
        for key, reason in table.items():
            mod, _, pattern = key.partition(":")
            if mod == module and fnmatch.fnmatchcase(test_id, pattern):
                return reason
    return None


DEFAULT_TIMEOUT = 300.0
# Per-module time limits (seconds) where the default would be too tight.
MODULE_TIMEOUTS: dict[str, float] = {
    "test_events": 600.0,
    "test_tasks": 450.0,
    "test_subprocess": 450.0,
}

CHILD_MARKER = "@@CONFORMANCE@@ "


# --------------------------------------------------------------------------- child


def _import_attr(spec: tuple[str, str]) -> Any:
    import importlib

    module = importlib.import_module(spec[0])
    return getattr(module, spec[1])


class _Emitter:
    """Writes JSON lines to the result file, flushed after every line."""

    def __init__(self, path: str) -> None:
        self._fh: TextIO = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def emit(self, kind: str, **data: Any) -> None:
        data["kind"] = kind
        self._fh.write(json.dumps(data, sort_keys=True) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class _LoopTracker:
    """Counts loops created while the tests run, attributed to the current test."""

    def __init__(self) -> None:
        self.current_test: str | None = None
        self.under_test = 0
        self.stock: dict[str, int] = {}
        self.fallback_tests: dict[str, list[str]] = {}


def _install_substitution(loop_name: str, tracker: _LoopTracker) -> tuple[type | None, list[str]]:
    """Make asyncio produce the loop under test. Returns (expected class, shims)."""
    import asyncio
    from asyncio import base_events, unix_events

    shims: list[str] = []
    spec = LOOPS[loop_name]
    stock_init = base_events.BaseEventLoop.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        name = type(self).__name__
        tracker.stock[name] = tracker.stock.get(name, 0) + 1
        if spec is not None and name != "TestLoop" and tracker.current_test is not None:
            tracker.fallback_tests.setdefault(tracker.current_test, []).append(name)
        stock_init(self, *args, **kwargs)

    base_events.BaseEventLoop.__init__ = counting_init  # type: ignore[method-assign]

    if spec is None:
        return unix_events._UnixSelectorEventLoop, shims

    loop_cls = _import_attr(spec)

    def loop_factory() -> Any:
        tracker.under_test += 1
        return loop_cls()

    class _StandInMeta(type):
        def __instancecheck__(cls, obj: Any) -> bool:
            return isinstance(obj, loop_cls)

    class SelectorEventLoop(metaclass=_StandInMeta):
        """Stand-in for asyncio.SelectorEventLoop(selector=None) and EventLoop().

        Constructing it returns the loop under test (the selector, if any, is
        closed). A class, not a function: stored as a class attribute
        (``loop_factory = asyncio.EventLoop`` in test_taskgroups) it is not
        bound as a method, and ``isinstance(loop, asyncio.SelectorEventLoop)``
        holds for the loop under test.
        """

        def __new__(cls, selector: Any = None) -> Any:
            if selector is not None:
                selector.close()
            return loop_factory()

    policy_cls = unix_events._UnixDefaultEventLoopPolicy
    policy_cls._loop_factory = staticmethod(loop_factory)  # type: ignore[assignment]
    asyncio.SelectorEventLoop = SelectorEventLoop  # type: ignore[assignment,misc]
    unix_events.SelectorEventLoop = SelectorEventLoop  # type: ignore[assignment,misc]
    if hasattr(unix_events, "EventLoop"):
        # 3.13+: asyncio.EventLoop (the platform's loop class), which test
        # modules pass as loop_factory (test_taskgroups, test_tasks, ...).
        asyncio.EventLoop = SelectorEventLoop  # type: ignore[attr-defined,misc,unused-ignore]
        unix_events.EventLoop = SelectorEventLoop  # type: ignore[misc,unused-ignore]
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    return loop_cls, shims


def _install_shims(loop_cls: type, shims: list[str]) -> None:
    from test.test_asyncio import utils as test_utils

    probe = loop_cls()
    try:
        has_executor_attr = hasattr(probe, "_default_executor")
    finally:
        probe.close()
    if has_executor_attr:
        return

    orig_close_loop = test_utils.TestCase.close_loop

    class _ClosedExecutorView:
        _default_executor = None

        def __init__(self, loop: Any) -> None:
            self._loop = loop

        def close(self) -> None:
            self._loop.close()

    def close_loop(loop: Any) -> None:
        if hasattr(loop, "_default_executor"):
            orig_close_loop(loop)
            return
        if not loop.is_closed():
            loop.run_until_complete(loop.shutdown_default_executor())
        orig_close_loop(_ClosedExecutorView(loop))

    test_utils.TestCase.close_loop = staticmethod(close_loop)  # type: ignore[method-assign]
    shims.append("test_asyncio.utils.TestCase.close_loop: no loop._default_executor")


def _sanity_check(expected: type, loop_name: str) -> list[str]:
    """Create loops through every public path; return a list of problems."""
    import asyncio
    from asyncio import events

    problems: list[str] = []

    def check(path: str, make: Callable[[], Any]) -> None:
        try:
            loop = make()
        except Exception as exc:  # noqa: BLE001 - report anything
            problems.append(f"{path}: raised {exc!r}")
            return
        try:
            ok = type(loop) is expected if loop_name == "asyncio" else isinstance(loop, expected)
            if not ok:
                problems.append(
                    f"{path} -> {type(loop).__module__}.{type(loop).__qualname__}, "
                    f"expected {expected.__module__}.{expected.__qualname__}"
                )
        finally:
            loop.close()

    check("asyncio.new_event_loop()", asyncio.new_event_loop)
    check("asyncio.events.new_event_loop()", events.new_event_loop)
    check("asyncio.SelectorEventLoop()", lambda: asyncio.SelectorEventLoop())
    if hasattr(asyncio, "EventLoop"):
        check("asyncio.EventLoop()", lambda: asyncio.EventLoop())
    policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(None)
    check("policy after set_event_loop_policy(None)", asyncio.new_event_loop)
    asyncio.set_event_loop_policy(policy)
    return problems


def _short_id(test: Any, prefix: str) -> str:
    tid: str = test.id()
    return tid.removeprefix(prefix)


def _skip_listed(suite: Any, module: str, prefix: str, loop_name: str) -> None:
    """Turn the tests of ASYNCIO_INTERNALS (and, on rloop's loops, of
    KNOWN_HANGS) into skips that give the reason."""
    import unittest

    def walk(s: Any) -> Any:
        for item in s:
            if isinstance(item, unittest.TestSuite):
                yield from walk(item)
            else:
                yield item

    for test in walk(suite):
        name = getattr(test, "_testMethodName", None)
        reason = skip_reason(module, _short_id(test, prefix), loop_name)
        if name is None or reason is None:
            continue
        # An instance attribute hides the class's method for this test only.
        setattr(test, name, unittest.skip(f"conformance.py: {reason}")(getattr(test, name)))


def run_child(module: str, loop_name: str, result_file: str, timeout: float) -> int:
    import faulthandler
    import unittest

    emitter = _Emitter(result_file)
    # Dump all thread stacks into the log shortly before the parent kills us.
    if timeout > 10:
        faulthandler.dump_traceback_later(timeout - 5, exit=False)

    tracker = _LoopTracker()
    try:
        expected, shims = _install_substitution(loop_name, tracker)
        assert expected is not None
        if loop_name != "asyncio":
            _install_shims(expected, shims)
        problems = _sanity_check(expected, loop_name)
    except Exception as exc:  # noqa: BLE001 - import errors of the loop etc.
        import traceback

        traceback.print_exc()
        emitter.emit("header", ok=False, problems=[f"loop setup failed: {exc!r}"])
        emitter.close()
        return 3
    import asyncio

    probe = asyncio.new_event_loop()
    loop_class = f"{type(probe).__module__}.{type(probe).__qualname__}"
    probe.close()
    tracker.under_test = 0
    tracker.stock.clear()
    header = {
        "ok": not problems,
        "problems": problems,
        "loop_class": loop_class,
        "shims": shims,
        "python": platform.python_version(),
    }
    print(f"[conformance] module={module} loop={loop_name} loop_class={loop_class}", flush=True)
    for problem in problems:
        print(f"[conformance] SUBSTITUTION PROBLEM: {problem}", flush=True)
    emitter.emit("header", **header)
    if problems:
        emitter.close()
        return 3

    prefix = f"{PACKAGE}.{module}."
    try:
        import importlib

        mod = importlib.import_module(f"{PACKAGE}.{module}")
        suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
    except Exception as exc:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        emitter.emit("import_error", error=repr(exc))
        emitter.close()
        return 4
    _skip_listed(suite, module, prefix, loop_name)
    emitter.emit("collected", count=suite.countTestCases())

    outcomes: dict[str, str] = {}
    severity = {"pass": 0, "skip": 1, "fail": 2, "error": 3}

    def record(test: Any, outcome: str) -> None:
        tid = _short_id(test, prefix)
        prev = outcomes.get(tid)
        if prev is None or severity[outcome] > severity[prev]:
            outcomes[tid] = outcome
            emitter.emit("outcome", id=tid, outcome=outcome)

    class CountingResult(unittest.TextTestResult):
        def startTest(self, test: unittest.TestCase) -> None:
            tracker.current_test = _short_id(test, prefix)
            emitter.emit("start", id=tracker.current_test)
            super().startTest(test)

        def stopTest(self, test: unittest.TestCase) -> None:
            super().stopTest(test)
            tracker.current_test = None

        def addSuccess(self, test: unittest.TestCase) -> None:
            super().addSuccess(test)
            record(test, "pass")

        def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
            super().addExpectedFailure(test, err)
            record(test, "pass")

        def addFailure(self, test: unittest.TestCase, err: Any) -> None:
            super().addFailure(test, err)
            record(test, "fail")

        def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
            super().addUnexpectedSuccess(test)
            record(test, "fail")

        def addError(self, test: unittest.TestCase, err: Any) -> None:
            super().addError(test, err)
            record(test, "error")

        def addSkip(self, test: unittest.TestCase, reason: str) -> None:
            super().addSkip(test, reason)
            record(test, "skip")

        def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
            super().addSubTest(test, subtest, err)
            if err is not None:
                is_failure = issubclass(err[0], test.failureException)
                record(test, "fail" if is_failure else "error")

    runner = unittest.TextTestRunner(
        stream=sys.stderr, verbosity=2, resultclass=CountingResult, buffer=False
    )
    start = time.monotonic()
    runner.run(suite)
    faulthandler.cancel_dump_traceback_later()
    summary = {
        "duration_s": round(time.monotonic() - start, 2),
        "loops": tracker.under_test,
        "stock_loops": tracker.stock,
        "fallback_tests": tracker.fallback_tests,
    }
    emitter.emit("summary", **summary)
    emitter.close()
    counts = {k: sum(1 for v in outcomes.values() if v == k) for k in severity}
    print(CHILD_MARKER + json.dumps({"module": module, **counts, **summary}), flush=True)
    return 0


# -------------------------------------------------------------------------- parent


def _empty_result(module: str) -> dict[str, Any]:
    return {
        "module": module,
        "status": "ok",
        "run": 0,
        "passed": 0,
        "failed": 0,
        "errors": 0,
        "skipped": 0,
        "timed_out": False,
        "collected": None,
        "duration_s": 0.0,
        "failed_ids": [],
        "error_ids": [],
        "skipped_ids": [],
        "loop_class": None,
        "loops": 0,
        "stock_loops": {},
        "fallback_tests": {},
        "shims": [],
        "problems": [],
        "hung_in": None,
    }


def _parse_result_file(path: Path, res: dict[str, Any]) -> bool:
    """Fill ``res`` from the child's JSON lines; return True if a summary was seen."""
    outcomes: dict[str, str] = {}
    started: str | None = None
    summary = False
    header_seen = False
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev.get("kind")
            if kind == "header":
                header_seen = True
                res["loop_class"] = ev.get("loop_class")
                res["shims"] = ev.get("shims", [])
                res["problems"] = ev.get("problems", [])
                if not ev.get("ok"):
                    res["status"] = "substitution-failed"
            elif kind == "import_error":
                res["status"] = "import-error"
                res["problems"].append(ev.get("error"))
            elif kind == "collected":
                res["collected"] = ev["count"]
            elif kind == "start":
                started = ev["id"]
            elif kind == "outcome":
                outcomes[ev["id"]] = ev["outcome"]
            elif kind == "summary":
                summary = True
                res["loops"] = ev.get("loops", 0)
                res["stock_loops"] = ev.get("stock_loops", {})
                res["fallback_tests"] = ev.get("fallback_tests", {})
    if not header_seen:
        res["status"] = "no-header"
    by_kind: dict[str, list[str]] = {"pass": [], "fail": [], "error": [], "skip": []}
    for tid, outcome in outcomes.items():
        by_kind[outcome].append(tid)
    res["passed"] = len(by_kind["pass"])
    res["failed"] = len(by_kind["fail"])
    res["errors"] = len(by_kind["error"])
    res["skipped"] = len(by_kind["skip"])
    res["run"] = len(outcomes)
    res["failed_ids"] = sorted(by_kind["fail"])
    res["error_ids"] = sorted(by_kind["error"])
    res["skipped_ids"] = sorted(by_kind["skip"])
    if not summary and started is not None and started not in outcomes:
        res["hung_in"] = started
    return summary


def run_module(module: str, loop_name: str, timeout: float, log_dir: Path) -> dict[str, Any]:
    res = _empty_result(module)
    log_path = log_dir / f"{module}.log"
    result_path = log_dir / f"{module}.jsonl"
    if result_path.exists():
        result_path.unlink()
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        module,
        "--loop",
        loop_name,
        "--result-file",
        str(result_path),
        "--timeout",
        str(timeout),
    ]
    env = dict(os.environ)
    env.setdefault("PYTHONFAULTHANDLER", "1")
    env["PYTHONUNBUFFERED"] = "1"
    start = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(log_dir),
            env=env,
            start_new_session=True,
        )
        try:
            rc: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    res["duration_s"] = round(time.monotonic() - start, 2)
    res["log"] = str(log_path)
    got_summary = _parse_result_file(result_path, res)
    if rc is None:
        res["timed_out"] = True
        if res["status"] == "ok":
            res["status"] = "timeout"
    elif not got_summary and res["status"] == "ok":
        res["status"] = f"crashed(rc={rc})"
    return res


# ----------------------------------------------------------------------- reporting

COLUMNS = ("run", "passed", "failed", "errors", "skipped")


def print_table(loop_name: str, results: list[dict[str, Any]], wall: float) -> None:
    classes = sorted({r["loop_class"] for r in results if r.get("loop_class")})
    print(f"\nloop: {loop_name}   loop class: {', '.join(classes) or '?'}")
    shims = sorted({s for r in results for s in r.get("shims", [])})
    for shim in shims:
        print(f"shim: {shim}")
    width = max([len("module")] + [len(r["module"]) for r in results]) + 1
    head = f"{'module':<{width}}" + "".join(f"{c:>8}" for c in COLUMNS)
    head += f"{'time':>9}  status"
    print(head)
    print("-" * len(head))
    totals = {c: 0 for c in COLUMNS}
    for r in sorted(results, key=lambda r: r["module"]):
        line = f"{r['module']:<{width}}" + "".join(f"{r[c]:>8}" for c in COLUMNS)
        status = r["status"]
        if r.get("hung_in"):
            status += f" (in {r['hung_in']})"
        if r.get("collected") is not None and r["run"] < r["collected"] and not r["timed_out"]:
            status += f" (collected {r['collected']})"
        if r.get("fallback_tests"):
            status += f" [{len(r['fallback_tests'])} tests made stock loops]"
        print(line + f"{r['duration_s']:>8.1f}s  {status}")
        for c in COLUMNS:
            totals[c] += r[c]
    print("-" * len(head))
    print(f"{'TOTAL':<{width}}" + "".join(f"{totals[c]:>8}" for c in COLUMNS) + f"{wall:>8.1f}s")
    bad = [r for r in results if r["status"] not in ("ok",)]
    for r in bad:
        for problem in r.get("problems", []):
            print(f"  {r['module']}: {problem}")
        if r.get("log"):
            print(f"  {r['module']}: {r['status']}, log: {r['log']}")


def python_minor() -> str:
    """The running Python's ``X.Y``: the key its numbers are recorded under."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def load_json() -> dict[str, Any]:
    if not RESULTS_JSON.exists():
        return {}
    data: dict[str, Any] = json.loads(RESULTS_JSON.read_text(encoding="utf-8"))
    if "loops" in data:
        # Schema 1 kept one Python's numbers at the top level: file them under
        # that Python's minor version, as schema 2 does.
        python = str(data.pop("python", "3.11"))
        loops: dict[str, Any] = data.pop("loops")
        for entry in loops.values():
            entry.setdefault("python", python)
        minor = ".".join(python.split(".")[:2])
        data.setdefault("versions", {}).setdefault(minor, {"loops": {}})["loops"].update(loops)
    return data


def recorded_loops(data: dict[str, Any], version: str) -> dict[str, Any]:
    """``loop name -> entry`` recorded for Python ``version`` (X.Y); empty if none."""
    loops: dict[str, Any] = data.get("versions", {}).get(version, {}).get("loops", {})
    return loops


def recorded_modules(data: dict[str, Any], version: str, loop_name: str) -> dict[str, Any]:
    """``module -> numbers`` recorded for ``loop_name`` on Python ``version``."""
    modules: dict[str, Any] = recorded_loops(data, version).get(loop_name, {}).get("modules", {})
    return modules


def describe_recorded(data: dict[str, Any]) -> str:
    """One line naming every Python version recorded and its loops."""
    versions = data.get("versions", {})
    parts = [
        f"{v} ({', '.join(sorted(versions[v].get('loops', {}))) or 'no loops'})"
        for v in sorted(versions, key=_version_key)
    ]
    return "; ".join(parts) or "nothing"


def save_json(data: dict[str, Any]) -> None:
    RESULTS_JSON.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


RECORD_KEYS = (
    "run",
    "passed",
    "failed",
    "errors",
    "skipped",
    "timed_out",
    "status",
    "collected",
    "duration_s",
    "failed_ids",
    "error_ids",
    "skipped_ids",
    "hung_in",
    "loops",
    "stock_loops",
    "fallback_tests",
)


def record(loop_name: str, results: list[dict[str, Any]], wall: float) -> None:
    data = load_json()
    data["schema"] = SCHEMA
    data["default_modules"] = DEFAULT_MODULES
    data["optional_modules"] = OPTIONAL_MODULES
    data["not_yet_for_rloop"] = NOT_YET
    data["out_of_scope"] = OUT_OF_SCOPE
    data["asyncio_internals_skipped"] = ASYNCIO_INTERNALS
    data["known_hangs_skipped_for_rloop"] = KNOWN_HANGS
    # Only the running Python's entry changes; other versions are kept as they are.
    version = python_minor()
    loops = data.setdefault("versions", {}).setdefault(version, {}).setdefault("loops", {})
    entry = loops.setdefault(loop_name, {"modules": {}})
    entry["python"] = platform.python_version()
    entry["recorded_at"] = datetime.datetime.now(datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    entry["loop_class"] = next((r["loop_class"] for r in results if r.get("loop_class")), None)
    entry["shims"] = sorted({s for r in results for s in r.get("shims", [])})
    entry["last_wall_time_s"] = round(wall, 1)
    modules = entry.setdefault("modules", {})
    for r in results:
        modules[r["module"]] = {k: r[k] for k in RECORD_KEYS}
    save_json(data)
    print(
        f"\nrecorded {len(results)} modules for loop {loop_name!r} on Python {version} "
        f"in {RESULTS_JSON}"
    )


def check(loop_name: str, results: list[dict[str, Any]], tolerance: int) -> int:
    data = load_json()
    version = python_minor()
    recorded = recorded_modules(data, version, loop_name)
    if not recorded:
        # A version nobody recorded fails, so that a missing recording is noticed.
        print(
            f"\ncheck: FAILED: nothing recorded for loop {loop_name!r} on Python {version} "
            f"in {RESULTS_JSON.name} (recorded: {describe_recorded(data)}).\n"
            f"  Record it, with this Python ({platform.python_version()}): "
            f"python tools/conformance.py --loop {loop_name} --record"
        )
        return 1
    failures = 0
    improved = []
    print(
        f"\ncheck against {RESULTS_JSON.name} (loop {loop_name!r}, Python {version}, "
        f"tolerance {tolerance}):"
    )
    for r in sorted(results, key=lambda r: r["module"]):
        mod = r["module"]
        if r["status"] in ("substitution-failed", "no-header"):
            print(f"  FAIL {mod}: loop substitution failed: {r.get('problems')}")
            failures += 1
            continue
        old = recorded.get(mod)
        if old is None:
            print(f"  NEW  {mod}: not recorded (passed {r['passed']})")
            continue
        if r["passed"] + tolerance < old["passed"]:
            now_bad = set(r["failed_ids"]) | set(r["error_ids"]) | set(r["skipped_ids"])
            was_bad = set(old["failed_ids"]) | set(old["error_ids"]) | set(old["skipped_ids"])
            newly = sorted(now_bad - was_bad)
            print(f"  FAIL {mod}: passed {r['passed']} < recorded {old['passed']}")
            if r["timed_out"]:
                print(f"       timed out (in {r.get('hung_in')})")
            for tid in newly[:30]:
                print(f"       newly not passing: {tid}")
            if len(newly) > 30:
                print(f"       ... and {len(newly) - 30} more")
            failures += 1
        elif r["passed"] > old["passed"]:
            improved.append(f"{mod} ({old['passed']} -> {r['passed']})")
    if improved:
        print("  more tests pass than recorded: " + ", ".join(improved))
        print(f"  hint: re-record with: python tools/conformance.py --loop {loop_name} --record")
    print("check: " + ("FAILED" if failures else "OK"))
    return 1 if failures else 0


def compare(loop_name: str, baseline: str, modules: list[str] | None, version: str) -> int:
    data = load_json()
    loops = recorded_loops(data, version)
    if loop_name not in loops or baseline not in loops:
        print(
            f"compare needs recorded results for {loop_name!r} and {baseline!r} on Python "
            f"{version} (recorded: {describe_recorded(data)})"
        )
        return 2
    cur = loops[loop_name]["modules"]
    base = loops[baseline]["modules"]
    total = 0
    print(f"tests passing on {baseline} but not on {loop_name} (Python {version}):")
    for mod in sorted(set(base) | set(cur)):
        if modules and mod not in modules:
            continue
        if mod not in cur:
            print(f"\n{mod}: not recorded for {loop_name}")
            continue
        if mod not in base:
            print(f"\n{mod}: not recorded for {baseline}")
            continue
        b, c = base[mod], cur[mod]
        base_bad = set(b["failed_ids"]) | set(b["error_ids"]) | set(b["skipped_ids"])
        rows: list[tuple[str, str]] = []
        rows += [(t, "FAIL") for t in c["failed_ids"] if t not in base_bad]
        rows += [(t, "ERROR") for t in c["error_ids"] if t not in base_bad]
        rows += [(t, "SKIP") for t in c["skipped_ids"] if t not in base_bad]
        missing = b["run"] - c["run"]
        if not rows and not c["timed_out"] and c["status"] == "ok" and missing <= 0:
            continue
        print(
            f"\n{mod}: {c['passed']}/{c['run']} passed on {loop_name}, "
            f"{b['passed']}/{b['run']} on {baseline}; status {c['status']}"
        )
        if c["timed_out"] or c["status"] != "ok":
            print(f"  {c['status']}: hung in {c.get('hung_in')}; {max(missing, 0)} tests not run")
        for tid, what in sorted(rows):
            print(f"  {what:<5} {tid}")
        total += len(rows)
    print(f"\n{total} tests pass on {baseline} but not on {loop_name}")
    return 0


# ---------------------------------------------------------------------------- main


def available_modules() -> list[str]:
    import importlib.util

    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return []
    pkg_dir = Path(next(iter(spec.submodule_search_locations)))
    return sorted(p.stem for p in pkg_dir.glob("test_*.py"))


def resolve_modules(arg: str | None, loop_name: str = "asyncio") -> list[str]:
    if not arg or arg == "all":
        mods = list(DEFAULT_MODULES) + (sorted(OPTIONAL_MODULES) if arg == "all" else [])
        if loop_name in RLOOP_LOOPS:
            mods = [m for m in mods if m not in NOT_YET]
        # test_asyncio's module list differs between Python versions.
        known = set(available_modules())
        missing = [m for m in mods if known and m not in known]
        if missing:
            print(f"not in this Python's {PACKAGE}, left out: {', '.join(missing)}")
        return [m for m in mods if m not in missing]
    mods = []
    for name in (m.strip() for m in arg.split(",")):
        if not name:
            continue
        if not name.startswith("test_"):
            name = "test_" + name
        if name in OUT_OF_SCOPE:
            raise SystemExit(f"{name} is out of scope: {OUT_OF_SCOPE[name]}")
        mods.append(name)
    known = set(available_modules())
    unknown = [m for m in mods if known and m not in known]
    if unknown:
        raise SystemExit(f"unknown test_asyncio modules: {', '.join(unknown)}")
    return mods


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loop", choices=sorted(LOOPS), default="rloop")
    parser.add_argument(
        "--modules", help="comma-separated modules, or 'all' (default set + optional)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"per-module time limit in seconds (default {DEFAULT_TIMEOUT:g}, "
        "with per-module overrides)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="parallel subprocesses (default 2)")
    parser.add_argument(
        "--record", action="store_true", help=f"write results to {RESULTS_JSON.name}"
    )
    parser.add_argument(
        "--check", action="store_true", help="fail if any module passes fewer tests than recorded"
    )
    parser.add_argument(
        "--tolerance",
        type=int,
        default=0,
        help="--check: allowed drop in passed tests per module (default 0)",
    )
    parser.add_argument(
        "--compare",
        metavar="LOOP",
        help="print tests passing on --baseline but not on LOOP (from the JSON)",
    )
    parser.add_argument("--baseline", default="asyncio", help="baseline loop for --compare")
    parser.add_argument(
        "--python",
        metavar="X.Y",
        default=python_minor(),
        help="--compare: the Python version whose numbers to compare "
        f"(default: the running one, {python_minor()})",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="where per-module logs go (default $TMPDIR/rloop-conformance/<loop>)",
    )
    parser.add_argument("--child", metavar="MODULE", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        return run_child(args.child, args.loop, args.result_file, args.timeout or DEFAULT_TIMEOUT)

    modules = resolve_modules(args.modules, args.loop)
    if args.compare:
        return compare(args.compare, args.baseline, modules if args.modules else None, args.python)

    log_dir = args.log_dir or Path(tempfile.gettempdir()) / "rloop-conformance" / args.loop
    log_dir = log_dir.resolve()
    log_dir.mkdir(parents=True, exist_ok=True)

    # Longest modules first (by recorded duration, this Python's or else the
    # newest version's that has this loop) to keep wall time low.
    data = load_json()
    recorded = recorded_modules(data, python_minor(), args.loop)
    for version in sorted(data.get("versions", {}), key=_version_key, reverse=True):
        recorded = recorded or recorded_modules(data, version, args.loop)
    order = sorted(modules, key=lambda m: -float(recorded.get(m, {}).get("duration_s", 1e6)))

    def timeout_for(mod: str) -> float:
        if args.timeout is not None:
            return args.timeout
        return MODULE_TIMEOUTS.get(mod, DEFAULT_TIMEOUT)

    print(
        f"running {len(order)} modules on loop {args.loop!r} with {args.jobs} jobs; "
        f"logs in {log_dir}",
        flush=True,
    )
    start = time.monotonic()
    results: list[dict[str, Any]] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futs = {pool.submit(run_module, m, args.loop, timeout_for(m), log_dir): m for m in order}
        for fut in concurrent.futures.as_completed(futs):
            r = fut.result()
            results.append(r)
            print(
                f"  {r['module']:<22} {r['passed']:>4}/{r['run']:<4} passed "
                f"{r['duration_s']:>7.1f}s  {r['status']}",
                flush=True,
            )
    wall = time.monotonic() - start
    print_table(args.loop, results, wall)

    rc = 0
    if any(r["status"] in ("substitution-failed", "no-header") for r in results):
        print("\nERROR: the loop under test was not used (see problems above)")
        rc = 2
    if args.check:
        rc = check(args.loop, results, args.tolerance) or rc
    if args.record:
        if rc and args.check:
            print("not recording: check failed")
        elif any(r["status"] in ("substitution-failed", "no-header") for r in results):
            print("not recording: loop substitution failed")
        else:
            record(args.loop, results, wall)
    return rc


if __name__ == "__main__":
    sys.exit(main())
