"""rloop.run(..., shutdown_signals=...): the first signal drains every
server of the loop, then run() returns; a second one aborts.

Each case runs a server in a child interpreter, so that a shutdown that
goes wrong cannot take the test run with it. The child prints its port,
logs the drain (the "rloop.shutdown" logger) and what run() returned; the
test is its client, and compares what it received with the child's
payload by sha256.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import RLOOP_NAMES, RUN_TIMEOUT, rloop_loop_name

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix signals")

PAYLOAD_SIZE = 16 * 1024 * 1024

_CHILD = f"""
import asyncio, logging, random, signal, sys
import rloop

loop_name, mode, timeout = sys.argv[1:4]
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
PAYLOAD = random.Random(7).randbytes({PAYLOAD_SIZE})


class Sender(asyncio.Protocol):
    def connection_made(self, transport):
        transport.write(PAYLOAD)


async def main():
    server = await asyncio.get_running_loop().create_server(Sender, "127.0.0.1", 0)
    print("port", server.sockets[0].getsockname()[1], flush=True)
    try:
        await server.serve_forever()
    except asyncio.CancelledError:
        if mode == "return":
            return "bye"
        raise


kwargs = {{}}
if mode != "plain":
    kwargs = dict(
        shutdown_signals=(signal.SIGTERM, signal.SIGINT),
        shutdown_timeout=float(timeout),
        shutdown_close_idle_after=0.2,
    )
try:
    result = rloop.run(main(), loop=loop_name, **kwargs)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
else:
    print("run returned", repr(result), flush=True)
"""

PAYLOAD_SHA = hashlib.sha256(random.Random(7).randbytes(PAYLOAD_SIZE)).hexdigest()


# The rloop loops (overrides the suite's fixture, which has every loop).
loop_name = pytest.fixture(params=RLOOP_NAMES, name="loop_name")(rloop_loop_name)


class Child:
    def __init__(self, loop_name: str, mode: str, timeout: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, loop_name, mode, str(timeout)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        port_line = self.readline()
        assert port_line.startswith("port "), (port_line, self.finish())
        self.port = int(port_line.split()[1])

    def readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        self.lines.append(line)
        return line

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def finish(self) -> tuple[list[str], str]:
        """Wait for the child (bounded); its output lines and stderr."""
        try:
            out, err = self.proc.communicate(timeout=4 * RUN_TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
        self.lines += out.splitlines()
        return self.lines, err

    def report(self) -> dict[str, float]:
        """The DrainReport the child logged for its server."""
        found = [re.search(r"DrainReport\((.*)\)", line) for line in self.lines]
        reports = [m.group(1) for m in found if m]
        assert len(reports) == 1, self.lines
        return {k: float(v) for k, v in (f.split("=") for f in reports[0].split(", "))}


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=RUN_TIMEOUT)
    return sock


def read_until_eof(sock: socket.socket, pause: float) -> bytes:
    chunks = []
    while chunk := sock.recv(256 * 1024):
        chunks.append(chunk)
        time.sleep(pause)  # a slow reader, not a synchronisation
    return b"".join(chunks)


@pytest.mark.parametrize("mode", ["propagate", "return"])
def test_first_signal_drains(loop_name: str, mode: str) -> None:
    child = Child(loop_name, mode, RUN_TIMEOUT)
    with connect(child.port) as sock:
        first = sock.recv(64 * 1024)  # the server is writing
        child.signal(signal.SIGTERM)
        assert child.readline() == "SIGTERM: draining the servers (timeout 5.0 s)"
        received = first + read_until_eof(sock, pause=0.001)
    lines, err = child.finish()
    assert child.proc.returncode == 0, (lines, err)
    assert hashlib.sha256(received).hexdigest() == PAYLOAD_SHA
    report = child.report()
    assert (report["drained"], report["aborted"]) == (1, 0)
    assert 0 < report["bytes_flushed"] <= PAYLOAD_SIZE
    assert lines[-1] == ("run returned 'bye'" if mode == "return" else "run returned None")


def test_second_signal_aborts(loop_name: str) -> None:
    timeout = 60.0  # not reached: the second signal ends the drain
    started = time.monotonic()
    child = Child(loop_name, "propagate", timeout)
    with connect(child.port) as sock:
        sock.recv(1)  # served; from now on, never read
        child.signal(signal.SIGTERM)
        assert child.readline() == "SIGTERM: draining the servers (timeout 60.0 s)"
        child.signal(signal.SIGINT)
        lines, err = child.finish()
        try:
            received = len(read_until_eof(sock, pause=0))
        except ConnectionResetError:
            received = -1
    assert child.proc.returncode == 0, (lines, err)
    assert "SIGINT: aborting the connections still open" in lines
    report = child.report()
    assert (report["drained"], report["aborted"], report["bytes_flushed"]) == (0, 1, 0)
    assert report["duration"] < timeout
    assert time.monotonic() - started < timeout
    assert received < PAYLOAD_SIZE
    assert lines[-1] == "run returned None"


def test_without_shutdown_signals_ctrl_c_is_asyncio_s(loop_name: str) -> None:
    child = Child(loop_name, "plain", RUN_TIMEOUT)
    child.signal(signal.SIGINT)
    lines, err = child.finish()
    assert child.proc.returncode == 0, (lines, err)
    assert lines[-1] == "KeyboardInterrupt"
    assert not any("DrainReport" in line for line in lines)
