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
see ``DEFAULT_MODULES`` in ``conformance_skips.py``, as are the other lists
named here.  Also runnable explicitly with ``--modules`` but not in the
default set: see ``OPTIONAL_MODULES`` (with reasons).  Never run
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

Files
-----
This script is the command line; the rest lives in sibling modules, found
because Python puts the script's directory first on ``sys.path`` (the child
processes run this same script, with ``--child``):

* ``conformance_skips.py`` -- the loops, the module lists, and the single
  tests skipped, each with its reason.
* ``conformance_child.py`` -- the child: loop substitution, sanity check,
  harness shim, the unittest run and its result file.
* ``conformance_run.py`` -- the parent: which modules, one child per module
  with its time limit, reading its result file, the table.
* ``conformance_results.py`` -- ``conformance.json``: record, check, compare.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The sibling modules below are found because Python puts this script's
# directory first on sys.path (the children run this script too, --child).
from conformance_child import run_child
from conformance_results import (
    RESULTS_JSON,
    check,
    compare,
    load_json,
    python_minor,
    record,
    recorded_modules,
    version_key,
)
from conformance_run import print_table, resolve_modules, run_module
from conformance_skips import LOOPS

DEFAULT_TIMEOUT = 300.0
# Per-module time limits (seconds) where the default would be too tight.
MODULE_TIMEOUTS: dict[str, float] = {
    "test_events": 600.0,
    "test_tasks": 450.0,
    "test_subprocess": 450.0,
}


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
    for version in sorted(data.get("versions", {}), key=version_key, reverse=True):
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
