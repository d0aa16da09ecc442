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
use pyo3::types::PyType;

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
