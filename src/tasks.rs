//! `create_future`, `create_task` and the task factory.

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use crate::event_loop::EventLoop;
use crate::py_imports;
use crate::vectorcall;

#[pymethods]
impl EventLoop {
    /// Return a new asyncio.Future attached to the loop.
    pub(crate) fn create_future(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let loop_kw = intern!(py, "loop");
        Ok(vectorcall::call(
            &py_imports::future_class(py)?,
            &[],
            &[(loop_kw, slf.as_any())],
        )?
        .unbind())
    }

    /// Schedule the coroutine `coro` to run as a Task (made by the task
    /// factory, if one is set); return the Task. `name` names it, `context`
    /// is the contextvars.Context it runs in.
    ///
    /// The keywords are the running Python's asyncio's, which changed them twice: 3.14
    /// passes every keyword to the task factory (or to `Task`) as given, and
    /// the factory names the task itself; the later 3.13 releases take other
    /// keywords beside `name` and `context` (e.g. `eager_start`) and pass
    /// them on, naming the task themselves; before, only `name` and
    /// `context` exist, and the factory gets `context` alone (when given).
    /// (3.13's loops also rename a factory's task "None" when no name was
    /// given, an asyncio bug rloop does not copy.)
    #[pyo3(signature = (coro, **kwargs))]
    fn create_task(
        slf: &Bound<'_, Self>,
        coro: Bound<'_, PyAny>,
        kwargs: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        this.check_closed()?;
        let factory = this
            .task_factory
            .borrow_mut(py)
            .as_ref()
            .map(|f| f.clone_ref(py));
        let mode = create_task_keywords(py)?;
        if mode == Keywords::AllToFactory {
            return match factory {
                Some(factory) => factory.call(py, (slf, coro), kwargs.as_ref()),
                None => new_task(slf, &coro, kwargs.as_ref()),
            };
        }
        // `name` and `context` apart; the rest, where this version takes more.
        let mut name = None;
        let mut context = None;
        let mut rest: Option<Bound<'_, PyDict>> = None;
        if let Some(kw) = &kwargs {
            for (key, value) in kw.iter() {
                match key.extract::<&str>() {
                    Ok("name") => name = Some(value),
                    Ok("context") => context = Some(value),
                    _ if mode == Keywords::NameContextAndMore => {
                        rest.get_or_insert_with(|| PyDict::new(py))
                            .set_item(key, value)?;
                    }
                    _ => {
                        return Err(PyTypeError::new_err(format!(
                            "create_task() got an unexpected keyword argument {}",
                            key.repr()?
                        )))
                    }
                }
            }
        }
        let name = name.filter(|n| !n.is_none());
        let context = context.filter(|c| !c.is_none());
        let task = match factory {
            None if name.is_none() && context.is_none() && rest.is_none() => {
                return new_task(slf, &coro, None)
            }
            None => {
                let kw = rest.unwrap_or_else(|| PyDict::new(py));
                if let Some(n) = &name {
                    kw.set_item(intern!(py, "name"), n)?;
                }
                if let Some(c) = &context {
                    kw.set_item(intern!(py, "context"), c)?;
                }
                return new_task(slf, &coro, Some(&kw));
            }
            Some(factory) => {
                let mut kw = rest;
                if let Some(c) = &context {
                    kw.get_or_insert_with(|| PyDict::new(py))
                        .set_item(intern!(py, "context"), c)?;
                }
                factory.call(py, (slf, coro), kw.as_ref())?
            }
        };
        if let Some(n) = name {
            task.call_method1(py, intern!(py, "set_name"), (n,))?;
        }
        Ok(task)
    }

    /// Set the factory create_task() makes tasks with, called as
    /// factory(loop, coro, **kwargs); None restores the default (Task).
    #[pyo3(signature = (factory))]
    fn set_task_factory(&self, py: Python<'_>, factory: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        if let Some(f) = &factory {
            if !f.is_callable() {
                return Err(PyTypeError::new_err(
                    "task factory must be a callable or None",
                ));
            }
        }
        let old = std::mem::replace(
            &mut *self.task_factory.borrow_mut(py),
            factory.map(Bound::unbind),
        );
        drop(old);
        Ok(())
    }

    /// Return the task factory, or None if the default is in use.
    fn get_task_factory(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.task_factory
            .borrow_mut(py)
            .as_ref()
            .map(|f| f.clone_ref(py))
    }
}

/// `Task(coro, loop=loop, **kwargs)`, with this frame hidden from the
/// task's creation traceback, as asyncio does.
fn new_task(
    slf: &Bound<'_, EventLoop>,
    coro: &Bound<'_, PyAny>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let py = slf.py();
    let loop_kw = intern!(py, "loop");
    let task = match kwargs.filter(|kw| !kw.is_empty()) {
        None => vectorcall::call(
            &py_imports::task_class(py)?,
            &[coro],
            &[(loop_kw, slf.as_any())],
        )?,
        Some(kw) => {
            // The dict is this call's own (pyo3 makes a new one for
            // **kwargs, create_task makes the others): no copy needed.
            kw.set_item(loop_kw, slf)?;
            py_imports::task_class(py)?.call((coro,), Some(kw))?
        }
    };
    if let Ok(tb) = task.getattr(intern!(py, "_source_traceback")) {
        if !tb.is_none() {
            tb.del_item(-1)?;
        }
    }
    Ok(task.unbind())
}

/// Which keywords the running asyncio's `create_task` takes and where they
/// go, read once from its signature.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keywords {
    /// `name` and `context` only (3.11, 3.12, 3.13.0).
    NameContext,
    /// `name`, `context` and any other, passed on (later 3.13 releases).
    NameContextAndMore,
    /// `**kwargs`, all to the factory (3.14+).
    AllToFactory,
}

fn create_task_keywords(py: Python<'_>) -> PyResult<Keywords> {
    static CELL: PyOnceLock<Keywords> = PyOnceLock::new();
    CELL.get_or_try_init(py, || {
        let inspect = py.import("inspect")?;
        let method = py
            .import("asyncio")?
            .getattr("BaseEventLoop")?
            .getattr("create_task")?;
        let params = inspect
            .call_method1("signature", (method,))?
            .getattr("parameters")?;
        let var_keyword = inspect.getattr("Parameter")?.getattr("VAR_KEYWORD")?;
        let mut any_keyword = false;
        for p in params.call_method0("values")?.try_iter()? {
            if p?.getattr("kind")?.eq(&var_keyword)? {
                any_keyword = true;
            }
        }
        let has_name = params.contains("name")?;
        Ok(match (any_keyword, has_name) {
            (true, false) => Keywords::AllToFactory,
            (true, true) => Keywords::NameContextAndMore,
            (false, _) => Keywords::NameContext,
        })
    })
    .copied()
}
