//! Fault injection for tests: make a connection panic or fail on demand.
//!
//! Faults fire at the socket-call boundary inside the actor, so they
//! exercise exactly the paths a real bug or a real OS error would take.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use crate::io_counts::IoCounts;

/// What to break. Counts are 1-based and count socket read/write attempts
/// made by this connection from the moment the plan is installed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Panic on the Nth read attempt.
    pub panic_on_read: Option<u64>,
    /// Panic on the Nth write attempt (immediate or flush).
    pub panic_on_write: Option<u64>,
    /// The next read attempt fails with this errno.
    pub fail_next_read: Option<i32>,
    /// The next write attempt fails with this errno.
    pub fail_next_write: Option<i32>,
}

/// A plan plus the counters it is evaluated against.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    /// Boxed: rare, and kept out of every connection's size.
    plan: Option<Box<FaultPlan>>,
    reads: u64,
    writes: u64,
    /// Bytes the socket calls moved (shared with the transport).
    pub(crate) counts: Arc<IoCounts>,
}

impl FaultState {
    pub(crate) fn install(&mut self, plan: FaultPlan) {
        self.plan = Some(Box::new(plan));
        self.reads = 0;
        self.writes = 0;
    }

    /// Called before every read syscall; may panic or return an error to
    /// use instead of doing the read.
    pub(crate) fn before_read(&mut self) -> Option<io::Error> {
        let plan = self.plan.as_mut()?;
        self.reads += 1;
        if plan.panic_on_read == Some(self.reads) {
            panic!("injected fault: panic on read #{}", self.reads);
        }
        plan.fail_next_read.take().map(io::Error::from_raw_os_error)
    }

    pub(crate) fn count_out(&mut self, r: io::Result<usize>) -> io::Result<usize> {
        if let Ok(n) = r {
            self.counts.add_sent(n as u64);
        }
        r
    }

    /// Called before every write syscall; see [`FaultState::before_read`].
    pub(crate) fn before_write(&mut self) -> Option<io::Error> {
        let plan = self.plan.as_mut()?;
        self.writes += 1;
        if plan.panic_on_write == Some(self.writes) {
            panic!("injected fault: panic on write #{}", self.writes);
        }
        plan.fail_next_write
            .take()
            .map(io::Error::from_raw_os_error)
    }
}

/// A reader/writer that consults the fault plan before each call, so the
/// write queue's flush loop is covered without knowing about faults.
pub(crate) struct Faulty<'a, S> {
    pub(crate) inner: &'a mut S,
    pub(crate) fault: &'a mut FaultState,
}

impl<S: Write> Write for Faulty<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.fault.before_write() {
            Some(e) => Err(e),
            None => self.fault.count_out(self.inner.write(buf)),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.fault.before_write() {
            Some(e) => Err(e),
            None => self.fault.count_out(self.inner.write_vectored(bufs)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<S: Read> Read for Faulty<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.fault.before_read() {
            Some(e) => Err(e),
            None => {
                let r = self.inner.read(buf);
                if let Ok(n) = r {
                    self.fault.counts.add_received(n);
                }
                r
            }
        }
    }
}
