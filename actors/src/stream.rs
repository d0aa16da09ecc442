//! A connected non-blocking socket of either family.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

use crate::addr::Addr;

/// The socket a connection actor owns. Dropping it closes the fd.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Which family a [`Stream`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Tcp,
    Unix,
}

impl Stream {
    /// Takes ownership of a connected std socket and makes it non-blocking.
    pub fn from_std_tcp(s: std::net::TcpStream) -> io::Result<Stream> {
        s.set_nonblocking(true)?;
        Ok(Stream::Tcp(TcpStream::from_std(s)))
    }

    /// Takes ownership of a connected std socket and makes it non-blocking.
    pub fn from_std_unix(s: std::os::unix::net::UnixStream) -> io::Result<Stream> {
        s.set_nonblocking(true)?;
        Ok(Stream::Unix(UnixStream::from_std(s)))
    }

    pub fn kind(&self) -> StreamKind {
        match self {
            Stream::Tcp(_) => StreamKind::Tcp,
            Stream::Unix(_) => StreamKind::Unix,
        }
    }

    /// `shutdown(SHUT_WR)`: the peer reads EOF, we can still read.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }

    pub fn peer_addr(&self) -> io::Result<Addr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(Addr::Inet),
            Stream::Unix(s) => s.peer_addr().map(|a| Addr::from_unix(&a)),
        }
    }

    pub fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Stream::Tcp(s) => s.local_addr().map(Addr::Inet),
            Stream::Unix(s) => s.local_addr().map(|a| Addr::from_unix(&a)),
        }
    }

    /// TCP_NODELAY (asyncio sets it on every TCP transport). No-op for Unix.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(on),
            Stream::Unix(_) => Ok(()),
        }
    }

    /// Pending `SO_ERROR`, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_vectored(bufs),
            Stream::Unix(s) => s.read_vectored(bufs),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}
