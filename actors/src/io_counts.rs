//! Bytes a connection's socket calls have moved, readable by the owner of
//! the connection at any time, after the actor has ended too (a drain
//! reports what each connection sent, and learns of the end later).
//!
//! One writer (the actor, on the loop thread), any number of readers: a
//! relaxed load and store per update, as cheap as a plain add.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct IoCounts {
    received: AtomicU64,
    sent: AtomicU64,
}

impl IoCounts {
    pub(crate) fn add_received(&self, n: usize) {
        let v = self.received.load(Ordering::Relaxed);
        self.received.store(v + n as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_sent(&self, n: u64) {
        let v = self.sent.load(Ordering::Relaxed);
        self.sent.store(v + n, Ordering::Relaxed);
    }

    /// (bytes received, bytes sent).
    pub fn get(&self) -> (u64, u64) {
        (
            self.received.load(Ordering::Relaxed),
            self.sent.load(Ordering::Relaxed),
        )
    }
}
