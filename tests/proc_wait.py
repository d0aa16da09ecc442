"""Waiting until a thread sleeps in a system call (a loop's poll), read
from /proc. Imported by the tests, and its source prepended to the child
programs that need it (tests/core/test_interrupt.py)."""

import time


def wait_sleeping(pid: int, tid: int, timeout: float) -> None:
    """Until thread `tid` of process `pid` sleeps (blocked in a system call),
    or `timeout`; without /proc, at once. A process's main thread has
    tid == pid."""
    path = f"/proc/{pid}/task/{tid}/stat"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in "SD":
            return
        time.sleep(0.001)
