//! What the loop core needs from an I/O scheduler. RLoop plugs in mio;
//! TokioLoop plugs in tokio. The core never knows which one runs.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

/// One readiness report from a `turn`.
#[derive(Debug, Clone, Copy)]
pub enum Readiness {
    /// Another thread woke the loop (call_soon_threadsafe).
    Woken,
    /// A raw fd watched for asyncio's add_reader/add_writer.
    Fd {
        fd: RawFd,
        readable: bool,
        writable: bool,
    },
}

/// Wakes a loop blocked in `turn`, from any thread.
pub trait Wake: Send + Sync {
    fn wake(&self) -> io::Result<()>;
}

pub trait Reactor: Send {
    /// Waits at most `timeout` (None: forever) for readiness. An interrupted
    /// wait returns `ErrorKind::Interrupted` so the caller can run Python's
    /// signal handlers.
    fn turn(&mut self, timeout: Option<Duration>, out: &mut Vec<Readiness>) -> io::Result<()>;

    fn waker(&self) -> Arc<dyn Wake>;

    /// Sets the interest for a raw fd; both false stops watching it.
    fn watch_fd(&mut self, fd: RawFd, read: bool, write: bool) -> io::Result<()>;

    /// Asks again for readiness of a watched fd. asyncio's readers are
    /// level-triggered: a callback that left data unread must fire again.
    fn rearm_fd(&mut self, fd: RawFd);
}
