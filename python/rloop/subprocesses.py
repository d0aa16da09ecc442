"""subprocess_exec and subprocess_shell (asyncio.create_subprocess_exec and
create_subprocess_shell run on them), and the subprocess transport.

What is rloop's own: starting the child (subprocess.Popen) and learning of
its exit (child_watcher.py, one watcher per loop), which is where asyncio's
Unix loop changed between versions (the policy's child watchers before
3.14, the loop's private ``_watcher`` from 3.14).

What is borrowed, because it has not moved from 3.11 to 3.15:

- ``subprocess_exec``/``subprocess_shell`` (argument checks with asyncio's
  messages, then ``_make_subprocess_transport``): the same code in every
  version.
- the transport's base, ``base_subprocess.BaseSubprocessTransport``: its
  contract with a subclass (``_start`` makes ``self._proc``, the loop calls
  ``_process_exited(returncode)``, ``_wait()``, the constructor's
  arguments) is the same in every version, and it reaches the loop only
  through public methods (connect_read_pipe/connect_write_pipe, which are
  pipes.py's, call_soon, create_task, create_future, get_debug,
  is_closed). What it does has changed, in step with stock asyncio (3.14:
  ``wait()`` returns at the exit even while a pipe is held open by a
  grandchild): inheriting it keeps rloop doing what the running Python's
  asyncio does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from asyncio import base_events, base_subprocess
from asyncio.log import logger
from typing import Any

from .borrow import borrow, documented
from .child_watcher import ChildWatcher


class SubprocessTransport(base_subprocess.BaseSubprocessTransport):
    """asyncio's subprocess transport over a subprocess.Popen child."""

    _proc: subprocess.Popen[bytes] | None
    _pid: int | None
    _returncode: int | None

    def _start(
        self,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        **kwargs: Any,
    ) -> None:
        # Pipes are bytes: the pipe transports (pipes.py) take them over.
        self._proc = subprocess.Popen(
            args,
            shell=shell,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            universal_newlines=False,
            bufsize=bufsize,
            **kwargs,
        )

    # 3.14's signalling, on every version. 3.11's asks Popen, whose poll()
    # may reap the child before the watcher does (the exit status is then
    # Popen's alone); 3.12/3.13 signal the pid even after the exit is
    # known, when it may have been recycled. Observably the same otherwise:
    # a signal to a child that exited is dropped, and one to a transport
    # that has finished raises ProcessLookupError.
    def send_signal(self, signal: int) -> None:
        """Send the signal `signal` to the child, unless it has exited."""
        self._check_proc()
        assert self._proc is not None
        if self._returncode is not None or self._proc.returncode is not None:
            # Exited, and reaped (by the watcher, or by close()'s poll()).
            return
        try:
            # Not reaped yet (the watcher reaps and sets _returncode in one
            # step, see child_watcher.py): the pid is still the child's.
            os.kill(self._proc.pid, signal)
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        """Ask the child to stop (SIGTERM)."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the child (SIGKILL)."""
        self.send_signal(signal.SIGKILL)

    def _child_exited(self, returncode: int | None) -> None:
        """The watcher's report, on the loop thread."""
        if returncode is None:
            # Someone else's waitpid took the exit status. If that was our
            # own Popen (close() polls it), it has the code.
            proc = self._proc
            if proc is not None and proc.returncode is not None:
                returncode = proc.returncode
            else:
                logger.warning(
                    "child process %s was reaped elsewhere, its exit status is lost: "
                    "reporting return code 255",
                    self._pid,
                )
                returncode = 255
        self._process_exited(returncode)


class SubprocessMixin:
    subprocess_exec = documented(
        base_events.BaseEventLoop.subprocess_exec,
        """Run the program `program` with the arguments `args` in a child process.

        Return (transport, protocol): a SubprocessTransport, and the protocol
        made by protocol_factory(), which gets the child's output and exit.
        stdin, stdout and stderr are as subprocess.Popen's (default: pipes);
        the pipes carry bytes.""",
    )
    subprocess_shell = documented(
        base_events.BaseEventLoop.subprocess_shell,
        """Run the shell command `cmd` in a child process, as subprocess_exec()
        runs a program.""",
    )
    locals().update(borrow(base_events.BaseEventLoop, ["_log_subprocess"]))

    _child_watcher: ChildWatcher | None

    def __init__(self) -> None:
        self._child_watcher = None  # made at the first subprocess

    async def _make_subprocess_transport(
        self,
        protocol: asyncio.SubprocessProtocol,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SubprocessTransport:
        loop: Any = self
        waiter = loop.create_future()
        # Starts the child (a Popen error propagates from here, with the
        # transport closed) and the connection of its pipes.
        transport = SubprocessTransport(
            loop,
            protocol,
            args,
            shell,
            stdin,
            stdout,
            stderr,
            bufsize,
            waiter=waiter,
            extra=extra,
            **kwargs,
        )
        if self._child_watcher is None:
            self._child_watcher = ChildWatcher(loop)
        pid = transport.get_pid()
        assert pid is not None  # the child was started
        self._child_watcher.watch(pid, transport._child_exited)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            # The pipes could not be connected, or we were cancelled: kill
            # the child and reap it before giving up. Shielded, so that a
            # second cancellation does not leave it unreaped.
            transport.close()
            await asyncio.shield(transport._wait())
            raise
        return transport

    def _close_child_watcher(self) -> None:
        """At loop close: children still running are no longer reported."""
        if self._child_watcher is not None:
            self._child_watcher.close()
            self._child_watcher = None
