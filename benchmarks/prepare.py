"""Getting the machine ready for a benchmark run, and describing it in the report.

Installs what is missing (pip), builds the Rust load client, makes the run's throwaway
TLS certificate, probes which loops import, and checks whether CPU pinning is possible.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from plan import CLIENT_CPU, RLOOP05_VERSION, SERVER_CPU, Plan

HERE = Path(__file__).resolve().parent
LOADCLIENT_DIR = HERE / "loadclient"
BIN_DIR = LOADCLIENT_DIR / "target" / "release"
LOADCLIENT = BIN_DIR / "loadclient"
CEILING = BIN_DIR / "ceiling"
SERVER_PY = HERE / "server.py"


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
