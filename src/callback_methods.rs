//! The loop methods that schedule a callback, `call_soon`,
//! `call_soon_threadsafe`, `call_later` and `call_at`, as C methods of the
//! loop type (their work is in scheduling.rs).
//!
//! `call_soon` is the loop method called most: every task step
//! (`loop.call_soon(step, context=ctx)`) and every future's done-callback
//! (`loop.call_soon(cb, fut, context=ctx)`) comes through it; an
//! executor's results come through `call_soon_threadsafe`; every
//! `asyncio.sleep`, timeout and keep-alive timer through `call_later` or
//! `call_at`. As pyo3 methods, each call parsed its arguments into a tuple
//! and options first. Installed as METH_FASTCALL | METH_KEYWORDS methods
//! (native_method.rs), they read vectorcall's arguments in place, and hand
//! the handle no tuple for none or one argument (src/callback_args.rs).
//!
//! Only the usual call is taken apart here: the leading arguments
//! positional, `context` the only keyword. Any other call (a keyword for a
//! positional parameter, too few arguments...) is made again to a Python
//! function with asyncio's signature (python/rloop/signatures.py), which
//! binds it, or raises the running Python's own TypeError for it.

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyType};

use crate::callback_args::Args;
use crate::event_loop::EventLoop;
use crate::native_method::{call_with_first, install, trampoline, Target};

/// What a call passed: the leading argument (`delay`, `when`; Python's
/// None for the call_soon methods), the callback, its arguments, the
/// context.
struct Call<'py> {
    lp: Bound<'py, EventLoop>,
    lead: Bound<'py, PyAny>,
    callback: Bound<'py, PyAny>,
    args: Args,
    context: Option<Py<PyAny>>,
}

/// Takes a call of `name` apart; `leads` is 1 for the methods with a
/// leading parameter before `callback`, else 0.
///
/// # Safety
/// What CPython passes a METH_FASTCALL | METH_KEYWORDS method of the loop
/// type: `slf` is an instance of it, `args` holds `nargs` positional
/// arguments followed by the values of the keywords `kwnames` names.
unsafe fn take_apart<'py>(
    py: Python<'py>,
    name: &str,
    leads: usize,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Call<'py>> {
    // SAFETY: the method descriptor checked that `slf` is an instance of
    // the loop type; it is borrowed for the call.
    let lp = unsafe { Bound::from_borrowed_ptr(py, slf).cast_into_unchecked::<EventLoop>() };
    let npos = usize::try_from(nargs).unwrap_or(0);
    let nkw = if kwnames.is_null() {
        0
    } else {
        // SAFETY: kwnames is a tuple when not NULL.
        usize::try_from(unsafe { ffi::PyTuple_GET_SIZE(kwnames) }).unwrap_or(0)
    };
    let usual = npos > leads
        && (nkw == 0
            || (nkw == 1 && {
                // SAFETY: kwnames is a tuple of one string here.
                let key =
                    unsafe { Bound::from_borrowed_ptr(py, ffi::PyTuple_GET_ITEM(kwnames, 0)) };
                is_context_keyword(&key)?
            }));
    if !usual {
        // SAFETY: CPython's arguments, passed on.
        return unsafe { bound_by_python(py, name, lp, slf, args, nargs, kwnames) };
    }
    // SAFETY: vectorcall's layout: `npos + nkw` live objects, borrowed
    // for the call; new references are taken of those kept.
    let all = unsafe { std::slice::from_raw_parts(args, npos + nkw) };
    let take = |ptr: *mut ffi::PyObject| unsafe { Bound::from_borrowed_ptr(py, ptr) };
    let lead = if leads == 1 {
        take(all[0])
    } else {
        py.None().into_bound(py)
    };
    let callback = take(all[leads]);
    let context = all[npos..]
        .first()
        .map(|c| take(*c))
        .filter(|c| !c.is_none())
        .map(Bound::unbind);
    let args = Args::from_slice(py, &all[leads + 1..npos])?;
    Ok(Call {
        lp,
        lead,
        callback,
        args,
        context,
    })
}

/// Whether a call's one keyword is `context`. On 3.12+ asyncio's C code
/// names it with CPython's own interned string, the one `intern!` gives;
/// on 3.11 with a string of its own, the same object every time: once it
/// compared equal, it is kept, and known by its address from then on (a
/// string comparison was a tenth of what rloop spends on a task step).
fn is_context_keyword(key: &Bound<'_, PyAny>) -> PyResult<bool> {
    static SEEN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = key.py();
    let context = intern!(py, "context");
    if key.is(context) || SEEN.get(py).is_some_and(|seen| key.is(seen)) {
        return Ok(true);
    }
    if !key.eq(context)? {
        return Ok(false);
    }
    // Kept alive here, so its address is never another object's.
    let _ = SEEN.set(py, key.clone().unbind());
    Ok(true)
}

/// A call that is not the usual one, bound by a Python function with
/// asyncio's signature of `name`, which returns `(lead, callback, args,
/// context)` or raises Python's own TypeError for the call.
///
/// # Safety
/// As `take_apart`.
unsafe fn bound_by_python<'py>(
    py: Python<'py>,
    name: &str,
    lp: Bound<'py, EventLoop>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Call<'py>> {
    static BINDERS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let binder = BINDERS
        .import(py, "rloop.signatures", "CALLBACK_METHOD_BINDERS")?
        .get_item(name)?;
    // SAFETY: CPython's arguments, passed on behind the instance.
    let bound =
        unsafe { call_with_first(py, Target::Function(&binder), slf, args, nargs, kwnames)? };
    let bound = bound.into_bound(py);
    let (lead, callback, args, context): (
        Bound<'py, PyAny>,
        Bound<'py, PyAny>,
        Bound<'py, PyTuple>,
        Bound<'py, PyAny>,
    ) = bound.extract()?;
    Ok(Call {
        lp,
        lead,
        callback,
        args: Args::from_tuple(args),
        context: (!context.is_none()).then(|| context.unbind()),
    })
}

macro_rules! callback_methods {
    ($($method:ident($name:literal, leads = $leads:literal): |$py:ident, $call:ident| $body:expr;)*) => {
        $(
            /// # Safety
            /// As `take_apart`.
            unsafe extern "C" fn $method(
                slf: *mut ffi::PyObject,
                args: *const *mut ffi::PyObject,
                nargs: ffi::Py_ssize_t,
                kwnames: *mut ffi::PyObject,
            ) -> *mut ffi::PyObject {
                trampoline(|$py| {
                    // SAFETY: CPython's arguments, passed on.
                    let $call = unsafe { take_apart($py, $name, $leads, slf, args, nargs, kwnames)? };
                    $body
                })
            }
        )*
    };
}

callback_methods! {
    call_soon_method("call_soon", leads = 0): |py, c| {
        c.lp.get().call_soon(py, c.callback, c.args, c.context).map(Py::into_any)
    };
    call_soon_threadsafe_method("call_soon_threadsafe", leads = 0): |py, c| {
        c.lp.get().call_soon_threadsafe(py, c.callback, c.args, c.context).map(Py::into_any)
    };
    call_later_method("call_later", leads = 1): |py, c| {
        c.lp.get().call_later(py, c.lead, c.callback, c.args, c.context).map(Py::into_any)
    };
    call_at_method("call_at", leads = 1): |py, c| {
        c.lp.get().call_at(py, c.lead, c.callback, c.args, c.context).map(Py::into_any)
    };
}

/// Gives the loop type the four methods.
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
    )?;
    install(
        cls,
        c"call_later",
        c"call_later($self, delay, callback, *args, context=None)\n--\n\nArrange for callback(*args) to be called after `delay` seconds (an int or\na float); return a TimerHandle that can cancel it. Callbacks due at the\nsame time run in the order they were scheduled.",
        call_later_method,
    )?;
    install(
        cls,
        c"call_at",
        c"call_at($self, when, callback, *args, context=None)\n--\n\nLike call_later(), at the absolute time `when` on the loop's clock\n(loop.time()).",
        call_at_method,
    )
}
