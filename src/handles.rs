//! `Handle` and `TimerHandle`: what `call_soon`/`call_later` return, as in asyncio.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;
use pyo3::{PyTraverseError, PyVisit};

use crate::callback_args::{Args, BoundArgs};
use crate::context;
use crate::gil_cell::GilRefCell;
use crate::run_guard::RunGuard;

/// What a live handle calls. asyncio drops the callback and its arguments
/// when a handle is cancelled, so that a cancelled timer keeps nothing alive
/// until its deadline (CPython's test_sslproto checks that a cancelled
/// handshake frees its SSLContext at once); a handle made in debug mode
/// keeps its repr instead, as asyncio's does.
enum Target {
    Live { callback: Py<PyAny>, args: Args },
    Cancelled { repr: Option<String> },
}

/// The target lives in a `GilRefCell` (gil_cell.rs), as the loop's own
/// state does: only code holding the GIL touches it, and none of these
/// accessors runs Python code while it does (what `replace` takes out is
/// dropped by the caller, after the access).
impl GilRefCell<Target> {
    /// New references to the callback and its arguments, or None once
    /// cancelled. Owned, so a callback that cancels its own handle while it
    /// runs does not free itself under the caller; bound, so that dropping
    /// them is a plain decref (the GIL is known to be held).
    fn live<'py>(&self, py: Python<'py>) -> Option<(Bound<'py, PyAny>, BoundArgs<'py>)> {
        match &*self.borrow_mut(py) {
            Target::Live { callback, args } => Some((callback.bind(py).clone(), args.bind(py))),
            Target::Cancelled { .. } => None,
        }
    }

    fn saved_repr(&self, py: Python<'_>) -> Option<String> {
        match &*self.borrow_mut(py) {
            Target::Live { .. } => None,
            Target::Cancelled { repr } => repr.clone(),
        }
    }

    /// Swaps in `target`; the old value is returned, for the caller to drop.
    fn replace(&self, py: Python<'_>, target: Target) -> Target {
        std::mem::replace(&mut *self.borrow_mut(py), target)
    }

    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(target) = self.borrow_in_gc(visit) {
            if let Target::Live { callback, args } = &*target {
                visit.call(callback)?;
                args.traverse(visit)?;
            }
        }
        Ok(())
    }
}

/// A callback scheduled on the loop (by call_soon(), add_reader(), ...),
/// with its arguments and context; cancel() keeps it from running.
///
/// Weakly referenceable, as asyncio's handles are.
#[pyclass(subclass, frozen, weakref, module = "rloop._rloop")]
pub struct Handle {
    target: GilRefCell<Target>,
    pub(crate) context: Py<PyAny>,
    cancelled: AtomicBool,
    /// Where the handle was created; set in debug mode only, as asyncio does.
    pub(crate) source_traceback: Option<Py<PyAny>>,
    /// Set for call_soon_threadsafe's handles only (src/run_guard.rs).
    guard: Option<RunGuard>,
}

impl Drop for Handle {
    /// The handle's context and arguments may still be hidden from the
    /// collector (src/queued.rs) if the handle never left a loop's queue
    /// the usual way: they must be tracked again before the handle lets go
    /// of them, as CPython frees a context assuming it is tracked. Handles
    /// are freed with the GIL held (in their deallocation, or where they
    /// were made).
    fn drop(&mut self) {
        crate::gc_tracking::track_context(&self.context);
        if let Target::Live { args, .. } = self.target.get_mut() {
            // SAFETY: see above: the GIL is held.
            let py = unsafe { Python::assume_attached() };
            crate::gc_tracking::track_args(py, args);
        }
    }
}

impl Handle {
    pub(crate) fn new(
        py: Python<'_>,
        callback: Py<PyAny>,
        args: Args,
        context: Option<Py<PyAny>>,
        source_traceback: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let context = match context {
            Some(c) => c,
            None => context::copy_current(py)?,
        };
        Ok(Handle {
            target: GilRefCell::new(Target::Live { callback, args }),
            context,
            cancelled: AtomicBool::new(false),
            source_traceback,
            guard: None,
        })
    }

    /// `f(args)` with the handle's arguments while it is live (for the
    /// queue to hide them from the collector: src/queued.rs).
    pub(crate) fn with_args(&self, py: Python<'_>, f: impl FnOnce(&Args)) {
        if let Target::Live { args, .. } = &*self.target.borrow_mut(py) {
            f(args);
        }
    }

    /// This handle, made cancellable from other threads (call_soon_threadsafe).
    pub fn thread_safe(mut self) -> Self {
        self.guard = Some(RunGuard::default());
        self
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Marks the handle cancelled and releases its callback and arguments;
    /// returns whether it was live before.
    pub fn cancel_once(&self, py: Python<'_>) -> bool {
        let was_live = match &self.guard {
            None => !self.cancelled.swap(true, Ordering::Relaxed),
            Some(g) => g.when_idle(py, || !self.cancelled.swap(true, Ordering::Relaxed)),
        };
        if !was_live {
            return false;
        }
        // In debug mode (the only mode with a source traceback) asyncio
        // keeps the handle's repr as it was before the callback went.
        let repr = match &self.source_traceback {
            Some(_) => self.repr_parts(py).ok().map(|p| p.join(" ")),
            None => None,
        };
        let old = self.target.replace(py, Target::Cancelled { repr });
        if let Target::Live { args, .. } = &old {
            // Someone else may hold them (`handle._args`): the collector
            // must see them again, as the queue no longer hides them.
            crate::gc_tracking::track_args(py, args);
        }
        drop(old);
        true
    }

    /// Runs the callback unless cancelled. The error, if any, is the
    /// callback's: the loop decides what reaches the exception handler.
    pub fn run(&self, py: Python<'_>) -> PyResult<()> {
        let Some(g) = &self.guard else {
            return self.run_unguarded(py);
        };
        // A cancel from another thread may have come after the loop's own
        // check; from here on, one waits for the callback to return.
        if self.is_cancelled() {
            return Ok(());
        }
        g.enter();
        let result = self.run_unguarded(py);
        g.leave();
        result
    }

    fn run_unguarded(&self, py: Python<'_>) -> PyResult<()> {
        match self.target.live(py) {
            Some((callback, args)) if !self.is_cancelled() => {
                context::run_in_context(py, &self.context, || args.call(&callback))
            }
            _ => Ok(()),
        }
    }

    /// `func(args)` as asyncio formats a callback in reprs and log messages
    /// (`None` once cancelled: the callback is gone).
    pub fn format_callback(&self, py: Python<'_>) -> PyResult<Option<String>> {
        static FORMAT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let Some((callback, args)) = self.target.live(py) else {
            return Ok(None);
        };
        let f = FORMAT.import(py, "asyncio.format_helpers", "_format_callback_source")?;
        f.call1((callback, args.to_tuple(py)?))?.extract().map(Some)
    }

    /// asyncio's repr of a handle: `cancelled`, the callback while there is
    /// one, and where it was created (debug mode).
    fn repr_parts(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        if let Some(saved) = self.target.saved_repr(py) {
            return Ok(vec![saved]);
        }
        let mut parts = Vec::new();
        if self.is_cancelled() {
            parts.push("cancelled".to_string());
        }
        if let Some(cb) = self.format_callback(py)? {
            parts.push(cb);
        }
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
        self.target.traverse(&visit)?;
        visit.call(&self.context)?;
        if let Some(tb) = &self.source_traceback {
            visit.call(tb)?;
        }
        Ok(())
    }

    /// Cancel the callback: it will not run. Does nothing if it already ran
    /// or was cancelled.
    fn cancel(&self, py: Python<'_>) {
        self.cancel_once(py);
    }

    /// Return True if the handle was cancelled.
    fn cancelled(&self, py: Python<'_>) -> bool {
        match &self.guard {
            None => self.is_cancelled(),
            Some(g) => g.when_idle(py, || self.is_cancelled()),
        }
    }

    /// Return the contextvars.Context the callback runs in.
    fn get_context(&self, py: Python<'_>) -> Py<PyAny> {
        self.context.clone_ref(py)
    }

    #[getter(_callback)]
    fn callback_attr(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.target.live(py).map(|(callback, _)| callback.unbind())
    }

    #[getter(_args)]
    fn args_attr(&self, py: Python<'_>) -> PyResult<Option<Py<PyTuple>>> {
        match self.target.live(py) {
            Some((_, args)) => Ok(Some(args.to_tuple(py)?.unbind())),
            None => Ok(None),
        }
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

/// A callback scheduled for a time, by call_later() or call_at().
///
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
    /// Cancel the timer: its callback will not run. Does nothing if it
    /// already ran or was cancelled.
    fn cancel(slf: &Bound<'_, Self>) {
        if slf.as_super().get().cancel_once(slf.py()) && slf.get().in_heap.load(Ordering::Relaxed) {
            slf.get().cancelled_in_heap.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Return the time the callback is scheduled for, on the loop's clock
    /// (loop.time()).
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
