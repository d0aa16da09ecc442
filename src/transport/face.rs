//! The methods of the transport protocols see (`rloop.transports.
//! SocketTransport`, a Python subclass of asyncio's) that forward to the
//! Rust handle (`_core`).
//!
//! They were bound methods of the handle set on each instance: no frame
//! per call, but nine method objects per connection, some 650 bytes of a
//! connection's 1.4 KiB. Here they are C method descriptors of the class
//! (native_method.rs): still no frame, nothing per connection, but a
//! lookup of the handle and of its method per call (some 40 ns). So the
//! two calls made per message, `write` and `is_closing` (which asyncio's
//! `StreamWriter.drain` asks every time), stay bound on the instance.

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

use crate::native_method::{call_with_first, install, trampoline, Target};

/// `self._core.<name>(*args, **kwargs)`, as vectorcall passed them.
///
/// # Safety
/// `slf`, `args`, `nargs` and `kwnames` are what CPython passed to a
/// METH_FASTCALL | METH_KEYWORDS method.
unsafe fn forward(
    py: Python<'_>,
    name: &Bound<'_, PyString>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Py<PyAny>> {
    // SAFETY: `slf` is the instance the descriptor was called on.
    let face = unsafe { Bound::from_borrowed_ptr(py, slf) };
    let core = face.getattr(intern!(py, "_core"))?;
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
