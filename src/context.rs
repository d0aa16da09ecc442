//! Running a callable inside a `contextvars.Context` through the C API,
//! which avoids looking up and calling `Context.run` for every callback.

use pyo3::ffi;
use pyo3::prelude::*;

/// A copy of the current context, as `contextvars.copy_context()`.
pub fn copy_current(py: Python<'_>) -> PyResult<Py<PyAny>> {
    // SAFETY: called with the GIL held; PyContext_CopyCurrent returns a new
    // reference or NULL with an exception set.
    unsafe {
        let ptr = ffi::PyContext_CopyCurrent();
        Bound::from_owned_ptr_or_err(py, ptr).map(Bound::unbind)
    }
}

/// Make the call `call` with `context` entered.
pub fn run_in_context<'py>(
    py: Python<'py>,
    context: &Py<PyAny>,
    call: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<()> {
    let ctx = context.as_ptr();
    // SAFETY: GIL held; `ctx` is a live object kept alive by `context`.
    // PyContext_Enter type-checks its argument and sets an exception on error.
    if unsafe { ffi::PyContext_Enter(ctx) } < 0 {
        return Err(PyErr::fetch(py));
    }
    let result = call();
    // SAFETY: the same context entered above, still alive; exiting restores
    // the previous context even when the call failed.
    if unsafe { ffi::PyContext_Exit(ctx) } < 0 {
        return Err(PyErr::fetch(py));
    }
    result.map(drop)
}

/// A copy of `context`, as `Context.copy()`.
pub fn copy_of(context: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let py = context.py();
    // SAFETY: GIL held; PyContext_Copy type-checks its argument and returns
    // a new reference or NULL with an exception set.
    unsafe {
        let ptr = ffi::PyContext_Copy(context.as_ptr());
        Bound::from_owned_ptr_or_err(py, ptr).map(Bound::unbind)
    }
}

/// A context entered until this guard is dropped (which exits it, also
/// when the code run inside failed).
pub struct Entered<'py> {
    context: Bound<'py, PyAny>,
}

/// Enters `context`, the context a transport runs its protocol in. A
/// context that is entered already (a protocol method that makes its loop
/// deliver another call of the same transport at once, e.g. by closing the
/// loop) is entered as a copy, as uvloop does.
pub fn enter<'py>(context: &Bound<'py, PyAny>) -> PyResult<Entered<'py>> {
    let py = context.py();
    // SAFETY: GIL held; `context` is alive; PyContext_Enter type-checks its
    // argument and sets an exception on error.
    if unsafe { ffi::PyContext_Enter(context.as_ptr()) } == 0 {
        return Ok(Entered {
            context: context.clone(),
        });
    }
    let err = PyErr::fetch(py);
    if !err.is_instance_of::<pyo3::exceptions::PyRuntimeError>(py) {
        return Err(err);
    }
    let copy = copy_of(context)?.into_bound(py);
    // SAFETY: as above, for the fresh copy (entered by nobody).
    if unsafe { ffi::PyContext_Enter(copy.as_ptr()) } < 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(Entered { context: copy })
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        // SAFETY: GIL held (the guard holds a Bound); the context was
        // entered by `enter` on this thread and is still the current one,
        // since every enter inside it was matched by an exit.
        if unsafe { ffi::PyContext_Exit(self.context.as_ptr()) } < 0 {
            // Only if it is not the current context; nothing to restore.
            drop(PyErr::take(self.context.py()));
        }
    }
}
