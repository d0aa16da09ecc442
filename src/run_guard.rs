//! Cancelling a `call_soon_threadsafe` handle while its callback runs.
//!
//! Such a handle may be cancelled from another thread while the loop runs
//! its callback. As asyncio's (3.14, and the patch releases of 3.12 and
//! 3.13 since), `cancel()` and `cancelled()` then wait until the callback
//! has returned, so a caller that saw `cancel()` return knows the callback
//! either ran to its end or never starts. The thread running the callback
//! may cancel its own handle without waiting.
//!
//! The GIL is the lock: the loop marks the callback running and checks for
//! a cancel with the GIL held, and so does a canceller, so the two never
//! interleave. Only a canceller that finds the callback running on another
//! thread lets go of the GIL, and sleeps (parking_lot's parking lot, keyed
//! by the guard's address) until the loop wakes it. A handle pays two
//! plain stores and a load per run and no allocation: this is on the path
//! of every `call_soon_threadsafe`.
//!
//! The atomics are relaxed: every access but the sleeping canceller's
//! re-checks happens with the GIL held, whose release and acquire order
//! them, and those re-checks are ordered by parking_lot's bucket lock
//! (`leave` stores 0 before `unpark_all` takes it; `park` validates under
//! it), so the canceller cannot sleep through the end of the callback.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot_core::{DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN};
use pyo3::prelude::*;

#[derive(Default)]
pub(crate) struct RunGuard {
    /// The tag of the thread running the callback, 0 when none does.
    running: AtomicU64,
    /// A canceller sleeps until `running` goes back to 0.
    waiting: AtomicBool,
}

/// A nonzero number per thread (ThreadId has no cheap integer form).
fn thread_tag() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static TAG: u64 = NEXT.fetch_add(1, Ordering::Relaxed));
    TAG.with(|t| *t)
}

impl RunGuard {
    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// The callback starts on this thread (GIL held).
    pub(crate) fn enter(&self) {
        self.running.store(thread_tag(), Ordering::Relaxed);
    }

    /// The callback has returned (GIL held): wake a waiting canceller.
    pub(crate) fn leave(&self) {
        self.running.store(0, Ordering::Relaxed);
        // Only a canceller holding the GIL sets `waiting`, and we hold it:
        // a load and a store, not a swap, cannot miss one.
        if self.waiting.load(Ordering::Relaxed) {
            self.waiting.store(false, Ordering::Relaxed);
            // SAFETY: the key is this guard's address, which is only used
            // as a key (never dereferenced by parking_lot_core).
            unsafe {
                parking_lot_core::unpark_all(self.key(), DEFAULT_UNPARK_TOKEN);
            }
        }
    }

    /// Calls `f` (GIL held) once no other thread runs the callback.
    pub(crate) fn when_idle<T>(&self, py: Python<'_>, f: impl FnOnce() -> T) -> T {
        let running = self.running.load(Ordering::SeqCst);
        if running != 0 && running != thread_tag() {
            self.waiting.store(true, Ordering::SeqCst);
            let key = self.key();
            py.detach(|| {
                while self.running.load(Ordering::SeqCst) != 0 {
                    // SAFETY: `validate` and the callbacks neither panic nor
                    // call into the parking lot; the key is only a key.
                    unsafe {
                        parking_lot_core::park(
                            key,
                            || self.running.load(Ordering::SeqCst) != 0,
                            || {},
                            |_, _| {},
                            DEFAULT_PARK_TOKEN,
                            None,
                        );
                    }
                }
            });
        }
        // The GIL is held again: the callback has returned and cannot start
        // again (a handle runs once).
        f()
    }
}
