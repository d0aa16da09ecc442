//! How a transport ends: `close()` (flush, then end), `abort()` and the
//! fatal errors (end now), the actor's own end, and the loop closing under
//! it. Whatever the way, `connection_lost` is scheduled exactly once, from
//! the ready queue as asyncio does, and the transport lets go of its
//! protocol, socket and server afterwards.

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::{release_fd, SocketTransport};
use crate::callback_args::Args;
use crate::context;
use crate::errors::{escapes_loop, os_error};
use crate::event_loop::Item;
use crate::handles::Handle;
use crate::py_imports;
use crate::reactor::{CloseError, Command};

impl SocketTransport {
    /// Marks the connection lost (and so closing); false if it was already:
    /// connection_lost is scheduled by whoever marks it first.
    fn mark_lost(&self) -> bool {
        let mut st = self.st.lock();
        if st.lost {
            return false;
        }
        st.lost = true;
        st.closing = true;
        true
    }

    /// The actor ended: schedule connection_lost, exactly once.
    pub(super) fn on_closed(slf: &Bound<'_, Self>, err: Option<CloseError>) -> PyResult<()> {
        if !slf.get().mark_lost() {
            return Ok(());
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
    pub(super) fn schedule_connection_lost(
        slf: &Bound<'_, Self>,
        exc: Option<PyErr>,
    ) -> PyResult<()> {
        let py = slf.py();
        let exc = match exc {
            Some(e) => e.into_value(py).into_any(),
            None => py.None(),
        };
        let this = slf.get();
        let handle = slf
            .getattr(intern!(py, "_call_connection_lost"))
            .and_then(|callback| {
                let args = Args::One(exc.clone_ref(py));
                let context = Some(this.context.clone_ref(py));
                Py::new(py, Handle::new(py, callback.unbind(), args, context, None)?)
            });
        match handle {
            Ok(handle) => {
                this.lp.get().push_ready(py, Item::Call(handle));
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
    pub(super) fn fatal_on_error(
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
    pub(super) fn fatal_error(slf: &Bound<'_, Self>, err: PyErr, message: &str) -> PyResult<()> {
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
    pub(super) fn force_close(slf: &Bound<'_, Self>, exc: Option<PyErr>) -> PyResult<()> {
        if !slf.get().mark_lost() {
            return Ok(());
        }
        let id = slf.get().id;
        // The actor's own Closed(None) is ignored: `lost` is already set.
        Self::act(slf, |r, out| r.command(id, Command::Abort, out))?.ok();
        Self::schedule_connection_lost(slf, exc)
    }

    pub(super) fn close_impl(slf: &Bound<'_, Self>) -> PyResult<()> {
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
    pub(super) fn deliver_connection_lost(
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
        super::sendfile::connection_lost(slf);
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
