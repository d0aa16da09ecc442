//! The read path of a transport: a readiness report becomes one read by
//! the actor and a `data_received` (or, for a BufferedProtocol,
//! `get_buffer` + `buffer_updated` straight into the protocol's memory),
//! and the peer's EOF becomes `eof_received` and, unless it returns true,
//! a close, as asyncio's selector transport does.

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::SocketTransport;
use crate::context;
use crate::errors::escapes_loop;
use crate::py_imports;
use crate::reactor::{ReadCount, ReadResult};
use crate::streams;

impl SocketTransport {
    /// A readiness report for this connection (run from the ready queue).
    pub fn on_ready(slf: &Bound<'_, Self>, readable: bool, writable: bool) -> PyResult<()> {
        let id = slf.get().id;
        if writable && !slf.get().is_lost() {
            Self::act(slf, |r, out| r.on_writable(id, out))?;
        }
        if readable && !slf.get().is_lost() {
            let _entered = context::enter(slf.get().context.bind(slf.py()))?;
            if slf.get().st.lock().buffered {
                Self::read_buffered(slf)?;
            } else {
                Self::read_ready(slf)?;
            }
        }
        Ok(())
    }

    fn read_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let id = slf.get().id;
        let Some(protocol) = slf.get().protocol(py) else {
            // Read anyway: what a protocol-less transport reads is dropped.
            return Self::act(slf, |r, out| {
                r.read(id, out);
            });
        };
        // A stream's reader is fed here, without data_received (streams.rs).
        let feed = match streams::target(&protocol) {
            Ok(feed) => feed,
            Err(e) => return Self::fatal_on_error(slf, Err(e), "data_received"),
        };
        enum Got<'py> {
            Data(Bound<'py, PyBytes>),
            Fed(PyResult<()>),
            Eof,
            Nothing,
        }
        let max = feed.as_ref().map_or(usize::MAX, streams::Feed::read_max);
        let got = Self::act(slf, |r, out| match r.read_at_most(id, max, out) {
            ReadResult::Data(d) => match &feed {
                Some(feed) => Got::Fed(feed.extend(d)),
                None => Got::Data(PyBytes::new(py, d)),
            },
            ReadResult::Eof => Got::Eof,
            ReadResult::WouldBlock | ReadResult::Closed => Got::Nothing,
        })?;
        match got {
            Got::Data(data) => {
                let called = protocol.call_method1(intern!(py, "data_received"), (data,));
                Self::fatal_on_error(slf, called, "data_received")
            }
            Got::Fed(extended) => {
                // Fed only when there is a feed.
                let fed = extended.and_then(|()| feed.map_or(Ok(()), streams::Feed::wake));
                Self::fatal_on_error(slf, fed.map(|()| protocol), "data_received")
            }
            Got::Eof => Self::on_eof(slf),
            Got::Nothing => Ok(()),
        }
    }

    /// BufferedProtocol: read straight into the protocol's buffer.
    fn read_buffered(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let id = slf.get().id;
        let Some(protocol) = slf.get().protocol(py) else {
            return Ok(());
        };
        let buf = match protocol
            .call_method1(intern!(py, "get_buffer"), (-1,))
            .and_then(|b| pyo3::buffer::PyBuffer::<u8>::get(&b))
        {
            Ok(buf) if buf.readonly() => Err(PyTypeError::new_err(
                "get_buffer() returned a read-only buffer",
            )),
            Ok(buf) if buf.len_bytes() == 0 => Err(PyRuntimeError::new_err(
                "get_buffer() returned an empty buffer",
            )),
            Ok(buf) if !buf.is_c_contiguous() => Err(PyTypeError::new_err(
                "get_buffer() returned a non-contiguous buffer",
            )),
            other => other,
        };
        let buf = match buf {
            Ok(b) => b,
            Err(e) if escapes_loop(py, &e) => return Err(e),
            Err(e) => {
                return Self::fatal_error(slf, e, "Fatal error: protocol.get_buffer() call failed.")
            }
        };
        let count = Self::act(slf, |r, out| {
            // SAFETY: `buf` is a writable, C-contiguous buffer we hold a
            // view of (PyBuffer keeps the exporter alive and its memory
            // pinned), and no Python code runs while this slice is used.
            let slice = unsafe {
                std::slice::from_raw_parts_mut(buf.buf_ptr() as *mut u8, buf.len_bytes())
            };
            r.read_into(id, slice, out)
        })?;
        drop(buf);
        match count {
            ReadCount::Data(n) => {
                let called = protocol.call_method1(intern!(py, "buffer_updated"), (n,));
                Self::fatal_on_error(slf, called, "buffer_updated")
            }
            ReadCount::Eof => Self::on_eof(slf),
            ReadCount::WouldBlock | ReadCount::Closed => Ok(()),
        }
    }

    /// The peer half-closed. The transport stays open (not reading) only
    /// if eof_received() returns a true value.
    fn on_eof(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let Some(protocol) = slf.get().protocol(py) else {
            return Ok(());
        };
        if slf.get().lp.get().is_debug() {
            py_imports::asyncio_logger(py)?
                .call_method1("debug", ("%r received EOF", Self::face(slf)))?;
        }
        match protocol.call_method0(intern!(py, "eof_received")) {
            Ok(keep_open) => {
                if !keep_open.is_truthy()? {
                    Self::close_impl(slf)?;
                }
                Ok(())
            }
            Err(e) if escapes_loop(py, &e) => Err(e),
            Err(e) => {
                Self::fatal_error(slf, e, "Fatal error: protocol.eof_received() call failed.")
            }
        }
    }
}
