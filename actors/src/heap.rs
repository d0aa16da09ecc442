//! Giving memory back to the system once most connections have closed.
//!
//! A connection's memory is freed when it closes, but the C allocator
//! (glibc's malloc) returns to the system only what lies at the top of its
//! heap: one allocation still live above the freed ones keeps them all in
//! the process, free but resident. A server that held 10,000 connections
//! and went back to a few hundred then stayed some 10 MB larger on
//! TokioLoop, whose per-connection allocations (tokio's I/O registration,
//! aligned to a cache line, and until 2026-12-04 a tokio task as well)
//! interleave with longer-lived ones. `malloc_trim` hands such free pages
//! back wherever they lie.
//!
//! It walks the whole heap, so it is called rarely: when a scheduler that
//! held at least [`BIG`] connections is down to a quarter of its peak, once
//! the closed connections' memory has been freed (a turn or two later: see
//! [`HeapTrim::new`]). The TLS layer calls [`trim`] too, after a burst of
//! handshakes (python/rloop/tls.py).

/// A peak under this many connections is not worth a trim.
const BIG: usize = 1024;

pub(crate) struct HeapTrim {
    /// The most connections held since the last trim.
    peak: usize,
    /// Turns to wait before trimming; 0: none due.
    due_in: u8,
    /// Turns it takes for a closed connection's memory to be freed.
    settled: u8,
}

impl HeapTrim {
    /// `settled` is how many turns (at least 1) it takes for a closed
    /// connection's memory to be freed: the loop frees its Python objects
    /// after the turn that reported the close; tokio releases an I/O
    /// registration at the reactor's next turn.
    pub(crate) fn new(settled: u8) -> Self {
        HeapTrim {
            peak: 0,
            due_in: 0,
            settled: settled.max(1),
        }
    }

    /// The scheduler now holds `live` connections.
    pub(crate) fn count(&mut self, live: usize) {
        if live > self.peak {
            self.peak = live;
        } else if self.peak >= BIG && live <= self.peak / 4 {
            self.peak = live;
            self.due_in = self.settled;
        }
    }

    /// A trim waits for turns to come: a scheduler whose freed memory
    /// settles only after its next turn must not block in that turn.
    pub(crate) fn pending(&self) -> bool {
        self.due_in > 0
    }

    /// A turn of the scheduler begins: trims if one is due now.
    pub(crate) fn turned(&mut self) {
        if self.due_in == 0 {
            return;
        }
        self.due_in -= 1;
        if self.due_in == 0 {
            trim();
        }
    }
}

/// Hands the C heap's free pages back to the system now (glibc's
/// `malloc_trim`; nothing with other allocators). It walks the whole heap:
/// for after a burst of short-lived allocations, not per event.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() {
    // SAFETY: malloc_trim takes the allocator's own locks and only returns
    // free pages to the system; it touches no memory the program owns.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators return memory on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_once_down_to_a_quarter_of_a_big_peak() {
        let mut h = HeapTrim::new(2);
        h.count(4000);
        h.count(1001);
        assert_eq!(h.due_in, 0);
        h.count(1000);
        assert_eq!((h.due_in, h.peak), (2, 1000));
        assert!(h.pending());
        h.turned();
        assert_eq!(h.due_in, 1);
        assert!(h.pending());
        h.turned();
        assert_eq!(h.due_in, 0);
        assert!(!h.pending());
        // From a peak under BIG, nothing more.
        h.count(10);
        assert_eq!(h.due_in, 0);
    }

    #[test]
    fn small_peaks_never_trim() {
        let mut h = HeapTrim::new(1);
        h.count(BIG - 1);
        h.count(0);
        assert_eq!(h.due_in, 0);
    }
}
