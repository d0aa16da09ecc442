//! `loop.call_soon` and `loop.call_soon_threadsafe` as C methods of the
//! loop type.
//!
//! `call_soon` is the loop method called most: every task step
//! (`loop.call_soon(step, context=ctx)`) and every future's done-callback
//! (`loop.call_soon(cb, fut, context=ctx)`) comes through it, and an
//! executor's results come through `call_soon_threadsafe`. As pyo3
//! methods, each call parsed its arguments into a tuple and options first.
//! Installed as METH_FASTCALL | METH_KEYWORDS methods (native_method.rs),
//! they take vectorcall's arguments as they come, and hand the handle no
//! tuple for none or one argument (src/callback_args.rs). A call they
//! cannot take apart gets the running Python's own TypeError for asyncio's
//! signature, `(callback, *args, context=None)`.

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::callback_args::Args;
use crate::event_loop::EventLoop;
use crate::native_method::{call_with_first, install, trampoline, Target};

/// What a call of `name(callback, *args, context=None)` passed.
struct CallbackArguments<'py> {
    lp: Bound<'py, EventLoop>,
    callback: Bound<'py, PyAny>,
    args: Args,
    context: Option<Py<PyAny>>,
}

/// Takes a call's arguments apart, with Python's errors for a bad call.
///
/// # Safety
/// What CPython passes a METH_FASTCALL | METH_KEYWORDS method of the loop
/// type: `slf` is an instance of it, `args` holds `nargs` positional
/// arguments followed by the values of the keywords `kwnames` names.
unsafe fn callback_arguments<'py>(
    py: Python<'py>,
    name: &str,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<CallbackArguments<'py>> {
    // SAFETY: the method descriptor checked that `slf` is an instance of
    // the loop type; it is borrowed for the call.
    let lp = unsafe { Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<EventLoop>() };
    let nargs = usize::try_from(nargs).unwrap_or(0);
    let nkw = if kwnames.is_null() {
        0
    } else {
        // SAFETY: kwnames is a tuple when not NULL.
        usize::try_from(unsafe { ffi::PyTuple_GET_SIZE(kwnames) }).unwrap_or(0)
    };
    let all: &[*mut ffi::PyObject] = if nargs + nkw == 0 {
        &[]
    } else {
        // SAFETY: vectorcall's layout: `nargs + nkw` live objects.
        unsafe { std::slice::from_raw_parts(args, nargs + nkw) }
    };
    let (positional, values) = all.split_at(nargs);
    let mut callback = positional.first().copied();
    let mut context = None;
    let mut understood = true;
    for (i, value) in values.iter().enumerate() {
        // SAFETY: kwnames is a tuple of `nkw` strings here, alive for the
        // call; GIL held.
        let key = unsafe {
            Bound::from_borrowed_ptr(py, ffi::PyTuple_GET_ITEM(kwnames, i as ffi::Py_ssize_t))
        };
        if key.eq(intern!(py, "context"))? {
            context = Some(*value);
        } else if key.eq(intern!(py, "callback"))? && callback.is_none() {
            callback = Some(*value);
        } else {
            understood = false;
        }
    }
    let Some(callback) = callback.filter(|_| understood) else {
        // SAFETY: CPython's arguments, passed on.
        return Err(unsafe { refusal(py, name, slf, args, nargs as ffi::Py_ssize_t, kwnames) });
    };
    // SAFETY: GIL held; vectorcall lends live objects: new references are
    // taken.
    let callback = unsafe { Bound::from_borrowed_ptr(py, callback) };
    let context = context
        .map(|c| unsafe { Bound::from_borrowed_ptr(py, c) })
        .filter(|c| !c.is_none())
        .map(Bound::unbind);
    let args = Args::from_slice(py, positional.get(1..).unwrap_or(&[]))?;
    Ok(CallbackArguments {
        lp,
        callback,
        args,
        context,
    })
}

/// The TypeError of a call that does not fit `(callback, *args,
/// context=None)`: Python's own for that call (its wording changes between
/// versions), got by making it to a Python function with that signature
/// (python/rloop/signatures.py).
///
/// # Safety
/// As `callback_arguments`.
unsafe fn refusal(
    py: Python<'_>,
    name: &str,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyErr {
    static REFUSALS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let made = REFUSALS
        .import(py, "rloop.signatures", "CALLBACK_METHOD_REFUSALS")
        .and_then(|all| all.get_item(name))
        .and_then(|f| {
            // SAFETY: CPython's arguments, passed on behind the instance.
            unsafe { call_with_first(py, Target::Function(&f), slf, args, nargs, kwnames) }
        });
    match made {
        Err(e) => e,
        Ok(_) => PyTypeError::new_err(format!("BaseEventLoop.{name}(): bad arguments")),
    }
}

/// `loop.call_soon`.
///
/// # Safety
/// As `callback_arguments`.
unsafe extern "C" fn call_soon_method(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    trampoline(|py| {
        // SAFETY: CPython's arguments, passed on.
        let a = unsafe { callback_arguments(py, "call_soon", slf, args, nargs, kwnames)? };
        let lp = a.lp.get();
        lp.call_soon(py, a.callback, a.args, a.context)
            .map(Py::into_any)
    })
}

/// `loop.call_soon_threadsafe`.
///
/// # Safety
/// As `callback_arguments`.
unsafe extern "C" fn call_soon_threadsafe_method(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    trampoline(|py| {
        // SAFETY: CPython's arguments, passed on.
        let a =
            unsafe { callback_arguments(py, "call_soon_threadsafe", slf, args, nargs, kwnames)? };
        let lp = a.lp.get();
        lp.call_soon_threadsafe(py, a.callback, a.args, a.context)
            .map(Py::into_any)
    })
}

/// Gives the loop type its `call_soon` and `call_soon_threadsafe`.
pub(crate) fn install_methods(cls: &Bound<'_, PyType>) -> PyResult<()> {
    install(
        cls,
        c"call_soon",
        c"call_soon($self, callback, *args, context=None)\n--\n\nArrange for callback(*args) to be called soon, in the order of the calls;\nreturn a Handle that can cancel it. It runs in `context` (by default, a\ncopy of the current context).",
        call_soon_method,
    )?;
    install(
        cls,
        c"call_soon_threadsafe",
        c"call_soon_threadsafe($self, callback, *args, context=None)\n--\n\nLike call_soon(), but safe to call from any thread: wakes the loop if it\nis waiting for I/O.",
        call_soon_threadsafe_method,
    )
}
