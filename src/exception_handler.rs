//! The exception handler: `set_exception_handler`, `get_exception_handler`,
//! `call_exception_handler`, and how a failing callback reaches it.
//! `default_exception_handler` (formatting and logging) is asyncio's own,
//! bound on the Python class.

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::escapes_loop;
use crate::event_loop::EventLoop;
use crate::handles::Handle;
use crate::py_imports;

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
        // A callback that cancelled its own handle before it raised is gone
        // by now; asyncio formats the None left in its place the same way.
        let callback = h.format_callback(py)?;
        context.set_item(
            "message",
            format!(
                "Exception in callback {}",
                callback.as_deref().unwrap_or("None()")
            ),
        )?;
        context.set_item("exception", err.value(py))?;
        context.set_item("handle", handle.bind(py))?;
        if let Some(tb) = &h.source_traceback {
            context.set_item("source_traceback", tb.bind(py))?;
        }
        slf.call_method1("call_exception_handler", (context,))?;
        Ok(())
    }

    /// Calls a custom handler. From 3.12 on, asyncio runs it in the
    /// context of the task, future or handle the report is about, so a
    /// handler sees the context variables of the code that failed
    /// (CPython gh-96704); before, in the loop's current context. The
    /// lookup follows asyncio's: "task", else "future", else "handle",
    /// whichever has a `get_context()` giving something with `run`.
    fn run_handler(
        slf: &Bound<'_, Self>,
        handler: &Bound<'_, PyAny>,
        context: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        if py.version_info() >= (3, 12) {
            let mut thing = py.None().into_bound(py);
            for key in ["task", "future", "handle"] {
                thing = context.call_method1(intern!(py, "get"), (key,))?;
                if !thing.is_none() {
                    break;
                }
            }
            let get_context = intern!(py, "get_context");
            if !thing.is_none() && thing.hasattr(get_context)? {
                let ctx = thing.call_method0(get_context)?;
                if !ctx.is_none() && ctx.hasattr(intern!(py, "run"))? {
                    ctx.call_method1(intern!(py, "run"), (handler, slf, context))?;
                    return Ok(());
                }
            }
        }
        handler.call1((slf, context))?;
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
    /// Set the loop's exception handler, called as handler(loop, context);
    /// None restores the default handler.
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

    /// Return the exception handler set with set_exception_handler(), or
    /// None if the default one is in use.
    fn get_exception_handler(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.exception_handler
            .lock()
            .as_ref()
            .map(|h| h.clone_ref(py))
    }

    /// Report an error context (a dict with 'message', and maybe
    /// 'exception', 'future', 'task', 'handle', ...) to the exception
    /// handler, or to the default one if none is set.
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
        match Self::run_handler(slf, handler.bind(py), &context) {
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
