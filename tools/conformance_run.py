"""The parent side of tools/conformance.py: which test_asyncio modules to run,
one child process per module with its time limit, what each child reported,
and the table of the results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conformance_skips import (
    DEFAULT_MODULES,
    NOT_YET,
    OPTIONAL_MODULES,
    OUT_OF_SCOPE,
    PACKAGE,
    RLOOP_LOOPS,
)

# The child is the tool's own script run with --child, as before it was split
# into modules: Python puts a script's directory first on sys.path, so the
# child finds conformance_child and the rest from any working directory (it
# runs in the log directory).
SCRIPT = Path(__file__).resolve().with_name("conformance.py")


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
        str(SCRIPT),
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
