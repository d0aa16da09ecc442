//! Datagram socket I/O: one datagram in or out, never blocking, with the
//! peer's address kept as the kernel gave it.
//!
//! A UDP server answers the addresses it receives from. Python's socket
//! module turns each received address into a `(host, port)` tuple (an
//! `inet_ntop` and a tuple per datagram) and each address it sends to
//! back into a `sockaddr` (a tuple parse, an IDNA check and an
//! `inet_pton`). [`PeerAddr`] is the raw `sockaddr` itself: a value that
//! can be hashed, so the layer above can keep one Python tuple per peer
//! and send to a tuple it made without parsing it again.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::RawFd;

/// The largest address kept: a `sockaddr_in6`. AF_INET and AF_INET6 fit;
/// other families (Unix paths) do not, and are left to Python.
const MAX_LEN: usize = size_of::<libc::sockaddr_in6>();

extern "C" {
    // POSIX; the libc crate leaves it out. Python's socket module formats
    // hosts with it, so this writes them exactly as Python does.
    fn inet_ntop(
        af: libc::c_int,
        src: *const libc::c_void,
        dst: *mut libc::c_char,
        size: libc::socklen_t,
    ) -> *const libc::c_char;
}

/// An IPv4 or IPv6 socket address, as the kernel wrote it.
/// Aligned as the `sockaddr_in6` it holds (its widest field is a u32),
/// so the bytes can be read as one in place.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C, align(4))]
pub struct PeerAddr {
    // Zeroed past `len`, so equal addresses are equal arrays.
    bytes: [u8; MAX_LEN],
    len: u8,
}

/// Room for the longest address `inet_ntop` writes (INET6_ADDRSTRLEN).
pub const HOST_LEN: usize = 46;

/// What Python's socket module makes of an address: the host as
/// `inet_ntop` writes it, the port, and for IPv6 the flow info and scope
/// id (its `(host, port)` or `(host, port, flowinfo, scope_id)`).
pub struct PeerParts<'a> {
    pub host: &'a str,
    pub port: u16,
    pub v6: Option<(u32, u32)>,
}

impl PeerAddr {
    /// The address family (`AF_INET` or `AF_INET6`).
    pub fn family(&self) -> i32 {
        // SAFETY: every PeerAddr holds at least a sa_family_t (see
        // `recv_from`) at the start of its 4-aligned bytes.
        let family = unsafe { *self.bytes.as_ptr().cast::<libc::sa_family_t>() };
        i32::from(family)
    }

    /// The address as Python's socket module reports it; the host is
    /// written into `host`.
    pub fn parts<'a>(&self, host: &'a mut [u8; HOST_LEN]) -> Option<PeerParts<'a>> {
        let (port, v6, addr): (u16, Option<(u32, u32)>, *const libc::c_void) = match self.family() {
            libc::AF_INET if usize::from(self.len) >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: an AF_INET address of a sockaddr_in's length.
                // The bytes are 4-aligned, as a sockaddr_in is.
                let sin = unsafe { &*self.bytes.as_ptr().cast::<libc::sockaddr_in>() };
                (
                    u16::from_be(sin.sin_port),
                    None,
                    std::ptr::addr_of!(sin.sin_addr).cast(),
                )
            }
            libc::AF_INET6 if usize::from(self.len) >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: an AF_INET6 address of a sockaddr_in6's length.
                // The bytes are 4-aligned, as a sockaddr_in6 is.
                let sin6 = unsafe { &*self.bytes.as_ptr().cast::<libc::sockaddr_in6>() };
                (
                    u16::from_be(sin6.sin6_port),
                    Some((u32::from_be(sin6.sin6_flowinfo), sin6.sin6_scope_id)),
                    std::ptr::addr_of!(sin6.sin6_addr).cast(),
                )
            }
            _ => return None,
        };
        // SAFETY: `addr` points at the in_addr / in6_addr of the family
        // passed, and `host` has room for the longest text of either.
        let text = unsafe {
            inet_ntop(
                self.family(),
                addr,
                host.as_mut_ptr().cast(),
                HOST_LEN as libc::socklen_t,
            )
        };
        if text.is_null() {
            return None;
        }
        let end = host.iter().position(|b| *b == 0)?;
        let host = std::str::from_utf8(&host[..end]).ok()?;
        Some(PeerParts { host, port, v6 })
    }
}

/// What one receive gave.
pub enum Received {
    /// A datagram of this many bytes (the first of the buffer; a longer
    /// one was cut, as `recvfrom(n)` cuts it), and its sender if the
    /// address is an IPv4 or IPv6 one.
    Datagram(usize, Option<PeerAddr>),
    /// Nothing to read now.
    WouldBlock,
}

/// One `recvfrom(2)` into `buf`, without blocking. An interrupted call is
/// an `Interrupted` error: the caller runs its signal handlers, then
/// calls again (as Python's socket methods do).
pub fn recv_from(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `buf` is writable for its length and `storage` for `len`
    // bytes; the kernel writes at most those.
    let got = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            storage.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if got < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN) => Ok(Received::WouldBlock),
            _ => Err(err),
        };
    }
    let len = len as usize;
    let peer = (size_of::<libc::sa_family_t>()..=MAX_LEN)
        .contains(&len)
        .then(|| {
            let mut bytes = [0u8; MAX_LEN];
            // SAFETY: the kernel wrote `len` bytes of `storage` (zeroed
            // before, so a shorter address reads as zeros), and
            // `len <= MAX_LEN <= size_of::<sockaddr_storage>()`.
            let written = unsafe { std::slice::from_raw_parts(storage.as_ptr().cast::<u8>(), len) };
            bytes[..len].copy_from_slice(written);
            PeerAddr {
                len: len as u8,
                bytes,
            }
        })
        .filter(|peer| matches!(peer.family(), libc::AF_INET | libc::AF_INET6));
    Ok(Received::Datagram(got as usize, peer))
}

/// One `sendto(2)` of `data` to `to`, without blocking: the bytes sent,
/// or `None` if the socket's buffer is full. An interrupted call is an
/// `Interrupted` error, as for [`recv_from`].
pub fn send_to(fd: RawFd, data: &[u8], to: &PeerAddr) -> io::Result<Option<usize>> {
    // SAFETY: `data` is readable for its length and `to.bytes` holds a
    // socket address of `to.len` bytes.
    let sent = unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT,
            to.bytes.as_ptr().cast(),
            libc::socklen_t::from(to.len),
        )
    };
    sent_count(sent)
}

/// What a send call's return means: the bytes sent, `None` if the
/// socket's buffer is full, or the error (from errno).
fn sent_count(sent: isize) -> io::Result<Option<usize>> {
    if sent >= 0 {
        return Ok(Some(sent as usize));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) => Ok(None),
        _ => Err(err),
    }
}

/// One `send(2)` of `data` on a connected socket, without blocking: as
/// [`send_to`], to the socket's peer.
pub fn send(fd: RawFd, data: &[u8]) -> io::Result<Option<usize>> {
    // SAFETY: `data` is readable for its length.
    let sent = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_DONTWAIT) };
    sent_count(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    fn received(fd: RawFd, buf: &mut [u8]) -> (usize, PeerAddr) {
        match recv_from(fd, buf) {
            Ok(Received::Datagram(n, Some(peer))) => (n, peer),
            _ => panic!("no datagram with an address"),
        }
    }

    #[test]
    fn echoes_to_the_address_received_v4() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 64];
        assert!(matches!(
            recv_from(server.as_raw_fd(), &mut buf),
            Ok(Received::WouldBlock)
        ));
        client
            .send_to(b"ping", server.local_addr().unwrap())
            .unwrap();
        let (n, peer) = received(server.as_raw_fd(), &mut buf);
        assert_eq!(&buf[..n], b"ping");
        let mut host = [0u8; HOST_LEN];
        let parts = peer.parts(&mut host).unwrap();
        assert_eq!(parts.host, "127.0.0.1");
        assert_eq!(parts.port, client.local_addr().unwrap().port());
        assert!(parts.v6.is_none());
        assert_eq!(
            send_to(server.as_raw_fd(), b"pong", &peer).unwrap(),
            Some(4)
        );
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"pong"[..], server.local_addr().unwrap())
        );
        // The same sender gives an equal address.
        client
            .send_to(b"again", server.local_addr().unwrap())
            .unwrap();
        let (_, again) = received(server.as_raw_fd(), &mut buf);
        assert!(again == peer);
    }

    #[test]
    fn sends_to_the_connected_peer() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(server.local_addr().unwrap()).unwrap();
        assert_eq!(send(client.as_raw_fd(), b"hello").unwrap(), Some(5));
        let mut buf = [0u8; 16];
        let (n, peer) = received(server.as_raw_fd(), &mut buf);
        assert_eq!(&buf[..n], b"hello");
        let mut host = [0u8; HOST_LEN];
        assert_eq!(
            peer.parts(&mut host).unwrap().port,
            client.local_addr().unwrap().port()
        );
    }

    #[test]
    fn a_short_buffer_cuts_the_datagram() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .send_to(b"0123456789", server.local_addr().unwrap())
            .unwrap();
        let mut buf = [0u8; 4];
        let (n, _) = received(server.as_raw_fd(), &mut buf);
        assert_eq!(&buf[..n], b"0123");
    }

    #[test]
    fn v6_parts() {
        let Ok(server) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 here
        };
        let client = UdpSocket::bind("[::1]:0").unwrap();
        client.send_to(b"x", server.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 8];
        let (_, peer) = received(server.as_raw_fd(), &mut buf);
        assert_eq!(peer.family(), libc::AF_INET6);
        let mut host = [0u8; HOST_LEN];
        let parts = peer.parts(&mut host).unwrap();
        assert_eq!(parts.host, "::1");
        assert_eq!(parts.port, client.local_addr().unwrap().port());
        assert_eq!(parts.v6, Some((0, 0)));
    }
}
