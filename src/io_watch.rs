//! asyncio's `add_reader`/`remove_reader`/`add_writer`/`remove_writer`:
//! callbacks run when a raw fd (or file object) becomes readable/writable.

use rustc_hash::FxHashMap as HashMap;
use std::os::fd::RawFd;

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::callback_args::Args;
use crate::errors::os_error;
use crate::event_loop::EventLoop;
use crate::handles::Handle;

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Side {
    Read,
    Write,
}

/// What the caller of `add_watcher` has just seen of the fd, which may
/// spare the scheduler a system call.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Seen {
    /// Nothing: the scheduler finds out whether the fd is ready already.
    Nothing,
    /// Its socket call on that side said it would block (EAGAIN).
    WouldBlock,
    /// As `WouldBlock`, and the fd names the file it named the last time
    /// it was watched (src/sock_files.rs).
    WouldBlockSameFile,
}

impl EventLoop {
    /// The fd of an int or of an object with fileno(), checked as
    /// selectors checks it (ValueError, OverflowError).
    pub fn fd_of(obj: &Bound<'_, PyAny>) -> PyResult<RawFd> {
        let fd: i64 = if let Ok(fd) = obj.extract::<i64>() {
            fd
        } else {
            match obj
                .call_method0(intern!(obj.py(), "fileno"))
                .and_then(|f| f.call_method0(intern!(obj.py(), "__index__")))
                .and_then(|f| f.extract::<i64>())
            {
                Ok(fd) => fd,
                Err(_) => {
                    return Err(PyValueError::new_err(format!(
                        "Invalid file object: {}",
                        obj.repr()?
                    )))
                }
            }
        };
        if fd < 0 {
            return Err(PyValueError::new_err(format!(
                "Invalid file descriptor: {fd}"
            )));
        }
        if fd > i32::MAX as i64 {
            return Err(pyo3::exceptions::PyOverflowError::new_err(
                "Python int too large to convert to C int",
            ));
        }
        Ok(fd as RawFd)
    }

    fn side(&self, side: Side) -> &Mutex<HashMap<RawFd, Py<Handle>>> {
        match side {
            Side::Read => &self.readers,
            Side::Write => &self.writers,
        }
    }

    /// Tells the reactor the interest that the reader/writer tables imply.
    /// `seen`: what the caller has just seen of `side` (it says nothing
    /// of the other, which must then not be wanted).
    fn sync_interest(&self, py: Python<'_>, fd: RawFd, side: Side, seen: Seen) -> PyResult<()> {
        let read = self.readers.lock().contains_key(&fd);
        let write = self.writers.lock().contains_key(&fd);
        let idle = seen != Seen::Nothing
            && match side {
                Side::Read => read && !write,
                Side::Write => write && !read,
            };
        let mut reactor = self.reactor(py)?;
        if let Some(r) = reactor.as_mut() {
            let watched = if idle {
                r.watch_fd_idle(fd, read, write, seen == Seen::WouldBlockSameFile)
            } else {
                r.watch_fd(fd, read, write)
            };
            watched.map_err(os_error)?;
        }
        Ok(())
    }

    /// Adds a reader or writer: `callback(*args)`, in `context`, each time
    /// the fd is ready on `side`, of which the caller has `seen` what it
    /// says.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_watcher(
        &self,
        py: Python<'_>,
        side: Side,
        fileobj: &Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Py<PyAny>>,
        seen: Seen,
    ) -> PyResult<Py<Handle>> {
        self.check_closed()?;
        let fd = Self::fd_of(fileobj)?;
        let tb = self.source_traceback(py)?;
        let handle = Py::new(
            py,
            Handle::new(py, callback.unbind(), Args::from_tuple(args), context, tb)?,
        )?;
        let old = self.side(side).lock().insert(fd, handle.clone_ref(py));
        if let Some(old) = &old {
            old.get().cancel_once(py);
        }
        if let Err(e) = self.sync_interest(py, fd, side, seen) {
            // Registration failed (e.g. a regular file): leave no trace.
            let failed = self.side(side).lock().remove(&fd);
            drop(failed);
            return Err(e);
        }
        drop(old);
        Ok(handle)
    }

    pub(crate) fn remove_watcher(
        &self,
        py: Python<'_>,
        side: Side,
        fileobj: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        if self.closed_flag() {
            return Ok(false);
        }
        let fd = Self::fd_of(fileobj)?;
        let removed = self.side(side).lock().remove(&fd);
        match removed {
            None => Ok(false),
            Some(handle) => {
                handle.get().cancel_once(py);
                // The fd may be closed already; the kernel forgot it then.
                let _ = self.sync_interest(py, fd, side, Seen::Nothing);
                drop(handle);
                Ok(true)
            }
        }
    }
}

#[pymethods]
impl EventLoop {
    /// Call callback(*args) whenever the file descriptor `fd` (or an object
    /// with a fileno() method) is ready for reading. Replaces the fd's
    /// previous reader.
    #[pyo3(signature = (fd, callback, *args))]
    fn add_reader(
        &self,
        py: Python<'_>,
        fd: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        self.add_watcher(py, Side::Read, &fd, callback, args, None, Seen::Nothing)
            .map(drop)
    }

    /// Stop watching `fd` for reading; return True if it was watched.
    fn remove_reader(&self, py: Python<'_>, fd: Bound<'_, PyAny>) -> PyResult<bool> {
        self.remove_watcher(py, Side::Read, &fd)
    }

    /// Call callback(*args) whenever the file descriptor `fd` (or an object
    /// with a fileno() method) is ready for writing. Replaces the fd's
    /// previous writer.
    #[pyo3(signature = (fd, callback, *args))]
    fn add_writer(
        &self,
        py: Python<'_>,
        fd: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        self.add_watcher(py, Side::Write, &fd, callback, args, None, Seen::Nothing)
            .map(drop)
    }

    /// Stop watching `fd` for writing; return True if it was watched.
    fn remove_writer(&self, py: Python<'_>, fd: Bound<'_, PyAny>) -> PyResult<bool> {
        self.remove_watcher(py, Side::Write, &fd)
    }

    /// (read, write): whether `fd` has a reader, a writer. What a selector
    /// would say of it, for the repr of asyncio's Python-level transports.
    fn _fd_watched(&self, fd: RawFd) -> (bool, bool) {
        (
            self.readers.lock().contains_key(&fd),
            self.writers.lock().contains_key(&fd),
        )
    }

    /// asyncio's private forms of remove_reader/remove_writer, used by its
    /// pipe transports.
    fn _remove_reader(&self, py: Python<'_>, fd: Bound<'_, PyAny>) -> PyResult<bool> {
        self.remove_watcher(py, Side::Read, &fd)
    }

    fn _remove_writer(&self, py: Python<'_>, fd: Bound<'_, PyAny>) -> PyResult<bool> {
        self.remove_watcher(py, Side::Write, &fd)
    }

    /// asyncio's private form, used by the sock_* helpers: returns the handle.
    /// As a selector loop's: 3.15's transports pass the context their
    /// protocol's callbacks run in.
    #[pyo3(signature = (fd, callback, *args, context=None))]
    fn _add_reader(
        &self,
        py: Python<'_>,
        fd: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<Py<Handle>> {
        self.add_watcher(py, Side::Read, &fd, callback, args, context, Seen::Nothing)
    }

    #[pyo3(signature = (fd, callback, *args, context=None))]
    fn _add_writer(
        &self,
        py: Python<'_>,
        fd: Bound<'_, PyAny>,
        callback: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<Py<Handle>> {
        self.add_watcher(py, Side::Write, &fd, callback, args, context, Seen::Nothing)
    }
}
