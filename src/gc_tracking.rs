//! Taking an object out of the cycle collector's sight and back, for the
//! handles the loop queues (queued.rs) and for a handle that lets go of
//! what it held (handles.rs): which of a handle's objects may be hidden,
//! and the checks that keep CPython's tracking consistent.

use pyo3::ffi;
use pyo3::prelude::*;

use crate::callback_args::Args;
use crate::py_imports;

/// A handle's context back in the collector's sight (the handle is letting
/// go of it: see `Drop for Handle`).
pub(crate) fn track_context(context: &Py<PyAny>) {
    if is_context(context.as_ptr()) {
        track_ptr(context.as_ptr());
    }
}

/// A handle's arguments back in the collector's sight (the handle is
/// cancelled or freed, and they may outlive it).
pub(crate) fn track_args(py: Python<'_>, args: &Args) {
    if let Some(ptr) = hideable_arg(py, args) {
        track_ptr(ptr);
    }
}

/// The object of `args` that the queue hides: the handle's own tuple, or a
/// single argument that is one of asyncio's C futures or tasks.
pub(crate) fn hideable_arg(py: Python<'_>, args: &Args) -> Option<*mut ffi::PyObject> {
    match args {
        Args::Empty => None,
        Args::Tuple(t) => Some(t.as_ptr()),
        Args::One(arg) => {
            let ty = arg.bind(py).get_type();
            let known = |t: PyResult<&Bound<'_, PyAny>>| t.is_ok_and(|t| t.is(&ty));
            (known(py_imports::c_future_type(py)) || known(py_imports::c_task_type(py)))
                .then(|| arg.as_ptr())
        }
    }
}

pub(crate) fn is_context(ptr: *mut ffi::PyObject) -> bool {
    // SAFETY: `ptr` is a live object (its holder holds a reference); reading
    // its type and the address of PyContext_Type touch no mutable state.
    unsafe { ffi::Py_TYPE(ptr) == std::ptr::addr_of_mut!(ffi::PyContext_Type) }
}

pub(crate) fn untrack_ptr(ptr: *mut ffi::PyObject) {
    // SAFETY: GIL held by the caller (it holds a Py and queues it); `ptr` is
    // a live GC object. CPython's PyObject_GC_UnTrack does nothing to an
    // object that is not tracked (3.11 to 3.15 alike).
    unsafe { ffi::PyObject_GC_UnTrack(ptr.cast()) }
}

pub(crate) fn track_ptr(ptr: *mut ffi::PyObject) {
    // SAFETY: GIL held by the caller (it is taking the handle out of the
    // loop's queue); `ptr` is a live GC object, always tracked by CPython
    // while alive unless the queue hid it; it is tracked only if it is not
    // (tracking a tracked object is a fatal error).
    unsafe {
        if ffi::PyObject_GC_IsTracked(ptr) == 0 {
            ffi::PyObject_GC_Track(ptr.cast());
        }
    }
}
