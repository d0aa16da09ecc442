//! The socket transport: the thin handle Python holds for one connection
//! actor. Its methods become actor commands; the actor's events become
//! protocol calls, in asyncio's order, on the loop thread.

use std::os::fd::RawFd;
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use pyo3::{intern, PyTraverseError, PyVisit};

use crate::context;
use crate::errors::{escapes_loop, os_error};
use crate::event_loop::EventLoop;
use crate::py_imports;
use crate::reactor::{ActorError, Command, ConnId, Event, IoCounts, SharedFd};
use sendfile::SendfileState;

pub mod face;
mod lost;
mod read;
mod sendfile;
mod write;

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
    /// loop.sendfile() in progress (src/transport/sendfile.rs).
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

impl EventLoop {
    /// Files the transport of connection `id`: the loop holds its
    /// transports as plain objects (event_loop.rs), and this is the only
    /// way in, so that every one is a `SocketTransport`.
    pub(crate) fn add_transport(&self, id: ConnId, transport: Py<SocketTransport>) {
        self.transports.lock().insert(id, transport.into_any());
    }

    /// The live transport of connection `id`, if any (inline: the loop
    /// looks one up for every readiness report; the type check costs
    /// nothing measurable in callgrind).
    #[inline]
    pub(crate) fn transport<'py>(
        &self,
        py: Python<'py>,
        id: ConnId,
    ) -> Option<Bound<'py, SocketTransport>> {
        let transport = self
            .transports
            .lock()
            .get(&id)
            .map(|t| t.bind(py).clone())?;
        transport.cast_into::<SocketTransport>().ok()
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
                Event::SendfileDone(outcome) => sendfile::done(slf, outcome)?,
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
}

pub(crate) fn actor_error(e: ActorError) -> Option<PyErr> {
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
    pub(crate) fn is_closing(&self) -> bool {
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
