//! The socket transport: the thin handle Python holds for one connection
//! actor. Its methods become actor commands; the actor's events become
//! protocol calls, in asyncio's order, on the loop thread.

use std::os::fd::RawFd;
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyMemoryView, PyString, PyTuple};
use pyo3::{intern, PyTraverseError, PyVisit};

use crate::context;
use crate::errors::os_error;
use crate::event_loop::{EventLoop, Item};
use crate::exception_handler::escapes_loop;
use crate::handles::Handle;
use crate::py_imports;
use crate::reactor::{
    ActorError, CloseError, Command, ConnId, Event, IoCounts, ReadCount, ReadResult, SharedFd,
};
use crate::sendfile::SendfileState;

/// asyncio logs a warning once this many writes hit a lost connection.
const LOG_THRESHOLD_FOR_CONNLOST_WRITES: u32 = 5;
const DEFAULT_HIGH_WATER: i64 = 64 * 1024;

pub(crate) struct State {
    /// The `asyncio.Transport` that protocols see (python/rloop/transports.py);
    /// held until connection_lost, then the cycle with it is broken.
    face: Option<Py<PyAny>>,
    protocol: Option<Py<PyAny>>,
    /// The protocol is a BufferedProtocol: read into its buffer.
    buffered: bool,
    /// The Python socket behind get_extra_info('socket'): the caller's for
    /// connections it made, one made on demand for accepted ones. It shares
    /// the actor's fd and never closes it (see `release_fd`).
    pub(crate) sock: Option<Py<PyAny>>,
    /// Keeps the fd open until connection_lost was delivered, as asyncio
    /// keeps its socket: the actor may have ended (and let go) before.
    pub(crate) fd_holder: Option<Arc<SharedFd>>,
    pub(crate) extra: Option<Py<PyDict>>,
    pub(crate) extra_complete: bool,
    server: Option<Py<PyAny>>,
    closing: bool,
    /// connection_lost is scheduled (or delivered): the actor is gone.
    pub(crate) lost: bool,
    /// connection_lost was delivered: the transport is closed.
    closed: bool,
    pub(crate) eof_written: bool,
    paused_reading: bool,
    /// The protocol was told pause_writing() and not yet resume_writing().
    paused_writing: bool,
    writes_after_lost: u32,
    /// loop.sendfile() in progress (src/sendfile.rs).
    pub(crate) sendfile: SendfileState,
}

/// The Rust side of a TCP or Unix stream transport: the handle of one
/// connection actor. Protocols see it through rloop.transports.SocketTransport.
#[pyclass(frozen, weakref, module = "rloop._rloop")]
pub struct SocketTransport {
    pub(crate) lp: Py<EventLoop>,
    pub(crate) id: ConnId,
    /// The actor's byte counters, kept after it ends (`_io_counts`).
    pub(crate) io_counts: Arc<IoCounts>,
    pub(crate) fd: RawFd,
    pub(crate) family: i32,
    /// The `contextvars.Context` its protocol's methods run in: a copy of
    /// the one current where the connection was set up (create_connection's
    /// caller, or the server's creator for an accepted connection), as
    /// asyncio's transports run theirs.
    pub(crate) context: Py<PyAny>,
    pub(crate) st: Mutex<State>,
}

/// Lets go of a connection's fd, as asyncio closes its socket. A Python
/// socket object sharing it forgets it first (`detach()`), so that it never
/// closes it itself; the fd then closes when the last holder, this one or
/// the actor's, is dropped. A socket object that was closed meanwhile (by
/// its user) has closed the fd already: it must not be closed again, as the
/// number may belong to another file by now.
pub(crate) fn release_fd(py: Python<'_>, sock: Option<Py<PyAny>>, holder: Option<Arc<SharedFd>>) {
    let Some(sock) = sock else {
        return;
    };
    let detached = sock
        .call_method0(py, intern!(py, "detach"))
        .and_then(|fd| fd.extract::<i64>(py));
    if !matches!(detached, Ok(fd) if fd >= 0) {
        if let Some(holder) = &holder {
            holder.disown();
        }
    }
    drop(sock);
    drop(holder);
}

impl Drop for State {
    /// A transport dropped before its connection_lost (its loop went away):
    /// the socket object must not close the shared fd behind the holder.
    fn drop(&mut self) {
        if self.sock.is_some() {
            let (sock, holder) = (self.sock.take(), self.fd_holder.take());
            Python::attach(|py| release_fd(py, sock, holder));
        }
    }
}

fn is_buffered_protocol(protocol: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = protocol.py();
    let cls = py_imports::buffered_protocol_class(py)?;
    protocol.is_instance(cls)
}

impl SocketTransport {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        py: Python<'_>,
        lp: Py<EventLoop>,
        id: ConnId,
        fd: RawFd,
        family: i32,
        protocol: &Bound<'_, PyAny>,
        extra: Option<Py<PyDict>>,
        server: Option<Py<PyAny>>,
        sock: Option<Py<PyAny>>,
        fd_holder: Arc<SharedFd>,
        context: Py<PyAny>,
        io_counts: Arc<IoCounts>,
    ) -> PyResult<Self> {
        let extra = match extra {
            Some(e) => e,
            None => PyDict::new(py).unbind(),
        };
        Ok(SocketTransport {
            lp,
            id,
            io_counts,
            fd,
            family,
            context,
            st: Mutex::new(State {
                face: None,
                protocol: Some(protocol.clone().unbind()),
                buffered: is_buffered_protocol(protocol)?,
                sock,
                fd_holder: Some(fd_holder),
                extra: Some(extra),
                extra_complete: false,
                server,
                closing: false,
                lost: false,
                closed: false,
                eof_written: false,
                paused_reading: false,
                paused_writing: false,
                writes_after_lost: 0,
                sendfile: SendfileState::default(),
            }),
        })
    }

    /// Wraps a new core in the Python-facing transport.
    pub fn attach_face(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let face = py_imports::transport_face(py)?.call1((slf,))?.unbind();
        slf.get().st.lock().face = Some(face.clone_ref(py));
        Ok(face)
    }

    /// What Python code sees as the transport (the core itself once the
    /// connection is gone and the face released).
    pub fn face<'py>(slf: &Bound<'py, Self>) -> Bound<'py, PyAny> {
        let py = slf.py();
        match slf.get().st.lock().face.as_ref() {
            Some(f) => f.bind(py).clone(),
            None => slf.clone().into_any(),
        }
    }

    fn loop_any<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.lp.bind(py).clone().into_any()
    }

    fn protocol<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.st.lock().protocol.as_ref().map(|p| p.bind(py).clone())
    }

    fn is_lost(&self) -> bool {
        self.st.lock().lost
    }

    /// Runs `f` on the reactor and hands the actor's events to the protocol.
    pub(crate) fn act<R>(
        slf: &Bound<'_, Self>,
        f: impl FnOnce(&mut dyn crate::reactor::Reactor, &mut Vec<Event>) -> R,
    ) -> PyResult<R> {
        let py = slf.py();
        let this = slf.get();
        let mut events = Vec::new();
        let r = {
            let lp = this.lp.get();
            let mut guard = lp.reactor(py)?;
            match guard.as_mut() {
                Some(reactor) => f(reactor.as_mut(), &mut events),
                None => return Err(PyRuntimeError::new_err("Event loop is closed")),
            }
        };
        Self::dispatch(slf, events)?;
        Ok(r)
    }

    /// Delivers actor events, in order, to the protocol.
    pub fn dispatch(slf: &Bound<'_, Self>, events: Vec<Event>) -> PyResult<()> {
        for event in events {
            match event {
                Event::PauseWriting => {
                    slf.get().st.lock().paused_writing = true;
                    Self::flow_call(slf, intern!(slf.py(), "pause_writing"))?
                }
                Event::ResumeWriting => {
                    slf.get().st.lock().paused_writing = false;
                    Self::flow_call(slf, intern!(slf.py(), "resume_writing"))?
                }
                Event::SendfileDone(outcome) => crate::sendfile::done(slf, outcome)?,
                Event::Closed(err) => Self::on_closed(slf, err)?,
                // The mio scheduler lends data and reports EOF through read
                // results, not as events.
                Event::Data(_) | Event::Eof => {}
            }
        }
        Ok(())
    }

    fn flow_call(slf: &Bound<'_, Self>, method: &Bound<'_, PyString>) -> PyResult<()> {
        let py = slf.py();
        let Some(protocol) = slf.get().protocol(py) else {
            return Ok(());
        };
        // In a copy of the transport's context, as uvloop: these may be
        // called from inside it (a write() in data_received) or from
        // anywhere (a write() by another task).
        let copy = context::copy_of(slf.get().context.bind(py))?.into_bound(py);
        let called = {
            let _entered = context::enter(&copy)?;
            protocol.call_method0(method)
        };
        match called {
            Ok(_) => Ok(()),
            Err(e) if escapes_loop(py, &e) => Err(e),
            Err(e) => Self::report(slf, &format!("protocol.{method}() failed"), &e),
        }
    }

    /// asyncio's context for an error of this transport's protocol.
    fn report(slf: &Bound<'_, Self>, message: &str, err: &PyErr) -> PyResult<()> {
        let py = slf.py();
        let context = PyDict::new(py);
        context.set_item("message", message)?;
        context.set_item("exception", err.value(py))?;
        context.set_item("transport", Self::face(slf))?;
        context.set_item("protocol", slf.get().protocol(py))?;
        slf.get()
            .loop_any(py)
            .call_method1("call_exception_handler", (context,))?;
        Ok(())
    }

    /// The actor ended: schedule connection_lost, exactly once.
    fn on_closed(slf: &Bound<'_, Self>, err: Option<CloseError>) -> PyResult<()> {
        {
            let mut st = slf.get().st.lock();
            if st.lost {
                return Ok(());
            }
            st.lost = true;
            st.closing = true;
        }
        let exc = match err {
            None => None,
            Some(CloseError::Io(e)) => Some(os_error(e)),
            Some(CloseError::Panic(msg)) => {
                let e = PyRuntimeError::new_err(format!("connection actor panicked: {msg}"));
                Self::report(slf, "Fatal error: connection actor panicked", &e)?;
                Some(e)
            }
        };
        Self::schedule_connection_lost(slf, exc)
    }

    /// connection_lost(exc) runs from the ready queue, as asyncio's
    /// transports schedule `_call_connection_lost(exc)`: a handle in the
    /// transport's context, so that an exception from the protocol is
    /// reported as any callback's (with the handle), as asyncio's is.
    fn schedule_connection_lost(slf: &Bound<'_, Self>, exc: Option<PyErr>) -> PyResult<()> {
        let py = slf.py();
        let exc = match exc {
            Some(e) => e.into_value(py).into_any(),
            None => py.None(),
        };
        let this = slf.get();
        let handle = slf
            .getattr(intern!(py, "_call_connection_lost"))
            .and_then(|callback| {
                let args = PyTuple::new(py, [exc.clone_ref(py)])?.unbind();
                let context = Some(this.context.clone_ref(py));
                Py::new(py, Handle::new(py, callback.unbind(), args, context, None)?)
            });
        match handle {
            Ok(handle) => {
                this.lp.get().push_ready(Item::Call(handle));
                Ok(())
            }
            // Not even a handle could be made: deliver it now, not never.
            Err(e) => {
                let exc = (!exc.is_none(py)).then_some(exc);
                Self::deliver_connection_lost(slf, exc, true).and(Err(e))
            }
        }
    }

    /// The outcome of a protocol method the transport called: an error from
    /// it is fatal to the connection (asyncio's "Fatal error: protocol.X()
    /// call failed."), unless it must leave the loop (SystemExit, ...).
    fn fatal_on_error(
        slf: &Bound<'_, Self>,
        called: PyResult<Bound<'_, PyAny>>,
        method: &str,
    ) -> PyResult<()> {
        match called {
            Ok(_) => Ok(()),
            Err(e) if escapes_loop(slf.py(), &e) => Err(e),
            Err(e) => Self::fatal_error(
                slf,
                e,
                &format!("Fatal error: protocol.{method}() call failed."),
            ),
        }
    }

    /// asyncio's `_fatal_error`: a non-OSError reaches the exception handler;
    /// either way the connection is dropped and connection_lost gets `err`.
    fn fatal_error(slf: &Bound<'_, Self>, err: PyErr, message: &str) -> PyResult<()> {
        let py = slf.py();
        if err.is_instance_of::<pyo3::exceptions::PyOSError>(py) {
            if slf.get().lp.get().is_debug() {
                let kwargs = PyDict::new(py);
                kwargs.set_item("exc_info", err.value(py))?;
                py_imports::asyncio_logger(py)?.call_method(
                    "debug",
                    ("%r: %s", Self::face(slf), message),
                    Some(&kwargs),
                )?;
            }
        } else {
            Self::report(slf, message, &err)?;
        }
        Self::force_close(slf, Some(err))
    }

    /// asyncio's `_force_close`: drop queued data, end the actor now.
    fn force_close(slf: &Bound<'_, Self>, exc: Option<PyErr>) -> PyResult<()> {
        {
            let mut st = slf.get().st.lock();
            if st.lost {
                return Ok(());
            }
            st.lost = true;
            st.closing = true;
        }
        let id = slf.get().id;
        // The actor's own Closed(None) is ignored: `lost` is already set.
        Self::act(slf, |r, out| r.command(id, Command::Abort, out))?.ok();
        Self::schedule_connection_lost(slf, exc)
    }

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
        enum Got<'py> {
            Data(Bound<'py, PyBytes>),
            Eof,
            Nothing,
        }
        let got = Self::act(slf, |r, out| match r.read(id, out) {
            ReadResult::Data(d) => Got::Data(PyBytes::new(py, d)),
            ReadResult::Eof => Got::Eof,
            ReadResult::WouldBlock | ReadResult::Closed => Got::Nothing,
        })?;
        match got {
            Got::Data(data) => {
                let Some(protocol) = slf.get().protocol(py) else {
                    return Ok(());
                };
                let called = protocol.call_method1(intern!(py, "data_received"), (data,));
                Self::fatal_on_error(slf, called, "data_received")
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

    fn close_impl(slf: &Bound<'_, Self>) -> PyResult<()> {
        {
            let mut st = slf.get().st.lock();
            if st.closing {
                return Ok(());
            }
            st.closing = true;
        }
        let id = slf.get().id;
        Self::act(slf, |r, out| r.command(id, Command::Close, out))?.ok();
        Ok(())
    }

    /// Delivers connection_lost and lets go of every Python object, as
    /// asyncio's `_call_connection_lost`: whatever the protocol does, the
    /// fd, the server and the Python objects are released; its exception
    /// is returned (not reported), for the caller to report.
    fn deliver_connection_lost(
        slf: &Bound<'_, Self>,
        exc: Option<Py<PyAny>>,
        enter_context: bool,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let face = Self::face(slf);
        let (protocol, sock, fd_holder, server, extra, held_face) = {
            let mut st = this.st.lock();
            st.lost = true;
            st.closing = true;
            st.closed = true;
            (
                st.protocol.take(),
                st.sock.take(),
                st.fd_holder.take(),
                st.server.take(),
                st.extra.take(),
                st.face.take(),
            )
        };
        // A failure to enter the context is the protocol call's outcome:
        // the release below happens all the same.
        let result = match &protocol {
            Some(p) => enter_context
                .then(|| context::enter(this.context.bind(py)))
                .transpose()
                .and_then(|_entered| {
                    p.call_method1(py, intern!(py, "connection_lost"), (exc,))
                        .map(drop)
                }),
            None => Ok(()),
        };
        crate::sendfile::connection_lost(slf);
        // asyncio closes its socket here: the fd closes now, or once the
        // actor's side has let go of it too.
        release_fd(py, sock, fd_holder);
        this.lp.get().forget_transport(py, this.id, this.fd);
        let detached = match &server {
            Some(s) => s
                .call_method1(py, intern!(py, "_detach"), (&face,))
                .map(drop),
            None => Ok(()),
        };
        // Dropped here, with the GIL held.
        drop((protocol, server, extra, held_face));
        result.and(detached)
    }

    /// Loop close with the connection still open: the actor already ended;
    /// connection_lost runs now since the loop will run nothing more. An
    /// exception from it is reported as the handle's would have been.
    pub fn on_loop_closed(slf: &Bound<'_, Self>) -> PyResult<()> {
        slf.get().st.lock().lost = true;
        let py = slf.py();
        match Self::deliver_connection_lost(slf, None, true) {
            Ok(()) => Ok(()),
            Err(e) if escapes_loop(py, &e) => Err(e),
            Err(e) => {
                let context = PyDict::new(py);
                let message = "Exception in callback SocketTransport._call_connection_lost(None)";
                context.set_item("message", message)?;
                context.set_item("exception", e.value(py))?;
                slf.get()
                    .loop_any(py)
                    .call_method1("call_exception_handler", (context,))
                    .map(drop)
            }
        }
    }
}

/// The bytes of `data`, which asyncio's write() takes only as bytes,
/// bytearray or memoryview (anything else: its TypeError, worded as the
/// running asyncio words it).
fn with_bytes<R>(data: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    if let Ok(b) = data.cast::<PyByteArray>() {
        // A copy: the caller may mutate its bytearray once we return.
        return Ok(f(&b.to_vec()));
    }
    if data.is_instance_of::<PyMemoryView>() {
        return chunk_bytes(data).map(|b| f(&b));
    }
    let py = data.py();
    Err(py_imports::write_type_error(py)
        .and_then(|f| f.call1((data,)))
        .map_or_else(|e| e, PyErr::from_value))
}

/// The bytes of any bytes-like object (a memoryview of any format too).
fn chunk_bytes(chunk: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(buf) = pyo3::buffer::PyBuffer::<u8>::get(chunk) {
        return buf.to_vec(chunk.py());
    }
    // Not a buffer of bytes (e.g. an array of ints): its raw bytes.
    Ok(chunk
        .py()
        .get_type::<PyBytes>()
        .call1((chunk,))?
        .cast_into::<PyBytes>()?
        .as_bytes()
        .to_vec())
}

/// The chunks of writelines(list_of_data): a list or tuple of bytes-like
/// objects at once; anything else (or a bad item) is checked by the running
/// asyncio's rules, which raise its exceptions (rloop.versions).
fn writelines_chunks(list_of_data: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    let fast = |items: &mut dyn Iterator<Item = Bound<'_, PyAny>>| -> Option<Vec<Vec<u8>>> {
        items
            .map(|item| {
                pyo3::buffer::PyBuffer::<u8>::get(&item)
                    .ok()?
                    .to_vec(item.py())
                    .ok()
            })
            .collect()
    };
    let quick = if let Ok(list) = list_of_data.cast::<PyList>() {
        fast(&mut list.iter())
    } else if let Ok(tuple) = list_of_data.cast::<PyTuple>() {
        fast(&mut tuple.iter())
    } else {
        None
    };
    if let Some(chunks) = quick {
        return Ok(chunks);
    }
    let checked = py_imports::writelines_chunks(list_of_data.py())?.call1((list_of_data,))?;
    checked
        .try_iter()?
        .map(|chunk| chunk_bytes(&chunk?))
        .collect()
}

fn actor_error(e: ActorError) -> Option<PyErr> {
    match e {
        ActorError::WriteAfterEof => Some(PyRuntimeError::new_err(
            "Cannot call write() after write_eof()",
        )),
        ActorError::Closed => None,
        ActorError::SendfileInProgress => Some(PyRuntimeError::new_err(e.to_string())),
        ActorError::Limits(l) => Some(PyValueError::new_err(l.to_string())),
        ActorError::Io(e) => Some(os_error(e)),
    }
}

#[pymethods]
impl SocketTransport {
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.lp)?;
        visit.call(&self.context)?;
        // Skipping a locked state only makes the collector more careful.
        if let Some(st) = self.st.try_lock() {
            for obj in [
                &st.face,
                &st.protocol,
                &st.sock,
                &st.server,
                &st.sendfile.waiter,
            ]
            .into_iter()
            .flatten()
            {
                visit.call(obj)?;
            }
            if let Some(extra) = &st.extra {
                visit.call(extra)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        let taken = self.st.try_lock().map(|mut st| {
            (
                st.protocol.take(),
                st.sock.take(),
                st.fd_holder.take(),
                st.server.take(),
                st.extra.take(),
                st.sendfile.waiter.take(),
            )
        });
        if let Some((protocol, sock, fd_holder, server, extra, waiter)) = taken {
            Python::attach(|py| release_fd(py, sock, fd_holder));
            drop((protocol, server, extra, waiter));
        }
    }

    /// Write the bytes-like `data` to the connection without blocking: what
    /// cannot be sent at once is buffered and sent in the background.
    fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let id = this.id;
        // Type errors first, as asyncio does.
        let empty = with_bytes(data, |b| b.is_empty())?;
        {
            let mut st = this.st.lock();
            if st.eof_written {
                return Err(PyRuntimeError::new_err(
                    "Cannot call write() after write_eof()",
                ));
            }
            if st.sendfile.busy {
                return Err(PyRuntimeError::new_err(
                    "unable to write; sendfile is in progress",
                ));
            }
            if empty {
                return Ok(());
            }
            if st.lost {
                st.writes_after_lost += 1;
                let n = st.writes_after_lost;
                drop(st);
                if n >= LOG_THRESHOLD_FOR_CONNLOST_WRITES {
                    py_imports::asyncio_logger(py)?
                        .call_method1("warning", ("socket.send() raised exception.",))?;
                }
                return Ok(());
            }
        }
        let r = with_bytes(data, |bytes| {
            Self::act(slf, |r, out| r.writelines(id, &[bytes], out))
        })??;
        match r {
            Ok(()) => Ok(()),
            Err(e) => actor_error(e).map_or(Ok(()), Err),
        }
    }

    /// Write every bytes-like object of the iterable `list_of_data`, as
    /// write() would their concatenation.
    fn writelines(slf: &Bound<'_, Self>, list_of_data: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let owned = writelines_chunks(list_of_data)?;
        let this = slf.get();
        {
            let st = this.st.lock();
            if st.eof_written {
                return Err(PyRuntimeError::new_err(
                    "Cannot call write() after write_eof()",
                ));
            }
            if st.sendfile.busy {
                return Err(PyRuntimeError::new_err(
                    "unable to writelines; sendfile is in progress",
                ));
            }
            if st.lost {
                drop(st);
                return Self::write(slf, PyBytes::new(py, &[]).as_any());
            }
        }
        let chunks: Vec<&[u8]> = owned
            .iter()
            .map(Vec::as_slice)
            .filter(|c| !c.is_empty())
            .collect();
        if chunks.is_empty() {
            return Ok(());
        }
        let id = this.id;
        match Self::act(slf, |r, out| r.writelines(id, &chunks, out))? {
            Ok(()) => Ok(()),
            Err(e) => actor_error(e).map_or(Ok(()), Err),
        }
    }

    /// Close the write end of the connection once the buffered data is
    /// sent; the transport can still receive data.
    fn write_eof(slf: &Bound<'_, Self>) -> PyResult<()> {
        {
            let mut st = slf.get().st.lock();
            if st.closing || st.eof_written {
                return Ok(());
            }
            st.eof_written = true;
        }
        let id = slf.get().id;
        match Self::act(slf, |r, out| r.command(id, Command::WriteEof, out))? {
            Ok(()) => Ok(()),
            Err(e) => actor_error(e).map_or(Ok(()), Err),
        }
    }

    /// Return True: stream transports support write_eof().
    fn can_write_eof(&self) -> bool {
        true
    }

    /// Close the transport: buffered data is still sent, then the
    /// connection is closed and the protocol's connection_lost(None) called.
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::close_impl(slf)
    }

    /// Close the transport at once, dropping buffered data; the protocol's
    /// connection_lost(None) is called.
    fn abort(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::force_close(slf, None)
    }

    /// asyncio's private `_force_close(exc)`, which its SSLProtocol calls
    /// when TLS fails: end now, connection_lost gets `exc`.
    #[pyo3(signature = (exc))]
    fn _force_close(slf: &Bound<'_, Self>, exc: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        Self::force_close(slf, exc.map(PyErr::from_value))
    }

    /// Return True if the transport is closing or closed.
    fn is_closing(&self) -> bool {
        self.st.lock().closing
    }

    /// Stop calling the protocol's data_received() until resume_reading().
    fn pause_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        {
            let mut st = slf.get().st.lock();
            if st.closing || st.paused_reading {
                return Ok(());
            }
            st.paused_reading = true;
        }
        let id = slf.get().id;
        Self::act(slf, |r, out| r.command(id, Command::PauseReading, out))?.ok();
        Ok(())
    }

    /// Deliver received data to the protocol again, after pause_reading().
    fn resume_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        {
            let mut st = slf.get().st.lock();
            if st.closing || !st.paused_reading {
                return Ok(());
            }
            st.paused_reading = false;
        }
        let id = slf.get().id;
        Self::act(slf, |r, out| r.command(id, Command::ResumeReading, out))?.ok();
        Ok(())
    }

    /// Return True if the transport is receiving (not paused, not closing).
    fn is_reading(&self) -> bool {
        let st = self.st.lock();
        !st.closing && !st.paused_reading
    }

    /// Set the write buffer's high- and low-water marks, in bytes: the
    /// protocol's pause_writing() is called when the buffer grows above
    /// `high`, resume_writing() when it drains to `low` (defaults: 64 KiB
    /// and a quarter of high).
    #[pyo3(signature = (high=None, low=None))]
    fn set_write_buffer_limits(
        slf: &Bound<'_, Self>,
        high: Option<i64>,
        low: Option<i64>,
    ) -> PyResult<()> {
        let high = high.unwrap_or(match low {
            None => DEFAULT_HIGH_WATER,
            Some(l) => 4 * l,
        });
        let low = low.unwrap_or(high / 4);
        if !(high >= low && low >= 0) {
            return Err(PyValueError::new_err(format!(
                "high ({high}) must be >= low ({low}) must be >= 0"
            )));
        }
        let id = slf.get().id;
        let cmd = Command::SetWriteBufferLimits {
            high: Some(high as usize),
            low: Some(low as usize),
        };
        match Self::act(slf, |r, out| r.command(id, cmd, out))? {
            Ok(()) => Ok(()),
            Err(e) => actor_error(e).map_or(Ok(()), Err),
        }
    }

    /// Deliver connection_lost(exc) to the protocol and release the
    /// connection (scheduled by the transport when its actor ended).
    #[pyo3(signature = (exc=None))]
    fn _call_connection_lost(slf: &Bound<'_, Self>, exc: Option<Py<PyAny>>) -> PyResult<()> {
        let exc = exc.filter(|e| !e.is_none(slf.py()));
        Self::deliver_connection_lost(slf, exc, false)
    }

    /// Return the write buffer's (low, high) water marks, in bytes.
    fn get_write_buffer_limits(&self, py: Python<'_>) -> PyResult<(usize, usize)> {
        let guard = self.lp.get().reactor(py)?;
        Ok(guard
            .as_ref()
            .and_then(|r| r.write_buffer_limits(self.id))
            .unwrap_or((DEFAULT_HIGH_WATER as usize / 4, DEFAULT_HIGH_WATER as usize)))
    }

    /// Return the number of bytes buffered for writing.
    fn get_write_buffer_size(&self, py: Python<'_>) -> PyResult<usize> {
        if self.is_lost() {
            return Ok(0);
        }
        let guard = self.lp.get().reactor(py)?;
        Ok(guard
            .as_ref()
            .and_then(|r| r.write_buffer_size(self.id))
            .unwrap_or(0))
    }

    /// Return the transport's protocol.
    fn get_protocol<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.protocol(py)
    }

    /// Make `protocol` the transport's protocol: it gets the connection's
    /// events from now on.
    fn set_protocol(&self, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        let buffered = is_buffered_protocol(protocol)?;
        let old = {
            let mut st = self.st.lock();
            st.buffered = buffered;
            st.protocol.replace(protocol.clone().unbind())
        };
        drop(old);
        Ok(())
    }

    /// Whether the protocol is paused for writing (asyncio's
    /// `_FlowControlMixin._protocol_paused`).
    fn _protocol_paused(&self) -> bool {
        self.st.lock().paused_writing
    }

    /// Return the event loop the transport belongs to.
    fn get_loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.lp.clone_ref(py).into_any()
    }

    /// asyncio's layout: `<SocketTransport fd=7 read=polling write=<idle, bufsize=0>>`.
    /// A closing transport reads no more; a closed one (or one of a closed
    /// loop) shows no read/write part, as asyncio's has let go of its loop.
    fn __repr__(&self, py: Python<'_>) -> String {
        let (closed, closing, paused) = {
            let st = self.st.lock();
            (st.closed, st.closing, st.paused_reading)
        };
        let state = if closed {
            " closed"
        } else if closing {
            " closing"
        } else {
            ""
        };
        if closed || self.lp.get().is_closed() {
            return format!("<SocketTransport{state} fd={}>", self.fd);
        }
        let reading = if paused || closing { "idle" } else { "polling" };
        // The actor writes whenever its queue is not empty.
        let bufsize = self.get_write_buffer_size(py).unwrap_or(0);
        let writing = if bufsize > 0 { "polling" } else { "idle" };
        let fd = self.fd;
        format!(
            "<SocketTransport{state} fd={fd} read={reading} write=<{writing}, bufsize={bufsize}>>"
        )
    }
}
