//! Turns of a loop that cannot enter its runtime.
//!
//! A TokioLoop runs inside its runtime's `block_on` (driver.rs), so its
//! Python callbacks do too. A TokioLoop run from one of them (past
//! asyncio's running-loop check), or in a process that multiprocessing
//! forked from one (the child's thread carries on from inside the
//! parent's `block_on`, thread-local state included), cannot block on its
//! own runtime there: tokio refuses a runtime inside another. Its turns
//! run on a thread of its own instead, kept for the scheduler's life and
//! handed one turn at a time, while the loop's thread waits.

use std::io;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;

use super::TokioScheduler;
use crate::ready::Ready;

/// One turn, for the turn thread: where the scheduler and the caller's
/// `out` are, which the caller holds exclusively until the result comes.
struct Job {
    sched: *mut TokioScheduler,
    timeout: Option<Duration>,
    out: *mut Vec<Ready>,
}

// SAFETY: a `Job` is only the caller's exclusive borrows of a `Send`
// scheduler and of a `Vec<Ready>`, lent to the turn thread for the time
// the caller waits for its result (see `TokioScheduler::turn_nested`).
unsafe impl Send for Job {}

/// The thread that runs a nested loop's turns.
pub(super) struct TurnThread {
    jobs: SyncSender<Job>,
    results: Receiver<io::Result<()>>,
    /// The process that started it: a forked child has no such thread.
    pid: u32,
}

impl TurnThread {
    fn start() -> io::Result<Self> {
        let (jobs, job_rx) = sync_channel::<Job>(0);
        let (result_tx, results) = sync_channel(1);
        std::thread::Builder::new()
            .name("rloop-turn".into())
            .spawn(move || {
                // Ends when the scheduler drops its end of the channel.
                for job in job_rx {
                    let turned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        // SAFETY: the caller waits, holding both borrows,
                        // until the result below is sent (turn_nested).
                        let (sched, out) = unsafe { (&mut *job.sched, &mut *job.out) };
                        sched.turn_here(job.timeout, out)
                    }))
                    .unwrap_or_else(|_| Err(io::Error::other("a turn panicked")));
                    if result_tx.send(turned).is_err() {
                        return;
                    }
                }
            })?;
        Ok(TurnThread {
            jobs,
            results,
            pid: std::process::id(),
        })
    }
}

impl TokioScheduler {
    /// `turn`, on the turn thread (started at the first call, and again
    /// in a forked child).
    pub(super) fn turn_nested(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<Ready>,
    ) -> io::Result<()> {
        // Taken out of `self` for the turn, which lends all of `self` to
        // the turn thread.
        let thread = match self.nested.take() {
            Some(t) if t.pid == std::process::id() => t,
            _ => TurnThread::start()?,
        };
        let job = Job {
            sched: self as *mut TokioScheduler,
            timeout,
            out: out as *mut Vec<Ready>,
        };
        let gone = || io::Error::other("the turn thread is gone");
        // Nothing touches `self` or `out` from the send until the result
        // is received: the turn thread has them meanwhile.
        let turned = match thread.jobs.send(job) {
            Ok(()) => thread.results.recv().unwrap_or_else(|_| Err(gone())),
            Err(_) => Err(gone()),
        };
        self.nested = Some(thread);
        turned
    }
}
