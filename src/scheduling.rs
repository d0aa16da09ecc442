//! `call_soon`, `call_soon_threadsafe`, `call_later`, `call_at` (the first
//! two are C methods of the loop type: src/call_soon.rs).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyTuple};

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
        let handle = Py::new(py, handle)?;
        queued::untrack_handle(handle.bind(py));
        self.push_ready(py, Item::Call(handle.clone_ref(py)));
        Ok(handle)
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
        let handle = Py::new(py, handle)?;
        queued::untrack_handle(handle.bind(py));
        self.push_ready(py, Item::Call(handle.clone_ref(py)));
        self.wake_if_polling();
        Ok(handle)
    }

    fn new_handle(
        &self,
        py: Python<'_>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<Handle> {
        let tb = self.source_traceback(py)?;
        Handle::new(py, callback.unbind(), Args::from_tuple(args), context, tb)
    }
}

#[pymethods]
impl EventLoop {
    /// Arrange for callback(*args) to be called after `delay` seconds (an
    /// int or a float); return a TimerHandle that can cancel it. Callbacks
    /// due at the same time run in the order they were scheduled.
    #[pyo3(signature = (delay, callback, *args, context=None))]
    fn call_later(
        &self,
        py: Python<'_>,
        delay: Option<Bound<'_, PyAny>>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<Py<TimerHandle>> {
        let when = match delay {
            None => return Err(PyTypeError::new_err("delay must not be None")),
            Some(d) => match d.extract::<f64>() {
                Ok(delay) => clock::monotonic() + delay,
                // As asyncio computes it, `self.time() + delay`: its
                // TypeError for what cannot be added to a float.
                Err(_) => PyFloat::new(py, clock::monotonic())
                    .add(&d)?
                    .extract::<f64>()?,
            },
        };
        self.schedule_at(py, when, callback, args, context, "call_later")
    }

    /// Like call_later(), at the absolute time `when` on the loop's clock
    /// (loop.time()).
    #[pyo3(signature = (when, callback, *args, context=None))]
    fn call_at(
        &self,
        py: Python<'_>,
        when: Option<Bound<'_, PyAny>>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<Py<TimerHandle>> {
        let when = match when {
            None => return Err(PyTypeError::new_err("when cannot be None")),
            Some(w) => w.extract::<f64>()?,
        };
        self.schedule_at(py, when, callback, args, context, "call_at")
    }
}

impl EventLoop {
    fn schedule_at(
        &self,
        py: Python<'_>,
        when: f64,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Py<PyAny>>,
        method: &str,
    ) -> PyResult<Py<TimerHandle>> {
        self.check_closed()?;
        if self.is_debug() {
            self.check_thread()?;
            check_callback(py, &callback, method)?;
        }
        let base = self.new_handle(py, callback, args, context)?;
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
