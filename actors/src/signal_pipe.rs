//! How a signal reaches a scheduler blocked in its poll.
//!
//! A signal handler runs on whatever thread the kernel picks, and only the
//! poll of that thread returns `EINTR`. A language runtime that handles
//! signals later, on one thread of its own (Python runs its handlers in the
//! main thread), wants its poll woken whichever thread took the signal; its
//! C-level handler can write a byte to a file descriptor for that (Python's
//! `signal.set_wakeup_fd`). [`SignalPipe`] is such a pipe: the
//! scheduler watches the read end, and a byte written to the other wakes a
//! blocked `turn`, which drains it and returns.
//!
//! tokio's I/O driver retries a poll that returned `EINTR` rather than
//! returning from the park (runtime/io/driver.rs), so a signal taken by the
//! thread parked in it would not end a turn either; [`take_eintr`] is how
//! the tokio scheduler tells.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};

use mio::unix::pipe::{Receiver, Sender};

/// A non-blocking pipe: bytes written to one end wake the poll that watches
/// the other. A pipe rather than a socket pair: one-byte writes share its
/// pages (64 KiB of signals), where each takes a buffer of its own in a
/// socket (a few hundred fill it).
pub(crate) struct SignalPipe {
    read: Receiver,
    write: Sender,
}

impl SignalPipe {
    pub(crate) fn new() -> io::Result<Self> {
        // Non-blocking and close-on-exec.
        let (write, read) = mio::unix::pipe::new()?;
        Ok(SignalPipe { read, write })
    }

    /// The end to write to (handed to `signal.set_wakeup_fd`).
    pub(crate) fn write_fd(&self) -> RawFd {
        self.write.as_raw_fd()
    }

    /// The end the scheduler watches for reading.
    pub(crate) fn read_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Reads everything written so far (the bytes carry nothing the
    /// scheduler needs: the caller runs its signal handlers after the turn
    /// anyway). Stops at "would block", as an edge-triggered watch needs.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 256];
        loop {
            match (&self.read).read(&mut buf) {
                Ok(0) => return,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: drained. Any other error cannot come from a
                // pipe both of whose ends we hold; nothing to do.
                Err(_) => return,
            }
        }
    }
}

/// Whether the last failed system call of this thread was interrupted by a
/// signal (`errno` is `EINTR`); if so, `errno` is cleared, so that one
/// interruption is reported once. A successful call leaves `errno` as it
/// was, so an `EINTR` seen here is the poll's, unless it is left over from
/// an earlier call (then one spurious report, after which it is cleared).
pub(crate) fn take_eintr() -> bool {
    if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
        return false;
    }
    set_errno_zero();
    true
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_errno_zero() {
    // SAFETY: __errno_location (Linux) / __errno (Android) return the
    // calling thread's errno slot, valid for the thread's whole life.
    unsafe {
        #[cfg(target_os = "linux")]
        let slot = libc::__errno_location();
        #[cfg(target_os = "android")]
        let slot = libc::__errno();
        *slot = 0;
    }
}

#[cfg(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "dragonfly"
))]
fn set_errno_zero() {
    // SAFETY: __error returns the calling thread's errno slot, valid for
    // the thread's whole life.
    unsafe {
        *libc::__error() = 0;
    }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "dragonfly"
)))]
fn set_errno_zero() {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn drain_reads_everything_written() {
        let pipe = SignalPipe::new().expect("pipe");
        let mut write = &pipe.write;
        for _ in 0..10_000 {
            write.write_all(&[2]).expect("write");
        }
        pipe.drain();
        let mut buf = [0u8; 1];
        let err = (&pipe.read).read(&mut buf).expect_err("drained");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn take_eintr_reports_once() {
        // A failed call leaves EINTR, as an interrupted poll does.
        // SAFETY: see set_errno_zero.
        unsafe { *libc::__errno_location() = libc::EINTR };
        assert!(take_eintr());
        assert!(!take_eintr());
    }
}
