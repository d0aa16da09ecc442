//! The incoming side of a TLS connection: ciphertext from the socket
//! transport (as the `BufferedProtocol` that `SSLProtocol` is) becomes
//! plaintext for the application's `data_received`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyMemoryView, PySlice, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use super::{control_ssl_reading, fatal_on_error, names, process_outgoing, Parts, Slot};
use crate::streams;

/// The base rloop's `SSLProtocol` puts before asyncio's: its socket-side
/// reading methods, and what they keep of the protocol (see the module
/// docs of `tls`).
#[pyclass(module = "rloop._rloop", name = "SSLRecords", subclass, frozen)]
pub struct SslRecords {
    parts: OnceLock<Parts>,
    /// A read filled the buffer: the next "any size" request gets it
    /// doubled.
    filled: AtomicBool,
}

impl SslRecords {
    /// The protocol's parts, found at the first call (after asyncio's
    /// `__init__` has made them).
    pub(super) fn parts<'a>(slf: &'a Bound<'_, Self>) -> PyResult<&'a Parts> {
        let cell = &slf.get().parts;
        if cell.get().is_none() {
            let parts = Parts::new(slf.as_any())?;
            // Only the GIL's holder sets it: nothing can have come first.
            let _ = cell.set(parts);
        }
        cell.get()
            .ok_or_else(|| PyRuntimeError::new_err("SSLProtocol parts unset"))
    }
}

#[pymethods]
impl SslRecords {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        SslRecords {
            parts: OnceLock::new(),
            filled: AtomicBool::new(false),
        }
    }

    /// asyncio's: the protocol's buffer, grown to what is asked (up to
    /// `max_size`). For "any size" (0 or less) asyncio grows it to
    /// `max_size` at once; here it starts at one TLS record (tls.py) and
    /// doubles, up to `max_size`, after a read that filled it: a chatty
    /// connection reads a record at a time, a bulk one soon as much per
    /// call as asyncio's. The buffer is a window on the loop's, which its
    /// TLS connections share (tls.py): growing it only widens the window.
    fn get_buffer<'py>(slf: &Bound<'py, Self>, n: isize) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let me = slf.as_any();
        let parts = Self::parts(slf)?;
        let max: isize = parts.get(me, Slot::MaxSize)?.extract()?;
        let view = parts.get(me, Slot::SslBufferView)?;
        let have = view.len()? as isize;
        let this = slf.get();
        let want = if n > max {
            max
        } else if n > 0 {
            n
        } else if this.filled.swap(false, Ordering::Relaxed) {
            (have * 2).min(max)
        } else {
            have
        };
        if have >= want {
            return Ok(view);
        }
        let buffer = parts.get(me, Slot::SslBuffer)?;
        if (buffer.len()? as isize) < want {
            // asyncio's method makes a bigger buffer, the connection's own.
            return names(py)?.stock_get_buffer.bind(py).call1((me, want));
        }
        let wider = PyMemoryView::from(&buffer)?.get_item(PySlice::new(py, 0, want, 1))?;
        parts.set(me, Slot::SslBufferView, &wider)?;
        Ok(wider)
    }

    /// `nbytes` of ciphertext are in the buffer: into the incoming BIO,
    /// then on with the state the connection is in.
    fn buffer_updated(slf: &Bound<'_, Self>, nbytes: usize) -> PyResult<()> {
        let py = slf.py();
        let me = slf.as_any();
        let parts = Self::parts(slf)?;
        let view = parts.get(me, Slot::SslBufferView)?;
        // The view get_buffer handed out (asyncio's, when it grew it, is
        // the protocol's view since).
        if nbytes >= view.len()? {
            slf.get().filled.store(true, Ordering::Relaxed);
        }
        let filled = view.get_item(PySlice::new(py, 0, nbytes as isize, 1))?;
        parts.incoming_write.bind(py).call1((filled,))?;
        let names = names(py)?;
        let state = parts.get(me, Slot::State)?;
        if state.is(&names.wrapped) {
            let result = do_read(me, parts, &view);
            fatal_on_error(me, result)
        } else if state.is(&names.do_handshake) {
            me.call_method0(intern!(py, "_do_handshake")).map(drop)
        } else if state.is(&names.flushing) {
            me.call_method0(intern!(py, "_do_flush")).map(drop)
        } else if state.is(&names.shutdown) {
            me.call_method0(intern!(py, "_do_shutdown")).map(drop)
        } else {
            Ok(())
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(parts) = self.parts.get() {
            for held in parts.each() {
                visit.call(held)?;
            }
        }
        Ok(())
    }
}

/// asyncio's `_do_read` in the `WRAPPED` state.
fn do_read(proto: &Bound<'_, PyAny>, parts: &Parts, view: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = proto.py();
    if !parts.flag(proto, Slot::AppReadingPaused)? {
        if parts.flag(proto, Slot::AppProtocolIsBuffer)? {
            proto.call_method0(intern!(py, "_do_read__buffered"))?;
        } else {
            read_copied(proto, parts, view)?;
        }
        if parts.flag(proto, Slot::WriteBacklog)? {
            proto.call_method0(intern!(py, "_do_write"))?;
        } else {
            process_outgoing(proto, parts)?;
        }
    }
    control_ssl_reading(proto, parts)
}

/// What asyncio's `_do_read__copied` does: all the plaintext there is, in
/// one `data_received`; a `close_notify` then starts the shutdown.
///
/// The plaintext is decrypted into the protocol's own buffer (its
/// ciphertext is already in the BIO), record after record, each read
/// going on where the last stopped, and copied out once, at its size:
/// into the reader's buffer for a plain stream (as its `feed_data`
/// would), else into the one `bytes` given to `data_received`. Only
/// plaintext that outgrows the buffer is set aside on the way.
fn read_copied(proto: &Bound<'_, PyAny>, parts: &Parts, view: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = proto.py();
    let names = names(py)?;
    let room = view.len()?;
    let buffer = PyBuffer::<u8>::get(view)?;
    // Plaintext at the start of the buffer, and what was set aside before.
    let mut filled = 0usize;
    let mut spilled: Vec<u8> = Vec::new();
    let mut close_notify = false;
    let mut reads = 0usize;
    loop {
        if reads > 0 && nothing_left(py, parts)? {
            break;
        }
        reads += 1;
        if filled == room {
            spilled.extend_from_slice(plaintext(&buffer, filled));
            filled = 0;
        }
        let into = if filled == 0 {
            view.clone()
        } else {
            view.get_item(PySlice::new(py, filled as isize, room as isize, 1))?
        };
        let count: usize = match parts.tls_read.bind(py).call1((room - filled, into)) {
            Ok(count) => count.extract()?,
            Err(e) if e.matches(py, names.again.bind(py))? => break,
            Err(e) => return Err(e),
        };
        if count == 0 {
            close_notify = true;
            break;
        }
        filled += count.min(room - filled);
    }
    if filled > 0 || !spilled.is_empty() {
        let app = parts.get(proto, Slot::AppProtocol)?;
        match streams::target(&app)? {
            Some(feed) => {
                let copied = feed
                    .extend(&spilled)
                    .and_then(|()| feed.extend(plaintext(&buffer, filled)));
                drop(buffer);
                copied.and_then(|()| feed.wake())?;
            }
            None => {
                let data = if spilled.is_empty() {
                    PyBytes::new(py, plaintext(&buffer, filled))
                } else {
                    spilled.extend_from_slice(plaintext(&buffer, filled));
                    PyBytes::new(py, &spilled)
                };
                drop(buffer);
                app.call_method1(intern!(py, "data_received"), (data,))?;
            }
        }
    }
    if close_notify {
        proto.call_method0(intern!(py, "_call_eof_received"))?;
        proto.call_method0(intern!(py, "_start_shutdown"))?;
    }
    Ok(())
}

/// The first `len` bytes of the protocol's buffer.
fn plaintext(buffer: &PyBuffer<u8>, len: usize) -> &[u8] {
    // SAFETY: `buffer` holds an export of the writable, contiguous memory
    // behind the protocol's buffer view (at least `len` bytes: the reads
    // wrote them), which keeps it alive and in place while the slice,
    // tied to `buffer`'s borrow, is used; the callers run no Python code
    // meanwhile (`Feed::extend` runs none).
    unsafe { std::slice::from_raw_parts(buffer.buf_ptr() as *const u8, len) }
}

/// True when a read could only raise `SSLWantReadError`: no decrypted byte
/// is waiting in the `SSLObject` and no ciphertext in the BIO.
fn nothing_left(py: Python<'_>, parts: &Parts) -> PyResult<bool> {
    let buffered: usize = parts.tls_pending.bind(py).call0()?.extract()?;
    if buffered > 0 {
        return Ok(false);
    }
    let unread: usize = parts
        .incoming
        .bind(py)
        .getattr(intern!(py, "pending"))?
        .extract()?;
    Ok(unread == 0)
}
