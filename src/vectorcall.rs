//! Calls with keyword arguments through vectorcall, without building a
//! kwargs dict: `asyncio.Future(loop=...)` and `asyncio.Task(coro, loop=...)`
//! are on the hot path of every `create_future`/`create_task`.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

/// `callable(*positional, **dict(zip(names, values)))`.
pub fn call<'py>(
    callable: &Bound<'py, PyAny>,
    positional: &[&Bound<'py, PyAny>],
    keywords: &[(&Bound<'py, PyString>, &Bound<'py, PyAny>)],
) -> PyResult<Bound<'py, PyAny>> {
    let py = callable.py();
    let mut args: Vec<*mut ffi::PyObject> = Vec::with_capacity(positional.len() + keywords.len());
    args.extend(positional.iter().map(|a| a.as_ptr()));
    args.extend(keywords.iter().map(|(_, v)| v.as_ptr()));
    let kwnames = if keywords.is_empty() {
        None
    } else {
        Some(PyTuple::new(py, keywords.iter().map(|(k, _)| *k))?)
    };
    let kwnames_ptr = kwnames
        .as_ref()
        .map_or(std::ptr::null_mut(), |t| t.as_ptr());
    // SAFETY: GIL held; `args` holds borrowed pointers to objects kept alive
    // by the caller's Bounds for the duration of the call; `nargs` counts
    // only the positional ones and `kwnames` names the rest, as the
    // vectorcall protocol requires. The result is a new reference or NULL
    // with an exception set.
    unsafe {
        let result = ffi::PyObject_Vectorcall(
            callable.as_ptr(),
            args.as_ptr(),
            positional.len(),
            kwnames_ptr,
        );
        Bound::from_owned_ptr_or_err(py, result)
    }
}
