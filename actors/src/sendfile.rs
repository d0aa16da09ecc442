//! A file segment in a connection's write stream: a range of a file sent
//! with sendfile(2), zero-copy, in order with the bytes queued before and
//! after it (asyncio's `loop.sendfile()` on a socket transport).
//!
//! The connection holds at most one segment. It starts once the bytes that
//! were queued before it have been sent, and goes on as the socket becomes
//! writable, until its count is sent or the file ends. How it ended comes
//! back as one [`Event::SendfileDone`](crate::Event::SendfileDone).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::fault::FaultState;

/// The most one sendfile(2) call moves on Linux.
const MAX_CHUNK: u64 = 0x7fff_f000;

/// A range of a file to send (see the module docs).
#[derive(Debug)]
pub struct FileSegment {
    /// The segment's own descriptor: the caller may close its file while
    /// the segment waits. sendfile(2) reads at an explicit offset, so the
    /// file position (shared with the caller's descriptor) does not move.
    file: OwnedFd,
    /// Offset in the file of the next byte to send.
    offset: u64,
    /// Bytes still to send; `None`: until the end of the file.
    left: Option<u64>,
    sent: u64,
    /// A sendfile(2) call was made.
    started: bool,
    /// Bytes of the write queue that go out before the file.
    pub(crate) ahead: usize,
}

/// How a file segment ended, reported as `Event::SendfileDone`.
#[derive(Debug)]
pub struct SendfileOutcome {
    /// Bytes of the file sent.
    pub sent: u64,
    /// A sendfile(2) call was made (asyncio moves the file position only
    /// then).
    pub started: bool,
    pub error: Option<SendfileError>,
}

/// Why a file segment stopped before its end.
#[derive(Debug)]
pub enum SendfileError {
    /// A sendfile(2) call failed. An error of the connection (reset,
    /// broken pipe, ...; [`ends_connection`]) also ends it, as a write
    /// error does; any other (the file's) leaves it as it was, so that the
    /// caller may send the file another way.
    Sendfile(io::Error),
    /// Sending the bytes queued ahead of the segment failed; the
    /// connection ended with this error.
    Flush(io::Error),
    /// The connection ended (abort, an error elsewhere, shutdown) first.
    Closed,
}

impl FileSegment {
    /// `count` bytes of `file` from `offset`; `None`: up to the end of the
    /// file, even if it grows meanwhile.
    pub fn new(file: OwnedFd, offset: u64, count: Option<u64>) -> Self {
        FileSegment {
            file,
            offset,
            left: count,
            sent: 0,
            started: false,
            ahead: 0,
        }
    }

    /// Bytes of the file sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    pub(crate) fn outcome(&self, error: Option<SendfileError>) -> SendfileOutcome {
        SendfileOutcome {
            sent: self.sent,
            started: self.started,
            error,
        }
    }

    /// Sends from the file until the segment is over (`Ok(true)`: its
    /// count is sent or the file ended) or the socket would block
    /// (`Ok(false)`). It goes on until "would block", never stopping at a
    /// short count: that may be the end of the file, which no later
    /// writability report would tell.
    pub(crate) fn send(&mut self, sock: RawFd, fault: &mut FaultState) -> io::Result<bool> {
        loop {
            let want = match self.left {
                Some(0) => return Ok(true),
                Some(left) => left.min(MAX_CHUNK),
                None => MAX_CHUNK,
            };
            self.started = true;
            if let Some(e) = fault.before_write() {
                return Err(e);
            }
            let mut offset = libc::off_t::try_from(self.offset)
                .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
            // `want` is at most MAX_CHUNK, which fits any usize we build for.
            let want = usize::try_from(want).unwrap_or(MAX_CHUNK as usize);
            // SAFETY: `sock` is the connection's open socket and `self.file`
            // an open descriptor we own, both alive for the whole call;
            // `offset` is a live local the kernel reads and updates.
            let n = unsafe { libc::sendfile(sock, self.file.as_raw_fd(), &mut offset, want) };
            match u64::try_from(n) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    self.offset += n;
                    self.sent += n;
                    fault.counts.add_sent(n);
                    if let Some(left) = &mut self.left {
                        *left = left.saturating_sub(n);
                    }
                }
                Err(_) => {
                    let e = io::Error::last_os_error();
                    match e.kind() {
                        io::ErrorKind::Interrupted => continue,
                        io::ErrorKind::WouldBlock => return Ok(false),
                        _ => return Err(e),
                    }
                }
            }
        }
    }
}

/// An equal error, for reporting one error twice (to the sendfile and to
/// the connection).
pub(crate) fn copy_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(errno) => io::Error::from_raw_os_error(errno),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// Whether a sendfile(2) error is the socket's, not the file's: the
/// connection is broken. (asyncio's transport would find that out at its
/// next read, which it resumes right after the sendfile; ending the
/// connection now makes that outcome certain rather than a poll away.)
pub(crate) fn ends_connection(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EPIPE
                | libc::ECONNRESET
                | libc::ECONNABORTED
                | libc::ENOTCONN
                | libc::ETIMEDOUT
                | libc::EHOSTUNREACH
                | libc::EHOSTDOWN
                | libc::ENETUNREACH
                | libc::ENETDOWN
                | libc::ENETRESET
                | libc::ESHUTDOWN
        )
    )
}
