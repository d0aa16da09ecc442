"""Telling a loop when one of its child processes has exited.

One ``ChildWatcher`` per loop, made at the loop's first subprocess. It does
not use asyncio's child watchers: those moved between CPython versions
(the policy's, deprecated in 3.12, then the loop's private ``_watcher`` in
3.14), and a policy watcher installed by a program (FastChildWatcher) may
reap every child of the process.

Two ways to learn of the exit, picked once per watcher:

- Linux 5.3+: a pidfd (``os.pidfd_open``) watched with the loop's
  add_reader. It becomes readable when the child exits; the reader then
  reaps with ``waitpid(pid, WNOHANG)`` and reports, all on the loop
  thread. No thread, no signal handler, no other process's children
  touched.
- elsewhere (no ``pidfd_open``, or refused by a seccomp policy): a thread
  per child waits with ``waitid(..., WNOWAIT)``, which sees the exit
  without reaping, and hands the reaping to the loop thread.

Either way the child is reaped and its exit reported in one step on the
loop thread: until the transport knows the return code the pid stays a
zombie, so ``send_signal`` can never reach a recycled pid.

A program that installs asyncio's FastChildWatcher (3.11-3.13) has every
child of the process reaped by its SIGCHLD handler. The pidfd reader still
reaps first: it runs in the turn that sees the exit, the signal handler
only in the next (signals.py schedules it with call_soon). The thread can
lose that race; the transport then reports 255, as asyncio does for a
child reaped elsewhere.

A loop closed with children still running stops watching them and leaves
each to a thread that reaps it when it exits, so none is left a zombie and
no pidfd is leaked; their exit is reported to nobody.
"""

from __future__ import annotations

import errno
import functools
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

#: Called on the loop thread with the child's return code (asyncio's
#: convention: ``-N`` for a signal), or None when its exit status was
#: already taken by someone else's waitpid.
OnExit = Callable[[int | None], None]

#: waitid() codes of a child that stopped rather than exited.
_STOPPED_CODES = tuple(
    getattr(os, name) for name in ("CLD_STOPPED", "CLD_TRAPPED") if hasattr(os, name)
)


@functools.cache
def pidfd_usable() -> bool:
    """Whether this process can get pidfds (tests replace this function)."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError as exc:
        # Out of fds is passing; ENOSYS (old kernel) or EPERM (seccomp) is not.
        return exc.errno in (errno.EMFILE, errno.ENFILE)
    return True


def _returncode(status: int) -> int:
    try:
        return os.waitstatus_to_exitcode(status)
    except ValueError:
        # Neither exited nor killed (cannot happen after WEXITED): keep the
        # raw status rather than lose it.
        return status


def _reap_unreported(pid: int) -> None:
    """Reap a child whose loop is gone, whenever it exits (blocking)."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # someone else reaped it


class ChildWatcher:
    """The exits of one loop's children."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._use_pidfd = pidfd_usable()
        # pid -> pidfd, for children watched through a pidfd.
        self._pidfds: dict[int, int] = {}
        # Children whose thread saw the exit and queued the reaping on the
        # loop: if the loop closes first, that callback never runs.
        self._queued: set[int] = set()
        # Guards _closed and _queued against the waiting threads.
        self._lock = threading.Lock()
        self._closed = False

    def watch(self, pid: int, on_exit: OnExit) -> None:
        """Call ``on_exit`` on the loop thread once child ``pid`` has exited."""
        if self._use_pidfd:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                # Out of fds now, say: a thread can still wait for it.
                pass
            else:
                self._pidfds[pid] = pidfd
                self._loop.add_reader(pidfd, self._pidfd_ready, pid, on_exit)
                return
        self._wait_in_thread(pid, on_exit)

    def close(self) -> None:
        """The loop is closing: stop reporting, leave the children to be reaped."""
        with self._lock:
            self._closed = True
            queued, self._queued = self._queued, set()
        pidfds, self._pidfds = self._pidfds, {}
        for pid, pidfd in pidfds.items():
            if not self._loop.is_closed():
                self._loop.remove_reader(pidfd)
            os.close(pidfd)
        # Children that waiting threads watch are reaped by those threads.
        for pid in (*pidfds, *queued):
            self._thread(_reap_unreported, pid).start()

    def _pidfd_ready(self, pid: int, on_exit: OnExit) -> None:
        pidfd = self._pidfds.pop(pid)
        self._loop.remove_reader(pidfd)
        os.close(pidfd)
        self._reap(pid, on_exit)

    def _reap(self, pid: int, on_exit: OnExit) -> None:
        """On the loop thread, once the child is known to have exited."""
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            on_exit(None)
            return
        if reaped == 0:
            # Not exited after all (a platform whose waitid reports stopped
            # children): never block the loop, wait again in a thread.
            self._wait_in_thread(pid, on_exit)
            return
        on_exit(_returncode(status))

    def _wait_in_thread(self, pid: int, on_exit: OnExit) -> None:
        self._thread(self._thread_wait, pid, on_exit).start()

    def _thread(self, target: Callable[..., None], *args: object) -> threading.Thread:
        # Daemon: a child that outlives the program must not keep it alive.
        name = f"rloop-waitpid-{args[0]}"
        return threading.Thread(target=target, args=args, name=name, daemon=True)

    def _thread_wait(self, pid: int, on_exit: OnExit) -> None:
        """In a thread of its own: wait for the exit, have the loop reap."""
        if not hasattr(os, "waitid"):
            # No way to wait without reaping: reap here and report the
            # code, which leaves a short window in which the pid is free
            # but the transport does not know it yet.
            try:
                _, status = os.waitpid(pid, 0)
                returncode: int | None = _returncode(status)
            except ChildProcessError:
                returncode = None
            with self._lock:
                if not self._closed:
                    try:
                        self._loop.call_soon_threadsafe(on_exit, returncode)
                    except RuntimeError:
                        pass  # the loop closed meanwhile
            return
        try:
            while True:
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
                if info is None or info.si_code not in _STOPPED_CODES:
                    break
                # Some platforms (macOS) report a stopped child to WEXITED:
                # take that report so that the next wait is for the exit.
                os.waitid(os.P_PID, pid, os.WSTOPPED | os.WNOHANG)
        except ChildProcessError:
            pass  # already reaped elsewhere: the loop's waitpid will say so
        with self._lock:
            if not self._closed:
                try:
                    self._loop.call_soon_threadsafe(self._reap_queued, pid, on_exit)
                except RuntimeError:
                    pass  # the loop closed meanwhile
                else:
                    self._queued.add(pid)
                    return
        _reap_unreported(pid)

    def _reap_queued(self, pid: int, on_exit: OnExit) -> None:
        with self._lock:
            self._queued.discard(pid)
        self._reap(pid, on_exit)
