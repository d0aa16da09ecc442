//! The wait of a native sock_* coroutine (sock_coro.rs): the reader or
//! writer it added when its socket call would have blocked.
//!
//! asyncio removes it in a done-callback on the future (a
//! `functools.partial` of `_sock_read_done`/`_sock_write_done`), a Python
//! call per wait. Here the coroutine removes it itself when it resumes,
//! or ends early.

use std::os::fd::RawFd;

use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{PyTraverseError, PyVisit};

use crate::event_loop::EventLoop;
use crate::handles::Handle;
use crate::io_watch::{Seen, Side};

/// A reader or writer to remove once the wait is over.
pub(crate) struct FdWait {
    fd: RawFd,
    side: Side,
    handle: Py<Handle>,
}

impl FdWait {
    pub(crate) fn new(fd: RawFd, side: Side, handle: Py<Handle>) -> Self {
        FdWait { fd, side, handle }
    }

    /// Removes the watcher, unless another add_reader/add_writer on the fd
    /// replaced it since (as asyncio's done-callbacks check).
    pub(crate) fn stop(&self, py: Python<'_>, event_loop: &EventLoop) -> PyResult<()> {
        if self.handle.get().is_cancelled() {
            return Ok(());
        }
        let fd = self.fd.into_pyobject(py)?.into_any();
        event_loop.remove_watcher(py, self.side, &fd).map(drop)
    }

    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.handle)
    }
}

/// Starts the wait of a socket call that would have blocked just now: a
/// future, and the reader or writer (`watcher`, made of the future and
/// the socket) that resolves it, added to the loop with that hint, and
/// whether the socket is the one that last waited on its fd (the
/// scheduler may then spare a system call: src/sock_files.rs). A socket
/// is remembered for next time unless its call waits once in its life
/// (`once`: a connect), which would keep a weak reference per client
/// connection for nothing.
pub(crate) fn wait_on<'py>(
    lp: &Bound<'py, EventLoop>,
    sock: Bound<'py, PyAny>,
    side: Side,
    once: bool,
    watcher: impl FnOnce(Py<PyAny>, Py<PyAny>) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<(Py<PyAny>, FdWait)> {
    let py = lp.py();
    let fut = EventLoop::create_future(lp)?;
    let fileno = sock.call_method0(intern!(py, "fileno"))?;
    EventLoop::_ensure_fd_no_transport(lp, fileno.clone())?;
    let fd = EventLoop::fd_of(&fileno)?;
    let this = lp.get();
    let same_file = this.sock_files.same_socket(fd, &sock);
    let seen = if same_file {
        Seen::WouldBlockSameFile
    } else {
        Seen::WouldBlock
    };
    let watcher = watcher(fut.clone_ref(py), sock.clone().unbind())?;
    let args = PyTuple::empty(py);
    let handle = this.add_watcher(py, side, &fileno, watcher, args, None, seen)?;
    if !same_file && !once {
        this.sock_files.remember(fd, &sock);
    }
    Ok((fut, FdWait::new(fd, side, handle)))
}

/// What a reader or writer of a waiting call does when its fd is ready, as
/// asyncio's `_sock_recv` and friends do: nothing if the future is done
/// already (cancelled); else the socket call `attempt`, whose result (if
/// it made one: None is "would block", the readiness went stale) or
/// exception resolves the future. SystemExit and KeyboardInterrupt go up.
pub(crate) fn resolve_when_ready(
    fut: &Bound<'_, PyAny>,
    attempt: impl FnOnce() -> PyResult<Option<Py<PyAny>>>,
) -> PyResult<()> {
    let py = fut.py();
    if fut.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    match attempt() {
        Ok(Some(result)) => fut
            .call_method1(intern!(py, "set_result"), (result,))
            .map(drop),
        Ok(None) => Ok(()),
        Err(e) if e.is_instance_of::<PySystemExit>(py) => Err(e),
        Err(e) if e.is_instance_of::<PyKeyboardInterrupt>(py) => Err(e),
        Err(e) => fut
            .call_method1(intern!(py, "set_exception"), (e.into_value(py),))
            .map(drop),
    }
}

/// `<what of sock>`, for a reader's or writer's repr.
pub(crate) fn watcher_repr(what: &str, sock: &Bound<'_, PyAny>) -> String {
    let sock = sock
        .repr()
        .map_or_else(|_| "?".to_string(), |r| r.to_string());
    format!("<{what} of {sock}>")
}
