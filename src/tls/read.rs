//! The incoming side of a TLS connection: ciphertext from the socket
//! transport (as the `BufferedProtocol` that `SSLProtocol` is) becomes
//! plaintext for the application's `data_received`.

use pyo3::buffer::PyBuffer;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PySlice, PyTuple};

use super::{control_ssl_reading, fatal_on_error, names, process_outgoing};

/// The base rloop's `SSLProtocol` puts before asyncio's: its socket-side
/// reading methods (see the module docs of `tls`).
#[pyclass(module = "rloop._rloop", name = "SSLRecords", subclass)]
pub struct SslRecords;

#[pymethods]
impl SslRecords {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        SslRecords
    }

    /// asyncio's: the protocol's own buffer, grown to what is asked (up to
    /// `max_size`; `max_size` for 0 or less).
    fn get_buffer<'py>(slf: &Bound<'py, Self>, n: isize) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let me = slf.as_any();
        let max: isize = me.getattr(intern!(py, "max_size"))?.extract()?;
        let want = if n <= 0 || n > max { max } else { n };
        let have = me.getattr(intern!(py, "_ssl_buffer"))?.len()?;
        if (have as isize) < want {
            // Rare (only a smaller max_size at first): asyncio's method.
            let stock = py.import("asyncio.sslproto")?.getattr("SSLProtocol")?;
            return stock.getattr("get_buffer")?.call1((me, n));
        }
        me.getattr(intern!(py, "_ssl_buffer_view"))
    }

    /// `nbytes` of ciphertext are in the buffer: into the incoming BIO,
    /// then on with the state the connection is in.
    fn buffer_updated(slf: &Bound<'_, Self>, nbytes: usize) -> PyResult<()> {
        let py = slf.py();
        let me = slf.as_any();
        let view = me.getattr(intern!(py, "_ssl_buffer_view"))?;
        let incoming = me.getattr(intern!(py, "_incoming"))?;
        let filled = view.get_item(PySlice::new(py, 0, nbytes as isize, 1))?;
        incoming.call_method1(intern!(py, "write"), (filled,))?;
        let names = names(py)?;
        let state = me.getattr(intern!(py, "_state"))?;
        if state.is(&names.wrapped) {
            let result = do_read(me, &view, &incoming);
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
}

/// asyncio's `_do_read` in the `WRAPPED` state.
fn do_read(
    proto: &Bound<'_, PyAny>,
    view: &Bound<'_, PyAny>,
    incoming: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let py = proto.py();
    if !proto
        .getattr(intern!(py, "_app_reading_paused"))?
        .is_truthy()?
    {
        if proto
            .getattr(intern!(py, "_app_protocol_is_buffer"))?
            .is_truthy()?
        {
            proto.call_method0(intern!(py, "_do_read__buffered"))?;
        } else {
            read_copied(proto, view, incoming)?;
        }
        if proto.getattr(intern!(py, "_write_backlog"))?.is_truthy()? {
            proto.call_method0(intern!(py, "_do_write"))?;
        } else {
            process_outgoing(proto)?;
        }
    }
    control_ssl_reading(proto, incoming)
}

/// What asyncio's `_do_read__copied` does: all the plaintext there is, in
/// one `data_received`; a `close_notify` then starts the shutdown.
fn read_copied(
    proto: &Bound<'_, PyAny>,
    view: &Bound<'_, PyAny>,
    incoming: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let py = proto.py();
    let names = names(py)?;
    let sslobj = proto.getattr(intern!(py, "_sslobj"))?;
    let read = sslobj.getattr(intern!(py, "read"))?;
    let room = view.len()?;
    // The plaintext is decrypted into the protocol's own buffer (its
    // ciphertext is already in the BIO) and copied out at its size.
    let buffer = PyBuffer::<u8>::get(view)?;
    let mut first: Option<Bound<'_, PyBytes>> = None;
    let mut more: Vec<u8> = Vec::new();
    let mut close_notify = false;
    let mut reads = 0usize;
    loop {
        if reads > 0 && nothing_left(&sslobj, incoming)? {
            break;
        }
        reads += 1;
        let count: usize = match read.call1((room, view)) {
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
        proto
            .getattr(intern!(py, "_app_protocol"))?
            .call_method1(intern!(py, "data_received"), (data,))?;
    }
    if close_notify {
        proto.call_method0(intern!(py, "_call_eof_received"))?;
        proto.call_method0(intern!(py, "_start_shutdown"))?;
    }
    Ok(())
}

/// True when a read could only raise `SSLWantReadError`: no decrypted byte
/// is waiting in the `SSLObject` and no ciphertext in the BIO.
fn nothing_left(sslobj: &Bound<'_, PyAny>, incoming: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = sslobj.py();
    let buffered: usize = sslobj.call_method0(intern!(py, "pending"))?.extract()?;
    if buffered > 0 {
        return Ok(false);
    }
    let unread: usize = incoming.getattr(intern!(py, "pending"))?.extract()?;
    Ok(unread == 0)
}
