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
import dataclasses
import datetime
import importlib
import json
import math
import os
import platform
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LOADCLIENT_DIR = HERE / "loadclient"
BIN_DIR = LOADCLIENT_DIR / "target" / "release"
LOADCLIENT = BIN_DIR / "loadclient"
CEILING = BIN_DIR / "ceiling"
SERVER_PY = HERE / "server.py"
MICRO_PY = HERE / "micro.py"

ALL_LOOPS: tuple[str, ...] = ("asyncio", "uvloop", "rloop", "tokio", "rloop05")
# rloop 0.5 from PyPI (the ``rloop05`` loop), installed apart: its package is ``rloop`` too.
RLOOP05_VERSION = "0.5.0"
REFERENCE = "uvloop"
CEILING_NAME = "ceiling"
KINDS: tuple[str, ...] = (
    "sockets", "streams", "protocol", "bufproto", "http", "churn", "tls", "https", "udp"
)  # fmt: skip
HTTP_KINDS: tuple[str, ...] = ("http", "https")
TLS_KINDS: tuple[str, ...] = ("tls", "https")
# Kinds the pure-Rust ceiling server does not serve.
NO_CEILING: tuple[str, ...] = ("udp",)
SERVER_CPU = 0
CLIENT_CPU = 1
READY_TIMEOUT_S = 20.0


# --------------------------------------------------------------------------- setup


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pip_install(*args: str) -> bool:
    """``pip install --quiet ARGS`` with this Python; logs pip's error if it fails."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", *args],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if proc.returncode != 0:
        log(f"[setup] pip install {' '.join(args)} failed:\n{proc.stderr.strip()[-2000:]}")
    return proc.returncode == 0


def ensure_module(module: str, package: str) -> bool:
    """Import ``module``, pip-installing ``package`` first if it is missing."""
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        pass
    log(f"[setup] installing {package} with pip ...")
    if not pip_install(package):
        return False
    importlib.invalidate_caches()
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False


def newest_source_mtime() -> float:
    paths = [LOADCLIENT_DIR / "Cargo.toml", LOADCLIENT_DIR / "Cargo.lock"]
    paths += list((LOADCLIENT_DIR / "src").rglob("*.rs"))
    return max(p.stat().st_mtime for p in paths if p.exists())


def ensure_loadclient() -> None:
    """Build the Rust binaries when missing or older than their sources."""
    newest = newest_source_mtime()
    if all(b.exists() and b.stat().st_mtime >= newest for b in (LOADCLIENT, CEILING)):
        return
    cmd = ["cargo", "build", "--release", "--manifest-path", str(LOADCLIENT_DIR / "Cargo.toml")]
    log(f"[setup] building the load client: {' '.join(cmd)}")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
    except FileNotFoundError as exc:
        raise SystemExit("cargo not found: install Rust, or pass --no-net") from exc
    if proc.returncode != 0:
        raise SystemExit(f"cargo build failed:\n{proc.stderr[-4000:]}")
    for binary in (LOADCLIENT, CEILING):
        binary.touch()  # cargo may keep an up-to-date binary's old mtime
    log(f"[setup] built in {time.monotonic() - t0:.1f} s")


@dataclass(frozen=True)
class TlsFiles:
    """The run's throwaway server certificate (chain) and private key, PEM."""

    cert: Path
    key: Path
    origin: str


def make_tls_files(directory: Path) -> TlsFiles | None:
    """A self-signed certificate + key for 127.0.0.1 in ``directory`` (None if impossible).

    The ``openssl`` CLI when present (EC P-256, 2 days), else ``trustme`` (pip-installed
    if missing). Nothing is written outside ``directory``, which the caller removes.
    """
    cert, key = directory / "cert.pem", directory / "key.pem"
    openssl = shutil.which("openssl")
    if openssl:
        cmd = [
            openssl, "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ]  # fmt: skip
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)
        if proc.returncode == 0 and cert.exists() and key.exists():
            return TlsFiles(cert, key, "openssl req -x509, EC P-256, self-signed")
        log(f"[setup] openssl req failed: {proc.stderr.strip()[-500:]}")
    if not ensure_module("trustme", "trustme"):
        return None
    trustme = importlib.import_module("trustme")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_pem.write_to_path(str(key))
    for i, blob in enumerate(leaf.cert_chain_pems):
        blob.write_to_path(str(cert), append=i > 0)
    return TlsFiles(cert, key, "trustme, leaf issued by a throwaway CA")


def ensure_rloop05() -> None:
    """Install rloop 0.5 from PyPI into a directory of its own (once per Python), and
    name it in ``RLOOP05_PATH`` for the servers and micro benchmarks this run starts."""
    if os.environ.get("RLOOP05_PATH"):
        return
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    target = Path.home() / ".cache" / "rloop-benchmarks" / f"rloop-{RLOOP05_VERSION}-{tag}"
    if not (target / "rloop").is_dir():
        log(f"[setup] installing rloop {RLOOP05_VERSION} (PyPI) into {target} ...")
        what = ["--no-deps", "--only-binary", ":all:", "--target", str(target)]
        if not pip_install(*what, f"rloop=={RLOOP05_VERSION}"):
            return
    os.environ["RLOOP05_PATH"] = str(target)


def probe_loop(name: str) -> tuple[bool, str]:
    """(installed?, loop class or reason) for one loop, checked in a subprocess."""
    try:
        proc = subprocess.run(
            [sys.executable, str(SERVER_PY), "--loop", name, "--check"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        return False, "probe timed out"
    out = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and out and out[-1].startswith("LOOP "):
        return True, out[-1][5:]
    if out and out[-1].startswith("UNAVAILABLE "):
        return False, out[-1][12:]
    err = (proc.stderr.strip().splitlines() or ["probe failed"])[-1]
    return False, err


def pinning_available() -> bool:
    if not hasattr(os, "sched_getaffinity"):
        return False
    cpus = os.sched_getaffinity(0)
    return SERVER_CPU in cpus and CLIENT_CPU in cpus


def machine_info(pinned: bool) -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "pinning": (
            f"server on CPU {SERVER_CPU}, load client on CPU {CLIENT_CPU}"
            if pinned
            else "none (fewer than 2 usable CPUs)"
        ),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    for mod in ("uvloop", "rloop"):
        try:
            version = getattr(importlib.import_module(mod), "__version__", "?")
            info[mod] = str(version)
        except ImportError:
            pass
    return info


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Cell:
    kind: str
    size: int
    conns: int

    @property
    def mode(self) -> str:
        if self.kind in HTTP_KINDS:
            return "http"
        if self.kind in ("churn", "udp"):
            return self.kind
        return "echo"

    @property
    def tls(self) -> bool:
        return self.kind in TLS_KINDS

    @property
    def server_kind(self) -> str:
        """What the server runs: churn is Protocol echo, one message per connection."""
        return "protocol" if self.kind == "churn" else self.kind

    @property
    def label(self) -> str:
        if self.kind in HTTP_KINDS:
            return f"{self.kind} keep-alive, {self.conns} conn"
        if self.kind == "churn":
            return f"connection churn {self.size // 1024} KiB, {self.conns} at a time"
        return f"{self.kind} echo {self.size // 1024} KiB, {self.conns} conn"

    @property
    def ceiling_key(self) -> str:
        if self.kind in ("http", "churn", "https"):
            return f"{self.kind}/{self.size}/{self.conns}"
        return f"{'tls-' if self.tls else ''}echo/{self.size}/{self.conns}"


@dataclass(frozen=True)
class Plan:
    quick: bool
    cells: tuple[Cell, ...]
    runs: int
    warmup: float
    duration: float
    micro_seconds: float

    def describe(self) -> str:
        kinds = sorted({c.kind for c in self.cells}, key=KINDS.index)
        sizes = sorted({c.size // 1024 for c in self.cells if c.kind not in HTTP_KINDS})
        conns = sorted({c.conns for c in self.cells})
        return (
            f"{'quick' if self.quick else 'full'} mode: kinds {', '.join(kinds)}; "
            f"echo sizes {', '.join(f'{s} KiB' for s in sizes)}; "
            f"connections {', '.join(map(str, conns))}; "
            f"{self.runs} runs per cell (median, min-max); "
            f"{self.warmup:g} s warm-up + {self.duration:g} s measured per run; "
            f"microbenchmarks {self.micro_seconds:g} s each"
        )


def parse_cell(spec: str) -> Cell:
    """``KIND/SIZE/CONNS`` (``protocol/1024/32``), or ``http/CONNS`` / ``https/CONNS``."""
    parts = spec.strip().split("/")
    try:
        if parts[0] in HTTP_KINDS and len(parts) == 2:
            return Cell(parts[0], 0, int(parts[1]))
        if parts[0] in KINDS and parts[0] not in HTTP_KINDS and len(parts) == 3:
            return Cell(parts[0], int(parts[1]), int(parts[2]))
    except ValueError:
        pass
    raise SystemExit(
        f"bad cell {spec!r}: use KIND/SIZE/CONNS (e.g. protocol/1024/32, tls/1024/10) "
        "or http/CONNS, https/CONNS"
    )


def prepare_tls(plan: Plan, directory: Path, net: bool) -> tuple[Plan, TlsFiles | None]:
    """Make the certificate when the plan has TLS cells; drop them if that fails."""
    if not net or not any(c.tls for c in plan.cells):
        return plan, None
    tls = make_tls_files(directory)
    if tls is None:
        log("[setup] no openssl CLI and no trustme: the TLS cells are skipped")
        return dataclasses.replace(plan, cells=tuple(c for c in plan.cells if not c.tls)), None
    log(f"[setup] TLS certificate for 127.0.0.1: {tls.origin} (temporary, deleted after)")
    return plan, tls


def make_plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        cells = [
            Cell(kind, size, 32)
            for kind in ("sockets", "streams", "protocol")
            for size in (1024, 100 * 1024)
        ]
        cells.append(Cell("http", 0, 32))
        cells.append(Cell("churn", 1024, 32))
        cells.append(Cell("tls", 1024, 10))
        cells.append(Cell("udp", 1024, 10))
        runs, warmup, duration, micro = 3, 0.25, 1.0, 0.15
    else:
        cells = [
            Cell(kind, size, conns)
            for kind in ("sockets", "streams", "protocol", "bufproto")
            for size in (1024, 10 * 1024, 100 * 1024)
            for conns in (1, 32)
        ]
        cells += [Cell("http", 0, conns) for conns in (1, 32)]
        cells.append(Cell("churn", 1024, 32))
        cells += [Cell("tls", size, 10) for size in (1024, 100 * 1024)]
        cells.append(Cell("https", 0, 10))
        cells.append(Cell("udp", 1024, 10))
        runs, warmup, duration, micro = 3, 0.4, 1.5, 0.5
    if args.cells:
        cells = [parse_cell(spec) for spec in args.cells.split(",") if spec.strip()]
    return Plan(
        quick=args.quick,
        cells=tuple(cells),
        runs=max(3, args.runs) if args.runs else runs,
        warmup=args.warmup if args.warmup is not None else warmup,
        duration=args.duration if args.duration is not None else duration,
        micro_seconds=micro,
    )


# --------------------------------------------------------------------------- running


@dataclass
class Sample:
    msgs_per_s: float
    mib_per_s: float
    p50_us: float
    p99_us: float
    errors: int
    cpu_us_per_msg: float | None
    server_cpu_share: float | None
    client_cpu_share: float | None


@dataclass
class Series:
    samples: list[Sample] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


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


# --------------------------------------------------------------------------- report


def fmt_count(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def fmt_num(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_ratio(x: float | None) -> str:
    return "" if x is None else f" ({x:.2f}×)"


def med_msgs(s: Series) -> float | None:
    vals = [x.msgs_per_s for x in s.samples]
    return statistics.median(vals) if vals else None


def med_cpu(s: Series) -> float | None:
    vals = [x.cpu_us_per_msg for x in s.samples if x.cpu_us_per_msg is not None]
    return statistics.median(vals) if vals else None


def med_of(vals: Sequence[float | None]) -> float | None:
    clean = [v for v in vals if v is not None]
    return statistics.median(clean) if clean else None


def ratio(value: float | None, ref: float | None) -> float | None:
    if value is None or ref is None or ref == 0:
        return None
    return value / ref


def geomean(vals: Sequence[float]) -> float | None:
    clean = [v for v in vals if v > 0]
    if not clean:
        return None
    return math.exp(sum(math.log(v) for v in clean) / len(clean))


def net_table(results: dict[str, dict[str, Series]], columns: list[str]) -> list[str]:
    head = ["cell"]
    for name in columns:
        head += [f"{name} msgs/s", f"{name} µs CPU/msg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, per_loop in results.items():
        ref = per_loop.get(REFERENCE)
        ref_msgs = med_msgs(ref) if ref else None
        ref_cpu = med_cpu(ref) if ref else None
        row = [label]
        for name in columns:
            s = per_loop.get(name)
            if s is None:
                row += ["-", "-"]
                continue
            if not s.samples:
                row += ["failed", "failed"]
                continue
            msgs = [x.msgs_per_s for x in s.samples]
            cpus = [x.cpu_us_per_msg for x in s.samples if x.cpu_us_per_msg is not None]
            flag = " ⚠" if s.failures or any(x.errors for x in s.samples) else ""
            m = med_msgs(s)
            row.append(
                f"{fmt_count(m)}{fmt_ratio(ratio(m, ref_msgs))} "
                f"[{fmt_count(min(msgs))}–{fmt_count(max(msgs))}]{flag}"
            )
            c = med_cpu(s)
            row.append(
                f"{fmt_num(c)}{fmt_ratio(ratio(c, ref_cpu))} "
                f"[{fmt_num(min(cpus))}–{fmt_num(max(cpus))}]"
                if cpus
                else "-"
            )
        lines.append("| " + " | ".join(row) + " |")
    return lines


def detail_table(results: dict[str, dict[str, Series]], columns: list[str]) -> list[str]:
    head = ["cell"] + [f"{name}: server CPU · client CPU · p50 / p99 µs" for name in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, per_loop in results.items():
        row = [label]
        for name in columns:
            s = per_loop.get(name)
            if s is None or not s.samples:
                row.append("-")
                continue
            srv = med_of([x.server_cpu_share for x in s.samples])
            cli = med_of([x.client_cpu_share for x in s.samples])
            p50 = med_of([x.p50_us for x in s.samples])
            p99 = med_of([x.p99_us for x in s.samples])
            errors = sum(x.errors for x in s.samples)
            text = (
                f"{(srv or 0) * 100:.0f}% · {(cli or 0) * 100:.0f}% · "
                f"{fmt_num(p50)} / {fmt_num(p99)}"
            )
            if errors or s.failures:
                text += f" · {errors} conn errors, {len(s.failures)} failed runs"
            row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    return lines


def ranking_table(
    results: dict[str, dict[str, Series]], columns: list[str], loop_classes: dict[str, str]
) -> list[str]:
    lines = [
        "| loop | class | msgs/s vs uvloop (geomean) | CPU/msg vs uvloop (geomean) | cells |",
        "|---|---|---|---|---|",
    ]
    rows: list[tuple[float, str]] = []
    for name in columns:
        msg_ratios: list[float] = []
        cpu_ratios: list[float] = []
        for per_loop in results.values():
            ref, s = per_loop.get(REFERENCE), per_loop.get(name)
            if ref is None or s is None:
                continue
            r = ratio(med_msgs(s), med_msgs(ref))
            if r is not None:
                msg_ratios.append(r)
            r = ratio(med_cpu(s), med_cpu(ref))
            if r is not None:
                cpu_ratios.append(r)
        gm, gc = geomean(msg_ratios), geomean(cpu_ratios)
        cls = loop_classes.get(name, "pure Rust, tokio current_thread")
        text = (
            f"| {name} | `{cls}` | {'-' if gm is None else f'{gm:.2f}×'} | "
            f"{'-' if gc is None else f'{gc:.2f}×'} | {len(msg_ratios)} |"
        )
        rows.append((gc if gc is not None else math.inf, text))
    rows.sort(key=lambda r: r[0])
    return lines + [text for _, text in rows]


def micro_table(results: dict[str, dict[str, list[float]]], loops: list[str]) -> list[str]:
    head = ["benchmark"] + [f"{name} ops/s" for name in loops]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for bench, per_loop in results.items():
        ref_vals = per_loop.get(REFERENCE) or []
        ref = statistics.median(ref_vals) if ref_vals else None
        row = [bench]
        for name in loops:
            vals = per_loop.get(name)
            if not vals:
                row.append("failed" if vals is not None else "-")
                continue
            m = statistics.median(vals)
            row.append(
                f"{fmt_count(m)}{fmt_ratio(ratio(m, ref))} "
                f"[{fmt_count(min(vals))}–{fmt_count(max(vals))}]"
            )
        lines.append("| " + " | ".join(row) + " |")
    return lines


def build_report(
    plan: Plan,
    info: dict[str, str],
    availability: dict[str, tuple[bool, str]],
    net: dict[str, dict[str, Series]],
    micro: dict[str, dict[str, list[float]]],
    loops: list[str],
    elapsed: float,
) -> str:
    out = ["# rloop benchmarks", ""]
    out.append("Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()))
    out.append("")
    out.append(f"Plan: {plan.describe()}. Total time {elapsed:.0f} s.")
    out.append("")
    out.append("Loops: " + "; ".join(
        f"{name} = `{detail}`" if ok else f"{name} = not installed ({detail})"
        for name, (ok, detail) in availability.items()
    ))  # fmt: skip
    out.append("")
    classes = {name: detail for name, (ok, detail) in availability.items() if ok}
    if net:
        columns = loops + ([CEILING_NAME] if any(CEILING_NAME in v for v in net.values()) else [])
        out += ["## Network", ""]
        out.append(
            "Each cell: median of the runs, ratio to uvloop in parentheses, [min–max] of "
            "the runs. msgs/s: higher is better. µs CPU/msg: server user+sys CPU time "
            "(all threads) per message during the measured window, lower is better. "
            "`ceiling` is a pure-Rust single-threaded server: the limit of this machine "
            "and load client. ⚠ = some connections or runs failed (see details)."
        )
        out.append("")
        out += net_table(net, columns)
        out += ["", "### Ranking (geometric mean over all cells, sorted by CPU/msg)", ""]
        out += ranking_table(net, columns, classes)
        out += ["", "### Details: CPU share of one core (server · client), latency", ""]
        out += detail_table(net, columns)
        out.append("")
    if micro:
        out += ["## Loop microbenchmarks", ""]
        out.append("ops/s, median of the runs, (ratio to uvloop), [min–max]. Higher is better.")
        out.append("")
        out += micro_table(micro, loops)
        out.append("")
    return "\n".join(out)


def draw_chart(
    path: Path,
    net: dict[str, dict[str, Series]],
    micro: dict[str, dict[str, list[float]]],
    loops: list[str],
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = loops + [CEILING_NAME]
    colors = {
        "asyncio": "#9e9e9e",
        "uvloop": "#1f77b4",
        "rloop": "#d62728",
        "tokio": "#ff7f0e",
        "rloop05": "#8c564b",
        CEILING_NAME: "#2ca02c",
    }
    labels = list(net)
    n_panels = (2 if net else 0) + (1 if micro else 0)
    if n_panels == 0:
        return
    net_h = 0.32 * len(labels) * max(2, len(names)) / 2 + 1.5
    micro_h = 0.32 * len(micro) * max(2, len(loops)) / 2 + 1.5
    fig = plt.figure(figsize=(15, (net_h if net else 0) + (micro_h if micro else 0) + 0.8))
    heights = ([net_h] if net else []) + ([micro_h] if micro else [])
    grid = fig.add_gridspec(len(heights), 2, height_ratios=heights, hspace=0.25, wspace=0.05)

    def bars(ax: Any, rows: list[str], values: dict[str, list[float | None]]) -> None:
        present = [n for n in values if any(v is not None for v in values[n])]
        width = 0.8 / max(1, len(present))
        for i, name in enumerate(present):
            ys = [r + (i - (len(present) - 1) / 2) * width for r in range(len(rows))]
            xs = [v if v is not None else 0.0 for v in values[name]]
            ax.barh(ys, xs, height=width, color=colors.get(name, "#8c564b"), label=name)
            for y, v in zip(ys, values[name]):
                if v is not None:
                    ax.text(v, y, f" {v:.2f}", va="center", fontsize=6)
        top = max([v for name in present for v in values[name] if v is not None] + [1.0])
        ax.set_xlim(0, top * 1.15)
        ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)

    row = 0
    if net:
        msg_vals: dict[str, list[float | None]] = {}
        cpu_vals: dict[str, list[float | None]] = {}
        for name in names:
            msg_vals[name] = []
            cpu_vals[name] = []
            for label in labels:
                per_loop = net[label]
                ref, s = per_loop.get(REFERENCE), per_loop.get(name)
                if ref is None or s is None or not s.samples:
                    msg_vals[name].append(None)
                    cpu_vals[name].append(None)
                    continue
                msg_vals[name].append(ratio(med_msgs(s), med_msgs(ref)))
                cpu_vals[name].append(ratio(med_cpu(s), med_cpu(ref)))
        ax1 = fig.add_subplot(grid[row, 0])
        bars(ax1, labels, msg_vals)
        ax1.set_yticks(range(len(labels)))
        ax1.set_yticklabels(labels, fontsize=8)
        ax1.set_title("messages/s relative to uvloop (higher is better)", fontsize=10)
        ax2 = fig.add_subplot(grid[row, 1], sharey=ax1)
        bars(ax2, labels, cpu_vals)
        ax2.tick_params(labelleft=False)
        ax2.set_title("server CPU µs/message relative to uvloop (lower is better)", fontsize=10)
        row += 1
    if micro:
        benches = list(micro)
        micro_vals: dict[str, list[float | None]] = {}
        for name in loops:
            micro_vals[name] = []
            for bench in benches:
                runs = micro[bench]
                ref_v, v = runs.get(REFERENCE), runs.get(name)
                micro_vals[name].append(
                    ratio(statistics.median(v), statistics.median(ref_v)) if v and ref_v else None
                )
        ax3 = fig.add_subplot(grid[row, :])
        bars(ax3, benches, micro_vals)
        ax3.set_yticks(range(len(benches)))
        ax3.set_yticklabels(benches, fontsize=8)
        ax3.set_title("loop microbenchmarks: ops/s relative to uvloop (higher is better)",
                      fontsize=10)  # fmt: skip
    from matplotlib.patches import Patch

    shown = [n for n in names if any(n in per_loop for per_loop in net.values()) or n in loops]
    handles = [Patch(color=colors.get(n, "#8c564b"), label=n) for n in shown]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=9,
               bbox_to_anchor=(0.5, 0.985), frameon=False)  # fmt: skip
    fig.suptitle(title, fontsize=11, y=1.0)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


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
