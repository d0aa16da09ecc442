//! asyncio's `loop.sock_sendall`, the socket side (the coroutine is in
//! sock_coro.rs).
//!
//! The first step sends what the socket takes at once. The rest waits for
//! the socket to be writable, as in asyncio, but with a native writer that
//! keeps the data (as asyncio's keeps a memoryview of it, so a bytearray
//! cannot be resized meanwhile) and where it got to, removed by the
//! coroutine when its wait ends (sock_wait.rs).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyMemoryView;
use pyo3::{PyTraverseError, PyVisit};

use crate::errors::os_error;
use crate::event_loop::EventLoop;
use crate::io_watch::Side;
use crate::sock_recv::socket_fd;
use crate::sock_wait::{resolve_when_ready, wait_on, watcher_repr, FdWait};

/// One `send(2)` that never blocks: the count sent (0 if it would block).
pub(crate) fn send_now(py: Python<'_>, fd: RawFd, data: &[u8]) -> PyResult<usize> {
    loop {
        // SAFETY: `data` is a live, initialized buffer of `data.len()`
        // bytes for the whole call; `fd` is the socket's descriptor (a
        // bad one fails with EBADF).
        let n = unsafe {
            libc::send(
                fd,
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => py.check_signals()?,
            Some(libc::EAGAIN) => return Ok(0),
            _ => return Err(os_error(err)),
        }
    }
}

/// The bytes of any bytes-like object, as `socket.send` takes them (any
/// C-contiguous buffer, whatever its item format), lent to `f`.
pub(crate) fn with_buffer<R>(data: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    let py = data.py();
    let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::uninit();
    // SAFETY: `view` is written by PyObject_GetBuffer, which on success
    // holds the exporter until the PyBuffer_Release below, and fails with
    // a Python exception set (TypeError for an object with no buffer,
    // BufferError for a non-contiguous one) without writing a view to
    // release. The slice is only used within that window.
    unsafe {
        if ffi::PyObject_GetBuffer(data.as_ptr(), view.as_mut_ptr(), ffi::PyBUF_SIMPLE) != 0 {
            return Err(PyErr::fetch(py));
        }
        let mut view = view.assume_init();
        let len = usize::try_from(view.len).unwrap_or(0);
        let bytes = if len == 0 || view.buf.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts(view.buf.cast::<u8>(), len)
        };
        let result = f(bytes);
        ffi::PyBuffer_Release(&mut view);
        Ok(result)
    }
}

/// The waiting half of sock_sendall: a future resolved once the writer
/// has sent `data` from `sent` on. Called right after a send that could
/// not take it all, which the scheduler is told.
pub(crate) fn send_later(
    lp: &Bound<'_, EventLoop>,
    sock: Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    sent: usize,
) -> PyResult<(Py<PyAny>, FdWait)> {
    let view = PyMemoryView::from(data)?.into_any().unbind();
    wait_on(lp, sock, Side::Write, false, |fut, sock| {
        let writer = SendWhenWritable {
            fut,
            sock,
            view,
            sent: AtomicUsize::new(sent),
        };
        Ok(Bound::new(lp.py(), writer)?.into_any())
    })
}

/// The writer of one waiting sock_sendall.
#[pyclass(frozen, module = "rloop._rloop")]
struct SendWhenWritable {
    fut: Py<PyAny>,
    sock: Py<PyAny>,
    /// A memoryview of the data, held for the whole wait.
    view: Py<PyAny>,
    /// How much of it is sent.
    sent: AtomicUsize,
}

impl SendWhenWritable {
    /// One send of what is left: whether everything is sent now.
    fn send(&self, py: Python<'_>) -> PyResult<bool> {
        let fd = socket_fd(self.sock.bind(py))?;
        let from = self.sent.load(Ordering::Relaxed);
        let (n, total) = with_buffer(self.view.bind(py), |bytes| {
            let rest = bytes.get(from..).unwrap_or_default();
            send_now(py, fd, rest).map(|n| (n, bytes.len()))
        })??;
        self.sent.store(from + n, Ordering::Relaxed);
        Ok(from + n >= total)
    }
}

#[pymethods]
impl SendWhenWritable {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        // Sent part (or nothing: the readiness went stale): wait on.
        resolve_when_ready(self.fut.bind(py), || Ok(self.send(py)?.then(|| py.None())))
    }

    /// The future holds this writer through the loop's writer table: a
    /// wait abandoned with its loop is a cycle only the GC can free.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.fut)?;
        visit.call(&self.sock)?;
        visit.call(&self.view)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        watcher_repr("sock_sendall writer", self.sock.bind(py))
    }
}
