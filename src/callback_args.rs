//! A callback's positional arguments, as a handle keeps them.
//!
//! asyncio keeps them as a tuple. Most callbacks take none (a task's step)
//! or one (the future whose done-callbacks run, a transport's
//! `connection_lost(exc)`): for those a tuple is an object made, tracked by
//! the cycle collector and counted towards its next collection, per
//! callback, only to be taken apart when the callback runs. So a handle
//! keeps no argument or a single one as such, and a tuple only for more;
//! `handle._args` builds asyncio's tuple when asked.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{PyTraverseError, PyVisit};

pub(crate) enum Args {
    Empty,
    One(Py<PyAny>),
    Tuple(Py<PyTuple>),
}

/// New references to a handle's arguments, for one call.
pub(crate) enum BoundArgs<'py> {
    Empty,
    One(Bound<'py, PyAny>),
    Tuple(Bound<'py, PyTuple>),
}

impl Args {
    /// The arguments a tuple holds.
    pub(crate) fn from_tuple(args: Bound<'_, PyTuple>) -> Self {
        match args.len() {
            0 => Args::Empty,
            1 => match args.get_item(0) {
                Ok(arg) => Args::One(arg.unbind()),
                Err(_) => Args::Tuple(args.unbind()),
            },
            _ => Args::Tuple(args.unbind()),
        }
    }

    /// The arguments of a vectorcall (borrowed pointers to live objects).
    pub(crate) fn from_slice(py: Python<'_>, args: &[*mut ffi::PyObject]) -> PyResult<Self> {
        match args {
            [] => Ok(Args::Empty),
            // SAFETY: GIL held; the caller lends live objects: a new
            // reference is taken.
            [arg] => Ok(Args::One(
                unsafe { Bound::from_borrowed_ptr(py, *arg) }.unbind(),
            )),
            many => {
                // SAFETY: as above, for each.
                let items = many
                    .iter()
                    .map(|a| unsafe { Bound::from_borrowed_ptr(py, *a) });
                Ok(Args::Tuple(PyTuple::new(py, items)?.unbind()))
            }
        }
    }

    pub(crate) fn bind<'py>(&self, py: Python<'py>) -> BoundArgs<'py> {
        match self {
            Args::Empty => BoundArgs::Empty,
            Args::One(a) => BoundArgs::One(a.bind(py).clone()),
            Args::Tuple(t) => BoundArgs::Tuple(t.bind(py).clone()),
        }
    }

    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self {
            Args::Empty => Ok(()),
            Args::One(a) => visit.call(a),
            Args::Tuple(t) => visit.call(t),
        }
    }
}

impl<'py> BoundArgs<'py> {
    /// `callback(*args)`.
    pub(crate) fn call(&self, callback: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            BoundArgs::Empty => callback.call0(),
            BoundArgs::One(arg) => {
                let py = callback.py();
                let stack = [arg.as_ptr()];
                // SAFETY: GIL held; `stack` lends one live object (held by
                // `arg`) for the call; the result is a new reference or NULL
                // with an exception set.
                unsafe {
                    let result = ffi::PyObject_Vectorcall(
                        callback.as_ptr(),
                        stack.as_ptr(),
                        1,
                        std::ptr::null_mut(),
                    );
                    Bound::from_owned_ptr_or_err(py, result)
                }
            }
            BoundArgs::Tuple(t) => callback.call1(t),
        }
    }

    /// asyncio's `handle._args`.
    pub(crate) fn to_tuple(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        match self {
            BoundArgs::Empty => Ok(PyTuple::empty(py)),
            BoundArgs::One(a) => PyTuple::new(py, [a]),
            BoundArgs::Tuple(t) => Ok(t.clone()),
        }
    }
}
