//! `Handle` and `TimerHandle`: what `call_soon`/`call_later` return, as in asyncio.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;
use pyo3::{PyTraverseError, PyVisit};

use crate::context;

/// Handles are made and dropped for every callback: keep a freelist.
#[pyclass(subclass, frozen, module = "rloop._rloop")]
pub struct Handle {
    pub(crate) callback: Py<PyAny>,
    pub(crate) args: Py<PyTuple>,
    pub(crate) context: Py<PyAny>,
    cancelled: AtomicBool,
    /// Where the handle was created; set in debug mode only, as asyncio does.
    pub(crate) source_traceback: Option<Py<PyAny>>,
}

impl Handle {
    pub fn new(
        py: Python<'_>,
        callback: Py<PyAny>,
        args: Py<PyTuple>,
        context: Option<Py<PyAny>>,
        source_traceback: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let context = match context {
            Some(c) => c,
            None => context::copy_current(py)?,
        };
        Ok(Handle {
            callback,
            args,
            context,
            cancelled: AtomicBool::new(false),
            source_traceback,
        })
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Marks the handle cancelled; returns whether it was live before.
    pub fn cancel_once(&self) -> bool {
        !self.cancelled.swap(true, Ordering::Relaxed)
    }

    /// Runs the callback unless cancelled. The error, if any, is the
    /// callback's: the loop decides what reaches the exception handler.
    pub fn run(&self, py: Python<'_>) -> PyResult<()> {
        if self.is_cancelled() {
            return Ok(());
        }
        context::run_in_context(py, &self.context, &self.callback, &self.args)
    }

    /// `func(args)` as asyncio formats a callback in reprs and log messages.
    pub fn format_callback(&self, py: Python<'_>) -> PyResult<String> {
        static FORMAT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let f = FORMAT.import(py, "asyncio.format_helpers", "_format_callback_source")?;
        f.call1((self.callback.bind(py), self.args.bind(py)))?
            .extract()
    }

    fn repr_parts(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let mut parts = Vec::new();
        if self.is_cancelled() {
            parts.push("cancelled".to_string());
        }
        parts.push(self.format_callback(py)?);
        if let Some(tb) = &self.source_traceback {
            let tb = tb.bind(py);
            if tb.len()? > 0 {
                let frame = tb.get_item(-1)?;
                parts.push(format!(
                    "created at {}:{}",
                    frame.get_item(0)?.str()?,
                    frame.get_item(1)?.str()?
                ));
            }
        }
        Ok(parts)
    }
}

#[pymethods]
impl Handle {
    /// Handles take part in cycle collection: `obj -> handle -> obj.method`
    /// (a timer kept on the object it calls back) is a common cycle.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.callback)?;
        visit.call(&self.args)?;
        visit.call(&self.context)?;
        if let Some(tb) = &self.source_traceback {
            visit.call(tb)?;
        }
        Ok(())
    }

    fn cancel(&self) {
        self.cancel_once();
    }

    fn cancelled(&self) -> bool {
        self.is_cancelled()
    }

    fn get_context(&self, py: Python<'_>) -> Py<PyAny> {
        self.context.clone_ref(py)
    }

    #[getter(_callback)]
    fn callback_attr(&self, py: Python<'_>) -> Py<PyAny> {
        self.callback.clone_ref(py)
    }

    #[getter(_args)]
    fn args_attr(&self, py: Python<'_>) -> Py<PyTuple> {
        self.args.clone_ref(py)
    }

    #[getter(_source_traceback)]
    fn source_traceback_attr(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.source_traceback.as_ref().map(|t| t.clone_ref(py))
    }

    fn _run(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("<Handle {}>", self.repr_parts(py)?.join(" ")))
    }
}

/// A handle with a deadline. Cancelling one that sits in the timer heap
/// counts it, so the loop can compact the heap when most of it is dead.
#[pyclass(extends = Handle, frozen, module = "rloop._rloop")]
pub struct TimerHandle {
    pub(crate) when: f64,
    /// True while the timer sits in the heap; only those cancellations count.
    pub(crate) in_heap: AtomicBool,
    cancelled_in_heap: Arc<AtomicUsize>,
}

impl TimerHandle {
    pub fn new(when: f64, cancelled_in_heap: Arc<AtomicUsize>) -> Self {
        TimerHandle {
            when,
            in_heap: AtomicBool::new(true),
            cancelled_in_heap,
        }
    }
}

#[pymethods]
impl TimerHandle {
    fn cancel(slf: &Bound<'_, Self>) {
        if slf.as_super().get().cancel_once() && slf.get().in_heap.load(Ordering::Relaxed) {
            slf.get().cancelled_in_heap.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn when(&self) -> f64 {
        self.when
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let mut parts = slf.as_super().get().repr_parts(py)?;
        let when = pyo3::types::PyFloat::new(py, slf.get().when).repr()?;
        parts.insert(0, format!("when={when}"));
        Ok(format!("<TimerHandle {}>", parts.join(" ")))
    }
}
