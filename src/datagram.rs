//! The two per-datagram paths of the UDP transport, in Rust.
//!
//! rloop's UDP transport is asyncio's own (python/rloop/datagrams.py): a
//! Python class whose every behaviour, version by version, is the running
//! Python's. What a UDP server does per datagram is two of its methods:
//! `_read_ready` (one `recvfrom` and a `datagram_received` call) and the
//! reply's `sendto`. In Python each costs a frame, and the socket module
//! turns every received address into a new `(host, port)` tuple and every
//! address sent to back into a `sockaddr`. Here both are C methods of the
//! class (native_method.rs), and the tuple of a peer is made once and
//! kept: the tuple a datagram was received from maps straight back to its
//! `sockaddr` when the reply is sent to it, the common case of a server.
//!
//! An IPv4 or IPv6 endpoint takes these paths (the transport's
//! `_rloop_native` says so: `(fd, family, connected)`, or None). What they
//! do not handle as asyncio would, in the same steps, is handed to the
//! Python methods: a `sendto` of anything but a non-empty `bytes`, to
//! anything but an address this module made (unconnected) or no address
//! (connected), or with datagrams queued; and every read of a socket of
//! another family.

use std::os::fd::RawFd;

use actors::datagram::{recv_from, send, send_to, PeerAddr, Received, HOST_LEN};
use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString, PyTuple, PyType};
use rustc_hash::FxHashMap as HashMap;

use crate::errors::os_error;
use crate::gil_cell::GilRefCell;
use crate::native_method::{call_with_first, install, trampoline, Target};

/// How many datagrams one readable event reads at most (as the Python
/// `_read_ready` it stands for: libuv's figure).
const READS_PER_EVENT: usize = 32;

/// Peers whose tuple is kept, at most; past it the table starts over. A
/// server with more clients than this makes their tuples anew, as Python
/// does for every datagram.
const MAX_PEERS: usize = 1024;

/// The Python methods a case this module does not handle goes to.
struct Fallbacks {
    read_ready: Py<PyAny>,
    sendto: Py<PyAny>,
}

static FALLBACKS: PyOnceLock<Fallbacks> = PyOnceLock::new();

/// The peers' tuples, both ways, and the buffer datagrams are read into.
#[derive(Default)]
struct Peers {
    tuples: HashMap<PeerAddr, Py<PyTuple>>,
    /// A kept tuple's address (its identity: the table holds it, so no
    /// other object can have it) to the sockaddr it was made from.
    addrs: HashMap<usize, PeerAddr>,
    buf: Vec<u8>,
}

static PEERS: GilRefCell<Option<Peers>> = GilRefCell::new(None);

/// The tuple Python's socket module would make of `peer`, made once.
fn peer_tuple(py: Python<'_>, peer: &PeerAddr) -> PyResult<Py<PyAny>> {
    if let Some(tuple) = PEERS
        .borrow_mut(py)
        .as_ref()
        .and_then(|peers| peers.tuples.get(peer))
    {
        return Ok(tuple.clone_ref(py).into_any());
    }
    let mut host = [0u8; HOST_LEN];
    let Some(parts) = peer.parts(&mut host) else {
        return Ok(py.None());
    };
    // Made with the table not borrowed: making a tuple may run the
    // garbage collector, and with it any Python code.
    let host = PyString::new(py, parts.host).into_any();
    let port = parts.port.into_pyobject(py)?.into_any();
    let tuple = match parts.v6 {
        None => PyTuple::new(py, [host, port])?,
        Some((flowinfo, scope_id)) => PyTuple::new(
            py,
            [
                host,
                port,
                flowinfo.into_pyobject(py)?.into_any(),
                scope_id.into_pyobject(py)?.into_any(),
            ],
        )?,
    };
    // Dropped after the table's borrow (a tuple's last reference).
    let dropped = {
        let mut guard = PEERS.borrow_mut(py);
        let peers = guard.get_or_insert_with(Peers::default);
        let all = if peers.tuples.len() >= MAX_PEERS {
            peers.addrs.clear();
            Some(std::mem::take(&mut peers.tuples))
        } else {
            None
        };
        peers.addrs.insert(tuple.as_ptr() as usize, *peer);
        // The same peer kept meanwhile (by code the collector ran): its
        // old tuple goes from both maps, so that no other object, made
        // where it was, can be taken for it.
        let replaced = peers.tuples.insert(*peer, tuple.clone().unbind());
        if let Some(old) = &replaced {
            peers.addrs.remove(&(old.as_ptr() as usize));
        }
        (all, replaced)
    };
    drop(dropped);
    Ok(tuple.into_any().unbind())
}

/// The sockaddr a tuple of `peer_tuple` was made from.
fn peer_of(py: Python<'_>, tuple: *mut ffi::PyObject) -> Option<PeerAddr> {
    PEERS
        .borrow_mut(py)
        .as_ref()
        .and_then(|peers| peers.addrs.get(&(tuple as usize)).copied())
}

/// The transport's `_rloop_native`: `(fd, family, connected)` if it takes
/// the native paths.
fn native_of(transport: &Bound<'_, PyAny>) -> PyResult<Option<(RawFd, i32, bool)>> {
    let native = transport.getattr(intern!(transport.py(), "_rloop_native"))?;
    if native.is_none() {
        return Ok(None);
    }
    native.extract().map(Some)
}

fn fallbacks(py: Python<'_>) -> PyResult<&Fallbacks> {
    FALLBACKS.get(py).ok_or_else(|| {
        PyTypeError::new_err("rloop: the datagram transport's methods are not installed")
    })
}

/// One datagram read into the shared buffer, made into Python objects.
enum Read {
    Datagram(Py<PyBytes>, Option<PeerAddr>),
    WouldBlock,
    Failed(std::io::Error),
}

fn read_one(py: Python<'_>, fd: RawFd, max_size: usize) -> Read {
    let mut guard = PEERS.borrow_mut(py);
    let peers = guard.get_or_insert_with(Peers::default);
    if peers.buf.len() < max_size {
        peers.buf.resize(max_size, 0);
    }
    match recv_from(fd, &mut peers.buf[..max_size]) {
        // A bytes object is not tracked by the collector: making it runs
        // no Python code while the table is borrowed.
        Ok(Received::Datagram(n, peer)) => {
            Read::Datagram(PyBytes::new(py, &peers.buf[..n]).unbind(), peer)
        }
        Ok(Received::WouldBlock) => Read::WouldBlock,
        Err(e) => Read::Failed(e),
    }
}

/// `_read_ready(self)`: asyncio's, for up to READS_PER_EVENT datagrams.
fn read_ready(py: Python<'_>, transport: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let Some((fd, _, _)) = native_of(transport)? else {
        return fallbacks(py)?.read_ready.call1(py, (transport,));
    };
    let max_size: usize = transport.getattr(intern!(py, "max_size"))?.extract()?;
    for _ in 0..READS_PER_EVENT {
        // A datagram_received may have closed or paused the transport.
        if transport.getattr(intern!(py, "_conn_lost"))?.is_truthy()?
            || transport.getattr(intern!(py, "_closing"))?.is_truthy()?
            || transport.getattr(intern!(py, "_paused"))?.is_truthy()?
        {
            break;
        }
        match read_one(py, fd, max_size) {
            Read::WouldBlock => break,
            Read::Failed(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                // As Python's socket calls: the signal handlers, then again.
                py.check_signals()?;
            }
            Read::Failed(e) => {
                let protocol = transport.getattr(intern!(py, "_protocol"))?;
                protocol.call_method1(intern!(py, "error_received"), (os_error(e),))?;
                break;
            }
            Read::Datagram(data, peer) => {
                let addr = match peer {
                    Some(peer) => peer_tuple(py, &peer)?,
                    None => py.None(),
                };
                let protocol = transport.getattr(intern!(py, "_protocol"))?;
                protocol.call_method1(intern!(py, "datagram_received"), (data, addr))?;
            }
        }
    }
    Ok(py.None())
}

/// `sendto(data, addr)` sent at once, if it is a case handled here: None
/// when it is not (the Python method does it). `addr` is None when it was
/// not given or given as None.
///
/// asyncio's method sends with `send` on a connected socket and with
/// `sendto` on another; the cases taken here are: no address on a
/// connected endpoint (an address there must be compared with the
/// endpoint's, and may be refused), and an address this module made on an
/// unconnected one. Both with nothing queued, and not after the
/// connection was lost (asyncio counts those sends and may warn).
fn send_now(
    py: Python<'_>,
    transport: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    addr: Option<*mut ffi::PyObject>,
) -> PyResult<Option<()>> {
    let Ok(data) = data.cast_exact::<PyBytes>() else {
        return Ok(None);
    };
    let bytes = data.as_bytes();
    if bytes.is_empty() {
        return Ok(None);
    }
    let Some((fd, family, connected)) = native_of(transport)? else {
        return Ok(None);
    };
    let peer = match (connected, addr) {
        (true, None) => None,
        (false, Some(addr)) => match peer_of(py, addr).filter(|peer| peer.family() == family) {
            Some(peer) => Some(peer),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    if connected && transport.getattr(intern!(py, "_conn_lost"))?.is_truthy()? {
        return Ok(None);
    }
    // Queued datagrams go first: asyncio appends to its queue then.
    if transport.getattr(intern!(py, "_buffer"))?.len()? != 0 {
        return Ok(None);
    }
    loop {
        let sent = match &peer {
            Some(peer) => send_to(fd, bytes, peer),
            None => send(fd, bytes),
        };
        match sent {
            Ok(Some(_)) => return Ok(Some(())),
            // The socket's buffer is full: asyncio's method queues it.
            Ok(None) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => py.check_signals()?,
            Err(e) => {
                let protocol = transport.getattr(intern!(py, "_protocol"))?;
                protocol.call_method1(intern!(py, "error_received"), (os_error(e),))?;
                return Ok(Some(()));
            }
        }
    }
}

unsafe extern "C" fn native_read_ready(
    slf: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    trampoline(|py| {
        if nargs != 0 || !kwnames.is_null() {
            return Err(PyTypeError::new_err("_read_ready() takes no arguments"));
        }
        // SAFETY: the instance the descriptor was called on.
        let transport = unsafe { Bound::from_borrowed_ptr(py, slf) };
        read_ready(py, &transport)
    })
}

unsafe extern "C" fn native_sendto(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    trampoline(|py| {
        // SAFETY: the instance the descriptor was called on.
        let transport = unsafe { Bound::from_borrowed_ptr(py, slf) };
        if (nargs == 1 || nargs == 2) && kwnames.is_null() {
            // SAFETY: one or two positional arguments, live for the call.
            let (data, addr) = unsafe {
                let addr = (nargs == 2).then(|| *args.offset(1));
                (Bound::from_borrowed_ptr(py, *args), addr)
            };
            let addr = addr.filter(|a| *a != unsafe { ffi::Py_None() });
            if send_now(py, &transport, &data, addr)?.is_some() {
                return Ok(py.None());
            }
        }
        let sendto = fallbacks(py)?.sendto.bind(py);
        // SAFETY: CPython's arguments, passed on behind the instance.
        unsafe { call_with_first(py, Target::Function(sendto), slf, args, nargs, kwnames) }
    })
}

/// Gives `cls` (rloop's UDP transport class) the native `_read_ready` and
/// `sendto`; `read_ready` and `sendto` are the Python methods they hand
/// the cases they do not handle to.
#[pyfunction]
pub fn datagram_methods(
    cls: &Bound<'_, PyType>,
    read_ready: Py<PyAny>,
    sendto: Py<PyAny>,
) -> PyResult<()> {
    let py = cls.py();
    if FALLBACKS.set(py, Fallbacks { read_ready, sendto }).is_err() {
        return Err(PyTypeError::new_err(
            "rloop: the datagram transport's methods are installed already",
        ));
    }
    install(
        cls,
        c"_read_ready",
        c"_read_ready($self, /)\n--\n\nRead the datagrams waiting, up to 32, and deliver each.",
        native_read_ready,
    )?;
    install(
        cls,
        c"sendto",
        c"sendto($self, data, addr=None)\n--\n\nSend `data` to `addr` (or to the connected peer).",
        native_sendto,
    )
}
