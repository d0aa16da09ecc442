//! The waker of a raw fd watch (asyncio's add_reader/add_writer), of a
//! listener, of the signal pipe and of the turn's timer.
//!
//! tokio's reactor holds one waker per direction of a registration and
//! wakes it on an edge. Until 2026-12-04 that waker was the turn's own, and
//! every poll of the turn's future polled every watched fd and listener to
//! learn which had fired: two readiness polls per watched fd, whether it
//! fired or not, so a loop with a thousand sockets waiting in `sock_recv`
//! paid two thousand polls (each a lock and a waker clone) for every
//! message, and a server paid a poll of its listener two or three times a
//! turn. Now each has its own waker, which puts it on the scheduler's
//! woken list (watch.rs's `Woken`, shared with the connection watches)
//! and wakes the turn; the turn polls only what is on that list.
//!
//! The waker stays registered with tokio while the fd is unwatched (its
//! registration is kept: sources.rs), so watching the same file again
//! needs no poll at all unless an edge took the waker meanwhile.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Wake, Waker};

use tokio::io::unix::AsyncFd;
use tokio::io::Ready as TokioReady;

use super::watch::{list_once, poll_side, Fd, Woken};

/// What a waker stands for.
#[derive(Clone, Copy)]
pub(super) enum Source {
    /// A raw fd watch, by its fd.
    Fd(RawFd),
    /// A listener, by its key in the scheduler's slab.
    Listener(usize),
    /// The signal pipe.
    Signal,
    /// The timer of a blocking turn (turn_timer.rs).
    Timer,
}

pub(super) struct FdWake {
    pub source: Source,
    /// Set from the edge that took the waker until the turn polls the fd
    /// again: meanwhile no waker of ours is registered, and tokio's
    /// readiness may be set. Clear: the waker is registered in every
    /// polled direction and tokio saw nothing since it was.
    woken: AtomicBool,
    /// Weak, as a connection watch's: a registration tokio releases late
    /// may wake this after the scheduler is gone.
    list: Weak<Woken>,
}

impl Wake for FdWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        list_once(&self.woken, &self.list, |w| w.push_fd(Arc::clone(self)));
    }
}

impl FdWake {
    pub fn new(source: Source, list: &Arc<Woken>) -> Arc<Self> {
        Arc::new(FdWake {
            source,
            woken: AtomicBool::new(false),
            list: Arc::downgrade(list),
        })
    }

    /// Whether an edge took the waker since the turn last polled the fd.
    pub fn is_woken(&self) -> bool {
        self.woken.load(Ordering::Relaxed)
    }

    /// Back on the woken list, for the next turn to poll (the fd is woken
    /// already: its edge came while nobody watched it, or its listener was
    /// paused).
    pub fn list_again(self: &Arc<Self>) {
        if let Some(list) = self.list.upgrade() {
            list.push_fd(Arc::clone(self));
        }
    }

    /// Registers this waker in the given directions of `afd`, as the
    /// fd's first watch; an fd found ready goes on the woken list.
    pub fn arm(self: &Arc<Self>, afd: &AsyncFd<Fd>, read: bool, write: bool) {
        let waker = Waker::from(Arc::clone(self));
        let mut cx = Context::from_waker(&waker);
        let ready = (read && afd.poll_read_ready(&mut cx).is_ready())
            | (write && afd.poll_write_ready(&mut cx).is_ready());
        if ready {
            self.wake_by_ref();
        }
    }

    /// Polls the given directions of `afd` for the turn, with this waker:
    /// (readable, writable) seen, their readiness cleared so the next
    /// report needs an edge. A direction found ready again at once (an
    /// edge between the two polls) is reported too, and the fd listed for
    /// the next turn, whose poll registers the waker.
    pub fn poll(self: &Arc<Self>, afd: &AsyncFd<Fd>, read: bool, write: bool) -> (bool, bool) {
        self.woken.store(false, Ordering::Relaxed);
        let waker = Waker::from(Arc::clone(self));
        let mut cx = Context::from_waker(&waker);
        let mut again = false;
        let mut side = |write: bool| {
            let seen = take_ready(afd, &mut cx, write);
            if seen && take_ready(afd, &mut cx, write) {
                again = true;
            }
            seen
        };
        let seen = (read && side(false), write && side(true));
        if again {
            self.wake_by_ref();
        }
        seen
    }
}

/// Whether tokio has readiness for one direction of `afd`, cleared now; if
/// not, `cx` is woken by the next edge. A reactor that is gone (the
/// runtime shutting down) reports nothing more.
fn take_ready(afd: &AsyncFd<Fd>, cx: &mut Context<'_>, write: bool) -> bool {
    let mut got = TokioReady::EMPTY;
    poll_side(afd, cx, write, &mut got);
    !got.is_empty()
}
