//! asyncio's `loop.sock_recv`, the socket side (the coroutine is in
//! sock_coro.rs).
//!
//! asyncio tries `sock.recv` and, when it would block, catches the
//! BlockingIOError (built with its strerror text every time), then waits
//! with a reader callback and a `functools.partial` done-callback that
//! removes the reader, both Python functions. Here the first try reports
//! "would block" as `None`, the reader is a native object, and the
//! coroutine removes it itself when its wait ends. What the caller
//! sees is asyncio's: the same results, exceptions and reader bookkeeping.

use std::os::fd::RawFd;

use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit, PyValueError};
use pyo3::ffi::compat;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::{PyTraverseError, PyVisit};

use crate::errors::os_error;
use crate::event_loop::EventLoop;
use crate::handles::Handle;
use crate::io_watch::Side;

/// The socket's fd; a closed socket (fileno -1) fails as its recv would.
pub(crate) fn socket_fd(sock: &Bound<'_, PyAny>) -> PyResult<RawFd> {
    let fd: i64 = sock.call_method0(intern!(sock.py(), "fileno"))?.extract()?;
    RawFd::try_from(fd)
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| os_error(std::io::Error::from_raw_os_error(libc::EBADF)))
}

/// One `recv(2)` of up to `n` bytes that never blocks: the bytes, or None
/// if none are there yet. Errors are the OSError `socket.recv` raises; an
/// interrupted call is retried after Python's signal handlers ran (PEP 475).
pub(crate) fn recv_now(
    py: Python<'_>,
    sock: &Bound<'_, PyAny>,
    n: isize,
) -> PyResult<Option<Py<PyBytes>>> {
    if n < 0 {
        return Err(PyValueError::new_err("negative buffersize in recv"));
    }
    let fd = socket_fd(sock)?;
    if n == 0 {
        // As socket.recv(0): empty bytes at once, without a system call.
        return Ok(Some(PyBytes::new(py, b"").unbind()));
    }
    // SAFETY: a bytes writer of `n` uninitialized bytes, owned here alone
    // until it is finished or discarded: recv fills its first `got` bytes
    // and FinishWithSize trims the bytes object to them (as CPython's own
    // socket.recv does). PyBytesWriter is the public API for this from 3.15
    // on; pyo3's compat shim provides it on older versions. Every path
    // either finishes or discards the writer.
    unsafe {
        let writer = compat::PyBytesWriter_Create(n);
        if writer.is_null() {
            return Err(PyErr::fetch(py));
        }
        let got = loop {
            let buf = compat::PyBytesWriter_GetData(writer);
            let got = libc::recv(fd, buf, n as usize, libc::MSG_DONTWAIT);
            if got >= 0 {
                break got;
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => {
                    if let Err(e) = py.check_signals() {
                        compat::PyBytesWriter_Discard(writer);
                        return Err(e);
                    }
                }
                Some(libc::EAGAIN) => {
                    compat::PyBytesWriter_Discard(writer);
                    return Ok(None);
                }
                _ => {
                    compat::PyBytesWriter_Discard(writer);
                    return Err(os_error(err));
                }
            }
        };
        let obj = compat::PyBytesWriter_FinishWithSize(writer, got);
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        Ok(Some(
            Bound::from_owned_ptr(py, obj)
                .cast_into_unchecked()
                .unbind(),
        ))
    }
}

/// A sock_recv waiting for its socket to be readable: the reader to
/// remove once the wait is over (the coroutine does it when it resumes,
/// or ends early, instead of a done-callback on the future, which would
/// cost a callback per message).
pub(crate) struct RecvWait {
    fd: RawFd,
    handle: Py<Handle>,
}

impl RecvWait {
    /// Removes the reader, unless another add_reader on the fd replaced it
    /// since (asyncio's `_sock_read_done`).
    pub(crate) fn stop(&self, py: Python<'_>, event_loop: &EventLoop) -> PyResult<()> {
        if self.handle.get().is_cancelled() {
            return Ok(());
        }
        let fd = self.fd.into_pyobject(py)?.into_any();
        event_loop.remove_watcher(py, Side::Read, &fd).map(drop)
    }

    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.handle)
    }
}

/// The waiting half of sock_recv: a future that the next readable event
/// resolves with sock.recv(n), and the reader that does it. Called right
/// after `recv_now` found nothing to read, which the scheduler is told.
pub(crate) fn recv_later(
    slf: &Bound<'_, EventLoop>,
    sock: Bound<'_, PyAny>,
    n: isize,
) -> PyResult<(Py<PyAny>, RecvWait)> {
    let py = slf.py();
    let this = slf.get();
    let fut = EventLoop::create_future(slf)?;
    let fileno = sock.call_method0(intern!(py, "fileno"))?;
    EventLoop::_ensure_fd_no_transport(slf, fileno.clone())?;
    let fd = EventLoop::fd_of(&fileno)?;
    let reader = Bound::new(
        py,
        RecvWhenReadable {
            fut: fut.clone_ref(py),
            sock: sock.unbind(),
            n,
        },
    )?;
    // Its recv said EAGAIN just now (recv_now).
    let handle = this.add_watcher_when_idle(py, Side::Read, &fileno, reader.into_any())?;
    Ok((fut, RecvWait { fd, handle }))
}

/// The reader of one waiting sock_recv.
#[pyclass(frozen, module = "rloop._rloop")]
struct RecvWhenReadable {
    fut: Py<PyAny>,
    sock: Py<PyAny>,
    n: isize,
}

#[pymethods]
impl RecvWhenReadable {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        let fut = self.fut.bind(py);
        if fut.call_method0(intern!(py, "done"))?.is_truthy()? {
            return Ok(());
        }
        match recv_now(py, self.sock.bind(py), self.n) {
            Ok(Some(data)) => fut
                .call_method1(intern!(py, "set_result"), (data,))
                .map(drop),
            // Readiness went stale (another reader took the data).
            Ok(None) => Ok(()),
            Err(e) if e.is_instance_of::<PySystemExit>(py) => Err(e),
            Err(e) if e.is_instance_of::<PyKeyboardInterrupt>(py) => Err(e),
            Err(e) => fut
                .call_method1(intern!(py, "set_exception"), (e.into_value(py),))
                .map(drop),
        }
    }

    /// The future holds this reader through its done-callback: a wait
    /// abandoned with its loop is a cycle only the GC can free.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.fut)?;
        visit.call(&self.sock)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let sock = self
            .sock
            .bind(py)
            .repr()
            .map_or_else(|_| "?".to_string(), |r| r.to_string());
        format!("<sock_recv reader of {sock}>")
    }
}
