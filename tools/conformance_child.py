"""The child side of tools/conformance.py: what runs in the subprocess started
for one test_asyncio module (``conformance.py --child MODULE``). It makes
asyncio produce the loop under test, checks that it does, runs the module with
unittest's own loader and runner, and streams one JSON line per event into the
result file that the parent reads."""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from conformance_skips import LOOPS, PACKAGE, skip_reason

CHILD_MARKER = "@@CONFORMANCE@@ "


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
