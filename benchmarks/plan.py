"""What the benchmark suite measures: the loops, the cells, the plan, and one run's numbers.

The constants and dataclasses here are shared by ``prepare.py``, ``report.py`` and
``run.py``; this module imports none of them, so the imports only ever point this way.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

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
