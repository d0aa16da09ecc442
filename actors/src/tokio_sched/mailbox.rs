//! The mailbox of a connection task: what the scheduler tells it (the
//! readiness its connection wants now, watch again, stop), kept as state
//! rather than as a queue of messages, and the connection's registration
//! with the reactor, which the task polls and the scheduler drops when the
//! connection ends.
//!
//! Only the latest want matters and the other messages are flags, so they
//! coalesce; one small lock (never contended: the task and the scheduler
//! both run on the loop thread) replaces a channel, whose first block of
//! slots alone cost most of a kilobyte per connection.
//!
//! Posting does not wake the task: it hands its waker to the scheduler
//! ([`Wakes`]), which wakes it inside the runtime, at the start of its next
//! `block_on`. The task could not run before then anyway, and a wake from
//! outside the runtime goes through tokio's cross-thread queue and wakes
//! its driver with an eventfd write: three system calls per connection,
//! with its spawn and its stop.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};

use super::task::{Registration, Want};

#[derive(Default)]
struct State {
    /// The connection's registration with tokio's reactor: the task
    /// polls it, the scheduler drops it when the connection ends (so the
    /// socket can close at once, with no run of the runtime to let the
    /// task drop it).
    registration: Option<Registration>,
    /// A new want, posted since the task last looked.
    want: Option<Want>,
    rearm: bool,
    stop: bool,
    panic: bool,
    waker: Option<Waker>,
    /// The task is gone.
    gone: bool,
    /// The scheduler counts the task among those stopped but not yet
    /// gone (`Reports::ending`).
    counted: bool,
}

/// What the task found in its mailbox.
#[derive(Default)]
pub(super) struct Mail {
    pub want: Option<Want>,
    pub rearm: bool,
    pub stop: bool,
    /// Test-only fault: the task panics (its connection must end alone).
    pub panic: bool,
}

#[derive(Default)]
pub(super) struct Mailbox(Mutex<State>);

impl Mailbox {
    /// A mailbox holding the connection's first registration.
    pub fn new(registration: Registration) -> Self {
        Mailbox(Mutex::new(State {
            registration: Some(registration),
            ..State::default()
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Posts; the task's waker, if it waits, goes to `wakes`.
    fn post(&self, wakes: &mut Wakes, f: impl FnOnce(&mut State)) {
        let waker = {
            let mut state = self.lock();
            f(&mut state);
            state.waker.take()
        };
        wakes.0.extend(waker);
    }

    pub fn want(&self, want: Want, wakes: &mut Wakes) {
        self.post(wakes, |s| s.want = Some(want));
    }

    pub fn rearm(&self, wakes: &mut Wakes) {
        self.post(wakes, |s| s.rearm = true);
    }

    pub fn stop(&self, wakes: &mut Wakes) {
        self.post(wakes, |s| s.stop = true);
    }

    /// Stops the task and takes its registration away: dropped (outside
    /// the lock) by the caller, it leaves the reactor at once, and the
    /// socket may close. The task, stopped before it looks again, never
    /// registers anew. Also returns whether the task is still to end (it
    /// is then counted until it does: `gone`).
    #[must_use]
    pub fn stop_and_deregister(&self, wakes: &mut Wakes) -> (Option<Registration>, bool) {
        let mut out = (None, false);
        self.post(wakes, |s| {
            s.stop = true;
            s.counted = !s.gone;
            out = (s.registration.take(), s.counted);
        });
        out
    }

    /// The task is being dropped: its registration goes. Returns whether
    /// the scheduler counted it as ending.
    pub fn gone(&self) -> (Option<Registration>, bool) {
        let mut state = self.lock();
        state.gone = true;
        (
            state.registration.take(),
            std::mem::take(&mut state.counted),
        )
    }

    /// Runs `f` on the registration (the task's poll).
    pub fn with_registration<R>(&self, f: impl FnOnce(&mut Option<Registration>) -> R) -> R {
        f(&mut self.lock().registration)
    }

    /// False if the task was told to stop already.
    pub fn panic(&self, wakes: &mut Wakes) -> bool {
        let mut alive = false;
        self.post(wakes, |s| {
            alive = !s.stop;
            s.panic = true;
        });
        alive
    }

    /// The mail posted since the last look; `cx` is woken by the next.
    pub fn take(&self, cx: &mut Context<'_>) -> Mail {
        let mut state = self.lock();
        match &mut state.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            none => *none = Some(cx.waker().clone()),
        }
        Mail {
            want: state.want.take(),
            rearm: std::mem::take(&mut state.rearm),
            stop: state.stop,
            panic: std::mem::take(&mut state.panic),
        }
    }
}

/// Wakers of tasks with new mail, to wake inside the runtime.
#[derive(Default)]
pub(super) struct Wakes(Vec<Waker>);

impl Wakes {
    /// Wakes them all: call it inside the runtime (in a `block_on`), where
    /// a woken task goes on the local run queue.
    pub fn wake_all(self) {
        self.0.into_iter().for_each(Waker::wake);
    }
}

/// The scheduler's end of a mailbox: dropping it stops the task, as a
/// dropped channel sender did. (The scheduler stops a task itself when it
/// drops a connection; this is for the scheduler's own end.)
pub(super) struct Sender(pub Arc<Mailbox>);

impl Drop for Sender {
    fn drop(&mut self) {
        let mut wakes = Wakes::default();
        self.0.stop(&mut wakes);
        wakes.wake_all();
    }
}
