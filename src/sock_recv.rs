//! asyncio's `loop.sock_recv` and `loop.sock_recv_into`, the socket side
//! (the coroutine is in sock_coro.rs).
//!
//! asyncio tries `sock.recv` (or `recv_into`) and, when it would block,
//! catches the BlockingIOError (built with its strerror text every time),
//! then waits with a reader callback and a `functools.partial`
//! done-callback that removes the reader, both Python functions. Here the
//! first try reports "would block" as `None`, the reader is a native
//! object, and the coroutine removes it itself when its wait ends. What
//! the caller sees is asyncio's: the same results, exceptions and reader
//! bookkeeping.

use std::os::fd::RawFd;

use pyo3::exceptions::PyTypeError;
use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::ffi::compat;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::{PyTraverseError, PyVisit};

use crate::errors::os_error;
use crate::event_loop::EventLoop;
use crate::io_watch::Side;
use crate::sock_wait::{resolve_when_ready, wait_on, watcher_repr, FdWait};

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

/// The memory of a writable bytes-like object (bytearray, a writable
/// memoryview, ...), as `socket.recv_into` takes it, lent to `f`.
pub(crate) fn with_writable_buffer<R>(
    data: &Bound<'_, PyAny>,
    f: impl FnOnce(&mut [u8]) -> R,
) -> PyResult<R> {
    let py = data.py();
    let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::uninit();
    // SAFETY: as in `with_buffer`, with PyBUF_WRITABLE: the exporter
    // promises the memory may be written while the view is held; a
    // read-only object fails with TypeError and no view to release.
    unsafe {
        if ffi::PyObject_GetBuffer(data.as_ptr(), view.as_mut_ptr(), ffi::PyBUF_WRITABLE) != 0 {
            // socket.recv_into's own message for anything not writable.
            drop(PyErr::fetch(py));
            return Err(PyTypeError::new_err(format!(
                "recv_into() argument 'buffer' must be read-write bytes-like object, not {}",
                data.get_type().name()?
            )));
        }
        let mut view = view.assume_init();
        let len = usize::try_from(view.len).unwrap_or(0);
        let bytes = if len == 0 || view.buf.is_null() {
            &mut [][..]
        } else {
            std::slice::from_raw_parts_mut(view.buf.cast::<u8>(), len)
        };
        let result = f(bytes);
        ffi::PyBuffer_Release(&mut view);
        Ok(result)
    }
}

/// One `recv(2)` into `buf` that never blocks: the count, or None if
/// nothing is there yet (an empty buffer reads nothing, as recv_into).
pub(crate) fn recv_into_now(py: Python<'_>, fd: RawFd, buf: &mut [u8]) -> PyResult<Option<usize>> {
    if buf.is_empty() {
        return Ok(Some(0));
    }
    loop {
        // SAFETY: `buf` is live, writable memory of `buf.len()` bytes for
        // the whole call; a bad `fd` fails with EBADF.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n >= 0 {
            return Ok(Some(n as usize));
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => py.check_signals()?,
            Some(libc::EAGAIN) => return Ok(None),
            _ => return Err(os_error(err)),
        }
    }
}

/// What a waiting read wants: `sock_recv`'s bytes (at most `n`), or
/// `sock_recv_into`'s count read into a buffer.
pub(crate) enum Wanted {
    Bytes(isize),
    Into(Py<PyAny>),
}

/// The waiting half of sock_recv and sock_recv_into: a future that the
/// next readable event resolves with what the read gives, and the reader
/// that does it. Called right after the read found nothing, which the
/// scheduler is told.
pub(crate) fn recv_later(
    lp: &Bound<'_, EventLoop>,
    sock: Bound<'_, PyAny>,
    wanted: Wanted,
) -> PyResult<(Py<PyAny>, FdWait)> {
    wait_on(lp, sock, Side::Read, false, |fut, sock| {
        let reader = RecvWhenReadable { fut, sock, wanted };
        Ok(Bound::new(lp.py(), reader)?.into_any())
    })
}

/// The reader of one waiting sock_recv or sock_recv_into.
#[pyclass(frozen, module = "rloop._rloop")]
struct RecvWhenReadable {
    fut: Py<PyAny>,
    sock: Py<PyAny>,
    wanted: Wanted,
}

impl RecvWhenReadable {
    /// The read, as the socket method would make it: its result, or None
    /// if nothing is there.
    fn read(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let sock = self.sock.bind(py);
        match &self.wanted {
            Wanted::Bytes(n) => Ok(recv_now(py, sock, *n)?.map(Py::into_any)),
            Wanted::Into(buf) => {
                let fd = socket_fd(sock)?;
                match with_writable_buffer(buf.bind(py), |bytes| recv_into_now(py, fd, bytes))?? {
                    Some(n) => Ok(Some(n.into_pyobject(py)?.into_any().unbind())),
                    None => Ok(None),
                }
            }
        }
    }
}

#[pymethods]
impl RecvWhenReadable {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        resolve_when_ready(self.fut.bind(py), || self.read(py))
    }

    /// The future holds this reader through its done-callback: a wait
    /// abandoned with its loop is a cycle only the GC can free.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.fut)?;
        visit.call(&self.sock)?;
        if let Wanted::Into(buf) = &self.wanted {
            visit.call(buf)?;
        }
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let what = match self.wanted {
            Wanted::Bytes(_) => "sock_recv reader",
            Wanted::Into(_) => "sock_recv_into reader",
        };
        watcher_repr(what, self.sock.bind(py))
    }
}
