//! What the loop keeps of a server socket it accepts on: the protocol
//! factory and server to give each connection, the backlog of accepts per
//! readiness report, the socket itself, and the context each connection's
//! callbacks copy. The loop holds these by listener id (event_loop.rs);
//! server_io.rs makes them and accepts with them.

use std::os::fd::RawFd;

use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

pub struct Listening {
    pub(crate) protocol_factory: Py<PyAny>,
    pub(crate) server: Py<PyAny>,
    pub(crate) backlog: usize,
    /// The server's own socket (the acceptor owns a duplicate of its fd).
    pub(crate) sock: Py<PyAny>,
    pub(crate) sock_fd: RawFd,
    /// Copied for each connection (see serve_connection).
    pub(crate) context: Py<PyAny>,
}

impl Listening {
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.protocol_factory)?;
        visit.call(&self.server)?;
        visit.call(&self.sock)?;
        visit.call(&self.context)
    }
}
