"""Memory per connection: how much a loop's process grows for each open
connection, and whether it gives the memory back once they close.

Usage::

    python benchmarks/memory.py [--loops asyncio,uvloop,rloop,tokio] [--conns 1000,15000]
                                [--side server|client|both]

``server`` side: ``benchmarks/server.py --kind protocol`` (an echo
Protocol) on the loop under test; this process opens the connections with
plain sockets, sends 1 KiB on each and reads the echo back (so every
connection has read and written once), and keeps them open.

``client`` side: a child process on the loop under test opens the
connections itself (``loop.create_connection``) to a stock-asyncio echo
server, sends 1 KiB on each and awaits the echo.

For each count it prints the measured process's RSS and VmData (from
/proc/PID/status): at the start, with the connections open (and the growth
per connection), and after they have all closed (the difference from the
start).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
MESSAGE = b"x" * 1024
SETTLE = 1.0  # seconds for the measured process to finish closing


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmData of `pid`, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmData"):
                out[key] = int(value.split()[0])
    return out


@contextmanager
def child(args: list[str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A child process that prints one READY line; yields it and that line."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # the fd limit raised in main() is inherited
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"child failed: {line!r}")
        yield proc, line
    finally:
        proc.kill()
        proc.wait()


def open_and_echo(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection((HOST, port))
        s.sendall(MESSAGE)
        socks.append(s)
    for s in socks:
        got = 0
        while got < len(MESSAGE):
            got += len(s.recv(len(MESSAGE) - got))
    return socks


def measure_server(loop: str, count: int) -> dict[str, int]:
    script = os.path.join(HERE, "server.py")
    with child([script, "--loop", loop, "--kind", "protocol", "--port", "0"]) as (_, line):
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        port, pid = int(fields["port"]), int(fields["pid"])
        for s in open_and_echo(port, 1):  # warm up: one connection, closed
            s.close()
        time.sleep(SETTLE)
        start = status(pid)
        socks = open_and_echo(port, count)
        time.sleep(SETTLE)
        opened = status(pid)
        for s in socks:
            s.close()
        time.sleep(SETTLE * 2)
        closed = status(pid)
    return summary(count, start, opened, closed)


CLIENT = """
import asyncio, os, sys
sys.path.insert(0, {here!r})
from loops import new_loop

class Client(asyncio.Protocol):
    def __init__(self, done):
        self.done, self.got = done, 0
    def connection_made(self, transport):
        transport.write(b"x" * 1024)
    def data_received(self, data):
        self.got += len(data)
        if self.got >= 1024 and not self.done.done():
            self.done.set_result(None)

async def main(port):
    loop = asyncio.get_running_loop()
    print("READY", flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        count = int(line or 0)
        if not count:
            return
        # Two lists, not one of (transport, future) pairs: 2,000 of those
        # pairs would stay in CPython's tuple free list after the close,
        # scattered over the allocator's arenas, and keep some 2 MB of
        # them resident whatever the loop (gc.collect() clears that list).
        transports, dones = [], []
        for _ in range(count):
            done = loop.create_future()
            t, _ = await loop.create_connection(lambda: Client(done), "127.0.0.1", port)
            transports.append(t)
            dones.append(done)
        for done in dones:
            await done
        print("OPEN", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        for t in transports:
            t.close()
        transports.clear()
        dones.clear()
        await asyncio.sleep({settle})
        print("CLOSED", flush=True)

loop = new_loop({loop!r})
loop.run_until_complete(main(int(sys.argv[1])))
"""


def measure_client(loop: str, count: int) -> dict[str, int]:
    script = os.path.join(HERE, "server.py")
    with child([script, "--loop", "asyncio", "--kind", "protocol", "--port", "0"]) as (_, line):
        port = int(dict(kv.split("=", 1) for kv in line.split()[1:])["port"])
        code = CLIENT.format(here=HERE, loop=loop, settle=SETTLE * 2)
        with child(["-c", code, str(port)]) as (proc, _):
            assert proc.stdin is not None and proc.stdout is not None
            # Warm up with one connection.
            proc.stdin.write("1\n")
            proc.stdin.flush()
            proc.stdout.readline()
            proc.stdin.write("\n")
            proc.stdin.flush()
            proc.stdout.readline()
            start = status(proc.pid)
            proc.stdin.write(f"{count}\n")
            proc.stdin.flush()
            assert proc.stdout.readline().startswith("OPEN")
            time.sleep(SETTLE)
            opened = status(proc.pid)
            proc.stdin.write("\n")
            proc.stdin.flush()
            assert proc.stdout.readline().startswith("CLOSED")
            closed = status(proc.pid)
    return summary(count, start, opened, closed)


def summary(
    count: int, start: dict[str, int], opened: dict[str, int], closed: dict[str, int]
) -> dict[str, int]:
    return {
        "rss_start": start["VmRSS"],
        "rss_open": opened["VmRSS"],
        "rss_closed": closed["VmRSS"],
        "data_open": opened["VmData"] - start["VmData"],
        "per_conn_bytes": (opened["VmRSS"] - start["VmRSS"]) * 1024 // count,
        "data_per_conn_bytes": (opened["VmData"] - start["VmData"]) * 1024 // count,
        "kept_after_close": closed["VmRSS"] - start["VmRSS"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", default="asyncio,uvloop,rloop,tokio")
    parser.add_argument("--conns", default="1000,10000")
    parser.add_argument("--side", choices=("server", "client", "both"), default="both")
    args = parser.parse_args()
    raise_fd_limit()
    sides = ("server", "client") if args.side == "both" else (args.side,)
    print(
        "| side | loop | connections | RSS start KiB | RSS open KiB | RSS per conn | "
        "VmData per conn | RSS kept after close KiB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for side in sides:
        for count in (int(c) for c in args.conns.split(",")):
            for loop in args.loops.split(","):
                measure = measure_server if side == "server" else measure_client
                try:
                    r = measure(loop, count)
                except (OSError, RuntimeError, KeyError, AssertionError) as exc:
                    # A loop that is not installed, say.
                    print(f"| {side} | {loop} | {count} | failed: {exc} | | | | |")
                    continue
                print(
                    f"| {side} | {loop} | {count} | {r['rss_start']} | {r['rss_open']} | "
                    f"{r['per_conn_bytes'] / 1024:.1f} KiB | "
                    f"{r['data_per_conn_bytes'] / 1024:.1f} KiB | {r['kept_after_close']} |",
                    flush=True,
                )


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
