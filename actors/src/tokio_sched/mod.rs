//! The tokio scheduler behind `rloop.TokioLoop`: the same pull-style API as
//! [`MioScheduler`](crate::MioScheduler), with tokio as the reactor.
//!
//! - A current-thread tokio runtime, owned here and driven on the thread
//!   running the loop: no cross-thread hop per message. A loop runs its
//!   whole run inside one `block_on` ([`driver`]), a turn being a step of
//!   it ([`turn`]); `turn` is a `block_on` of its own. The scheduler is
//!   `Send` (its watches and their state are), so a loop made in one
//!   thread may run in another, as asyncio allows.
//! - **Each connection actor has a watch on tokio's reactor** ([`watch`]):
//!   its registration, covering the directions the connection wants, with
//!   the watch itself as the waker. An edge puts the watch on the woken
//!   list; `turn` polls the woken watches and files their reports. The
//!   socket I/O runs in the scheduler's methods, called by the loop core,
//!   on the same [`Connection`] state machine as the mio scheduler, under
//!   the same supervisor: exactly one `Closed` per actor, a panic
//!   included. A watch that fails (it panicked, or could not register)
//!   ends its connection with `Closed(Some(Panic))`, delivered by the next
//!   call into it. Until 2026-12-04 each connection was a tokio task that
//!   did this polling; see the watch's docs for why it is not.
//! - Listeners, raw-fd watchers (asyncio's add_reader) and the signal pipe
//!   ([`sources`]) each have a waker of their own ([`fd_wake`]) that lists
//!   them with the woken watches, so a turn polls only what fired. Raw fds
//!   get asyncio's level-triggered behaviour by re-checking, with
//!   `poll(2)`, the fds that fired last turn.
//! - When a connection ends, the scheduler stops its watch and drops its
//!   registration, then closes the socket, all in the call that ends it
//!   ([`conns`]): a reused fd number can never be deregistered by a stale
//!   registration.
//! - A signal ends a blocking turn, as `EINTR` ends mio's: tokio's driver
//!   retries an interrupted poll itself, so the runtime's unpark hook looks
//!   at `errno` (`signal_pipe::take_eintr`); a signal taken by another
//!   thread wakes the turn through the signal pipe
//!   ([`signal_fd`](TokioScheduler::signal_fd)).
//! - A blocking turn's timeout is a timerfd in the reactor ([`turn_timer`]),
//!   not tokio's time driver, which every park would go through.

// Keyed by fd numbers, which the kernel hands out, never by input a peer
// controls: a fast hash, not a DoS-resistant one.
use rustc_hash::FxHashMap as HashMap;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest as TokioInterest;

use crate::connection::DEFAULT_READ_BUFFER;
use crate::level::FiredFds;
use crate::ready::{ConnId, ListenerId, Ready};
use crate::signal_pipe::take_eintr;
use crate::toxics::Deadlines;

mod conns;
mod driver;
mod fd_wake;
mod nested;
mod sources;
mod turn;
mod turn_timer;
mod watch;

use conns::ConnSlot;
pub use driver::Driver;
use fd_wake::FdWake;
use sources::{poll_sources, FdSlot, ListenerSlot, SignalSlot};
use turn_timer::TurnTimer;
use watch::{Fd, Watch, Woken};

/// Wakes a blocked (or the next) `turn` from any thread.
pub struct TokioWaker {
    woken: AtomicBool,
    /// The turn waits on the woken list (watch.rs): a wake pokes it.
    list: Arc<Woken>,
}

impl TokioWaker {
    pub fn wake(&self) -> io::Result<()> {
        // Set before the poke: a turn that did not see the flag before it
        // blocked sees the poke (see `Woken::poke`).
        self.woken.store(true, Ordering::SeqCst);
        self.list.poke();
        Ok(())
    }
}

/// See the module docs.
pub struct TokioScheduler {
    // Field order is drop order: the timer, then the runtime, then the
    // connections (each slot drops its registration before its socket).
    /// The wait of a blocking `turn` with a timeout (turn_timer.rs).
    timer: TurnTimer,
    /// Shared with the [`Driver`] a loop runs in; shut down in the
    /// background when the scheduler goes (see `Drop`).
    rt: ManuallyDrop<Arc<tokio::runtime::Runtime>>,
    conns: Slab<ConnSlot>,
    listeners: Slab<ListenerSlot>,
    fds: HashMap<RawFd, FdSlot>,
    /// Made by the first `signal_fd` call.
    signal: Option<SignalSlot>,
    /// Connection watches the reactor woke, for the turn to poll.
    woken: Arc<Woken>,
    /// Buffers kept for reuse: the woken watches being polled, and their
    /// reports.
    polling: Vec<Arc<Watch>>,
    polling_fds: Vec<Arc<FdWake>>,
    collected: Vec<watch::Report>,
    /// What the turn in progress found on sources other than watches.
    polled: Vec<Ready>,
    /// The turn in progress (turn.rs).
    turning: turn::Turning,
    /// Runs the turns of a loop that cannot enter its runtime (nested.rs).
    nested: Option<nested::TurnThread>,
    waker: Arc<TokioWaker>,
    /// Connections (key, gen) to report again next turn without an event.
    hot: Vec<(usize, u64)>,
    hot_listeners: Vec<(usize, u64)>,
    /// Raw fds reported: re-checked before a later wait (level.rs).
    fired_fds: FiredFds,
    next_gen: u64,
    turn_no: u64,
    /// Gives memory back once most connections have closed (heap.rs).
    heap: crate::heap::HeapTrim,
    /// Toxic release times of connections with fault plans (toxics/).
    deadlines: Deadlines,
    due: Vec<ConnId>,
    /// Every connection reads into this one buffer (actors_api.rs).
    read_buf: Box<[u8]>,
}

impl TokioScheduler {
    pub fn new() -> io::Result<Self> {
        let woken = Arc::new(Woken::default());
        let waker = Arc::new(TokioWaker {
            woken: AtomicBool::new(false),
            list: Arc::clone(&woken),
        });
        let hook = Arc::clone(&woken);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            // After every park: tokio's driver ignores an EINTR from its
            // poll (and parks again if nothing woke the turn), so the turn
            // would not end for a signal this thread took. The failed poll
            // leaves EINTR in errno, which nothing after it in the driver
            // overwrites on success. The turn is woken as another thread
            // wakes it, without a `Woken` report.
            .on_thread_unpark(move || {
                if take_eintr() {
                    hook.poke();
                }
            })
            .build()?;
        let timer = {
            let _runtime = rt.enter();
            TurnTimer::new(&woken)?
        };
        Ok(TokioScheduler {
            timer,
            rt: ManuallyDrop::new(Arc::new(rt)),
            conns: Slab::new(),
            listeners: Slab::new(),
            fds: HashMap::default(),
            signal: None,
            woken,
            polling: Vec::new(),
            polling_fds: Vec::new(),
            collected: Vec::new(),
            polled: Vec::new(),
            turning: turn::Turning::default(),
            nested: None,
            waker,
            hot: Vec::new(),
            hot_listeners: Vec::new(),
            fired_fds: FiredFds::default(),
            next_gen: 0,
            turn_no: 0,
            // A closed connection's registration is released by tokio at
            // the reactor's next turn.
            heap: crate::heap::HeapTrim::new(2),
            deadlines: Deadlines::default(),
            due: Vec::new(),
            read_buf: vec![0u8; DEFAULT_READ_BUFFER].into_boxed_slice(),
        })
    }

    pub fn waker(&self) -> Arc<TokioWaker> {
        Arc::clone(&self.waker)
    }

    /// The runtime, for a loop to run inside (driver.rs).
    pub fn driver(&self) -> Driver {
        Driver(Arc::clone(&self.rt))
    }

    fn gen(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }

    /// Registers `fd` with tokio's reactor. A registration kept for that
    /// number after unwatch_fd goes first: its fd may have been closed, and
    /// the number be this fd, which epoll would then refuse or, dropped
    /// later, deregister.
    fn register(&mut self, fd: RawFd, interest: TokioInterest) -> io::Result<AsyncFd<Fd>> {
        if self.fds.get(&fd).is_some_and(|s| !s.watched) {
            self.forget_fd(fd);
        }
        let _runtime = self.rt.enter();
        watch::register(fd, interest)
    }

    /// Reports connections whose toxic deadline has come, both ways (see
    /// the mio scheduler's `report_due`).
    fn report_due(&mut self, out: &mut Vec<Ready>) {
        let mut due = std::mem::take(&mut self.due);
        self.deadlines.take_due(std::time::Instant::now(), &mut due);
        for id in due.drain(..) {
            if let Some(slot) = self.conns.get_mut(id.key).filter(|s| s.gen == id.gen) {
                slot.conn.toxic_fired();
                slot.report(id.key, self.turn_no, true, true, out);
            }
        }
        self.due = due;
    }

    /// Every connection with toxics is reported at the next turn (a plan
    /// was removed: what its toxics held must pass now).
    pub fn wake_toxics(&mut self) {
        let now = std::time::Instant::now();
        for (key, slot) in self.conns.iter() {
            if slot.conn.has_toxics() {
                self.deadlines.push(now, ConnId { key, gen: slot.gen });
            }
        }
    }

    fn collect_reports(&mut self, reports: &mut Vec<watch::Report>, out: &mut Vec<Ready>) {
        for rep in reports.drain(..) {
            let Some(slot) = self.conns.get_mut(rep.key).filter(|s| s.gen == rep.gen) else {
                continue;
            };
            if rep.ended {
                slot.watch_ended(rep.key, self.turn_no, out);
                continue;
            }
            if rep.read_closed {
                slot.conn.note_read_closed();
            }
            if rep.sticky {
                slot.watch.0.rearm();
            }
            slot.report(rep.key, self.turn_no, rep.readable, rep.writable, out);
        }
    }

    fn report_hot(&mut self, out: &mut Vec<Ready>) {
        for (key, gen) in std::mem::take(&mut self.hot) {
            let Some(slot) = self.conns.get_mut(key).filter(|s| s.gen == gen) else {
                continue;
            };
            slot.queued_hot = false;
            let (r, w) = (slot.conn.read_pending(), slot.conn.close_pending());
            if r || w {
                slot.report(key, self.turn_no, r, w, out);
            }
        }
        for (key, gen) in std::mem::take(&mut self.hot_listeners) {
            let Some(slot) = self.listeners.get_mut(key) else {
                continue;
            };
            if slot.gen != gen {
                continue;
            }
            slot.queued_hot = false;
            let id = ListenerId { key, gen };
            let seen = out
                .iter()
                .any(|x| matches!(x, Ready::Listener { id: other } if *other == id));
            if slot.hot && slot.active && !seen {
                out.push(Ready::Listener { id });
            }
        }
    }
}

impl Drop for TokioScheduler {
    /// The runtime is shut down in the background: a plain drop waits for
    /// tokio's blocking pool, which tokio refuses (with a panic) inside
    /// another runtime, and a loop may be dropped by code that runs inside
    /// another TokioLoop's `Driver` (driver.rs). This loop spawns no
    /// blocking work, so there is nothing to wait for.
    fn drop(&mut self) {
        // SAFETY: `rt` is taken once, here, and no field dropped after this
        // method uses it.
        let rt = unsafe { ManuallyDrop::take(&mut self.rt) };
        if let Ok(rt) = Arc::try_unwrap(rt) {
            rt.shutdown_background();
        }
    }
}
