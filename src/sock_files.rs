//! Which Python socket last waited on each fd (sock_wait.rs), so that the
//! next wait of that same socket can tell the scheduler that the fd still
//! names the file its kept registration was made for.
//!
//! A scheduler keeps an fd's registration when a wait ends: `sock_recv`
//! adds a reader each time a read would block and removes it once it ran,
//! and a kept registration is watched again with one system call instead
//! of two. But an fd number closed and reused names another file, which
//! the kept registration does not watch, so before watching it again the
//! scheduler asks the kernel (RLoop re-arms it with EPOLL_CTL_MOD,
//! TokioLoop compares the file with fstat). In an echo over `sock_recv`
//! and `sock_sendall` that was one system call in four.
//!
//! A socket object still open on the same fd number has held its file all
//! along: the number cannot have been closed and reused without the socket
//! being closed (short of an `os.close` behind its back, which breaks the
//! socket anyway). So when a wait's socket is the very object that last
//! waited on its fd, and a `socket.socket`, the scheduler is told so and
//! skips the question. The object is held weakly: a socket that died
//! matches nothing, and a new object at its address is not it.

use std::os::fd::RawFd;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyType, PyWeakrefMethods, PyWeakrefReference};
use rustc_hash::FxHashMap as HashMap;

use crate::gil_cell::GilRefCell;

pub(crate) struct SockFiles {
    last: GilRefCell<HashMap<RawFd, Py<PyWeakrefReference>>>,
}

impl Default for SockFiles {
    fn default() -> Self {
        SockFiles {
            last: GilRefCell::new(HashMap::default()),
        }
    }
}

impl SockFiles {
    /// Whether `sock` is the socket that last waited on `fd` (its fileno
    /// now), and so has held the same file since.
    pub(crate) fn same_socket(&self, fd: RawFd, sock: &Bound<'_, PyAny>) -> bool {
        let py = sock.py();
        let last = self.last.borrow_mut(py);
        // The referent, if alive, is `sock` or another live object: taking
        // and dropping a reference to it frees nothing inside the borrow.
        last.get(&fd)
            .and_then(|weak| weak.bind(py).upgrade())
            .is_some_and(|held| held.is(sock))
    }

    /// Remembers `sock` as the socket that waited on `fd` last, if it is a
    /// `socket.socket` (other objects are never vouched for).
    pub(crate) fn remember(&self, fd: RawFd, sock: &Bound<'_, PyAny>) {
        let py = sock.py();
        let weak = is_socket(sock)
            .then(|| PyWeakrefReference::new(sock).ok())
            .flatten()
            .map(Bound::unbind);
        // What the map lets go of is dropped after the borrow.
        let old = match weak {
            Some(weak) => self.last.borrow_mut(py).insert(fd, weak),
            None => self.last.borrow_mut(py).remove(&fd),
        };
        drop(old);
    }
}

fn is_socket(sock: &Bound<'_, PyAny>) -> bool {
    static SOCKET: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    SOCKET
        .import(sock.py(), "socket", "socket")
        .is_ok_and(|ty| sock.is_instance(ty).unwrap_or(false))
}
