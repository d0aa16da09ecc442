//! asyncio's streams (`open_connection`, `start_server`, their Unix
//! twins) on rloop.
//!
//! A stream is asyncio's `StreamReaderProtocol` with a `StreamReader` and
//! a `StreamWriter` over a transport; rloop keeps all three, and their
//! state, as asyncio has them. What it changes is who runs the per-chunk
//! work of the way in: the transport feeds the reader itself instead of
//! calling three Python methods.
//!
//! asyncio delivers a chunk to a stream as three Python calls:
//! `StreamReaderProtocol.data_received` looks up its reader and calls
//! `StreamReader.feed_data`, which appends to `reader._buffer`, wakes the
//! task waiting in `read()` (`_wakeup_waiter`) and pauses the transport
//! past twice the reader's limit. When the protocol is asyncio's own
//! `StreamReaderProtocol` (not a subclass: one may override
//! `data_received`) and the reader asyncio's `StreamReader` (not a
//! subclass: one may override `feed_data`), the transport does exactly
//! that itself, on the reader's own attributes, so Python code still
//! reading the reader (`readline`, `readuntil`, `at_eof`, a debugger)
//! sees what asyncio's would. The chunk goes from
//! the actor's read buffer straight into `reader._buffer`: no `bytes`
//! object is made for it.
//!
//! Why not more: a native `read()` coroutine (one that takes from
//! `reader._buffer` and waits on `reader._waiter` in Rust) was built and
//! measured, and was no faster than asyncio's Python `read()` once the
//! reader is fed natively. CPython 3.11's specialised bytecode reads an
//! attribute for a nanosecond or two; the C API's generic lookups that a
//! native method must use cost 20-30 ns each, and returning a value from
//! a non-generator awaitable costs a `StopIteration`. What a native
//! method saves is the calls and frames, and `read()` has few of them.
//! (streams echo, server CPU per message: asyncio's read 6.7 µs, native
//! read 7.1 µs, same run.)
//!
//! One more difference: a read for a reader takes at most its limit
//! (64 KiB by default), not the 256 KiB of any other read. A reader is
//! drained in chunks of about its limit and pauses its transport past
//! twice the limit, so a bigger read only makes its buffer bigger: a
//! bytearray of a few hundred KiB that CPython reallocates, smaller and
//! then bigger again, at every `read()`. With 32 connections doing so,
//! glibc's heap kept growing and being trimmed back, and the page faults
//! of its regrowth were most of the server's time (streams echo of
//! 100 KiB messages, 32 connections: 80 µs of server CPU per message
//! with 256 KiB reads, 55 with 64 KiB ones).

use pyo3::exceptions::{PyMemoryError, PyNotImplementedError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyByteArray;

use crate::py_imports;

/// Reads for a reader whose limit is smaller still take this much.
const READ_AT_LEAST: usize = 64 * 1024;

/// A reader the transport may feed itself, and its buffer.
pub struct Feed<'py> {
    reader: Bound<'py, PyAny>,
    buffer: Bound<'py, PyByteArray>,
    /// The reader's `_limit`.
    limit: Bound<'py, PyAny>,
}

/// What `protocol.data_received(data)` would reach, when it is asyncio's
/// StreamReaderProtocol over a plain StreamReader; `None` when the
/// protocol's own `data_received` must be called (other protocols, user
/// subclasses, a reader already gone or past its EOF: asyncio's assertion
/// is then raised by its own code).
pub fn target<'py>(protocol: &Bound<'py, PyAny>) -> PyResult<Option<Feed<'py>>> {
    let py = protocol.py();
    if !protocol
        .get_type()
        .is(py_imports::stream_reader_protocol(py)?)
    {
        return Ok(None);
    }
    let reader_ref = protocol.getattr(intern!(py, "_stream_reader_wr"))?;
    if reader_ref.is_none() {
        return Ok(None);
    }
    let reader = reader_ref.call0()?;
    if !reader.get_type().is(py_imports::stream_reader(py)?) {
        return Ok(None);
    }
    if reader.getattr(intern!(py, "_eof"))?.is_truthy()? {
        return Ok(None);
    }
    let Ok(buffer) = reader
        .getattr(intern!(py, "_buffer"))?
        .cast_into_exact::<PyByteArray>()
    else {
        return Ok(None);
    };
    let limit = reader.getattr(intern!(py, "_limit"))?;
    Ok(Some(Feed {
        reader,
        buffer,
        limit,
    }))
}

impl<'py> Feed<'py> {
    /// The most one read for this reader should take (see the module docs).
    pub fn read_max(&self) -> usize {
        self.limit
            .extract::<usize>()
            .map_or(usize::MAX, |limit| limit.max(READ_AT_LEAST))
    }

    /// Append `data` to the reader's buffer (`bytearray.extend`). Runs no
    /// Python code, so it may be called while the reactor is borrowed.
    pub fn extend(&self, data: &[u8]) -> PyResult<()> {
        let py = self.buffer.py();
        let old = self.buffer.len();
        let Some(new) = old
            .checked_add(data.len())
            .and_then(|n| isize::try_from(n).ok())
        else {
            return Err(PyMemoryError::new_err(()));
        };
        // SAFETY: the GIL is held and `buffer` is an exact bytearray we
        // hold a reference to. PyByteArray_Resize fails (BufferError while
        // a memoryview of it is alive, MemoryError) with an exception set
        // and the bytearray untouched; on success its storage holds `new`
        // bytes, of which the last `data.len()` are written here before
        // any other code can see them. `data` is the actor's buffer, not
        // the bytearray's.
        unsafe {
            if ffi::PyByteArray_Resize(self.buffer.as_ptr(), new) != 0 {
                return Err(PyErr::fetch(py));
            }
            let dst = ffi::PyByteArray_AsString(self.buffer.as_ptr()).cast::<u8>();
            std::ptr::copy_nonoverlapping(data.as_ptr(), dst.add(old), data.len());
        }
        Ok(())
    }

    /// The rest of `feed_data` once the bytes are in: wake the reader's
    /// waiter, and pause the transport past twice the reader's limit.
    pub fn wake(self) -> PyResult<()> {
        let py = self.reader.py();
        let reader = &self.reader;
        let waiter = reader.getattr(intern!(py, "_waiter"))?;
        if !waiter.is_none() {
            reader.setattr(intern!(py, "_waiter"), py.None())?;
            if !waiter.call_method0(intern!(py, "cancelled"))?.is_truthy()? {
                waiter.call_method1(intern!(py, "set_result"), (py.None(),))?;
            }
        }
        if reader.getattr(intern!(py, "_paused"))?.is_truthy()? {
            return Ok(());
        }
        let transport = reader.getattr(intern!(py, "_transport"))?;
        if transport.is_none() {
            return Ok(());
        }
        let limit = &self.limit;
        let over = match limit.extract::<i64>() {
            Ok(limit) => self.buffer.len() as i128 > 2 * i128::from(limit),
            Err(_) => self.buffer.len().into_pyobject(py)?.gt(limit.mul(2)?)?,
        };
        if over {
            match transport.call_method0(intern!(py, "pause_reading")) {
                Ok(_) => reader.setattr(intern!(py, "_paused"), true)?,
                Err(e) if e.is_instance_of::<PyNotImplementedError>(py) => {
                    reader.setattr(intern!(py, "_transport"), py.None())?
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
