"""The recorded numbers of tools/conformance.py, tools/conformance.json (one
entry per Python minor version): loading them, recording a run, checking a run
against them and comparing two loops' recorded tests."""

from __future__ import annotations

import datetime
import json
import platform
import sys
from pathlib import Path
from typing import Any

from conformance_skips import (
    ASYNCIO_INTERNALS,
    DEFAULT_MODULES,
    KNOWN_HANGS,
    NOT_YET,
    OPTIONAL_MODULES,
    OUT_OF_SCOPE,
)

RESULTS_JSON = Path(__file__).resolve().parent / "conformance.json"
SCHEMA = 2  # 1: one Python's numbers at the top level; 2: per minor version


def python_minor() -> str:
    """The running Python's ``X.Y``: the key its numbers are recorded under."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def version_key(version: str) -> tuple[int, ...]:
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
        for v in sorted(versions, key=version_key)
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
