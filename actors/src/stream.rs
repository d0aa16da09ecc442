//! A connected non-blocking socket of either family, and who closes it.
//!
//! The fd of a [`Stream`] is not closed by the stream: it is closed when the
//! last holder of its [`SharedFd`] lets go. The actor holds one until its
//! scheduler has dropped it (and with it every registration of the fd); the
//! owner of the connection may take another ([`Stream::shared_fd`]) to keep
//! the fd open longer, e.g. for as long as an object of its own (a Python
//! socket) uses the same fd. So one fd serves both, and it is never closed
//! while either still uses it, nor closed twice.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::ManuallyDrop;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

use crate::addr::Addr;

/// The socket a connection actor works on (see the module docs for when its
/// fd is closed).
#[derive(Debug)]
pub struct Stream {
    /// Never dropped: the fd is closed by `fd`.
    io: ManuallyDrop<Io>,
    fd: Arc<SharedFd>,
}

#[derive(Debug)]
enum Io {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// An fd closed when the last `Arc` of it is dropped, unless disowned.
#[derive(Debug)]
pub struct SharedFd {
    fd: RawFd,
    disowned: AtomicBool,
}

impl SharedFd {
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The fd was closed by somebody else (an owner's object that closed it
    /// against the rules): it must not be closed again, as its number may
    /// already belong to another file.
    pub fn disown(&self) {
        self.disowned.store(true, Ordering::Relaxed);
    }
}

impl Drop for SharedFd {
    fn drop(&mut self) {
        if !*self.disowned.get_mut() {
            // SAFETY: the fd is ours (the stream it came from was made from
            // an owned socket), nobody else closes it unless it was
            // disowned, and this is the last holder.
            unsafe { libc::close(self.fd) };
        }
    }
}

/// Which family a [`Stream`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Tcp,
    Unix,
}

/// The family of the socket `fd` (`AF_INET`, `AF_INET6`, `AF_UNIX`), as the
/// kernel has it. A Python socket object's `family` can disagree:
/// `socket.fromfd(fd, AF_UNIX, ...)` (uvicorn's `--fd`) names a TCP socket
/// AF_UNIX, and asyncio serves it as TCP all the same.
pub fn socket_family(fd: RawFd) -> io::Result<libc::c_int> {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `domain` and `len` are valid for writes of a c_int and a
    // socklen_t for the whole call; a bad fd is an error, not UB.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut domain as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(domain)
}

impl Stream {
    fn new(io: Io) -> Stream {
        let fd = match &io {
            Io::Tcp(s) => s.as_raw_fd(),
            Io::Unix(s) => s.as_raw_fd(),
        };
        let fd = Arc::new(SharedFd {
            fd,
            disowned: AtomicBool::new(false),
        });
        Stream {
            io: ManuallyDrop::new(io),
            fd,
        }
    }

    pub(crate) fn from_mio_tcp(s: TcpStream) -> Stream {
        Stream::new(Io::Tcp(s))
    }

    pub(crate) fn from_mio_unix(s: UnixStream) -> Stream {
        Stream::new(Io::Unix(s))
    }

    /// Takes ownership of a connected std socket and makes it non-blocking.
    pub fn from_std_tcp(s: std::net::TcpStream) -> io::Result<Stream> {
        s.set_nonblocking(true)?;
        Ok(Stream::from_mio_tcp(TcpStream::from_std(s)))
    }

    /// Takes ownership of a connected std socket and makes it non-blocking.
    pub fn from_std_unix(s: std::os::unix::net::UnixStream) -> io::Result<Stream> {
        s.set_nonblocking(true)?;
        Ok(Stream::from_mio_unix(UnixStream::from_std(s)))
    }

    /// A connected socket the caller already made non-blocking.
    pub fn from_nonblocking_std_tcp(s: std::net::TcpStream) -> Stream {
        Stream::from_mio_tcp(TcpStream::from_std(s))
    }

    /// A connected socket the caller already made non-blocking.
    pub fn from_nonblocking_std_unix(s: std::os::unix::net::UnixStream) -> Stream {
        Stream::from_mio_unix(UnixStream::from_std(s))
    }

    /// Another holder of the fd: it stays open until this one is dropped
    /// too.
    pub fn shared_fd(&self) -> Arc<SharedFd> {
        Arc::clone(&self.fd)
    }

    pub fn kind(&self) -> StreamKind {
        match &*self.io {
            Io::Tcp(_) => StreamKind::Tcp,
            Io::Unix(_) => StreamKind::Unix,
        }
    }

    /// `shutdown(SHUT_WR)`: the peer reads EOF, we can still read.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match &*self.io {
            Io::Tcp(s) => s.shutdown(Shutdown::Write),
            Io::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }

    /// `shutdown(SHUT_RDWR)`: both directions end, as when a proxy in
    /// between closes (fault injection).
    pub fn shutdown_both(&self) -> io::Result<()> {
        match &*self.io {
            Io::Tcp(s) => s.shutdown(Shutdown::Both),
            Io::Unix(s) => s.shutdown(Shutdown::Both),
        }
    }

    /// Makes the close of this socket send a TCP RST instead of a FIN
    /// (`SO_LINGER` on with a zero timeout). No-op for Unix sockets.
    pub fn set_reset_on_close(&self) -> io::Result<()> {
        if let Io::Unix(_) = &*self.io {
            return Ok(());
        }
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: the fd is this stream's open socket; `linger` is a live
        // local of exactly the size passed, only read by the kernel.
        let rc = unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub fn peer_addr(&self) -> io::Result<Addr> {
        match &*self.io {
            Io::Tcp(s) => s.peer_addr().map(Addr::Inet),
            Io::Unix(s) => s.peer_addr().map(|a| Addr::from_unix(&a)),
        }
    }

    pub fn local_addr(&self) -> io::Result<Addr> {
        match &*self.io {
            Io::Tcp(s) => s.local_addr().map(Addr::Inet),
            Io::Unix(s) => s.local_addr().map(|a| Addr::from_unix(&a)),
        }
    }

    /// TCP_NODELAY (asyncio sets it on every TCP transport). No-op for Unix.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match &*self.io {
            Io::Tcp(s) => s.set_nodelay(on),
            Io::Unix(_) => Ok(()),
        }
    }

    /// Pending `SO_ERROR`, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match &*self.io {
            Io::Tcp(s) => s.take_error(),
            Io::Unix(s) => s.take_error(),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.fd
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut *self.io {
            Io::Tcp(s) => s.read(buf),
            Io::Unix(s) => s.read(buf),
        }
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match &mut *self.io {
            Io::Tcp(s) => s.read_vectored(bufs),
            Io::Unix(s) => s.read_vectored(bufs),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut *self.io {
            Io::Tcp(s) => s.write(buf),
            Io::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match &mut *self.io {
            Io::Tcp(s) => s.write_vectored(bufs),
            Io::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match &mut *self.io {
            Io::Tcp(s) => s.register(r, t, i),
            Io::Unix(s) => s.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match &mut *self.io {
            Io::Tcp(s) => s.reregister(r, t, i),
            Io::Unix(s) => s.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match &mut *self.io {
            Io::Tcp(s) => s.deregister(r),
            Io::Unix(s) => s.deregister(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    }

    fn pair() -> (Stream, std::os::unix::net::UnixStream) {
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        (Stream::from_std_unix(a).expect("non-blocking"), b)
    }

    #[test]
    fn fd_closes_with_its_last_holder() {
        let (stream, _peer) = pair();
        let fd = stream.as_raw_fd();
        let holder = stream.shared_fd();
        drop(stream);
        assert!(is_open(fd), "the other holder keeps it open");
        drop(holder);
        assert!(!is_open(fd));
    }

    #[test]
    fn disowned_fd_is_not_closed_again() {
        let (stream, _peer) = pair();
        let fd = stream.as_raw_fd();
        let holder = stream.shared_fd();
        // Somebody else closes it (against the rules) and says so.
        // SAFETY: the test owns this fd; nothing uses it afterwards.
        unsafe { libc::close(fd) };
        holder.disown();
        // A new file may now get the same number: it must survive the drops.
        let (reuse, _peer2) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        drop(stream);
        drop(holder);
        assert!(is_open(reuse.as_raw_fd()));
    }
}
