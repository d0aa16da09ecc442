//! Socket addresses of either family, as the transport reports them.

use std::net::SocketAddr;
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::PathBuf;

/// Peer or local address of a stream or listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// IPv4 / IPv6.
    Inet(SocketAddr),
    /// A filesystem path (`Some`), or an unnamed socket (`None`; asyncio
    /// reports `''`).
    Unix(Option<PathBuf>),
    /// Linux abstract namespace name, without the leading NUL
    /// (asyncio reports `b'\0' + name`).
    UnixAbstract(Vec<u8>),
}

impl Addr {
    pub(crate) fn from_unix(addr: &UnixSocketAddr) -> Addr {
        if let Some(path) = addr.as_pathname() {
            return Addr::Unix(Some(path.to_path_buf()));
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            if let Some(name) = addr.as_abstract_name() {
                return Addr::UnixAbstract(name.to_vec());
            }
        }
        Addr::Unix(None)
    }
}
