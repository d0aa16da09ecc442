//! Listening sockets and non-blocking accept.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use mio::event::Source;
use mio::net::{TcpListener, UnixListener};
use mio::{Interest, Registry, Token};

use crate::addr::Addr;
use crate::stream::Stream;

/// A listening socket of either family. Dropping it closes the fd.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// Takes ownership of a bound, listening std socket (made non-blocking).
    pub fn from_std_tcp(l: std::net::TcpListener) -> io::Result<Listener> {
        l.set_nonblocking(true)?;
        Ok(Listener::Tcp(TcpListener::from_std(l)))
    }

    /// Takes ownership of a bound, listening std socket (made non-blocking).
    pub fn from_std_unix(l: std::os::unix::net::UnixListener) -> io::Result<Listener> {
        l.set_nonblocking(true)?;
        Ok(Listener::Unix(UnixListener::from_std(l)))
    }

    /// Accepts one pending connection. `Ok(None)` means none is pending
    /// (WouldBlock); `Interrupted` is retried. Other errors (EMFILE,
    /// ENFILE, ECONNABORTED, ...) are returned for the caller to log; the
    /// listener stays usable — see [`is_transient_accept_error`].
    /// The returned stream is already non-blocking and close-on-exec.
    pub fn accept(&self) -> io::Result<Option<(Stream, Addr)>> {
        loop {
            let r = match self {
                Listener::Tcp(l) => l
                    .accept()
                    .map(|(s, a)| (Stream::from_mio_tcp(s), Addr::Inet(a))),
                Listener::Unix(l) => l
                    .accept()
                    .map(|(s, a)| (Stream::from_mio_unix(s), Addr::from_unix(&a))),
            };
            return match r {
                Ok(pair) => Ok(Some(pair)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    pub fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(Addr::Inet),
            Listener::Unix(l) => l.local_addr().map(|a| Addr::from_unix(&a)),
        }
    }
}

/// Accept errors after which the listener keeps working (asyncio logs these
/// and, for fd exhaustion, pauses accepting for a moment).
pub fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE)
            | Some(libc::ENFILE)
            | Some(libc::ENOBUFS)
            | Some(libc::ENOMEM)
            | Some(libc::ECONNABORTED)
            | Some(libc::EPROTO)
            | Some(libc::EPERM)
    ) || e.kind() == io::ErrorKind::ConnectionAborted
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }
}

impl Source for Listener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.register(r, t, i),
            Listener::Unix(l) => l.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.reregister(r, t, i),
            Listener::Unix(l) => l.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.deregister(r),
            Listener::Unix(l) => l.deregister(r),
        }
    }
}
