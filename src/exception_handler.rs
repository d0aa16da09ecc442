//! The exception handler: `set_exception_handler`, `get_exception_handler`,
//! `call_exception_handler`, and how a failing callback reaches it.
//! `default_exception_handler` (formatting and logging) is asyncio's own,
//! bound on the Python class.

use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::event_loop::EventLoop;
use crate::handles::Handle;
use crate::py_imports;

/// SystemExit and KeyboardInterrupt leave the loop; every other exception
/// raised by a callback goes to the exception handler, as in asyncio.
pub fn escapes_loop(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<PySystemExit>(py) || err.is_instance_of::<PyKeyboardInterrupt>(py)
}

fn log_error(py: Python<'_>, message: &str, err: &PyErr) -> PyResult<()> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("exc_info", err.value(py))?;
    py_imports::asyncio_logger(py)?.call_method("error", (message,), Some(&kwargs))?;
    Ok(())
}

impl EventLoop {
    pub fn report_callback_error(
        slf: &Bound<'_, Self>,
        handle: &Py<Handle>,
        err: PyErr,
    ) -> PyResult<()> {
        let py = slf.py();
        if escapes_loop(py, &err) {
            return Err(err);
        }
        let h = handle.get();
        let context = PyDict::new(py);
        context.set_item(
            "message",
            format!("Exception in callback {}", h.format_callback(py)?),
        )?;
        context.set_item("exception", err.value(py))?;
        context.set_item("handle", handle.bind(py))?;
        if let Some(tb) = &h.source_traceback {
            context.set_item("source_traceback", tb.bind(py))?;
        }
        slf.call_method1("call_exception_handler", (context,))?;
        Ok(())
    }

    fn call_default_handler(
        slf: &Bound<'_, Self>,
        context: &Bound<'_, PyAny>,
        on_failure: &str,
    ) -> PyResult<()> {
        let py = slf.py();
        match slf.call_method1("default_exception_handler", (context,)) {
            Ok(_) => Ok(()),
            Err(e) if escapes_loop(py, &e) => Err(e),
            Err(e) => log_error(py, on_failure, &e),
        }
    }
}

#[pymethods]
impl EventLoop {
    #[pyo3(signature = (handler))]
    fn set_exception_handler(&self, handler: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        if let Some(h) = &handler {
            if !h.is_callable() {
                return Err(PyTypeError::new_err(format!(
                    "A callable object or None is expected, got {}",
                    h.repr()?
                )));
            }
        }
        let old = std::mem::replace(
            &mut *self.exception_handler.lock(),
            handler.map(Bound::unbind),
        );
        drop(old);
        Ok(())
    }

    fn get_exception_handler(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.exception_handler
            .lock()
            .as_ref()
            .map(|h| h.clone_ref(py))
    }

    fn call_exception_handler(slf: &Bound<'_, Self>, context: Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let handler = slf
            .get()
            .exception_handler
            .lock()
            .as_ref()
            .map(|h| h.clone_ref(py));
        let Some(handler) = handler else {
            return Self::call_default_handler(
                slf,
                &context,
                "Exception in default exception handler",
            );
        };
        match handler.call1(py, (slf, &context)) {
            Ok(_) => Ok(()),
            Err(e) if escapes_loop(py, &e) => Err(e),
            Err(e) => {
                let wrapped = PyDict::new(py);
                wrapped.set_item("message", "Unhandled error in exception handler")?;
                wrapped.set_item("exception", e.value(py))?;
                wrapped.set_item("context", &context)?;
                Self::call_default_handler(
                    slf,
                    wrapped.as_any(),
                    "Exception in default exception handler while handling an unexpected \
                     error in custom exception handler",
                )
            }
        }
    }
}
