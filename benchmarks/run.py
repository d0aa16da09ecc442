"""Run the rloop benchmark suite on this machine and report ratios to uvloop.

Usage::

    python benchmarks/run.py [--quick] [--loops asyncio,uvloop,rloop,tokio]
                             [--out benchmarks/results]

What it does:

1. installs what it needs with pip when missing (matplotlib; uvloop if requested);
2. builds the Rust load client and ceiling servers
   (``cargo build --release --manifest-path benchmarks/loadclient/Cargo.toml``) when the
   binaries are missing or older than their sources;
3. detects which loops are installed (a loop that cannot be imported is reported as
   "not installed" and skipped);
4. for every network cell (server kind x message size x connections) starts one
   server process per loop (``server.py``, pinned to CPU 0) and the load client
   (pinned to CPU 1), interleaving the loops (A B C D, rotated every round) for
   ``--runs`` rounds; the pure-Rust ceiling server is measured alongside; the TLS
   cells (``tls``, ``https``) use a throwaway self-signed certificate for 127.0.0.1
   made in a temporary directory for the run (``openssl`` CLI, else ``trustme``);
5. runs the loop microbenchmarks (``micro.py``), one process per loop, interleaved,
   each pinned to CPU 0 as the servers are (both threads of ``call_soon_threadsafe``);
6. prints a markdown report and writes ``latest.md``, ``latest.json`` and
   ``latest.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Run as a script (``python benchmarks/run.py``), so its siblings are found from here.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from plan import (
    ALL_LOOPS,
    CEILING_NAME,
    CLIENT_CPU,
    NO_CEILING,
    REFERENCE,
    SERVER_CPU,
    Cell,
    Plan,
    Sample,
    Series,
    make_plan,
)
from prepare import (
    CEILING,
    HERE,
    LOADCLIENT,
    SERVER_PY,
    TlsFiles,
    ensure_loadclient,
    ensure_module,
    ensure_rloop05,
    log,
    machine_info,
    pinning_available,
    prepare_tls,
    probe_loop,
)
from report import build_report, draw_chart, fmt_count, med_msgs

MICRO_PY = HERE / "micro.py"
READY_TIMEOUT_S = 20.0


# --------------------------------------------------------------------------- running


def wait_ready(proc: subprocess.Popen[str], timeout: float) -> tuple[int, int]:
    """Read the server's ``READY port=P pid=N`` line; return (port, pid)."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise RuntimeError("server did not become ready in time")
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited early (code {proc.wait()})")
            if line.startswith("READY "):
                fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
                return int(fields["port"]), int(fields["pid"])
    finally:
        sel.close()


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)


def run_cell_once(
    server_cmd: list[str], cell: Cell, plan: Plan, pinned: bool, tls: TlsFiles | None
) -> Sample:
    """Start one server, drive it with the load client, stop it."""
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(
            server_cmd, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1
        )
        try:
            try:
                port, pid = wait_ready(proc, READY_TIMEOUT_S)
            except RuntimeError as exc:
                stop(proc)
                err.seek(0)
                tail = err.read().strip().splitlines()[-3:]
                raise RuntimeError(f"{exc}: {' | '.join(tail)}") from exc
            client_cmd = [
                str(LOADCLIENT),
                "--mode", cell.mode,
                "--port", str(port),
                "--size", str(max(cell.size, 1)),
                "--conns", str(cell.conns),
                "--warmup", str(plan.warmup),
                "--duration", str(plan.duration),
                "--server-pid", str(pid),
            ]  # fmt: skip
            if pinned:
                client_cmd += ["--cpu", str(CLIENT_CPU)]
            if cell.tls:
                if tls is None:
                    raise RuntimeError("TLS cell without a certificate")
                client_cmd += ["--tls", "--tls-cert", str(tls.cert)]
            client = subprocess.run(
                client_cmd,
                check=False,
                capture_output=True,
                text=True,
                timeout=plan.warmup + plan.duration + 30,
            )
            alive = proc.poll() is None
        finally:
            stop(proc)
        lines = client.stdout.strip().splitlines()
        if client.returncode != 0 or not lines:
            raise RuntimeError(f"load client failed: {client.stderr.strip()[-300:]}")
        data: dict[str, Any] = json.loads(lines[-1])
        if not alive:
            err.seek(0)
            tail = err.read().strip().splitlines()[-2:]
            raise RuntimeError(f"server died during the run: {' | '.join(tail)}")
    messages = int(data["messages"])
    window = float(data["window_s"])
    if messages == 0:
        raise RuntimeError(f"no message completed ({data['errors']} errors)")
    tck = float(os.sysconf("SC_CLK_TCK"))
    cpu_us: float | None = None
    share: float | None = None
    if data.get("server_cpu_ticks") is not None:
        cpu_s = float(data["server_cpu_ticks"]) / tck
        cpu_us = cpu_s / messages * 1e6
        share = cpu_s / window
    client_share = None
    if data.get("client_cpu_ticks") is not None:
        client_share = float(data["client_cpu_ticks"]) / tck / window
    return Sample(
        msgs_per_s=float(data["msgs_per_s"]),
        mib_per_s=float(data["mib_per_s"]),
        p50_us=float(data["p50_us"]),
        p99_us=float(data["p99_us"]),
        errors=int(data["errors"]),
        cpu_us_per_msg=cpu_us,
        server_cpu_share=share,
        client_cpu_share=client_share,
    )


def server_command(loop: str, cell: Cell, pinned: bool, tls: TlsFiles | None) -> list[str]:
    if loop == CEILING_NAME:
        mode = "echo" if cell.kind == "churn" else cell.mode
        cmd = [str(CEILING), "--mode", mode, "--port", "0", "--max-seconds", "120"]
        if cell.tls:
            cmd.append("--tls")
    else:
        cmd = [sys.executable, str(SERVER_PY), "--loop", loop, "--kind", cell.server_kind]
        cmd += ["--port", "0", "--max-seconds", "120"]
    if cell.tls and tls is not None:
        cmd += ["--cert", str(tls.cert), "--key", str(tls.key)]
    if pinned:
        cmd += ["--cpu", str(SERVER_CPU)]
    return cmd


def rotated(items: Sequence[str], k: int) -> list[str]:
    if not items:
        return []
    k %= len(items)
    return list(items[k:]) + list(items[:k])


def run_network(
    plan: Plan, loops: list[str], pinned: bool, with_ceiling: bool, tls: TlsFiles | None
) -> dict[str, dict[str, Series]]:
    """results[cell.label][loop] -> Series; the ceiling is stored under CEILING_NAME."""
    results: dict[str, dict[str, Series]] = {}
    ceiling_done: dict[str, Series] = {}
    total = len(plan.cells)
    for index, cell in enumerate(plan.cells, 1):
        per_loop: dict[str, Series] = {name: Series() for name in loops}
        contenders = list(loops)
        ceiling = with_ceiling and cell.kind not in NO_CEILING
        if ceiling and cell.ceiling_key not in ceiling_done:
            ceiling_done[cell.ceiling_key] = Series()
            contenders.append(CEILING_NAME)
        for rnd in range(plan.runs):
            for name in rotated(contenders, rnd):
                series = ceiling_done[cell.ceiling_key] if name == CEILING_NAME else per_loop[name]
                try:
                    cmd = server_command(name, cell, pinned, tls)
                    series.samples.append(run_cell_once(cmd, cell, plan, pinned, tls))
                except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as exc:
                    series.failures.append(str(exc))
                    log(f"[net] {name} / {cell.label}: run failed: {exc}")
        if ceiling:
            per_loop[CEILING_NAME] = ceiling_done[cell.ceiling_key]
        results[cell.label] = per_loop
        summary = ", ".join(
            f"{name} {fmt_count(med_msgs(s))}" if s.samples else f"{name} failed"
            for name, s in per_loop.items()
        )
        log(f"[net {index}/{total}] {cell.label}: {summary}")
    return results


def run_micro(plan: Plan, loops: list[str], pinned: bool) -> dict[str, dict[str, list[float]]]:
    """results[benchmark][loop] -> ops/s of every run."""
    results: dict[str, dict[str, list[float]]] = {}
    for rnd in range(plan.runs):
        for name in rotated(loops, rnd):
            cmd = [sys.executable, str(MICRO_PY), "--loop", name]
            cmd += ["--seconds", str(plan.micro_seconds)]
            if pinned:
                cmd += ["--cpu", str(SERVER_CPU)]
            try:
                proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
                data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
            except (subprocess.TimeoutExpired, IndexError, ValueError) as exc:
                log(f"[micro] {name} failed: {exc}")
                continue
            for bench, ops in data.get("results", {}).items():
                results.setdefault(bench, {}).setdefault(name, []).append(float(ops))
            for bench, msg in data.get("errors", {}).items():
                results.setdefault(bench, {}).setdefault(name, [])
                log(f"[micro] {name} {bench}: {msg}")
        log(f"[micro] round {rnd + 1}/{plan.runs} done")
    return results


# --------------------------------------------------------------------------- main


def estimate_seconds(plan: Plan, n_loops: int, n_ceiling: int, micro: bool, net: bool) -> float:
    per_run = plan.warmup + plan.duration + 0.15
    total = 0.0
    if net:
        total += (len(plan.cells) * n_loops + n_ceiling) * plan.runs * per_run
    if micro:
        total += plan.runs * n_loops * (6 * plan.micro_seconds * 1.6 + 0.4)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark asyncio event loops (asyncio, uvloop, rloop) on this machine."
    )
    parser.add_argument("--quick", action="store_true", help="fewer cells, short runs (<3 min)")
    parser.add_argument(
        "--loops",
        default=",".join(ALL_LOOPS),
        help=f"comma-separated subset of {','.join(ALL_LOOPS)} (default: all)",
    )
    parser.add_argument("--out", default=str(HERE / "results"), help="output directory")
    parser.add_argument("--runs", type=int, default=0, help="runs per cell (min 3)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds per run")
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per run")
    parser.add_argument(
        "--cells",
        default="",
        help="only these cells, comma-separated KIND/SIZE/CONNS, http/CONNS or https/CONNS "
        "(e.g. protocol/1024/32,tls/1024/10,https/10); runs and durations follow --quick",
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the pure-Rust ceiling")
    parser.add_argument("--no-micro", action="store_true", help="skip the microbenchmarks")
    parser.add_argument("--no-net", action="store_true", help="skip the network benchmarks")
    args = parser.parse_args()

    started = time.monotonic()
    requested = [n.strip() for n in args.loops.split(",") if n.strip()]
    unknown = [n for n in requested if n not in ALL_LOOPS]
    if unknown:
        parser.error(f"unknown loop(s) {', '.join(unknown)}; choose from {', '.join(ALL_LOOPS)}")
    if REFERENCE not in requested:
        log("[setup] note: uvloop is the reference; ratios are shown only when it runs")

    have_mpl = ensure_module("matplotlib", "matplotlib")
    if REFERENCE in requested:
        ensure_module("uvloop", "uvloop")
    if "rloop05" in requested:
        ensure_rloop05()
    if not args.no_net:
        ensure_loadclient()

    availability = {name: probe_loop(name) for name in requested}
    loops = [name for name, (ok, _) in availability.items() if ok]
    for name, (ok, detail) in availability.items():
        log(f"[setup] {name}: {detail if ok else 'not installed (' + detail + ')'}")
    if not loops:
        raise SystemExit("none of the requested loops is installed")

    plan = make_plan(args)
    pinned = pinning_available()
    info = machine_info(pinned)
    with_ceiling = not args.no_ceiling
    # The TLS cells' key material lives only in this directory, only for this run.
    with tempfile.TemporaryDirectory(prefix="rloop-bench-tls-") as tls_dir:
        plan, tls = prepare_tls(plan, Path(tls_dir), not args.no_net)
        n_ceiling = len({c.ceiling_key for c in plan.cells}) if with_ceiling else 0
        est = estimate_seconds(plan, len(loops), n_ceiling, not args.no_micro, not args.no_net)
        log("[setup] " + "; ".join(f"{k}: {v}" for k, v in info.items()))
        log(f"[setup] {plan.describe()}")
        log(f"[setup] estimated time: {est / 60:.1f} min")

        net = {} if args.no_net else run_network(plan, loops, pinned, with_ceiling, tls)
    micro = {} if args.no_micro else run_micro(plan, loops, pinned)
    elapsed = time.monotonic() - started

    report = build_report(plan, info, availability, net, micro, loops, elapsed)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.md").write_text(report + "\n", encoding="utf-8")
    raw = {
        "machine": info,
        "plan": plan.describe(),
        "loops": {k: {"installed": ok, "detail": d} for k, (ok, d) in availability.items()},
        "network": {
            label: {
                name: {
                    "samples": [s.__dict__ for s in series.samples],
                    "failures": series.failures,
                }
                for name, series in per_loop.items()
            }
            for label, per_loop in net.items()
        },
        "micro": micro,
    }
    (out_dir / "latest.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    print(report)
    if have_mpl:
        title = f"rloop benchmarks ({'quick' if plan.quick else 'full'}) · {info['cpu']}, " \
                f"{info['cores']} cores · {info['python']} · {info['date']}"  # fmt: skip
        draw_chart(out_dir / "latest.png", net, micro, loops, title)
        log(f"[done] wrote {out_dir / 'latest.md'} and {out_dir / 'latest.png'}")
    else:
        log(f"[done] wrote {out_dir / 'latest.md'} (matplotlib unavailable: no chart)")
    log(f"[done] total {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
