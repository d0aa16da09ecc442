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

use pyo3::exceptions::PyException;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyType};

use crate::slots;

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

/// The attributes of asyncio's `SSLProtocol` that the fast paths read.
///
/// rloop's subclass declares them as its `__slots__` (python/rloop/tls.py
/// takes this list from `ssl_slots()`), so asyncio's code, which sets them all in
/// `__init__`, stores them at fixed offsets in the instance, and each read
/// here is a pointer read instead of a dict lookup (about 20 per echoed
/// record: they were most of what the fast paths cost, callgrind). Python
/// code sees plain attributes either way.
#[derive(Clone, Copy)]
pub(super) enum Slot {
    State,
    MaxSize,
    SslBuffer,
    SslBufferView,
    AppProtocol,
    AppProtocolIsBuffer,
    AppReadingPaused,
    AppWritingPaused,
    SslReadingPaused,
    SslWritingPaused,
    WriteBacklog,
    WriteBufferSize,
    Transport,
    IncomingHighWater,
    IncomingLowWater,
    OutgoingHighWater,
    OutgoingLowWater,
}

/// The slots' names, in `Slot`'s order.
const SLOT_NAMES: [&str; 17] = [
    "_state",
    "max_size",
    "_ssl_buffer",
    "_ssl_buffer_view",
    "_app_protocol",
    "_app_protocol_is_buffer",
    "_app_reading_paused",
    "_app_writing_paused",
    "_ssl_reading_paused",
    "_ssl_writing_paused",
    "_write_backlog",
    "_write_buffer_size",
    "_transport",
    "_incoming_high_water",
    "_incoming_low_water",
    "_outgoing_high_water",
    "_outgoing_low_water",
];

/// Gives the C heap's free pages back to the system (python/rloop/tls.py
/// calls it after a burst of handshakes).
#[pyfunction]
pub fn trim_heap() {
    actors::heap::trim();
}

/// rloop's `SSLProtocol` class and where its instances keep each slot;
/// its transport class and where that keeps `_ssl_protocol`.
struct Layout {
    class: Py<PyType>,
    offsets: [isize; SLOT_NAMES.len()],
    transport_class: Py<PyType>,
    protocol_offset: isize,
}

static LAYOUT: PyOnceLock<Layout> = PyOnceLock::new();

/// The names rloop's `SSLProtocol` must declare as its `__slots__`.
#[pyfunction]
pub fn ssl_slots(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
    PyTuple::new(py, SLOT_NAMES)
}

/// Learns where instances of `protocol` (rloop's `SSLProtocol`, declared
/// with `ssl_slots()`) keep each slot, and where instances of `transport`
/// (its transport) keep `_ssl_protocol`. Until then, and for any other
/// class, the fast paths look the attributes up by name.
#[pyfunction]
pub fn ssl_classes(protocol: &Bound<'_, PyType>, transport: &Bound<'_, PyType>) -> PyResult<()> {
    let py = protocol.py();
    let mut offsets = [0isize; SLOT_NAMES.len()];
    for (offset, name) in offsets.iter_mut().zip(SLOT_NAMES) {
        *offset = slots::object_slot(protocol, name)?;
    }
    let layout = Layout {
        class: protocol.clone().unbind(),
        offsets,
        transport_class: transport.clone().unbind(),
        protocol_offset: slots::object_slot(transport, "_ssl_protocol")?,
    };
    let _ = LAYOUT.set(py, layout);
    Ok(())
}

/// The `SSLProtocol` a TLS transport writes to (`_ssl_protocol`).
fn protocol_of<'py>(transport: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = transport.py();
    if let Some(layout) = LAYOUT.get(py) {
        if transport
            .get_type()
            .is_subclass(layout.transport_class.bind(py))?
        {
            // SAFETY: `transport` is an instance of the class whose
            // `_ssl_protocol` slot is at `protocol_offset`.
            if let Some(proto) =
                unsafe { slots::read(py, transport.as_ptr(), layout.protocol_offset) }
            {
                return Ok(proto);
            }
        }
    }
    transport.getattr(intern!(py, "_ssl_protocol"))
}

/// What the fast paths use of one `SSLProtocol`, found at its first
/// record. asyncio sets the BIOs and the `SSLObject` once, in `__init__`;
/// everything it changes afterwards (the state, the flags, the buffer) is
/// read at each use, from its slot (`Slot`).
struct Parts {
    /// Where the protocol keeps its slots; `None`: look them up by name.
    offsets: Option<&'static [isize; SLOT_NAMES.len()]>,
    incoming: Py<PyAny>,
    outgoing: Py<PyAny>,
    /// The methods called per record, bound once: `incoming.write`,
    /// `outgoing.read`, and the `read`, `write` and `pending` of the C
    /// object of the `SSLObject` when that is exactly `ssl.SSLObject`
    /// (whose methods only forward to it), else of the `SSLObject` itself
    /// (an `SSLContext.sslobject_class` of the application's).
    incoming_write: Py<PyAny>,
    outgoing_read: Py<PyAny>,
    tls_read: Py<PyAny>,
    tls_write: Py<PyAny>,
    tls_pending: Py<PyAny>,
}

impl Parts {
    fn new(proto: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = proto.py();
        let sslobj = proto.getattr(intern!(py, "_sslobj"))?;
        let tls = if sslobj.get_type().is(names(py)?.ssl_object.bind(py)) {
            sslobj.getattr(intern!(py, "_sslobj"))?
        } else {
            sslobj
        };
        let offsets = LAYOUT
            .get(py)
            .filter(|layout| {
                proto
                    .get_type()
                    .is_subclass(layout.class.bind(py))
                    .unwrap_or(false)
            })
            .map(|layout| &layout.offsets);
        let incoming = proto.getattr(intern!(py, "_incoming"))?;
        let outgoing = proto.getattr(intern!(py, "_outgoing"))?;
        Ok(Parts {
            offsets,
            incoming_write: incoming.getattr(intern!(py, "write"))?.unbind(),
            outgoing_read: outgoing.getattr(intern!(py, "read"))?.unbind(),
            tls_read: tls.getattr(intern!(py, "read"))?.unbind(),
            tls_write: tls.getattr(intern!(py, "write"))?.unbind(),
            tls_pending: tls.getattr(intern!(py, "pending"))?.unbind(),
            incoming: incoming.unbind(),
            outgoing: outgoing.unbind(),
        })
    }

    /// Every object the parts hold, for the collector.
    fn each(&self) -> [&Py<PyAny>; 7] {
        [
            &self.incoming,
            &self.outgoing,
            &self.incoming_write,
            &self.outgoing_read,
            &self.tls_read,
            &self.tls_write,
            &self.tls_pending,
        ]
    }

    /// An attribute of the protocol `proto` (the one these are the parts
    /// of: not kept here, which would make a cycle of each protocol).
    fn get<'py>(&self, proto: &Bound<'py, PyAny>, slot: Slot) -> PyResult<Bound<'py, PyAny>> {
        let py = proto.py();
        if let Some(offsets) = self.offsets {
            // SAFETY: `proto` is the instance `new` was given, of the class
            // whose layout `offsets` gives (checked there).
            if let Some(value) = unsafe { slots::read(py, proto.as_ptr(), offsets[slot as usize]) }
            {
                return Ok(value);
            }
        }
        // Unset, or not slotted: the lookup finds it or raises.
        proto.getattr(SLOT_NAMES[slot as usize])
    }

    /// Sets an attribute of the protocol, as asyncio's code would.
    fn set(&self, proto: &Bound<'_, PyAny>, slot: Slot, value: &Bound<'_, PyAny>) -> PyResult<()> {
        proto.setattr(SLOT_NAMES[slot as usize], value)
    }

    fn flag(&self, proto: &Bound<'_, PyAny>, slot: Slot) -> PyResult<bool> {
        self.get(proto, slot)?.is_truthy()
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
    if !parts.flag(proto, Slot::SslWritingPaused)? {
        let data = parts.outgoing_read.bind(py).call0()?;
        if data.len()? > 0 {
            parts
                .get(proto, Slot::Transport)?
                .call_method1(intern!(py, "write"), (data,))?;
        }
    }
    let size = outgoing
        .getattr(intern!(py, "pending"))?
        .add(parts.get(proto, Slot::WriteBufferSize)?)?;
    // asyncio's `_control_app_writing`, whose method runs only when a mark
    // is crossed (it is the one that pauses or resumes the application).
    if crossed(
        proto,
        parts,
        &size,
        Slot::AppWritingPaused,
        Slot::OutgoingLowWater,
        Slot::OutgoingHighWater,
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
        proto,
        parts,
        &size,
        Slot::SslReadingPaused,
        Slot::IncomingLowWater,
        Slot::IncomingHighWater,
    )? {
        proto.call_method0(intern!(py, "_control_ssl_reading"))?;
    }
    Ok(())
}

/// asyncio's flow-control test: paused and at or below the low mark, or
/// running and at or above the high one.
fn crossed(
    proto: &Bound<'_, PyAny>,
    parts: &Parts,
    size: &Bound<'_, PyAny>,
    paused: Slot,
    low: Slot,
    high: Slot,
) -> PyResult<bool> {
    if parts.flag(proto, paused)? {
        size.le(parts.get(proto, low)?)
    } else {
        size.ge(parts.get(proto, high)?)
    }
}
