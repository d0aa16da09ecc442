//! When an iteration that already has callbacks to run polls for I/O.
//!
//! asyncio polls the selector (with a zero timeout) on every iteration.
//! That poll is a system call, and on TokioLoop a runtime entry too, paid
//! even when nothing happened. Under load it is skipped:
//!
//! - every other busy iteration: the callbacks that I/O just made ready run
//!   first, and I/O is picked up one iteration later at most. This halves
//!   the polls of a busy server;
//! - while busy polls find nothing (callbacks ping-ponging, many tasks
//!   being created), at most one per [`QUIET_INTERVAL`]: I/O that arrives
//!   meanwhile waits that long at most, far below any network latency.
//!
//! An iteration with nothing to run always polls (and may block).

use std::time::{Duration, Instant};

/// The longest a busy loop goes without polling once polls come back empty.
pub const QUIET_INTERVAL: Duration = Duration::from_micros(50);

#[derive(Default)]
pub struct BusyPoll {
    /// The last iteration polled although it was busy.
    polled_last: bool,
    /// When the last busy poll found nothing (None: it found something).
    quiet_since: Option<Instant>,
}

impl BusyPoll {
    /// Whether this iteration polls; `busy`: callbacks are waiting.
    pub fn should_poll(&mut self, busy: bool) -> bool {
        if !busy {
            return true;
        }
        if std::mem::take(&mut self.polled_last) {
            return false;
        }
        match self.quiet_since {
            Some(since) => since.elapsed() >= QUIET_INTERVAL,
            None => true,
        }
    }

    /// Records a poll of this iteration and whether it reported anything.
    pub fn polled(&mut self, busy: bool, found: bool) {
        self.polled_last = busy;
        self.quiet_since = if busy && !found {
            Some(Instant::now())
        } else {
            None
        };
    }
}
