//! The timeout of a blocking turn: a timerfd in tokio's reactor, instead
//! of tokio's time driver.
//!
//! With the time driver enabled, every park of tokio's runtime goes
//! through it (its lock, its wheel, a clock read): about 400 instructions
//! per turn, whether the turn waits for a timer or not (measured with the
//! driver disabled). A turn needs a timer only to wake at a deadline, and
//! a timerfd registered with the reactor does that; its waker is an
//! [`FdWake`](super::fd_wake::FdWake) like any other source's.
//!
//! Arming one is a system call, so it is armed only when the turn's
//! deadline is earlier than the one it holds. A later deadline keeps the
//! earlier one: that turn then ends early with nothing to report, and the
//! loop turns again with what is left of its timeout (asyncio's loops
//! tolerate an early wake; the timer is then disarmed, and armed for the
//! new deadline). A loop's nearest deadline mostly moves later (a request's
//! timeout cancelled, the next one set further on), so most timed turns
//! make no system call; a timer that fires costs one.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use super::fd_wake::{FdWake, Source};
use super::watch::{self, Fd, Woken};

pub(super) struct TurnTimer {
    // Field order is drop order: the registration before the fd.
    pub afd: AsyncFd<Fd>,
    pub wake: Arc<FdWake>,
    fd: OwnedFd,
    /// The deadline armed (CLOCK_MONOTONIC), until it fires. A cell: the
    /// turn drains the timer through a shared borrow, inside its future.
    armed: Cell<Option<Duration>>,
}

/// Now, on the clock timerfd deadlines are set in.
fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to write;
    // CLOCK_MONOTONIC always exists on Linux, so it cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl TurnTimer {
    /// A disarmed timer registered with the reactor of the current runtime
    /// (the caller is inside it).
    pub fn new(woken: &Arc<Woken>) -> io::Result<Self> {
        // SAFETY: plain system call; the fd it returns is owned below.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let afd = watch::register(fd.as_raw_fd(), tokio::io::Interest::READABLE)?;
        let wake = FdWake::new(Source::Timer, woken);
        wake.arm(&afd, true, false);
        Ok(TurnTimer {
            afd,
            wake,
            fd,
            armed: Cell::new(None),
        })
    }

    /// The turn that follows wakes within `timeout` (maybe earlier: see
    /// the module docs).
    pub fn set(&self, timeout: Duration) -> io::Result<()> {
        let deadline = monotonic_now().saturating_add(timeout);
        if self.armed.get().is_some_and(|armed| armed <= deadline) {
            return Ok(());
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: deadline.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: deadline.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: a valid fd and itimerspec; the old value is not asked for.
        let r = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed.set(Some(deadline));
        Ok(())
    }

    /// Reads the expirations (the turn saw the fd ready): nothing is armed
    /// any more.
    pub fn drain(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into `buf`; a timerfd that has not
        // expired returns EAGAIN (it is non-blocking), which is ignored.
        unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        self.armed.set(None);
    }
}
