//! Running a callable inside a `contextvars.Context` through the C API,
//! which avoids looking up and calling `Context.run` for every callback.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// A copy of the current context, as `contextvars.copy_context()`.
pub fn copy_current(py: Python<'_>) -> PyResult<Py<PyAny>> {
    // SAFETY: called with the GIL held; PyContext_CopyCurrent returns a new
    // reference or NULL with an exception set.
    unsafe {
        let ptr = ffi::PyContext_CopyCurrent();
        Bound::from_owned_ptr_or_err(py, ptr).map(Bound::unbind)
    }
}

/// Call `callback(*args)` with `context` entered.
pub fn run_in_context(
    py: Python<'_>,
    context: &Py<PyAny>,
    callback: &Py<PyAny>,
    args: &Py<PyTuple>,
) -> PyResult<()> {
    let ctx = context.as_ptr();
    // SAFETY: GIL held; `ctx` is a live object kept alive by `context`.
    // PyContext_Enter type-checks its argument and sets an exception on error.
    if unsafe { ffi::PyContext_Enter(ctx) } < 0 {
        return Err(PyErr::fetch(py));
    }
    let args = args.bind(py);
    let result = if args.is_empty() {
        callback.call0(py)
    } else {
        callback.call1(py, args)
    };
    // SAFETY: the same context entered above, still alive; exiting restores
    // the previous context even when the call failed.
    if unsafe { ffi::PyContext_Exit(ctx) } < 0 {
        return Err(PyErr::fetch(py));
    }
    result.map(drop)
}
