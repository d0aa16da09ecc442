//! The timer heap: earliest deadline first, ties in scheduling order.
//! Cancelled timers are removed lazily: skipped when they reach the top, and
//! the heap is compacted when they are most of it.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use crate::handles::{Handle, TimerHandle};
use crate::queued;

struct Entry {
    when: f64,
    seq: u64,
    handle: Py<TimerHandle>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .when
            .total_cmp(&self.when)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// Below this many cancelled timers the heap is never compacted.
const MIN_CANCELLED_TO_COMPACT: usize = 100;

pub struct TimerHeap {
    heap: BinaryHeap<Entry>,
    seq: u64,
    cancelled: Arc<AtomicUsize>,
    /// Cancelled timers taken out of the heap, to be dropped by the caller
    /// once it has released the heap's lock (a finalizer may re-enter).
    dead: Vec<Py<TimerHandle>>,
}

impl TimerHeap {
    pub fn new() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            seq: 0,
            cancelled: Arc::new(AtomicUsize::new(0)),
            dead: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub fn cancel_counter(&self) -> Arc<AtomicUsize> {
        self.cancelled.clone()
    }

    pub fn push(&mut self, py: Python<'_>, when: f64, handle: Py<TimerHandle>) {
        self.seq += 1;
        queued::untrack_handle(handle.bind(py).as_super());
        self.heap.push(Entry {
            // A NaN deadline is due at once, as in asyncio, whose "not yet
            // due" test (`when >= end`) is false for NaN; ordered by the
            // heap it would sort last and wait for a later real timer.
            when: if when.is_nan() {
                f64::NEG_INFINITY
            } else {
                when
            },
            seq: self.seq,
            handle,
        });
    }

    /// Deadline of the earliest live timer, dropping dead ones on top.
    pub fn next_when(&mut self, py: Python<'_>) -> Option<f64> {
        while let Some(top) = self.heap.peek() {
            if top.handle.bind(py).as_super().get().is_cancelled() {
                if let Some(dead) = self.heap.pop() {
                    dead.handle.get().in_heap.store(false, Ordering::Relaxed);
                    queued::track_handle(dead.handle.bind(py).as_super());
                    self.dead.push(dead.handle);
                }
                self.uncount_one();
                continue;
            }
            return Some(top.when);
        }
        None
    }

    /// Pops the next live timer due before `end`.
    pub fn pop_due(&mut self, py: Python<'_>, end: f64) -> Option<Py<Handle>> {
        loop {
            let top = self.heap.peek()?;
            if top.when >= end {
                return None;
            }
            let entry = self.heap.pop()?;
            let bound = entry.handle.into_bound(py);
            bound.get().in_heap.store(false, Ordering::Relaxed);
            if bound.as_super().get().is_cancelled() {
                self.uncount_one();
                queued::track_handle(bound.as_super());
                self.dead.push(bound.unbind());
                continue;
            }
            return Some(bound.into_super().unbind());
        }
    }

    /// Rebuilds the heap without cancelled timers when they dominate it, so
    /// that many far-future timeouts created and cancelled don't pile up.
    pub fn compact_if_mostly_cancelled(&mut self, py: Python<'_>) {
        let cancelled = self.cancelled.load(Ordering::Relaxed);
        if cancelled < MIN_CANCELLED_TO_COMPACT || cancelled * 2 < self.heap.len() {
            return;
        }
        let entries = std::mem::take(&mut self.heap).into_vec();
        let mut live = Vec::with_capacity(entries.len() - cancelled.min(entries.len()));
        for e in entries {
            if e.handle.bind(py).as_super().get().is_cancelled() {
                e.handle.get().in_heap.store(false, Ordering::Relaxed);
                queued::track_handle(e.handle.bind(py).as_super());
                self.dead.push(e.handle);
            } else {
                live.push(e);
            }
        }
        self.heap = BinaryHeap::from(live);
        self.cancelled.store(0, Ordering::Relaxed);
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        for e in self.heap.iter() {
            visit.call(&e.handle)?;
        }
        for h in &self.dead {
            visit.call(h)?;
        }
        Ok(())
    }

    /// Cancelled timers removed so far; drop them without the lock held.
    pub fn take_dead(&mut self) -> Vec<Py<TimerHandle>> {
        std::mem::take(&mut self.dead)
    }

    fn uncount_one(&self) {
        let _ = self
            .cancelled
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    pub fn clear(&mut self, py: Python<'_>) -> Vec<Py<TimerHandle>> {
        self.cancelled.store(0, Ordering::Relaxed);
        let mut all = self.take_dead();
        all.extend(
            std::mem::take(&mut self.heap)
                .into_vec()
                .into_iter()
                .map(|e| e.handle),
        );
        for handle in &all {
            queued::track_handle(handle.bind(py).as_super());
        }
        all
    }
}
