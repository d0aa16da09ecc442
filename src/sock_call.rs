//! asyncio's `loop.sock_recvfrom`, `sock_recvfrom_into`, `sock_sendto`,
//! `sock_accept` and `sock_connect`, the socket side (the coroutine is in
//! sock_coro.rs).
//!
//! Each is one call of the socket object's own method (`recvfrom`,
//! `recvfrom_into`, `sendto`, `accept`), tried at once and, when it would
//! block, again each time the socket is ready, as asyncio does; a connect
//! in progress is checked with `getsockopt(SO_ERROR)` when the socket
//! becomes writable. The call
//! stays the socket module's: its address formats (every family, each
//! Python version's) and its errors are what the caller gets. What is
//! native is the rest: no coroutine frame, no Python reader or writer, no
//! `functools.partial` done-callback per wait (sock_wait.rs).

use pyo3::exceptions::{PyBlockingIOError, PyInterruptedError, PyOSError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use crate::event_loop::EventLoop;
use crate::io_watch::Side;
use crate::sock_wait::{resolve_when_ready, wait_on, watcher_repr, FdWait};

/// Which call, with its arguments.
pub(crate) enum SockCall {
    RecvFrom {
        bufsize: Py<PyAny>,
    },
    /// `nbytes` is already asyncio's: `len(buf)` when the caller gave 0.
    RecvFromInto {
        buf: Py<PyAny>,
        nbytes: Py<PyAny>,
    },
    SendTo {
        data: Py<PyAny>,
        address: Py<PyAny>,
    },
    Accept,
    /// To an address needing no name resolution (python/rloop/sockets.py
    /// resolves the others as asyncio does, before it connects).
    Connect {
        address: Py<PyAny>,
    },
}

impl SockCall {
    /// `sock_recvfrom_into`'s call: asyncio reads `len(buf)` bytes when
    /// `nbytes` is 0 (its default, or anything false), looked up when the
    /// coroutine runs.
    pub(crate) fn recvfrom_into(
        buf: &Bound<'_, PyAny>,
        nbytes: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let nbytes = match nbytes {
            Some(n) if n.is_truthy()? => n,
            _ => buf.len()?.into_pyobject(buf.py())?.into_any(),
        };
        Ok(SockCall::RecvFromInto {
            buf: buf.clone().unbind(),
            nbytes: nbytes.unbind(),
        })
    }

    fn side(&self) -> Side {
        match self {
            SockCall::SendTo { .. } | SockCall::Connect { .. } => Side::Write,
            _ => Side::Read,
        }
    }

    fn what(&self) -> &'static str {
        match self {
            SockCall::RecvFrom { .. } => "sock_recvfrom reader",
            SockCall::RecvFromInto { .. } => "sock_recvfrom_into reader",
            SockCall::SendTo { .. } => "sock_sendto writer",
            SockCall::Accept => "sock_accept reader",
            SockCall::Connect { .. } => "sock_connect writer",
        }
    }

    /// One try, as asyncio makes it: the result, or None if the socket
    /// would block (BlockingIOError) or the call was interrupted
    /// (InterruptedError), which asyncio also leaves to the next readiness.
    /// `first`: the try made when the coroutine starts (asyncio's
    /// `sendto` then passes no flags; its writer passes 0).
    pub(crate) fn attempt(
        &self,
        sock: &Bound<'_, PyAny>,
        first: bool,
    ) -> PyResult<Option<Py<PyAny>>> {
        let py = sock.py();
        let result = match self {
            SockCall::RecvFrom { bufsize } => {
                sock.call_method1(intern!(py, "recvfrom"), (bufsize,))
            }
            SockCall::RecvFromInto { buf, nbytes } => {
                sock.call_method1(intern!(py, "recvfrom_into"), (buf, nbytes))
            }
            SockCall::SendTo { data, address } if first => {
                sock.call_method1(intern!(py, "sendto"), (data, address))
            }
            SockCall::SendTo { data, address } => {
                sock.call_method1(intern!(py, "sendto"), (data, 0, address))
            }
            SockCall::Accept => sock.call_method0(intern!(py, "accept")).and_then(|pair| {
                // `conn, address = sock.accept()`; `conn.setblocking(False)`.
                let conn = pair.get_item(0)?;
                conn.call_method1(intern!(py, "setblocking"), (false,))?;
                Ok(pair)
            }),
            SockCall::Connect { address } if first => sock
                .call_method1(intern!(py, "connect"), (address,))
                .map(|_| py.None().into_bound(py)),
            SockCall::Connect { address } => connect_outcome(sock, address.bind(py)),
        };
        match result {
            Ok(value) => Ok(Some(value.unbind())),
            Err(e) if e.is_instance_of::<PyBlockingIOError>(py) => Ok(None),
            Err(e) if e.is_instance_of::<PyInterruptedError>(py) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The wait after a try that would have blocked: a future that the
    /// socket's next readiness resolves with the call's result.
    pub(crate) fn later(
        self,
        lp: &Bound<'_, EventLoop>,
        sock: Bound<'_, PyAny>,
    ) -> PyResult<(Py<PyAny>, FdWait)> {
        let side = self.side();
        let once = matches!(self, SockCall::Connect { .. });
        wait_on(lp, sock, side, once, |fut, sock| {
            let watcher = CallWhenReady {
                fut,
                sock,
                call: self,
            };
            Ok(Bound::new(lp.py(), watcher)?.into_any())
        })
    }

    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self {
            SockCall::RecvFrom { bufsize } => visit.call(bufsize),
            SockCall::RecvFromInto { buf, nbytes } => {
                visit.call(buf)?;
                visit.call(nbytes)
            }
            SockCall::SendTo { data, address } => {
                visit.call(data)?;
                visit.call(address)
            }
            SockCall::Accept => Ok(()),
            SockCall::Connect { address } => visit.call(address),
        }
    }
}

/// How a connect in progress ended, once its socket is writable: None, or
/// the error `SO_ERROR` holds, with asyncio's message.
fn connect_outcome<'py>(
    sock: &Bound<'py, PyAny>,
    address: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = sock.py();
    let err: i64 = sock
        .call_method1(
            intern!(py, "getsockopt"),
            (libc::SOL_SOCKET, libc::SO_ERROR),
        )?
        .extract()?;
    if err != 0 {
        // OSError(errno, ...) is the errno's subclass (ConnectionRefusedError...).
        let message = format!("Connect call failed {}", address.str()?);
        return Err(PyOSError::new_err((err, message)));
    }
    Ok(py.None().into_bound(py))
}

/// The reader or writer of one waiting call.
#[pyclass(frozen, module = "rloop._rloop")]
struct CallWhenReady {
    fut: Py<PyAny>,
    sock: Py<PyAny>,
    call: SockCall,
}

#[pymethods]
impl CallWhenReady {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        // A future already done (cancelled) is left alone: an accepted
        // connection would be lost in it (CPython gh-153761, fixed in 3.15).
        resolve_when_ready(self.fut.bind(py), || {
            self.call.attempt(self.sock.bind(py), false)
        })
    }

    /// The loop's handle holds this watcher, which holds the future: a wait
    /// abandoned with its loop is a cycle only the GC can free.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.fut)?;
        visit.call(&self.sock)?;
        self.call.traverse(&visit)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        watcher_repr(self.call.what(), self.sock.bind(py))
    }
}
