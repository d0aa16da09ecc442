//! Debug mode: `get_debug`/`set_debug`, `slow_callback_duration`, and the
//! extra checks asyncio makes only when debugging.

use std::sync::atomic::Ordering;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;

use crate::event_loop::{current_thread_id, EventLoop};
use crate::handles::Handle;
use crate::py_imports;

impl EventLoop {
    /// In debug mode, asyncio refuses non-threadsafe calls from a thread
    /// other than the one running the loop.
    pub fn check_thread(&self) -> PyResult<()> {
        let owner = self.thread_id.load(Ordering::Relaxed);
        if owner != 0 && owner != current_thread_id() {
            return Err(PyRuntimeError::new_err(
                "Non-thread-safe operation invoked on an event loop other than the current one",
            ));
        }
        Ok(())
    }

    /// Where the caller created a handle, as asyncio records it in debug mode.
    pub fn source_traceback(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if !self.is_debug() {
            return Ok(None);
        }
        let frame = py_imports::sys(py)?.call_method1("_getframe", (0,))?;
        Ok(Some(
            py_imports::extract_stack(py)?.call1((frame,))?.unbind(),
        ))
    }
}

/// asyncio's check of a callback passed to call_soon & co. in debug mode.
pub fn check_callback(py: Python<'_>, callback: &Bound<'_, PyAny>, method: &str) -> PyResult<()> {
    if py_imports::iscoroutine(py)?
        .call1((callback,))?
        .is_truthy()?
        || py_imports::iscoroutinefunction(py)?
            .call1((callback,))?
            .is_truthy()?
    {
        return Err(PyTypeError::new_err(format!(
            "coroutines cannot be used with {method}()"
        )));
    }
    if !callback.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "a callable object was expected by {method}(), got {}",
            callback.repr()?
        )));
    }
    Ok(())
}

#[pymethods]
impl EventLoop {
    /// Return whether the loop is in debug mode.
    fn get_debug(&self) -> bool {
        self.is_debug()
    }

    /// Turn debug mode on or off (slow-callback reports, coroutine origins,
    /// checks that callbacks run in the loop's thread).
    fn set_debug(slf: &Bound<'_, Self>, enabled: bool) -> PyResult<()> {
        let this = slf.get();
        this.debug.store(enabled, Ordering::Relaxed);
        if this.is_running_flag() {
            this.set_origin_tracking(slf.py(), enabled)?;
        }
        Ok(())
    }

    #[getter(_debug)]
    fn debug_attr(&self) -> bool {
        self.is_debug()
    }

    /// In debug mode, a callback that runs longer than this many seconds is
    /// logged (0.1 by default).
    #[getter]
    fn get_slow_callback_duration(&self) -> f64 {
        *self.slow_callback_duration.lock()
    }

    #[setter]
    fn set_slow_callback_duration(&self, value: f64) {
        *self.slow_callback_duration.lock() = value;
    }

    /// The handle being run, in debug mode (asyncio's default exception
    /// handler reads it to show where the handle was created).
    #[getter(_current_handle)]
    fn current_handle_attr(&self, py: Python<'_>) -> Option<Py<Handle>> {
        self.current_handle
            .borrow_mut(py)
            .as_ref()
            .map(|h| h.clone_ref(py))
    }
}

#[pymethods]
impl EventLoop {
    /// For the Python side: asyncio's closed-loop check.
    fn _check_closed(&self) -> PyResult<()> {
        self.check_closed()
    }

    /// For the Python side: asyncio's debug-mode callback check.
    fn _check_callback(
        &self,
        py: Python<'_>,
        callback: Bound<'_, PyAny>,
        method: &str,
    ) -> PyResult<()> {
        check_callback(py, &callback, method)
    }
}
