//! The bridge between sockets made in Python and connection actors:
//! listening (`_serve`/`_unserve`, accepting into new transports) and
//! adopting a connected socket as a transport (`_new_transport`).

use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{intern, PyTraverseError, PyVisit};

use crate::callback_args::Args;
use crate::context;
use crate::errors::{escapes_loop, os_error};
use crate::event_loop::{EventLoop, Item};
use crate::handles::Handle;
use crate::listening::Listening;
use crate::py_imports;
use crate::reactor::{
    shrink_if_sparse, socket_family, Addr, Listener, ListenerId, Stream, StreamKind,
};
use crate::transport::SocketTransport;

/// Delay before accepting again after running out of fds, as asyncio.
const ACCEPT_RETRY_DELAY: f64 = 1.0;

fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

impl EventLoop {
    fn schedule_call(
        &self,
        py: Python<'_>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let handle = Handle::new(py, callback.unbind(), Args::from_tuple(args), context, None)?;
        self.push_ready(py, Item::Call(Py::new(py, handle)?));
        Ok(())
    }

    /// Makes a connected stream a transport: registers its actor, attaches
    /// it to its server, and schedules connection_made (then the waiter),
    /// as asyncio's transports do on creation. `sock`, the caller's socket
    /// object for the stream's fd, stays the transport's socket; if this
    /// fails, it keeps the fd (the stream's holder is disowned).
    #[allow(clippy::too_many_arguments)]
    pub fn adopt_stream(
        slf: &Bound<'_, Self>,
        stream: Stream,
        family: i32,
        protocol: &Bound<'_, PyAny>,
        waiter: Option<Bound<'_, PyAny>>,
        extra: Option<Bound<'_, PyDict>>,
        server: Option<Bound<'_, PyAny>>,
        sock: Option<Bound<'_, PyAny>>,
        context: Py<PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let holder = stream.shared_fd();
        let owned_by_sock = sock.is_some();
        let keep = Arc::clone(&holder);
        let adopted = (move || -> PyResult<Py<PyAny>> {
            let holder = keep;
            let py = slf.py();
            let this = slf.get();
            // asyncio turns Nagle off on every TCP transport.
            let _ = stream.set_nodelay(true);
            let fd = stream.as_raw_fd();
            let plans = this.faults.lock().for_connection(server.as_ref());
            let (id, io_counts) = {
                let mut guard = this.reactor(py)?;
                match guard.as_mut() {
                    Some(r) => {
                        let id = r.add_connection(stream).map_err(os_error)?;
                        if !plans.is_empty() {
                            r.add_toxic_plans(id, &plans, &mut Vec::new());
                        }
                        (id, r.io_counter(id).unwrap_or_default())
                    }
                    None => return Err(PyRuntimeError::new_err("Event loop is closed")),
                }
            };
            let sock_fd = match &sock {
                Some(s) => Some(s.call_method0(intern!(py, "fileno"))?.extract::<RawFd>()?),
                None => None,
            };
            let transport = Py::new(
                py,
                SocketTransport::new(
                    py,
                    slf.clone().unbind(),
                    id,
                    fd,
                    family,
                    protocol,
                    extra.map(Bound::unbind),
                    server.as_ref().map(|s| s.clone().unbind()),
                    sock.map(Bound::unbind),
                    holder,
                    context.clone_ref(py),
                    io_counts,
                )?,
            )?;
            let face = SocketTransport::attach_face(transport.bind(py))?;
            this.add_transport(id, transport.clone_ref(py));
            {
                let mut fds = this.transport_fds.lock();
                fds.insert(fd, id);
                if let Some(sfd) = sock_fd.filter(|sfd| *sfd != fd) {
                    fds.insert(sfd, id);
                    this.transport_sock_fds.lock().insert(id, sfd);
                }
            }
            if let Some(server) = &server {
                server.call_method1(intern!(py, "_attach"), (&face,))?;
            }
            this.schedule_call(
                py,
                protocol.getattr(pyo3::intern!(py, "connection_made"))?,
                PyTuple::new(py, [face.clone_ref(py)])?,
                Some(context.clone_ref(py)),
            )?;
            if let Some(waiter) = waiter {
                this.schedule_call(
                    py,
                    py_imports::set_result_unless_cancelled(py)?.clone(),
                    PyTuple::new(py, [waiter.unbind(), py.None()])?,
                    Some(context),
                )?;
            }
            Ok(face)
        })();
        if adopted.is_err() && owned_by_sock {
            holder.disown();
        }
        adopted
    }

    pub fn forget_transport(&self, _py: Python<'_>, id: crate::reactor::ConnId, fd: RawFd) {
        let removed = {
            let mut transports = self.transports.lock();
            let removed = transports.remove(&id);
            shrink_if_sparse(&mut *transports);
            removed
        };
        let sock_fd = self.transport_sock_fds.lock().remove(&id);
        {
            // By its keys, not a scan: a server with 10,000 connections
            // closed each in time proportional to all of them.
            let mut fds = self.transport_fds.lock();
            for key in std::iter::once(fd).chain(sock_fd) {
                if fds.get(&key) == Some(&id) {
                    fds.remove(&key);
                }
            }
            shrink_if_sparse(&mut *fds);
        }
        drop(removed);
    }

    /// Accepts pending connections of a listener, at most `backlog` per
    /// readiness report (the scheduler reports it again if more wait).
    pub fn accept_connections(slf: &Bound<'_, Self>, id: ListenerId) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let Some((factory, server, backlog, sock, context)) =
            this.listeners.lock().get(&id).map(|l| {
                (
                    l.protocol_factory.clone_ref(py),
                    l.server.clone_ref(py),
                    l.backlog,
                    l.sock.clone_ref(py),
                    l.context.clone_ref(py),
                )
            })
        else {
            return Ok(());
        };
        for _ in 0..backlog.max(1) {
            let accepted = {
                let mut guard = this.reactor(py)?;
                match guard.as_mut() {
                    Some(r) => r.accept(id),
                    None => return Ok(()),
                }
            };
            let accepted = match accepted {
                Ok(Some((stream, peer))) => {
                    match this.faults.lock().accept_fault(server.bind(py)) {
                        // An accept_error toxic: the connection is dropped and
                        // the accept fails as the OS would have made it fail.
                        Some(errno) => {
                            drop(stream);
                            Err(io::Error::from_raw_os_error(errno))
                        }
                        None => Ok(Some((stream, peer))),
                    }
                }
                other => other,
            };
            match accepted {
                Ok(Some((stream, _peer))) => {
                    let (factory, server) = (factory.bind(py), server.bind(py));
                    Self::serve_connection(slf, stream, factory, server, context.bind(py))?
                }
                Ok(None) => break,
                Err(e) if out_of_resources(&e) => {
                    let context = PyDict::new(py);
                    context.set_item("message", "socket.accept() out of system resource")?;
                    context.set_item("exception", os_error(e).value(py))?;
                    context.set_item(
                        "socket",
                        py_imports::transport_socket(py)?.call1((sock.bind(py),))?,
                    )?;
                    slf.call_method1("call_exception_handler", (context,))?;
                    Self::pause_accepting(slf, id)?;
                    break;
                }
                // Aborted or vanished connections: wait for the next one.
                Err(_) => break,
            }
        }
        Ok(())
    }

    fn pause_accepting(slf: &Bound<'_, Self>, id: ListenerId) -> PyResult<()> {
        let py = slf.py();
        {
            let mut guard = slf.get().reactor(py)?;
            if let Some(r) = guard.as_mut() {
                r.pause_listener(id).map_err(os_error)?;
            }
        }
        let resume = ResumeAccepting {
            lp: slf.clone().unbind(),
            id,
        };
        slf.call_method1("call_later", (ACCEPT_RETRY_DELAY, Py::new(py, resume)?))?;
        Ok(())
    }

    fn serve_connection(
        slf: &Bound<'_, Self>,
        stream: Stream,
        factory: &Bound<'_, PyAny>,
        server: &Bound<'_, PyAny>,
        server_context: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        // Each connection runs in its own copy of the server's context, the
        // protocol factory call included (as 3.15's asyncio: copies of the
        // context current where the server was made).
        let context = context::copy_of(server_context)?;
        let family = match (stream.kind(), stream.local_addr()) {
            (StreamKind::Unix, _) => libc::AF_UNIX,
            (StreamKind::Tcp, Ok(Addr::Inet(a))) if a.is_ipv6() => libc::AF_INET6,
            (StreamKind::Tcp, _) => libc::AF_INET,
        };
        let made = {
            let _entered = context::enter(context.bind(py))?;
            factory.call0()
        };
        let protocol = match made {
            Ok(p) => p,
            Err(e) if escapes_loop(py, &e) => return Err(e),
            // asyncio reports a failed protocol factory in debug mode only:
            // otherwise the connection is just dropped.
            Err(_) if !slf.get().debug.load(Ordering::Relaxed) => return Ok(()),
            Err(e) => {
                drop(stream);
                let context = PyDict::new(py);
                context.set_item(
                    "message",
                    "Error on transport creation for incoming connection",
                )?;
                context.set_item("exception", e.value(py))?;
                slf.call_method1("call_exception_handler", (context,))?;
                return Ok(());
            }
        };
        Self::adopt_stream(
            slf,
            stream,
            family,
            &protocol,
            None,
            None,
            Some(server.clone()),
            None,
            context,
        )?;
        Ok(())
    }
}

/// The timer callback that resumes accepting after a resource shortage.
#[pyclass(frozen, module = "rloop._rloop")]
struct ResumeAccepting {
    lp: Py<EventLoop>,
    id: ListenerId,
}

#[pymethods]
impl ResumeAccepting {
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.lp)
    }

    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        let lp = self.lp.get();
        if !lp.listeners.lock().contains_key(&self.id) {
            return Ok(());
        }
        let mut guard = lp.reactor(py)?;
        if let Some(r) = guard.as_mut() {
            r.resume_listener(self.id).map_err(os_error)?;
        }
        Ok(())
    }
}

#[pymethods]
impl EventLoop {
    /// Adopts `fd`, the fd of the connected socket object `sock`, as a
    /// transport for `protocol`; `sock` stays the transport's socket.
    /// Its protocol runs in `context`, by default a copy of the current one.
    #[pyo3(signature = (fd, protocol, waiter=None, extra=None, server=None, sock=None, context=None))]
    #[allow(clippy::too_many_arguments)]
    fn _new_transport(
        slf: &Bound<'_, Self>,
        fd: RawFd,
        protocol: Bound<'_, PyAny>,
        waiter: Option<Bound<'_, PyAny>>,
        extra: Option<Bound<'_, PyDict>>,
        server: Option<Bound<'_, PyAny>>,
        sock: Option<Bound<'_, PyAny>>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        slf.get().check_closed()?;
        let context = match context {
            Some(c) => c,
            None => context::copy_current(slf.py())?,
        };
        // The stream shares `fd` with `sock`, which stays the transport's
        // socket (one fd per connection): it lets go of the fd when
        // connection_lost is delivered (transport::release_fd).
        // The kernel's family, not `sock.family` (see socket_family).
        let family = socket_family(fd).map_err(os_error)?;
        let stream = if family == libc::AF_UNIX {
            // SAFETY: `fd` is the open, connected Unix stream socket of
            // `sock`; ManuallyDrop: nothing here closes it on failure.
            let std = ManuallyDrop::new(unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) });
            std.set_nonblocking(true).map_err(os_error)?;
            Stream::from_nonblocking_std_unix(ManuallyDrop::into_inner(std))
        } else {
            // SAFETY: as above, for a connected TCP socket.
            let std = ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
            std.set_nonblocking(true).map_err(os_error)?;
            Stream::from_nonblocking_std_tcp(ManuallyDrop::into_inner(std))
        };
        Self::adopt_stream(
            slf, stream, family, &protocol, waiter, extra, server, sock, context,
        )
    }

    /// Starts accepting on `fd` (a listening socket duplicated for us); the
    /// connections run in copies of `context` (default: the current one).
    #[pyo3(signature = (fd, protocol_factory, server, backlog, sock, context=None))]
    fn _serve(
        slf: &Bound<'_, Self>,
        fd: RawFd,
        protocol_factory: Py<PyAny>,
        server: Py<PyAny>,
        backlog: usize,
        sock: Bound<'_, PyAny>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let context = match context {
            Some(c) => c,
            None => context::copy_current(py)?,
        };
        let this = slf.get();
        // The kernel's family, not `sock.family` (see socket_family).
        let listener = if socket_family(fd).map_err(os_error)? == libc::AF_UNIX {
            // SAFETY: the caller hands us ownership of `fd`, a listening
            // Unix socket.
            Listener::from_std_unix(unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) })
                .map_err(os_error)?
        } else {
            // SAFETY: as above, for a listening TCP socket.
            Listener::from_std_tcp(unsafe { std::net::TcpListener::from_raw_fd(fd) })
                .map_err(os_error)?
        };
        let sock_fd: RawFd = sock.call_method0("fileno")?.extract()?;
        let id = {
            let mut guard = this.reactor(py)?;
            match guard.as_mut() {
                Some(r) => r.add_listener(listener).map_err(os_error)?,
                None => return Err(PyRuntimeError::new_err("Event loop is closed")),
            }
        };
        this.listeners.lock().insert(
            id,
            Listening {
                protocol_factory,
                server,
                backlog,
                sock: sock.unbind(),
                context,
                sock_fd,
            },
        );
        Ok(())
    }

    /// Stops accepting on the server socket `sock` (the caller closes it).
    fn _unserve(slf: &Bound<'_, Self>, sock: Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let sock_fd: RawFd = sock.call_method0("fileno")?.extract()?;
        let found = {
            let mut listeners = this.listeners.lock();
            let id = listeners
                .iter()
                .find(|(_, l)| l.sock_fd == sock_fd)
                .map(|(id, _)| *id);
            id.and_then(|id| listeners.remove(&id).map(|l| (id, l)))
        };
        if let Some((id, listening)) = found {
            if let Ok(mut guard) = this.reactor(py) {
                if let Some(r) = guard.as_mut() {
                    drop(r.remove_listener(id));
                }
            }
            drop(listening);
        }
        Ok(())
    }

    /// asyncio refuses raw fd operations on a socket a transport owns: one
    /// of the core's, or one of asyncio's own Python transports (UDP),
    /// which register in the loop's `_transports` as on a selector loop.
    pub(crate) fn _ensure_fd_no_transport(
        slf: &Bound<'_, Self>,
        fd: Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let raw = Self::fd_of(&fd)?;
        let id = this.transport_fds.lock().get(&raw).copied();
        let transport = id
            .and_then(|id| this.transport(py, id))
            .map(|t| SocketTransport::face(&t))
            .or_else(|| python_transport(slf, raw));
        if let Some(face) = transport {
            if !face.call_method0(intern!(py, "is_closing"))?.is_truthy()? {
                return Err(PyRuntimeError::new_err(format!(
                    "File descriptor {} is used by transport {}",
                    fd.repr()?,
                    face.repr()?
                )));
            }
        }
        Ok(())
    }
}

impl EventLoop {
    /// Ends every connection at loop close, each with one connection_lost.
    pub(crate) fn close_transports(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut ended = Vec::new();
        if let Ok(mut guard) = this.reactor(py) {
            if let Some(r) = guard.as_mut() {
                r.close_all(&mut ended);
            }
        }
        drop(ended);
        let transports: Vec<Py<PyAny>> = this.transports.lock().drain().map(|(_, t)| t).collect();
        this.transport_fds.lock().clear();
        this.transport_sock_fds.lock().clear();
        let mut first_error = None;
        for t in transports {
            let Ok(t) = t.bind(py).cast::<SocketTransport>() else {
                continue;
            };
            if let Err(e) = SocketTransport::on_loop_closed(t) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The Python-level transport (asyncio's UDP one) registered for `fd` in
/// the loop's `_transports` (a WeakValueDictionary), if any. Its plain
/// `data` dict is looked at first: the table is empty unless UDP is used.
fn python_transport<'py>(slf: &Bound<'py, EventLoop>, fd: RawFd) -> Option<Bound<'py, PyAny>> {
    let py = slf.py();
    let table = slf.getattr(intern!(py, "_transports")).ok()?;
    let data = table.getattr(intern!(py, "data")).ok()?;
    if data.len().ok()? == 0 {
        return None;
    }
    table
        .call_method1(intern!(py, "get"), (fd,))
        .ok()
        .filter(|t| !t.is_none())
}
