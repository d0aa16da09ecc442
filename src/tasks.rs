//! `create_future`, `create_task` and the task factory.

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::event_loop::EventLoop;
use crate::py_imports;
use crate::vectorcall;

#[pymethods]
impl EventLoop {
    pub(crate) fn create_future(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let loop_kw = intern!(py, "loop");
        Ok(vectorcall::call(
            py_imports::future_class(py)?,
            &[],
            &[(loop_kw, slf.as_any())],
        )?
        .unbind())
    }

    #[pyo3(signature = (coro, *, name=None, context=None))]
    fn create_task(
        slf: &Bound<'_, Self>,
        coro: Bound<'_, PyAny>,
        name: Option<Bound<'_, PyAny>>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        this.check_closed()?;
        let factory = this.task_factory.lock().as_ref().map(|f| f.clone_ref(py));
        let task = match factory {
            None => {
                let mut keywords = vec![(intern!(py, "loop"), slf.as_any())];
                if let Some(n) = &name {
                    keywords.push((intern!(py, "name"), n));
                }
                if let Some(c) = &context {
                    keywords.push((intern!(py, "context"), c));
                }
                let task = vectorcall::call(py_imports::task_class(py)?, &[&coro], &keywords)?;
                // Hide this frame from the task's creation traceback, as asyncio does.
                if let Ok(tb) = task.getattr("_source_traceback") {
                    if !tb.is_none() {
                        tb.del_item(-1)?;
                    }
                }
                return Ok(task.unbind());
            }
            Some(factory) => match &context {
                None => factory.call1(py, (slf, coro))?,
                Some(c) => {
                    let kwargs = PyDict::new(py);
                    kwargs.set_item("context", c)?;
                    factory.call(py, (slf, coro), Some(&kwargs))?
                }
            },
        };
        if let Some(n) = name {
            task.call_method1(py, "set_name", (n,))?;
        }
        Ok(task)
    }

    #[pyo3(signature = (factory))]
    fn set_task_factory(&self, factory: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        if let Some(f) = &factory {
            if !f.is_callable() {
                return Err(PyTypeError::new_err(
                    "task factory must be a callable or None",
                ));
            }
        }
        let old = std::mem::replace(&mut *self.task_factory.lock(), factory.map(Bound::unbind));
        drop(old);
        Ok(())
    }

    fn get_task_factory(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.task_factory.lock().as_ref().map(|f| f.clone_ref(py))
    }
}
