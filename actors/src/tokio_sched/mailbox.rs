//! The mailbox of a connection task: what the scheduler tells it (the
//! readiness its connection wants now, watch again, stop), kept as state
//! rather than as a queue of messages.
//!
//! Only the latest want matters and the other messages are flags, so they
//! coalesce; one small lock (never contended: the task and the scheduler
//! both run on the loop thread) replaces a channel, whose first block of
//! slots alone cost most of a kilobyte per connection.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};

use super::task::Want;

#[derive(Default)]
struct State {
    /// A new want, posted since the task last looked.
    want: Option<Want>,
    rearm: bool,
    stop: bool,
    panic: bool,
    waker: Option<Waker>,
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
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn post(&self, f: impl FnOnce(&mut State)) {
        let waker = {
            let mut state = self.lock();
            f(&mut state);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub fn want(&self, want: Want) {
        self.post(|s| s.want = Some(want));
    }

    pub fn rearm(&self) {
        self.post(|s| s.rearm = true);
    }

    pub fn stop(&self) {
        self.post(|s| s.stop = true);
    }

    /// False if the task was told to stop already.
    pub fn panic(&self) -> bool {
        let mut alive = false;
        self.post(|s| {
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

/// The scheduler's end of a mailbox: dropping it stops the task, as a
/// dropped channel sender did.
pub(super) struct Sender(pub Arc<Mailbox>);

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.stop();
    }
}
