"""Event-loop microbenchmarks, run in-process for one loop.

Usage::

    python benchmarks/micro.py --loop uvloop [--quick] [--cpu 0]

Prints one JSON object ``{"loop": ..., "class": ..., "results": {name: ops_per_s}}``.
The runner starts one process per loop and repeats them interleaved.

Benchmarks:

* ``call_soon``             - ``loop.call_soon`` of a trivial callback, until all ran;
* ``call_later_cancel``     - ``loop.call_later(60, cb)`` immediately ``.cancel()``-ed;
* ``create_task``           - ``await loop.create_task(trivial())`` one after another;
* ``future_callbacks``      - future + ``add_done_callback`` + ``set_result``, until the
  callback ran;
* ``sleep0_pingpong``       - two tasks alternating with ``await asyncio.sleep(0)``
  (one op = one switch);
* ``call_soon_threadsafe``  - another thread calls ``loop.call_soon_threadsafe``; counted
  until the loop ran every callback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from loops import LoopUnavailable, describe, new_loop

Bench = Callable[[asyncio.AbstractEventLoop, int], Awaitable[None]]


class Counter:
    """Counts callbacks and resolves a future when ``target`` is reached."""

    __slots__ = ("count", "done", "target")

    def __init__(self, loop: asyncio.AbstractEventLoop, target: int) -> None:
        self.count = 0
        self.target = target
        self.done: asyncio.Future[None] = loop.create_future()

    def tick(self, *_: object) -> None:
        self.count += 1
        if self.count == self.target:
            self.done.set_result(None)


async def bench_call_soon(loop: asyncio.AbstractEventLoop, n: int) -> None:
    counter = Counter(loop, n)
    tick = counter.tick
    call_soon = loop.call_soon
    for _ in range(n):
        call_soon(tick)
    await counter.done


async def bench_call_later_cancel(loop: asyncio.AbstractEventLoop, n: int) -> None:
    call_later = loop.call_later

    def never() -> None:
        raise AssertionError("cancelled timer ran")

    for _ in range(n):
        call_later(60.0, never).cancel()
    await asyncio.sleep(0)


async def _trivial() -> int:
    return 1


async def bench_create_task(loop: asyncio.AbstractEventLoop, n: int) -> None:
    create_task = loop.create_task
    for _ in range(n):
        await create_task(_trivial())


async def bench_future_callbacks(loop: asyncio.AbstractEventLoop, n: int) -> None:
    counter = Counter(loop, n)
    tick = counter.tick
    create_future = loop.create_future
    for _ in range(n):
        fut = create_future()
        fut.add_done_callback(tick)
        fut.set_result(None)
    await counter.done


async def bench_sleep0_pingpong(loop: asyncio.AbstractEventLoop, n: int) -> None:
    half = max(1, n // 2)

    async def player() -> None:
        sleep = asyncio.sleep
        for _ in range(half):
            await sleep(0)

    await asyncio.gather(loop.create_task(player()), loop.create_task(player()))


async def bench_call_soon_threadsafe(loop: asyncio.AbstractEventLoop, n: int) -> None:
    counter = Counter(loop, n)
    tick = counter.tick
    call = loop.call_soon_threadsafe

    def producer() -> None:
        for _ in range(n):
            call(tick)

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    await counter.done
    thread.join()


BENCHMARKS: dict[str, Bench] = {
    "call_soon": bench_call_soon,
    "call_later_cancel": bench_call_later_cancel,
    "create_task": bench_create_task,
    "future_callbacks": bench_future_callbacks,
    "sleep0_pingpong": bench_sleep0_pingpong,
    "call_soon_threadsafe": bench_call_soon_threadsafe,
}


def measure(loop: asyncio.AbstractEventLoop, bench: Bench, target_s: float) -> float:
    """Run ``bench`` in growing batches until ``target_s`` elapsed; return ops/s."""
    loop.run_until_complete(bench(loop, 1000))  # warm-up
    batch = 2000
    ops = 0
    elapsed = 0.0
    while elapsed < target_s:
        t0 = time.perf_counter()
        loop.run_until_complete(bench(loop, batch))
        dt = time.perf_counter() - t0
        ops += batch
        elapsed += dt
        if dt < target_s / 8:
            batch *= 2
    return ops / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description="asyncio loop microbenchmarks")
    parser.add_argument("--loop", required=True)
    parser.add_argument("--quick", action="store_true", help="~0.25 s per benchmark")
    parser.add_argument("--seconds", type=float, default=None, help="time per benchmark")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU")
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        # Before the loop exists, so every thread (the call_soon_threadsafe
        # producer included) shares the CPU: what is measured is the loop's
        # CPU cost, not how the scheduler spreads two threads over cores.
        os.sched_setaffinity(0, {args.cpu})

    target = args.seconds if args.seconds is not None else (0.25 if args.quick else 0.6)
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    try:
        loop = new_loop(args.loop)
    except LoopUnavailable as exc:
        print(json.dumps({"loop": args.loop, "error": str(exc)}), flush=True)
        return 3
    results: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            results[name] = measure(loop, BENCHMARKS[name], target)
        except Exception as exc:  # noqa: BLE001 - a loop under development may lack an API
            errors[name] = f"{type(exc).__name__}: {exc}"
    loop.close()
    out = {"loop": args.loop, "class": describe(loop), "results": results, "errors": errors}
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
