//! The methods of the transport protocols see (`rloop.transports.
//! SocketTransport`, a Python subclass of asyncio's) that forward to the
//! Rust handle (`_core`).
//!
//! They were bound methods of the handle set on each instance: no frame
//! per call, but a method object per method and connection (nine were
//! some 650 bytes of a connection's 1.4 KiB; the last two, `write` and
//! `is_closing`, 145 bytes of its 1.1 KiB). Here they are C method
//! descriptors of the class (native_method.rs): still no frame, nothing
//! per connection. The handle is read from the instance's `_core` slot at
//! the offset its member descriptor gives (no attribute lookup), and the
//! two calls made per message, `write` and `is_closing` (which asyncio's
//! `StreamWriter.drain` asks every time), go to the handle's Rust methods
//! directly; the others call the handle's method of the same name.

use std::sync::atomic::{AtomicIsize, Ordering};

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

use super::SocketTransport;
use crate::native_method::{call_with_first, install, trampoline, Target};
use crate::slots;

/// Where an instance of the class keeps its `_core` slot (0: not known).
static CORE_OFFSET: AtomicIsize = AtomicIsize::new(0);

/// Reads where `cls`'s instances keep `_core` (a `__slots__` member).
fn find_core_slot(cls: &Bound<'_, PyType>) -> PyResult<()> {
    CORE_OFFSET.store(slots::object_slot(cls, "_core")?, Ordering::Relaxed);
    Ok(())
}

/// The handle of the transport `slf`, from its `_core` slot.
///
/// # Safety
/// `slf` is an instance of the class `transport_methods` was given (the
/// method descriptors check it before they call).
unsafe fn core_of<'py>(py: Python<'py>, slf: *mut ffi::PyObject) -> PyResult<Bound<'py, PyAny>> {
    let offset = CORE_OFFSET.load(Ordering::Relaxed);
    if offset > 0 {
        // SAFETY: `slf` is an instance of the class whose `_core` slot is
        // at `offset` (see above).
        if let Some(core) = unsafe { slots::read(py, slf, offset) } {
            return Ok(core);
        }
    }
    // Unset (or the slot unknown): the attribute lookup finds it or raises
    // the AttributeError.
    // SAFETY: `slf` is a live object lent by the caller.
    let face = unsafe { Bound::from_borrowed_ptr(py, slf) };
    face.getattr(intern!(py, "_core"))
}

/// `self._core.<name>(*args, **kwargs)`, as vectorcall passed them.
///
/// # Safety
/// `slf`, `args`, `nargs` and `kwnames` are what CPython passed to a
/// METH_FASTCALL | METH_KEYWORDS method of the class.
unsafe fn forward(
    py: Python<'_>,
    name: &Bound<'_, PyString>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Py<PyAny>> {
    // SAFETY: as the caller promises.
    let core = unsafe { core_of(py, slf)? };
    // SAFETY: CPython's arguments, passed on as they came; `core` is held
    // above for the call.
    unsafe {
        call_with_first(
            py,
            Target::Method(name),
            core.as_ptr(),
            args,
            nargs,
            kwnames,
        )
    }
}

/// `write(data)`: the handle's write, called directly for the usual call
/// (one positional argument); any other goes through the handle's method,
/// which binds it or raises as it would.
unsafe extern "C" fn write(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    trampoline(|py| {
        if nargs == 1 && kwnames.is_null() {
            // SAFETY: as vectorcall promises: the instance and one live
            // argument.
            let (core, data) = unsafe { (core_of(py, slf)?, Bound::from_borrowed_ptr(py, *args)) };
            if let Ok(core) = core.cast::<SocketTransport>() {
                SocketTransport::write(core, &data)?;
                return Ok(py.None());
            }
        }
        // SAFETY: CPython's arguments, passed on as they came.
        unsafe { forward(py, intern!(py, "write"), slf, args, nargs, kwnames) }
    })
}

/// `is_closing()`, as `write`.
unsafe extern "C" fn is_closing(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    trampoline(|py| {
        if nargs == 0 && kwnames.is_null() {
            // SAFETY: as vectorcall promises: the instance.
            let core = unsafe { core_of(py, slf)? };
            if let Ok(core) = core.cast::<SocketTransport>() {
                return Ok(pyo3::types::PyBool::new(py, core.get().is_closing())
                    .to_owned()
                    .into_any()
                    .unbind());
            }
        }
        // SAFETY: CPython's arguments, passed on as they came.
        unsafe { forward(py, intern!(py, "is_closing"), slf, args, nargs, kwnames) }
    })
}

macro_rules! forwarders {
    ($($method:ident: $doc:literal;)*) => {
        $(
            unsafe extern "C" fn $method(
                slf: *mut ffi::PyObject,
                args: *const *mut ffi::PyObject,
                nargs: ffi::Py_ssize_t,
                kwnames: *mut ffi::PyObject,
            ) -> *mut ffi::PyObject {
                trampoline(|py| {
                    let name = intern!(py, stringify!($method));
                    // SAFETY: CPython's arguments, passed on as they came.
                    unsafe { forward(py, name, slf, args, nargs, kwnames) }
                })
            }
        )*

        /// Makes `cls` (rloop.transports.SocketTransport) forward these
        /// methods to its handle.
        #[pyfunction]
        pub fn transport_methods(cls: &Bound<'_, PyType>) -> PyResult<()> {
            find_core_slot(cls)?;
            install(cls, c"write", c"write($self, data)\n--\n\nWrite the bytes-like `data` without blocking (what cannot be sent at once is buffered).", write)?;
            install(cls, c"is_closing", c"is_closing($self, /)\n--\n\nReturn True if the transport is closing or closed.", is_closing)?;
            $(
                let name = std::ffi::CStr::from_bytes_with_nul(
                    concat!(stringify!($method), "\0").as_bytes(),
                )
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
                install(cls, name, $doc, $method)?;
            )*
            Ok(())
        }
    };
}

forwarders! {
    writelines: c"writelines($self, list_of_data)\n--\n\nWrite every bytes-like object of an iterable, in order.";
    get_extra_info: c"get_extra_info($self, name, default=None)\n--\n\nReturn the transport's information `name`, or `default`.";
    pause_reading: c"pause_reading($self, /)\n--\n\nStop calling the protocol's data_received() until resume_reading().";
    resume_reading: c"resume_reading($self, /)\n--\n\nDeliver received data to the protocol again.";
    is_reading: c"is_reading($self, /)\n--\n\nReturn True if the transport is receiving.";
    get_write_buffer_size: c"get_write_buffer_size($self, /)\n--\n\nReturn the number of bytes buffered for writing.";
    close: c"close($self, /)\n--\n\nClose the transport once buffered data is sent.";
}
