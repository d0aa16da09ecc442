//! OS errors as Python sees them: `OSError(errno, strerror)`, which Python
//! turns into the matching subclass (ConnectionResetError, ...) with
//! `.errno` set, exactly as a failing `socket` call would raise; and which
//! exceptions a callback raises out of the loop instead of to its handler.

use std::io;

use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PySystemExit};
use pyo3::prelude::*;

pub fn os_error(e: io::Error) -> PyErr {
    match e.raw_os_error() {
        Some(code) => {
            // SAFETY: strerror returns a pointer to a static or thread-local
            // NUL-terminated message, valid until the next call here.
            let message = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) }
                .to_string_lossy()
                .into_owned();
            PyOSError::new_err((code, message))
        }
        None => PyErr::from(e),
    }
}

/// SystemExit and KeyboardInterrupt leave the loop; every other exception
/// raised by a callback goes to the exception handler, as in asyncio.
pub fn escapes_loop(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<PySystemExit>(py) || err.is_instance_of::<PyKeyboardInterrupt>(py)
}
