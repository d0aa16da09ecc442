//! The work of `call_soon`, `call_soon_threadsafe`, `call_later` and
//! `call_at`, once their arguments are taken apart (they are C methods of
//! the loop type: src/callback_methods.rs).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyFloat;

use crate::callback_args::Args;
use crate::clock;
use crate::debug::check_callback;
use crate::event_loop::{EventLoop, Item};
use crate::handles::{Handle, TimerHandle};
use crate::queued;

impl EventLoop {
    /// call_soon's work, once its arguments are taken apart.
    pub(crate) fn call_soon(
        &self,
        py: Python<'_>,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Py<PyAny>>,
    ) -> PyResult<Py<Handle>> {
        self.check_closed()?;
        if self.is_debug() {
            self.check_thread()?;
            check_callback(py, &callback, "call_soon")?;
        }
        let tb = self.source_traceback(py)?;
        let handle = Handle::new(py, callback.unbind(), args, context, tb)?;
        self.queue_soon(py, handle)
    }

    /// call_soon_threadsafe's work: call_soon's from any thread, waking the
    /// loop if it is waiting for I/O.
    pub(crate) fn call_soon_threadsafe(
        &self,
        py: Python<'_>,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Py<PyAny>>,
    ) -> PyResult<Py<Handle>> {
        self.check_closed()?;
        if self.is_debug() {
            check_callback(py, &callback, "call_soon_threadsafe")?;
        }
        let tb = self.source_traceback(py)?;
        let handle = Handle::new(py, callback.unbind(), args, context, tb)?.thread_safe();
        let handle = self.queue_soon(py, handle)?;
        self.wake_if_polling();
        Ok(handle)
    }

    /// A new handle into the ready queue; out of the collector's sight
    /// while it waits there if the queue is long (src/queued.rs).
    fn queue_soon(&self, py: Python<'_>, handle: Handle) -> PyResult<Py<Handle>> {
        let handle = Py::new(py, handle)?;
        // Not borrowed while hiding: telling a future argument's type may
        // import asyncio's C module, which runs Python code.
        let long = self.ready.borrow_mut(py).len() >= queued::HIDDEN_FROM;
        if long {
            queued::untrack_handle(handle.bind(py));
        }
        self.push_ready(py, Item::Call(handle.clone_ref(py)));
        Ok(handle)
    }
}

impl EventLoop {
    /// call_later's work: callback(*args) after `delay` seconds (an int or
    /// a float).
    pub(crate) fn call_later(
        &self,
        py: Python<'_>,
        delay: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Py<PyAny>>,
    ) -> PyResult<Py<TimerHandle>> {
        if delay.is_none() {
            return Err(PyTypeError::new_err("delay must not be None"));
        }
        let when = match delay.extract::<f64>() {
            Ok(delay) => clock::monotonic() + delay,
            // As asyncio computes it, `self.time() + delay`: its
            // TypeError for what cannot be added to a float.
            Err(_) => PyFloat::new(py, clock::monotonic())
                .add(&delay)?
                .extract::<f64>()?,
        };
        self.schedule_at(py, when, callback, args, context, "call_later")
    }

    /// call_at's work: callback(*args) at `when` on the loop's clock.
    pub(crate) fn call_at(
        &self,
        py: Python<'_>,
        when: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Py<PyAny>>,
    ) -> PyResult<Py<TimerHandle>> {
        if when.is_none() {
            return Err(PyTypeError::new_err("when cannot be None"));
        }
        let when = when.extract::<f64>()?;
        self.schedule_at(py, when, callback, args, context, "call_at")
    }
}

impl EventLoop {
    fn schedule_at(
        &self,
        py: Python<'_>,
        when: f64,
        callback: Bound<'_, PyAny>,
        args: Args,
        context: Option<Py<PyAny>>,
        method: &str,
    ) -> PyResult<Py<TimerHandle>> {
        self.check_closed()?;
        if self.is_debug() {
            self.check_thread()?;
            check_callback(py, &callback, method)?;
        }
        let tb = self.source_traceback(py)?;
        let base = Handle::new(py, callback.unbind(), args, context, tb)?;
        // Allocated outside the heap's borrow: an allocation may collect
        // garbage, and a finalizer may schedule a timer.
        let cancelled = self.timers.borrow_mut(py).cancel_counter();
        let handle = Py::new(py, (TimerHandle::new(when, cancelled), base))?;
        self.timers
            .borrow_mut(py)
            .push(py, when, handle.clone_ref(py));
        Ok(handle)
    }
}
