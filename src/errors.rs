//! OS errors as Python sees them: `OSError(errno, strerror)`, which Python
//! turns into the matching subclass (ConnectionResetError, ...) with
//! `.errno` set, exactly as a failing `socket` call would raise.

use std::io;

use pyo3::exceptions::PyOSError;
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
