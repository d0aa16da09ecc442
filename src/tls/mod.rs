//! TLS: asyncio's `SSLProtocol`, with the calls made per record in Rust.
//!
//! A TLS connection is two protocols deep. The socket transport hands the
//! ciphertext it reads to asyncio's `sslproto.SSLProtocol`, which feeds it
//! to an `ssl.SSLObject` through an incoming `ssl.MemoryBIO`, reads the
//! plaintext back out and hands it to the application's protocol. The
//! application writes through the `SSLProtocol`'s own transport, which
//! encrypts into the outgoing `MemoryBIO` and writes what comes out to the
//! socket transport. asyncio runs all of this as Python: per record some
//! ten frames and, for a plain `Protocol`, a 256 KiB bytes object that
//! `SSLObject.read` allocates and shrinks, plus an `SSLWantReadError`
//! raised and caught to learn that the input is used up.
//!
//! rloop keeps asyncio's class (python/rloop/tls.py subclasses it), and so
//! the running Python's own handshake, shutdown, timeouts, errors and log
//! messages, which differ between versions. What it takes over are the
//! three calls made per record once the connection is established (the
//! `WRAPPED` state): the socket transport's `get_buffer`/`buffer_updated`
//! ([`read`]) and the application's `write` ([`write`]). Each does what
//! asyncio's code does, on the same attributes and the same `SSLObject`,
//! with no Python frame; in any other state, or with anything unusual
//! pending (a write backlog, a `BufferedProtocol` application, paused
//! reading), it calls asyncio's own method. Three things differ in how,
//! not in what: plaintext is read into the protocol's buffer and copied
//! out at its size; the read loop stops when neither the `SSLObject` nor
//! the incoming BIO holds a byte, where the next read could only raise
//! `SSLWantReadError`; and that buffer (256 KiB, asyncio's size) is one
//! per loop, shared by its TLS connections (python/rloop/tls.py says why
//! that is safe), where asyncio makes one per connection.

mod read;
mod write;

pub use read::SslRecords;
pub use write::ssl_transport_write;

use pyo3::exceptions::{PyAttributeError, PyException};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};

/// asyncio's names the fast paths compare against, looked up once.
struct Names {
    wrapped: Py<PyAny>,
    do_handshake: Py<PyAny>,
    flushing: Py<PyAny>,
    shutdown: Py<PyAny>,
    /// `sslproto.SSLAgainErrors`: the errors that mean "no more for now".
    again: Py<PyAny>,
    /// `sslproto._SSLProtocolTransport.write`, for what the fast path
    /// leaves to asyncio (type errors, memoryviews).
    stock_write: Py<PyAny>,
    /// `sslproto.SSLProtocol.get_buffer`, for a buffer that must grow.
    stock_get_buffer: Py<PyAny>,
    /// `ssl.SSLObject`, whose `read`, `write` and `pending` only forward
    /// to its C object.
    ssl_object: Py<PyAny>,
}

fn names(py: Python<'_>) -> PyResult<&Names> {
    static CELL: PyOnceLock<Names> = PyOnceLock::new();
    CELL.get_or_try_init(py, || {
        let sslproto = py.import("asyncio.sslproto")?;
        let state = sslproto.getattr("SSLProtocolState")?;
        Ok(Names {
            wrapped: state.getattr("WRAPPED")?.unbind(),
            do_handshake: state.getattr("DO_HANDSHAKE")?.unbind(),
            flushing: state.getattr("FLUSHING")?.unbind(),
            shutdown: state.getattr("SHUTDOWN")?.unbind(),
            again: sslproto.getattr("SSLAgainErrors")?.unbind(),
            stock_write: sslproto
                .getattr("_SSLProtocolTransport")?
                .getattr("write")?
                .unbind(),
            stock_get_buffer: sslproto
                .getattr("SSLProtocol")?
                .getattr("get_buffer")?
                .unbind(),
            ssl_object: py.import("ssl")?.getattr("SSLObject")?.unbind(),
        })
    })
}

/// What the fast paths use of one `SSLProtocol`, found at its first
/// record. asyncio sets the BIOs and the `SSLObject` once, in `__init__`;
/// everything it changes afterwards (the state, the flags, the buffer) is
/// read from the instance's dict at each use, which is what an attribute
/// read of an object with no descriptors of those names comes to, less
/// the class lookup.
struct Parts {
    dict: Py<PyDict>,
    incoming: Py<PyAny>,
    outgoing: Py<PyAny>,
    /// Where `read`, `write` and `pending` go: the C object of the
    /// `SSLObject` when that is exactly `ssl.SSLObject` (whose methods
    /// only forward to it), else the `SSLObject` itself (an
    /// `SSLContext.sslobject_class` of the application's).
    tls: Py<PyAny>,
}

impl Parts {
    fn new(proto: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = proto.py();
        let dict = proto
            .getattr(intern!(py, "__dict__"))?
            .cast_into::<PyDict>()?;
        let sslobj = proto.getattr(intern!(py, "_sslobj"))?;
        let tls = if sslobj.get_type().is(names(py)?.ssl_object.bind(py)) {
            sslobj.getattr(intern!(py, "_sslobj"))?
        } else {
            sslobj
        };
        Ok(Parts {
            dict: dict.unbind(),
            incoming: proto.getattr(intern!(py, "_incoming"))?.unbind(),
            outgoing: proto.getattr(intern!(py, "_outgoing"))?.unbind(),
            tls: tls.unbind(),
        })
    }

    /// An attribute of the protocol, from its dict.
    fn get<'py>(&self, name: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
        let py = name.py();
        self.dict
            .bind(py)
            .get_item(name)?
            .ok_or_else(|| PyAttributeError::new_err(name.clone().unbind()))
    }

    fn flag(&self, name: &Bound<'_, PyString>) -> PyResult<bool> {
        self.get(name)?.is_truthy()
    }
}

/// asyncio's `except Exception as ex: self._fatal_error(ex, ...)` around
/// a step of the protocol: an `Exception` ends the connection, anything
/// else (KeyboardInterrupt, SystemExit) goes on up.
fn fatal_on_error(proto: &Bound<'_, PyAny>, result: PyResult<()>) -> PyResult<()> {
    let py = proto.py();
    match result {
        Err(e) if e.is_instance_of::<PyException>(py) => {
            proto.call_method1(
                intern!(py, "_fatal_error"),
                (e.value(py), "Fatal error on SSL protocol"),
            )?;
            Ok(())
        }
        other => other,
    }
}

/// asyncio's `_process_outgoing`: send what the `SSLObject` produced, then
/// see to the application's write flow control.
fn process_outgoing(proto: &Bound<'_, PyAny>, parts: &Parts) -> PyResult<()> {
    let py = proto.py();
    let outgoing = parts.outgoing.bind(py);
    if !parts.flag(intern!(py, "_ssl_writing_paused"))? {
        let data = outgoing.call_method0(intern!(py, "read"))?;
        if data.len()? > 0 {
            parts
                .get(intern!(py, "_transport"))?
                .call_method1(intern!(py, "write"), (data,))?;
        }
    }
    let size = outgoing
        .getattr(intern!(py, "pending"))?
        .add(parts.get(intern!(py, "_write_buffer_size"))?)?;
    // asyncio's `_control_app_writing`, whose method runs only when a mark
    // is crossed (it is the one that pauses or resumes the application).
    if crossed(
        parts,
        &size,
        intern!(py, "_app_writing_paused"),
        intern!(py, "_outgoing_low_water"),
        intern!(py, "_outgoing_high_water"),
    )? {
        proto.call_method0(intern!(py, "_control_app_writing"))?;
    }
    Ok(())
}

/// asyncio's `_control_ssl_reading`, likewise: the socket transport is
/// paused or resumed by asyncio's method when a mark is crossed.
fn control_ssl_reading(proto: &Bound<'_, PyAny>, parts: &Parts) -> PyResult<()> {
    let py = proto.py();
    let size = parts.incoming.bind(py).getattr(intern!(py, "pending"))?;
    if crossed(
        parts,
        &size,
        intern!(py, "_ssl_reading_paused"),
        intern!(py, "_incoming_low_water"),
        intern!(py, "_incoming_high_water"),
    )? {
        proto.call_method0(intern!(py, "_control_ssl_reading"))?;
    }
    Ok(())
}

/// asyncio's flow-control test: paused and at or below the low mark, or
/// running and at or above the high one.
fn crossed(
    parts: &Parts,
    size: &Bound<'_, PyAny>,
    paused: &Bound<'_, PyString>,
    low: &Bound<'_, PyString>,
    high: &Bound<'_, PyString>,
) -> PyResult<bool> {
    if parts.flag(paused)? {
        size.le(parts.get(low)?)
    } else {
        size.ge(parts.get(high)?)
    }
}
