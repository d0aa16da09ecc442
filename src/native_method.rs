//! Methods of Python classes written in Rust.
//!
//! A Python class (one that must subclass a Python class of asyncio, so
//! cannot be a pyo3 class) gets a method that is a C method descriptor,
//! as a method of a built-in type is: `obj.method(...)` calls Rust with
//! no Python frame in between, and the class, not each instance, holds
//! it.

use std::ffi::CStr;

use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

/// The C signature of such a method (METH_FASTCALL | METH_KEYWORDS).
pub type Method = ffi::PyCFunctionFastWithKeywords;

/// Runs a method's Rust body as CPython expects of a C function: the
/// result as a new reference, or NULL with the exception set; a panic
/// becomes a `PanicException` instead of unwinding into C.
pub fn trampoline(body: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method descriptor's function attached to
    // the interpreter (GIL held) on this thread.
    let py = unsafe { Python::assume_attached() };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(py)));
    let err = match outcome {
        Ok(Ok(obj)) => return obj.into_ptr(),
        Ok(Err(e)) => e,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic in a native method".to_owned());
            PanicException::new_err(msg)
        }
    };
    err.restore(py);
    std::ptr::null_mut()
}

/// What [`call_with_first`] calls.
pub enum Target<'a, 'py> {
    /// A callable, with `first` as its first argument.
    Function(&'a Bound<'py, PyAny>),
    /// The method of that name of `first`.
    Method(&'a Bound<'py, PyString>),
}

/// `callable(first, *args, **kwargs)` where `args` and `kwnames` are what
/// vectorcall passed a method: the method's arguments handed on, behind
/// another first one (the object to forward to, or the instance itself).
///
/// # Safety
/// `args`, `nargs` and `kwnames` are what CPython passed to a
/// METH_FASTCALL | METH_KEYWORDS method, still live.
pub unsafe fn call_with_first(
    py: Python<'_>,
    target: Target<'_, '_>,
    first: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Py<PyAny>> {
    let nkw = if kwnames.is_null() {
        0
    } else {
        // SAFETY: kwnames is a tuple when not NULL.
        unsafe { ffi::PyTuple_GET_SIZE(kwnames) }
    };
    let mut all = Vec::with_capacity(1 + (nargs + nkw) as usize);
    all.push(first);
    for i in 0..(nargs + nkw) {
        // SAFETY: vectorcall's layout: the positional arguments, then the
        // values of the keywords `kwnames` names.
        all.push(unsafe { *args.offset(i) });
    }
    // SAFETY: GIL held; `all` holds borrowed pointers live for the call
    // (the caller's arguments, and `first`, which the caller holds), the
    // first `nargs + 1` positional, the rest named by `kwnames`.
    let result = unsafe {
        match target {
            Target::Function(callable) => ffi::PyObject_Vectorcall(
                callable.as_ptr(),
                all.as_ptr(),
                (nargs + 1) as usize,
                kwnames,
            ),
            Target::Method(name) => ffi::PyObject_VectorcallMethod(
                name.as_ptr(),
                all.as_ptr(),
                (nargs + 1) as usize,
                kwnames,
            ),
        }
    };
    // SAFETY: a new reference or NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, result).map(Bound::unbind) }
}

/// Sets `cls.<name>` to a method descriptor of `cls` calling `meth`.
/// `doc` may start with a text signature (`name($self, /)\n--\n\n`).
pub fn install(
    cls: &Bound<'_, PyType>,
    name: &'static CStr,
    doc: &'static CStr,
    meth: Method,
) -> PyResult<()> {
    let py = cls.py();
    // A descriptor keeps a pointer to its definition: it lives as long as
    // the process (one per method, made once at import).
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: meth,
        },
        ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        ml_doc: doc.as_ptr(),
    }));
    // SAFETY: GIL held; `cls` is a live type and `def` is never freed.
    // The descriptor checks that `self` is an instance of `cls` before it
    // calls `meth`, which may therefore rely on that.
    let descr = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(cls.as_type_ptr(), def))?
    };
    let attr = name
        .to_str()
        .map_err(|_| pyo3::exceptions::PyValueError::new_err("method name is not UTF-8"))?;
    cls.setattr(attr, descr)
}
