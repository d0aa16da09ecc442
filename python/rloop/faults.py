"""Fault injection: toxiproxy's toxics, in-process, per connection, seeded.

A :class:`Plan` lists toxics; :func:`apply` puts it on a target:

- a loop (``RLoop``/``TokioLoop``): every connection the loop makes or
  accepts from then on, client connections included;
- a server (what ``create_server``/``asyncio.start_server`` return): every
  connection it accepts from then on;
- a transport (or a ``StreamWriter``): that connection, at once.

::

    plan = rloop.faults.Plan(seed=1).latency(50, direction="downstream").limit_data(1000)
    with rloop.faults.apply(server, plan):
        ...                      # the faults hold here
    # removed: what the toxics still held passes now

Each toxic acts on one direction, seen from the local side: ``"upstream"``
is what it receives, ``"downstream"`` what it sends. ``toxicity`` is the
chance that a toxic applies to a given connection. Random choices (jitter,
slice sizes, toxicity) come from the seed and the connection's ordinal, so
a program run twice meets the same faults. The toxics run in Rust, in each
connection's actor: time-based ones are deadlines of the loop's own poll,
on the clock of ``loop.time()``. See docs/faults.md.
"""

from __future__ import annotations

import asyncio
import errno as _errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._rloop import BaseEventLoop as _LoopCore
from ._rloop import ToxicPlan as _ToxicPlan

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

__all__ = ["Direction", "FaultHandle", "Plan", "Target", "Toxic", "apply"]

Direction = Literal["upstream", "downstream"]


@dataclass(frozen=True)
class Toxic:
    """One toxic of a plan: its name, direction, toxicity and parameters."""

    name: str
    direction: Direction
    toxicity: float
    params: tuple[float, ...]


@dataclass(frozen=True)
class _EveryNth:
    errno: int
    every: int


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


def _errno_of(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"errno must be an int, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"errno must be a positive error number, got {value!r}")
    return value


class Plan:
    """A list of toxics, built with chainable methods that return the plan.

    ``Plan(seed=0)``: the seed makes every random choice repeat exactly.
    """

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, not {type(seed).__name__}")
        self.seed = seed & 0xFFFF_FFFF_FFFF_FFFF
        self._toxics: list[Toxic] = []
        self._accept_error: _EveryNth | None = None
        self._connect_error: _EveryNth | None = None

    def __repr__(self) -> str:
        names = [t.name for t in self._toxics]
        if self._accept_error:
            names.append("accept_error")
        if self._connect_error:
            names.append("connect_error")
        return f"<Plan seed={self.seed} toxics={names}>"

    @property
    def toxics(self) -> tuple[Toxic, ...]:
        """The connection toxics, in the order they were added."""
        return tuple(self._toxics)

    def _add(
        self, name: str, direction: str, toxicity: float, *params: float
    ) -> Self:
        if direction not in ("upstream", "downstream"):
            raise ValueError(f"direction must be 'upstream' or 'downstream', not {direction!r}")
        toxicity = _non_negative("toxicity", toxicity)
        if toxicity > 1:
            raise ValueError(f"toxicity must be between 0 and 1, got {toxicity!r}")
        self._toxics.append(Toxic(name, direction, toxicity, tuple(params)))  # type: ignore[arg-type]
        return self

    def latency(
        self,
        ms: float,
        jitter_ms: float = 0,
        *,
        direction: Direction = "downstream",
        toxicity: float = 1.0,
    ) -> Self:
        """Hold every chunk ``ms`` milliseconds, plus or minus up to ``jitter_ms``."""
        return self._add(
            "latency", direction, toxicity,
            _non_negative("ms", ms), _non_negative("jitter_ms", jitter_ms),
        )

    def bandwidth(
        self, kb_per_s: float, *, direction: Direction = "downstream", toxicity: float = 1.0
    ) -> Self:
        """Let at most ``kb_per_s`` kilobytes (1 KB = 1000 bytes) pass per second."""
        rate = _non_negative("kb_per_s", kb_per_s) * 1000
        if rate < 1:
            raise ValueError(f"kb_per_s must be at least 0.001, got {kb_per_s!r}")
        return self._add("bandwidth", direction, toxicity, rate)

    def slicer(
        self,
        average_size: int,
        size_variation: int = 0,
        delay_us: int = 0,
        *,
        direction: Direction = "downstream",
        toxicity: float = 1.0,
    ) -> Self:
        """Cut the data into slices of ``average_size`` ± ``size_variation``
        bytes, ``delay_us`` microseconds apart. Upstream, each slice reaches the
        protocol as one ``data_received`` call."""
        if _non_negative("average_size", average_size) < 1:
            raise ValueError("average_size must be at least 1")
        if size_variation >= average_size:
            raise ValueError("size_variation must be smaller than average_size")
        return self._add(
            "slicer", direction, toxicity,
            float(average_size), _non_negative("size_variation", size_variation),
            _non_negative("delay_us", delay_us),
        )

    def limit_data(
        self, bytes: int, *, direction: Direction = "downstream", toxicity: float = 1.0
    ) -> Self:
        """Close the connection once ``bytes`` bytes have passed; the rest is dropped."""
        return self._add("limit_data", direction, toxicity, _non_negative("bytes", bytes))

    def timeout(
        self, ms: float, *, direction: Direction = "downstream", toxicity: float = 1.0
    ) -> Self:
        """Let no data pass; close the connection after ``ms`` (0: never)."""
        return self._add("timeout", direction, toxicity, _non_negative("ms", ms))

    def reset_peer(self, after_ms: float = 0, *, toxicity: float = 1.0) -> Self:
        """Reset the connection ``after_ms`` after it starts: the peer gets an
        RST, the local protocol ``ConnectionResetError``."""
        return self._add("reset_peer", "downstream", toxicity, _non_negative("after_ms", after_ms))

    def slow_close(
        self, delay_ms: float, *, direction: Direction = "downstream", toxicity: float = 1.0
    ) -> Self:
        """Hold the close (the EOF of this direction) back ``delay_ms``."""
        return self._add("slow_close", direction, toxicity, _non_negative("delay_ms", delay_ms))

    def read_error(self, errno: int, after_bytes: int = 0, *, toxicity: float = 1.0) -> Self:
        """Fail the socket's read with ``errno`` once ``after_bytes`` bytes were received."""
        return self._add(
            "error", "upstream", toxicity, _errno_of(errno), _non_negative("after_bytes", after_bytes)
        )

    def write_error(self, errno: int, after_bytes: int = 0, *, toxicity: float = 1.0) -> Self:
        """Fail the socket's write with ``errno`` once ``after_bytes`` bytes were sent."""
        return self._add(
            "error", "downstream", toxicity, _errno_of(errno),
            _non_negative("after_bytes", after_bytes),
        )

    def panic(
        self, after_bytes: int = 0, *, direction: Direction = "upstream", toxicity: float = 1.0
    ) -> Self:
        """Make the connection's actor panic once ``after_bytes`` bytes have
        passed: the supervisor's test (``connection_lost`` gets an exception;
        the loop and the other connections go on)."""
        return self._add("panic", direction, toxicity, _non_negative("after_bytes", after_bytes))

    def accept_error(self, errno: int, every: int = 1) -> Self:
        """Make every ``every``-th accepted connection fail as if ``accept()``
        had failed with ``errno`` (the connection is dropped)."""
        self._accept_error = _EveryNth(_errno_of(errno), _every(every))
        return self

    def connect_error(self, errno: int, every: int = 1) -> Self:
        """Make every ``every``-th connection the loop opens fail with
        ``errno``, as the ``connect()`` call would."""
        self._connect_error = _EveryNth(_errno_of(errno), _every(every))
        return self

    def _compile(self) -> _ToxicPlan:
        toxics: list[tuple[str, str, float, list[float]]] = [
            (t.name, t.direction, t.toxicity, list(t.params)) for t in self._toxics
        ]
        accept = self._accept_error
        return _ToxicPlan(
            self.seed, toxics, None if accept is None else (accept.errno, accept.every)
        )


def _every(every: int) -> int:
    if isinstance(every, bool) or not isinstance(every, int):
        raise TypeError(f"every must be an int, not {type(every).__name__}")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every!r}")
    return every


class _ConnectFaults:
    """The connect_error rules of a loop (connects are made in Python)."""

    def __init__(self, rule: _EveryNth) -> None:
        self.rule = rule
        self.count = 0

    def next_errno(self) -> int | None:
        self.count += 1
        return self.rule.errno if self.count % self.rule.every == 0 else None


def connect_fault(loop: Any, address: Any) -> OSError | None:
    """The error the loop's next connect must fail with, if a plan says so."""
    for rule in loop._connect_faults:
        err = rule.next_errno()
        if err is not None:
            return OSError(err, f"Connect call failed {address}")
    return None


class FaultHandle:
    """A plan applied to a target. ``remove()`` (or leaving the ``with``
    block) takes it off the target and off every connection that has it."""

    def __init__(
        self, loop: Any, compiled: _ToxicPlan, connect: _ConnectFaults | None, target: Any
    ) -> None:
        self._loop = loop
        self._compiled = compiled
        self._connect = connect
        self._target = target

    def __repr__(self) -> str:
        state = "removed" if self.removed else "applied"
        return f"<FaultHandle {state} on {self._target!r}>"

    @property
    def removed(self) -> bool:
        """Whether remove() was called."""
        return bool(self._compiled.removed)

    def remove(self) -> None:
        """Take the plan off; what its toxics hold passes now. Idempotent."""
        if self._connect is not None and self._connect in self._loop._connect_faults:
            self._loop._connect_faults.remove(self._connect)
        if self._compiled.removed:
            return
        if self._loop.is_closed():
            self._compiled.remove()
        else:
            self._loop._remove_toxic_plan(self._compiled)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()


def _check_loop(loop: Any, target: Any) -> None:
    if not isinstance(loop, _LoopCore):
        raise TypeError(
            "faults.apply() needs an rloop loop, server or transport, "
            f"not {type(target).__name__}"
        )
    if loop.is_closed():
        raise RuntimeError("Event loop is closed")


Target = (
    asyncio.AbstractEventLoop | asyncio.AbstractServer | asyncio.BaseTransport | asyncio.StreamWriter
)


def apply(target: Target, plan: Plan) -> FaultHandle:
    """Put ``plan`` on ``target`` (a loop, a server, a transport or a
    ``StreamWriter``) and return the handle that takes it off again."""
    if not isinstance(plan, Plan):
        raise TypeError(f"plan must be a rloop.faults.Plan, not {type(plan).__name__}")
    if isinstance(target, asyncio.StreamWriter):
        target = target.transport
    compiled = plan._compile()
    connect = None
    loop: Any
    if isinstance(target, _LoopCore):
        loop = target
        _check_loop(loop, target)
        loop._add_toxic_plan(compiled)
        if plan._connect_error is not None:
            connect = _ConnectFaults(plan._connect_error)
            loop._connect_faults.append(connect)
    elif isinstance(target, asyncio.AbstractServer):
        loop = getattr(target, "_loop", None)
        _check_loop(loop, target)
        if plan._connect_error is not None:
            raise ValueError("connect_error applies to a loop's connections, not a server's")
        loop._add_toxic_plan(compiled, target)
    elif isinstance(target, asyncio.BaseTransport) and hasattr(target, "_core"):
        loop = target._loop  # type: ignore[attr-defined]
        _check_loop(loop, target)
        if plan._connect_error is not None or plan._accept_error is not None:
            raise ValueError("accept_error and connect_error apply to a loop or a server")
        if not target._core._add_toxic_plan(compiled):
            raise RuntimeError("the transport is closed")
    else:
        raise TypeError(
            "faults.apply() needs an rloop loop, server or transport, "
            f"not {type(target).__name__}"
        )
    return FaultHandle(loop, compiled, connect, target)


# errno names users reach for, re-exported for convenience in plans.
ECONNRESET = _errno.ECONNRESET
ECONNREFUSED = _errno.ECONNREFUSED
ECONNABORTED = _errno.ECONNABORTED
EMFILE = _errno.EMFILE
EPIPE = _errno.EPIPE
ETIMEDOUT = _errno.ETIMEDOUT
