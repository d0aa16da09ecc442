//! `loop.sendfile()` on a socket transport, zero-copy: the file becomes a
//! segment of the connection actor's write stream (actors/src/sendfile.rs),
//! sent with sendfile(2) behind the bytes written before it. The actor's
//! report resolves the future that python/rloop/sendfile.py awaits. While a
//! sendfile runs, the transport's write() and writelines() refuse, as
//! asyncio's do.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use pyo3::exceptions::{PyConnectionError, PyRuntimeError};
use pyo3::prelude::*;

use super::SocketTransport;
use crate::errors::os_error;
use crate::py_imports;
use crate::reactor::{ActorError, FileSegment, SendfileError, SendfileOutcome};

/// A transport's sendfile, between `_sendfile_start` and `_sendfile_end`.
#[derive(Default)]
pub(crate) struct SendfileState {
    /// A sendfile runs: write() and writelines() raise.
    pub busy: bool,
    /// The future that gets the outcome, until it has it.
    pub waiter: Option<Py<PyAny>>,
}

/// asyncio's error for a sendfile cut short by the connection's end.
fn closed_error() -> PyErr {
    PyConnectionError::new_err("Connection is closed by peer")
}

/// What `loop.sendfile()` raises for `error`, as asyncio's selector loop
/// would: a sendfile(2) failure before anything was sent means "no native
/// sendfile here" (the caller may fall back to read-and-write).
fn exception(py: Python<'_>, error: SendfileError, sent: u64) -> PyResult<PyErr> {
    Ok(match error {
        SendfileError::Sendfile(_) if sent == 0 => {
            let cls = py.import("asyncio")?.getattr("SendfileNotAvailableError")?;
            PyErr::from_value(cls.call1(("os.sendfile call failed",))?)
        }
        SendfileError::Sendfile(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            // The peer went away mid-way: asyncio makes it a ConnectionError
            // on every platform, with the OS error as its cause (and its
            // arguments in this order).
            let err = PyConnectionError::new_err(("socket is not connected", libc::ENOTCONN));
            err.set_cause(py, Some(os_error(e)));
            err
        }
        SendfileError::Sendfile(e) | SendfileError::Flush(e) => os_error(e),
        SendfileError::Closed => closed_error(),
    })
}

/// The actor's report: the waiting future gets `(sent, started, exc)`.
pub(crate) fn done(slf: &Bound<'_, SocketTransport>, outcome: SendfileOutcome) -> PyResult<()> {
    let py = slf.py();
    let Some(waiter) = slf.get().st.lock().sendfile.waiter.take() else {
        return Ok(());
    };
    let exc = match outcome.error {
        Some(error) => Some(exception(py, error, outcome.sent)?.into_value(py)),
        None => None,
    };
    py_imports::set_result_unless_cancelled(py)?
        .call1((waiter.bind(py), (outcome.sent, outcome.started, exc)))?;
    Ok(())
}

/// connection_lost with a sendfile still waiting (the actor ended without
/// its report: a panic): it fails as cut short. On a closed loop the
/// future cannot be resolved and nobody waits for it any more.
pub(crate) fn connection_lost(slf: &Bound<'_, SocketTransport>) {
    if slf.get().st.lock().sendfile.waiter.is_some() {
        let cut = SendfileOutcome {
            sent: 0,
            started: false,
            error: Some(SendfileError::Closed),
        };
        let _ = done(slf, cut);
    }
}

/// An outcome as if sendfile(2) had failed at once with `errno`.
fn failed_at_once(errno: i32) -> SendfileOutcome {
    SendfileOutcome {
        sent: 0,
        started: true,
        error: Some(SendfileError::Sendfile(io::Error::from_raw_os_error(errno))),
    }
}

/// Our own descriptor of the caller's file, for the actor to keep.
fn dup_file(fileno: RawFd) -> PyResult<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) only reads `fileno` (EBADF if it is
    // not open) and returns a new descriptor or -1.
    let fd = unsafe { libc::fcntl(fileno, libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_error(io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just made by fcntl and belongs to nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[pymethods]
impl SocketTransport {
    /// Starts sending `count` bytes (None: up to the end) of the file
    /// `fileno` from `offset`, behind the bytes written so far. `waiter`, a
    /// future of this loop, gets `(sent, started, exc)`: bytes sent,
    /// whether sendfile(2) was called, and the exception to raise or None.
    /// Writes raise until `_sendfile_end()`; if this raises, no sendfile
    /// was started and there is nothing to end.
    #[pyo3(signature = (waiter, fileno, offset, count))]
    fn _sendfile_start(
        slf: &Bound<'_, Self>,
        waiter: Bound<'_, PyAny>,
        fileno: RawFd,
        offset: u64,
        count: Option<u64>,
    ) -> PyResult<()> {
        let this = slf.get();
        let file = dup_file(fileno)?;
        let eof_written = {
            let mut st = this.st.lock();
            if st.sendfile.busy {
                return Err(PyRuntimeError::new_err(
                    "unable to sendfile; sendfile is in progress",
                ));
            }
            if st.lost {
                return Err(closed_error());
            }
            st.sendfile.busy = true;
            st.sendfile.waiter = Some(waiter.unbind());
            st.eof_written
        };
        let started = if eof_written {
            // asyncio's sendfile(2) meets the shut-down socket: EPIPE.
            done(slf, failed_at_once(libc::EPIPE))
        } else {
            let id = this.id;
            let segment = FileSegment::new(file, offset, count);
            match Self::act(slf, |r, out| r.sendfile(id, segment, out)) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(ActorError::WriteAfterEof)) => done(slf, failed_at_once(libc::EPIPE)),
                Ok(Err(ActorError::Closed)) => done(
                    slf,
                    SendfileOutcome {
                        sent: 0,
                        started: false,
                        error: Some(SendfileError::Closed),
                    },
                ),
                Ok(Err(e)) => Err(PyRuntimeError::new_err(e.to_string())),
                Err(e) => Err(e),
            }
        };
        if started.is_err() {
            // Not started after all: no sendfile runs, writes work.
            let mut st = this.st.lock();
            st.sendfile.busy = false;
            drop(st.sendfile.waiter.take());
        }
        started
    }

    /// Ends the sendfile: writes work again. A file still being sent (the
    /// caller was cancelled) stops where it is; what was sent stays sent.
    fn _sendfile_end(slf: &Bound<'_, Self>) -> PyResult<()> {
        let pending = {
            let mut st = slf.get().st.lock();
            st.sendfile.busy = false;
            st.sendfile.waiter.take()
        };
        if pending.is_some() {
            let id = slf.get().id;
            // Fails only on a closed loop, whose actors are gone already.
            let _ = Self::act(slf, |r, out| r.cancel_sendfile(id, out));
        }
        drop(pending);
        Ok(())
    }
}
