//! `loop.sock_recv`, `sock_recv_into`, `sock_sendall`, `sock_recvfrom`,
//! `sock_recvfrom_into`, `sock_sendto`, `sock_accept` and (to an address
//! that needs no name resolution) `sock_connect` as native coroutines.
//!
//! In asyncio each is an `async def`: every call makes a coroutine object
//! and runs Python frames around one socket call, which in a socket echo
//! costs more than the socket call itself. Here the call returns a small
//! native object that behaves as that coroutine (awaitable, `send`,
//! `throw`, `close`, registered as a `collections.abc.Coroutine` so that
//! `asyncio.create_task` and `asyncio.iscoroutine` accept it). Its first
//! step makes the socket call at once; only when the socket would block
//! does it wait, as asyncio does, on a future and a reader or writer of
//! the loop (native ones: sock_recv.rs for the reads, sock_send.rs for
//! sendall, sock_call.rs for the calls made through the socket object's
//! own method), by yielding that future to the task as `await future` would.
//!
//! What the caller sees is asyncio's: argument errors and socket errors
//! are raised when the coroutine runs, not when it is made; results,
//! exceptions, cancellation and the reader/writer bookkeeping are the
//! same.

use parking_lot::Mutex;
use pyo3::exceptions::{
    PyBaseException, PyRuntimeError, PyStopIteration, PyTypeError, PyValueError,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use crate::event_loop::EventLoop;
use crate::sock_call::SockCall;
use crate::sock_recv::{
    recv_into_now, recv_later, recv_now, socket_fd, with_writable_buffer, Wanted,
};
use crate::sock_send::{send_later, send_now, with_buffer};
use crate::sock_wait::FdWait;

enum Op {
    Recv {
        n: isize,
    },
    RecvInto {
        buf: Py<PyAny>,
    },
    SendAll {
        data: Py<PyAny>,
    },
    /// `sock_recvfrom_into`'s call is made when the coroutine starts (its
    /// `len(buf)` is looked up then, as in asyncio).
    RecvFromInto {
        buf: Py<PyAny>,
        nbytes: Option<Py<PyAny>>,
    },
    Call(SockCall),
}

enum Step {
    /// Not started: the socket call comes at the first step.
    Start(Op),
    /// Waiting for this future (yielded to the task), and the reader or
    /// writer to remove when the wait is over.
    Waiting(Py<PyAny>, FdWait),
    Done,
}

/// One call of sock_recv or sock_sendall (see the module docs).
#[pyclass(module = "rloop._rloop", name = "sock_coroutine")]
pub struct SockCoroutine {
    event_loop: Py<EventLoop>,
    sock: Py<PyAny>,
    name: &'static str,
    step: Mutex<Step>,
}

/// `sock` may not be an `ssl.SSLSocket`, and in debug mode it must be
/// non-blocking: asyncio's checks, with its messages.
fn check_socket(lp: &Bound<'_, EventLoop>, sock: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = sock.py();
    if sock.get_type().name()?.to_cow()? == "SSLSocket" {
        return Err(PyTypeError::new_err("Socket cannot be of type SSLSocket"));
    }
    if lp.get().is_debug() {
        let timeout = sock.call_method0(intern!(py, "gettimeout"))?;
        if !timeout.eq(0)? {
            return Err(PyValueError::new_err("the socket must be non-blocking"));
        }
    }
    Ok(())
}

/// The coroutine's return, as a coroutine's `send` reports it.
///
/// The value itself is the exception's argument, unless it is a tuple or
/// an exception (which `StopIteration(value)` would take apart): CPython
/// 3.11 then takes it back as the value without making the exception
/// object at all, as it does for its own coroutines' returns.
fn stop_with(py: Python<'_>, value: Py<PyAny>) -> PyErr {
    let bound = value.bind(py);
    if bound.is_instance_of::<PyTuple>() || bound.is_instance_of::<PyBaseException>() {
        PyStopIteration::new_err((value,))
    } else {
        PyStopIteration::new_err(value)
    }
}

impl SockCoroutine {
    fn new(lp: &Bound<'_, EventLoop>, sock: Py<PyAny>, name: &'static str, op: Op) -> Self {
        SockCoroutine {
            event_loop: lp.clone().unbind(),
            sock,
            name,
            step: Mutex::new(Step::Start(op)),
        }
    }

    /// The first step: the socket call, and either the result (as the
    /// coroutine's return) or the future to wait for.
    fn start(&self, py: Python<'_>, op: Op) -> PyResult<(Py<PyAny>, FdWait)> {
        let lp = self.event_loop.bind(py);
        let sock = self.sock.bind(py);
        check_socket(lp, sock)?;
        match op {
            Op::Recv { n } => match recv_now(py, sock, n)? {
                Some(data) => Err(stop_with(py, data.into_any())),
                None => recv_later(lp, sock.clone(), Wanted::Bytes(n)),
            },
            Op::RecvInto { buf } => {
                let fd = socket_fd(sock)?;
                match with_writable_buffer(buf.bind(py), |bytes| recv_into_now(py, fd, bytes))?? {
                    Some(n) => Err(stop_with(py, n.into_pyobject(py)?.into_any().unbind())),
                    None => recv_later(lp, sock.clone(), Wanted::Into(buf)),
                }
            }
            Op::SendAll { data } => {
                let fd = socket_fd(sock)?;
                let (sent, total) = with_buffer(data.bind(py), |bytes| {
                    send_now(py, fd, bytes).map(|n| (n, bytes.len()))
                })??;
                if sent == total {
                    return Err(stop_with(py, py.None()));
                }
                send_later(lp, sock.clone(), data.bind(py), sent)
            }
            Op::RecvFromInto { buf, nbytes } => {
                let call = SockCall::recvfrom_into(buf.bind(py), nbytes.map(|n| n.into_bound(py)))?;
                self.try_call(lp, sock, call)
            }
            Op::Call(call) => self.try_call(lp, sock, call),
        }
    }

    /// A call through the socket's own method: its result at once, or
    /// the wait for the socket to be ready.
    fn try_call(
        &self,
        lp: &Bound<'_, EventLoop>,
        sock: &Bound<'_, PyAny>,
        call: SockCall,
    ) -> PyResult<(Py<PyAny>, FdWait)> {
        match call.attempt(sock, true)? {
            Some(result) => Err(stop_with(sock.py(), result)),
            None => call.later(lp, sock.clone()),
        }
    }

    /// The wait is over (done, or abandoned): its reader or writer goes.
    fn end_wait(&self, py: Python<'_>, wait: FdWait) -> PyResult<()> {
        wait.stop(py, self.event_loop.get())
    }

    fn step(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let current = std::mem::replace(&mut *self.step.lock(), Step::Done);
        match current {
            Step::Done => Err(PyRuntimeError::new_err(
                "cannot reuse already awaited coroutine",
            )),
            Step::Start(op) => {
                let (fut, wait) = self.start(py, op)?;
                // As a future's own __await__ does when it yields.
                let set = fut
                    .bind(py)
                    .setattr(intern!(py, "_asyncio_future_blocking"), true);
                if let Err(e) = set {
                    self.end_wait(py, wait)?;
                    return Err(e);
                }
                *self.step.lock() = Step::Waiting(fut.clone_ref(py), wait);
                Ok(Some(fut))
            }
            Step::Waiting(fut, wait) => {
                let fut = fut.bind(py);
                if !fut.call_method0(intern!(py, "done"))?.is_truthy()? {
                    // Woken early (not by the future): keep waiting.
                    *self.step.lock() = Step::Waiting(fut.clone().unbind(), wait);
                    return Ok(Some(fut.clone().unbind()));
                }
                self.end_wait(py, wait)?;
                let result = fut.call_method0(intern!(py, "result"))?;
                Err(stop_with(py, result.unbind()))
            }
        }
    }
}

#[pymethods]
impl SockCoroutine {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.step(py)
    }

    fn send(&self, py: Python<'_>, value: Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        if !value.is_none() && matches!(*self.step.lock(), Step::Start(_)) {
            return Err(PyTypeError::new_err(
                "can't send non-None value to a just-started coroutine",
            ));
        }
        self.step(py)
    }

    /// The exception is raised from where the coroutine waits: it ends.
    /// (A task that is cancelled cancels the future it waits for itself.)
    #[pyo3(signature = (typ, val=None, _tb=None))]
    fn throw(
        &self,
        py: Python<'_>,
        typ: Bound<'_, PyAny>,
        val: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Option<Py<PyAny>>> {
        self.close(py)?;
        let exc = match (typ.cast::<PyType>(), val) {
            (Ok(cls), Some(v)) if v.is_instance(cls)? => v,
            (Ok(cls), Some(v)) if !v.is_none() => cls.call1((v,))?,
            (Ok(cls), _) => cls.call0()?,
            (Err(_), _) => typ,
        };
        Err(PyErr::from_value(exc))
    }

    /// Ends the coroutine; one waiting for its socket stops waiting.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        match std::mem::replace(&mut *self.step.lock(), Step::Done) {
            Step::Waiting(_, wait) => self.end_wait(py, wait),
            _ => Ok(()),
        }
    }

    #[getter]
    fn __name__(&self) -> &'static str {
        self.name
    }

    #[getter]
    fn __qualname__(&self) -> String {
        format!("BaseEventLoop.{}", self.name)
    }

    #[getter]
    fn cr_await(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        match &*self.step.lock() {
            Step::Waiting(fut, _) => Some(fut.clone_ref(py)),
            _ => None,
        }
    }

    #[getter]
    fn cr_running(&self) -> bool {
        false
    }

    #[getter]
    fn cr_frame(&self) -> Option<Py<PyAny>> {
        None
    }

    fn __repr__(&self) -> String {
        format!("<coroutine object BaseEventLoop.{}>", self.name)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.event_loop)?;
        visit.call(&self.sock)?;
        if let Some(step) = self.step.try_lock() {
            match &*step {
                Step::Start(Op::SendAll { data }) => visit.call(data)?,
                Step::Start(Op::RecvInto { buf }) => visit.call(buf)?,
                Step::Start(Op::RecvFromInto { buf, nbytes }) => {
                    visit.call(buf)?;
                    if let Some(n) = nbytes {
                        visit.call(n)?;
                    }
                }
                Step::Start(Op::Call(call)) => call.traverse(&visit)?,
                Step::Waiting(fut, wait) => {
                    visit.call(fut)?;
                    wait.traverse(&visit)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        if let Some(mut step) = self.step.try_lock() {
            *step = Step::Done;
        }
    }
}

#[pymethods]
impl EventLoop {
    /// Receive up to n bytes from sock (non-blocking), as asyncio does.
    fn sock_recv(slf: &Bound<'_, Self>, sock: Py<PyAny>, n: isize) -> PyResult<SockCoroutine> {
        Ok(SockCoroutine::new(slf, sock, "sock_recv", Op::Recv { n }))
    }

    /// Receive into buf from sock (non-blocking), as asyncio does; return
    /// the number of bytes received.
    fn sock_recv_into(
        slf: &Bound<'_, Self>,
        sock: Py<PyAny>,
        buf: Py<PyAny>,
    ) -> PyResult<SockCoroutine> {
        Ok(SockCoroutine::new(
            slf,
            sock,
            "sock_recv_into",
            Op::RecvInto { buf },
        ))
    }

    /// Send all of data to sock (non-blocking), as asyncio does: returns
    /// None once everything is sent; an error may leave part of it sent.
    fn sock_sendall(
        slf: &Bound<'_, Self>,
        sock: Py<PyAny>,
        data: Py<PyAny>,
    ) -> PyResult<SockCoroutine> {
        Ok(SockCoroutine::new(
            slf,
            sock,
            "sock_sendall",
            Op::SendAll { data },
        ))
    }

    /// Receive a datagram of up to `bufsize` bytes from sock (non-blocking),
    /// as asyncio does; return `(data, address)`.
    fn sock_recvfrom(
        slf: &Bound<'_, Self>,
        sock: Py<PyAny>,
        bufsize: Py<PyAny>,
    ) -> PyResult<SockCoroutine> {
        let call = Op::Call(SockCall::RecvFrom { bufsize });
        Ok(SockCoroutine::new(slf, sock, "sock_recvfrom", call))
    }

    /// Receive a datagram into buf (up to nbytes, or len(buf) if nbytes is
    /// 0) from sock (non-blocking), as asyncio does; return
    /// `(nbytes_received, address)`.
    #[pyo3(signature = (sock, buf, nbytes=None), text_signature = "($self, sock, buf, nbytes=0)")]
    fn sock_recvfrom_into(
        slf: &Bound<'_, Self>,
        sock: Py<PyAny>,
        buf: Py<PyAny>,
        nbytes: Option<Py<PyAny>>,
    ) -> PyResult<SockCoroutine> {
        let op = Op::RecvFromInto { buf, nbytes };
        Ok(SockCoroutine::new(slf, sock, "sock_recvfrom_into", op))
    }

    /// Send data to address from sock (non-blocking), as asyncio does;
    /// return the number of bytes sent.
    fn sock_sendto(
        slf: &Bound<'_, Self>,
        sock: Py<PyAny>,
        data: Py<PyAny>,
        address: Py<PyAny>,
    ) -> PyResult<SockCoroutine> {
        let call = Op::Call(SockCall::SendTo { data, address });
        Ok(SockCoroutine::new(slf, sock, "sock_sendto", call))
    }

    /// Accept a connection on the listening sock (non-blocking), as asyncio
    /// does; return `(conn, address)`, conn non-blocking.
    fn sock_accept(slf: &Bound<'_, Self>, sock: Py<PyAny>) -> PyResult<SockCoroutine> {
        Ok(SockCoroutine::new(
            slf,
            sock,
            "sock_accept",
            Op::Call(SockCall::Accept),
        ))
    }

    /// `sock_connect` to an address needing no name resolution (the
    /// Python method, python/rloop/sockets.py, resolves the others).
    fn _sock_connect_native(
        slf: &Bound<'_, Self>,
        sock: Py<PyAny>,
        address: Py<PyAny>,
    ) -> PyResult<SockCoroutine> {
        let call = Op::Call(SockCall::Connect { address });
        Ok(SockCoroutine::new(slf, sock, "sock_connect", call))
    }
}
