//! The toxic deadlines of a scheduler's connections, as a min-heap the
//! scheduler folds into its poll timeout.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::ready::ConnId;

/// Entries are never removed early: a connection re-armed earlier, or
/// gone, leaves a stale entry that fires as a harmless extra report.
#[derive(Debug, Default)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

impl Deadlines {
    pub(crate) fn push(&mut self, at: Instant, id: ConnId) {
        self.heap.push(Reverse((at, id.key, id.gen)));
    }

    /// `timeout`, shortened to reach the earliest deadline.
    pub(crate) fn clamp(&self, timeout: Option<Duration>, now: Instant) -> Option<Duration> {
        let Some(Reverse((at, _, _))) = self.heap.peek() else {
            return timeout;
        };
        // Rounded up: a poll that returns a little early would find the
        // deadline not yet reached and spin.
        let wait = at.saturating_duration_since(now) + Duration::from_micros(999);
        let wait = Duration::from_millis(wait.as_millis() as u64);
        Some(timeout.map_or(wait, |t| t.min(wait)))
    }

    /// The connections whose deadline has come.
    pub(crate) fn take_due(&mut self, now: Instant, out: &mut Vec<ConnId>) {
        while let Some(Reverse((at, key, gen))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            out.push(ConnId { key, gen });
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}
