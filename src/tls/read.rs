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

use super::{control_ssl_reading, fatal_on_error, names, process_outgoing, Parts};
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
        let max: isize = me.getattr(intern!(py, "max_size"))?.extract()?;
        let parts = Self::parts(slf)?;
        let view = parts.get(intern!(py, "_ssl_buffer_view"))?;
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
        let buffer = parts.get(intern!(py, "_ssl_buffer"))?;
        if (buffer.len()? as isize) < want {
            // asyncio's method makes a bigger buffer, the connection's own.
            return names(py)?.stock_get_buffer.bind(py).call1((me, want));
        }
        let wider = PyMemoryView::from(&buffer)?.get_item(PySlice::new(py, 0, want, 1))?;
        parts
            .dict
            .bind(py)
            .set_item(intern!(py, "_ssl_buffer_view"), &wider)?;
        Ok(wider)
    }

    /// `nbytes` of ciphertext are in the buffer: into the incoming BIO,
    /// then on with the state the connection is in.
    fn buffer_updated(slf: &Bound<'_, Self>, nbytes: usize) -> PyResult<()> {
        let py = slf.py();
        let me = slf.as_any();
        let parts = Self::parts(slf)?;
        let view = parts.get(intern!(py, "_ssl_buffer_view"))?;
        // The view get_buffer handed out (asyncio's, when it grew it, is
        // the protocol's view since).
        if nbytes >= view.len()? {
            slf.get().filled.store(true, Ordering::Relaxed);
        }
        let filled = view.get_item(PySlice::new(py, 0, nbytes as isize, 1))?;
        parts
            .incoming
            .bind(py)
            .call_method1(intern!(py, "write"), (filled,))?;
        let names = names(py)?;
        let state = parts.get(intern!(py, "_state"))?;
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
            visit.call(&parts.dict)?;
            visit.call(&parts.incoming)?;
            visit.call(&parts.outgoing)?;
            visit.call(&parts.tls)?;
        }
        Ok(())
    }
}

/// asyncio's `_do_read` in the `WRAPPED` state.
fn do_read(proto: &Bound<'_, PyAny>, parts: &Parts, view: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = proto.py();
    if !parts.flag(intern!(py, "_app_reading_paused"))? {
        if parts.flag(intern!(py, "_app_protocol_is_buffer"))? {
            proto.call_method0(intern!(py, "_do_read__buffered"))?;
        } else {
            read_copied(proto, parts, view)?;
        }
        if parts.flag(intern!(py, "_write_backlog"))? {
            proto.call_method0(intern!(py, "_do_write"))?;
        } else {
            process_outgoing(proto, parts)?;
        }
    }
    control_ssl_reading(proto, parts)
}

/// What asyncio's `_do_read__copied` does: all the plaintext there is, in
/// one `data_received`; a `close_notify` then starts the shutdown.
fn read_copied(proto: &Bound<'_, PyAny>, parts: &Parts, view: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = proto.py();
    let names = names(py)?;
    let tls = parts.tls.bind(py);
    let room = view.len()?;
    // The plaintext is decrypted into the protocol's own buffer (its
    // ciphertext is already in the BIO) and copied out at its size.
    let buffer = PyBuffer::<u8>::get(view)?;
    let mut first: Option<Bound<'_, PyBytes>> = None;
    let mut more: Vec<u8> = Vec::new();
    let mut close_notify = false;
    let mut reads = 0usize;
    loop {
        if reads > 0 && nothing_left(tls, parts.incoming.bind(py))? {
            break;
        }
        reads += 1;
        let count: usize = match tls.call_method1(intern!(py, "read"), (room, view)) {
            Ok(count) => count.extract()?,
            Err(e) if e.matches(py, names.again.bind(py))? => break,
            Err(e) => return Err(e),
        };
        if count == 0 {
            close_notify = true;
            break;
        }
        // SAFETY: `buffer` holds an export of the writable, contiguous
        // memory behind `view` (at least `room` >= `count` bytes, as
        // `read` wrote `count` of them), which keeps it alive and in
        // place; no Python code runs while the slice is used.
        let plain = unsafe { std::slice::from_raw_parts(buffer.buf_ptr() as *const u8, count) };
        match first.take() {
            None if more.is_empty() => first = Some(PyBytes::new(py, plain)),
            None => more.extend_from_slice(plain),
            Some(one) => {
                more.extend_from_slice(one.as_bytes());
                more.extend_from_slice(plain);
            }
        }
    }
    drop(buffer);
    let data = match first {
        Some(one) => Some(one),
        None if !more.is_empty() => Some(PyBytes::new(py, &more)),
        None => None,
    };
    if let Some(data) = data {
        streams::data_received(&parts.get(intern!(py, "_app_protocol"))?, data)?;
    }
    if close_notify {
        proto.call_method0(intern!(py, "_call_eof_received"))?;
        proto.call_method0(intern!(py, "_start_shutdown"))?;
    }
    Ok(())
}

/// True when a read could only raise `SSLWantReadError`: no decrypted byte
/// is waiting in the `SSLObject` and no ciphertext in the BIO.
fn nothing_left(tls: &Bound<'_, PyAny>, incoming: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = tls.py();
    let buffered: usize = tls.call_method0(intern!(py, "pending"))?.extract()?;
    if buffered > 0 {
        return Ok(false);
    }
    let unread: usize = incoming.getattr(intern!(py, "pending"))?.extract()?;
    Ok(unread == 0)
}
