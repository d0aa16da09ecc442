//! Signals interrupt a loop waiting in its poll.
//!
//! Python's C-level signal handler only records the signal; the Python
//! handler (`default_int_handler` raising KeyboardInterrupt, or one set with
//! `signal.signal`) runs later, in the main thread, when the interpreter
//! checks (`PyErr_CheckSignals`). A loop blocked in its poll must return
//! for that check. Two things make it return:
//!
//! - the poll of the thread that took the signal is interrupted: mio's
//!   `epoll_wait` returns `EINTR`; tokio's driver retries it, and the tokio
//!   scheduler tells from its unpark hook (actors/src/signal_pipe.rs);
//! - a signal taken by another thread (an executor thread, say) interrupts
//!   no poll of the loop's. So while `run_forever` runs in the main thread
//!   and no wakeup fd is set, the loop sets its own
//!   (`signal.set_wakeup_fd`, `warn_on_full_buffer=False`): the write end
//!   of the scheduler's signal pipe, whose read end the scheduler watches.
//!   Python's C handler writes the signal number there, from whichever
//!   thread it runs on; the scheduler drains it and the turn returns.
//!
//! After a poll that could block, the core runs `PyErr_CheckSignals` (an
//! atomic load when nothing is pending), outside any callback: an
//! exception from a handler leaves `run_forever`, as it leaves asyncio's
//! (whose `select()` raises it).
//!
//! The wakeup fd is set at the first poll of a run that may block, not at
//! `run_forever`'s entry: a run that never waits (most of
//! `run_until_complete`'s on a busy program) pays nothing. It is put back
//! to -1 when `run_forever` returns, if it is still the loop's. A wakeup fd
//! of the program's own is left alone (the thread that takes the signal
//! still interrupts its poll), and so is add_signal_handler's
//! (python/rloop/signals.py): that one is set through `_set_wakeup_fd`, so
//! the loop knows it without asking Python, and the loop's own comes back
//! once the last handler is removed.

use std::os::fd::RawFd;
use std::sync::atomic::Ordering;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use crate::event_loop::{current_thread_id, EventLoop, WAKEUP_OFF, WAKEUP_UNTRIED};
use crate::py_imports;

impl EventLoop {
    /// Before the first poll of a run that may block. Sets the loop's
    /// wakeup fd where it can; then runs the handlers of signals that came
    /// before it was in place.
    pub(crate) fn install_signal_wakeup(&self, py: Python<'_>) -> PyResult<()> {
        self.signal_wakeup.store(WAKEUP_OFF, Ordering::Relaxed);
        if self.handler_wakeup_fd.load(Ordering::Relaxed) != -1 {
            return Ok(());
        }
        let thread = current_thread_id();
        if *self.wakeup_refused.lock() == Some((thread, std::process::id())) {
            return Ok(());
        }
        let fd = match self.reactor(py)?.as_mut().map(|r| r.signal_fd()) {
            Some(Ok(fd)) => fd,
            // Out of fds, say: the loop does without (the main thread's
            // own signals still interrupt its poll).
            Some(Err(_)) | None => return Ok(()),
        };
        let set_wakeup_fd = py_imports::set_wakeup_fd(py)?;
        let previous: RawFd = match set_wakeup_fd.call((fd,), Some(no_warning(py)?)) {
            Ok(previous) => previous.extract()?,
            Err(_) => {
                // Not the main thread (of the main interpreter): Python
                // refuses, and will in this thread (of this process: a
                // fork may make it the main one) at every run. Asking
                // Python which thread is the main one costs as much as
                // asking it to set the fd.
                *self.wakeup_refused.lock() = Some((thread, std::process::id()));
                return Ok(());
            }
        };
        if previous != -1 {
            // The program's own: put it back (as at exit, its
            // warn_on_full_buffer becomes Python's default).
            set_wakeup_fd.call1((previous,))?;
            return Ok(());
        }
        self.signal_wakeup.store(fd, Ordering::Relaxed);
        py.check_signals()
    }

    /// When `run_forever` returns: the wakeup fd goes back to -1 if it is
    /// still the loop's. One the program set meanwhile is put back (with
    /// Python's default `warn_on_full_buffer`: Python cannot tell its
    /// setting).
    pub(crate) fn restore_signal_wakeup(&self, py: Python<'_>) -> PyResult<()> {
        let fd = self.signal_wakeup.swap(WAKEUP_UNTRIED, Ordering::Relaxed);
        if fd < 0 {
            return Ok(());
        }
        let set_wakeup_fd = py_imports::set_wakeup_fd(py)?;
        let current: RawFd = set_wakeup_fd.call1((-1,))?.extract()?;
        if current != fd {
            set_wakeup_fd.call1((current,))?;
        }
        Ok(())
    }
}

/// `warn_on_full_buffer=False`: a full pipe (a signal storm while the loop
/// runs callbacks) needs no warning, the loop is awake anyway.
fn no_warning(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    static KWARGS: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    let kwargs = KWARGS.get_or_try_init(py, || -> PyResult<Py<PyDict>> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("warn_on_full_buffer", false)?;
        Ok(kwargs.unbind())
    })?;
    Ok(kwargs.bind(py))
}

#[pymethods]
impl EventLoop {
    /// `signal.set_wakeup_fd(fd)` for add_signal_handler and
    /// remove_signal_handler (python/rloop/signals.py), which the loop must
    /// know of: the handlers' fd is not replaced by the loop's, and once
    /// they set -1 the loop's comes back at its next poll.
    fn _set_wakeup_fd(&self, py: Python<'_>, fd: RawFd) -> PyResult<RawFd> {
        let previous: RawFd = py_imports::set_wakeup_fd(py)?.call1((fd,))?.extract()?;
        let fd = fd.max(-1);
        self.handler_wakeup_fd.store(fd, Ordering::Relaxed);
        if fd == -1 {
            // Tried again at the next poll of this run (if one runs).
            let _ = self.signal_wakeup.compare_exchange(
                WAKEUP_OFF,
                WAKEUP_UNTRIED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        } else if self.signal_wakeup.load(Ordering::Relaxed) >= 0 {
            // The loop's was replaced: nothing of the loop's to restore.
            self.signal_wakeup.store(WAKEUP_OFF, Ordering::Relaxed);
        }
        Ok(previous)
    }
}
