//! Listeners, raw fd watchers (asyncio's add_reader/add_writer, with their
//! level-triggered re-check), the signal pipe and the turn's timer: what
//! `turn` polls when their own waker put them on the woken list
//! (fd_wake.rs).

use rustc_hash::FxHashMap as HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::task::Poll;

use slab::Slab;
use tokio::io::unix::AsyncFd;

use super::fd_wake::{FdWake, Source};
use super::turn_timer::TurnTimer;
use super::watch::{self, Fd};
use super::TokioScheduler;
use crate::acceptor::Listener;
use crate::addr::Addr;
use crate::ready::{ListenerId, Ready};
use crate::signal_pipe::SignalPipe;
use crate::stream::Stream;
use tokio::io::Interest as TokioInterest;

pub(super) struct ListenerSlot {
    pub gen: u64,
    pub listener: Listener,
    pub afd: AsyncFd<Fd>,
    /// Its waker in tokio's reactor (fd_wake.rs).
    pub wake: Arc<FdWake>,
    pub active: bool,
    pub hot: bool,
    pub queued_hot: bool,
}

/// What the caller of `watch_fd_as` has just seen of the fd.
#[derive(Clone, Copy, PartialEq)]
enum Idle {
    /// Nothing: the next turn asks poll(2) whether it is ready.
    No,
    /// Every direction it asks for would block.
    Yes,
    /// As `Yes`, and the fd still names the file it named when last
    /// watched (no fstat(2) needed to tell).
    SameFile,
}

pub(super) struct FdSlot {
    pub afd: AsyncFd<Fd>,
    pub read: bool,
    pub write: bool,
    /// False once unwatched: the registration is kept (see `unwatch_fd`).
    pub watched: bool,
    /// The file the fd named when it was registered (`file_id`).
    pub file: Option<(u64, u64)>,
    /// The (read, write) interest of the registration: both for a watch
    /// for writing alone (see `watch_fd_as`).
    pub registered: (bool, bool),
    /// Its waker in tokio's reactor (fd_wake.rs).
    pub wake: Arc<FdWake>,
}

impl FdSlot {
    /// The registration was kept (unwatched) and `fd` still names the file
    /// it was made for: it may be used again (one fstat(2)).
    pub fn kept_for_same_file(&self, fd: RawFd) -> bool {
        !self.watched && self.file.is_some() && file_id(fd) == self.file
    }

    /// The directions the turn polls: those watched, and the write side
    /// of a watch for reading too, where epoll files an error alone.
    fn polled(&self) -> (bool, bool) {
        (self.read, self.write || self.read)
    }
}

/// Device and inode of the file `fd` names now (None if fstat fails): a
/// number closed and reused names another file.
fn file_id(fd: RawFd) -> Option<(u64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a whole `stat` into `st` on success and nothing
    // we read on failure; a bad fd is an error, not UB.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat succeeded, so `st` is initialised.
    let st = unsafe { st.assume_init() };
    Some((st.st_dev, st.st_ino))
}

/// Forgets what tokio recorded for `afd` (edges seen while nobody
/// watched it, maybe read since). A noop waker: the caller lists the fd,
/// so that the turn's poll registers its own waker again before the turn
/// can block.
fn clear_readiness(afd: &AsyncFd<Fd>) {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    if let Poll::Ready(Ok(mut guard)) = afd.poll_read_ready(&mut cx) {
        guard.clear_ready();
    }
    if let Poll::Ready(Ok(mut guard)) = afd.poll_write_ready(&mut cx) {
        guard.clear_ready();
    }
}

/// What a poll of the sources saw besides reports.
#[derive(Default)]
pub(super) struct Seen {
    /// A byte came on the signal pipe (read now).
    pub signalled: bool,
    /// The turn's timer fired (drained now).
    pub timed_out: bool,
}

/// Polls what tokio's reactor woke (`woken`, emptied): raw fds, listeners,
/// the signal pipe and the turn's timer, without blocking, pushing reports
/// and clearing tokio's readiness so the next report needs an edge.
pub(super) fn poll_sources(
    listeners: &Slab<ListenerSlot>,
    fds: &HashMap<RawFd, FdSlot>,
    signal: Option<&SignalSlot>,
    timer: &TurnTimer,
    woken: &mut Vec<Arc<FdWake>>,
    polled: &mut Vec<Ready>,
) -> Seen {
    let mut seen = Seen::default();
    for wake in woken.drain(..) {
        match wake.source {
            Source::Fd(fd) => poll_fd(fd, &wake, fds, polled),
            Source::Listener(key) => {
                let Some(s) = listeners.get(key).filter(|s| Arc::ptr_eq(&s.wake, &wake)) else {
                    continue;
                };
                if !s.active {
                    // Stays woken: resuming lists it anew.
                    continue;
                }
                if wake.poll(&s.afd, true, false).0 {
                    let id = ListenerId { key, gen: s.gen };
                    if !polled
                        .iter()
                        .any(|x| matches!(x, Ready::Listener { id: other } if *other == id))
                    {
                        polled.push(Ready::Listener { id });
                    }
                }
            }
            Source::Signal => {
                let Some(s) = signal.filter(|s| Arc::ptr_eq(&s.wake, &wake)) else {
                    continue;
                };
                // Cleared, then drained: a byte another thread writes in
                // between is drained now, and its edge, which this
                // thread's driver sees later, ends a turn early for
                // nothing; no byte can be left unread with no edge.
                if wake.poll(&s.afd, true, false).0 {
                    s.pipe.drain();
                    seen.signalled = true;
                }
            }
            Source::Timer => {
                if Arc::ptr_eq(&timer.wake, &wake) && wake.poll(&timer.afd, true, false).0 {
                    timer.drain();
                    seen.timed_out = true;
                }
            }
        }
    }
    seen
}

/// A woken raw fd: polled if it is still watched by the registration that
/// woke, reported if ready.
fn poll_fd(fd: RawFd, wake: &Arc<FdWake>, fds: &HashMap<RawFd, FdSlot>, polled: &mut Vec<Ready>) {
    let Some(s) = fds.get(&fd).filter(|s| Arc::ptr_eq(&s.wake, wake)) else {
        // Woken through a registration dropped since.
        return;
    };
    if !s.watched {
        // Stays woken: watching it again lists it anew (`watch_fd_as`).
        return;
    }
    let (polled_read, polled_write) = s.polled();
    let (r, w) = wake.poll(&s.afd, polled_read, polled_write);
    // An fd watched for reading that can only fail, never become readable
    // (the write end of a pipe, which asyncio's pipe transport watches to
    // see the reader go away): epoll reports the error alone, and tokio
    // files that as "write closed", not as readable. selectors reports an
    // error in every direction watched; so does this. (Nothing else
    // reaches the write side of a registration made for reading only.)
    let read_seen = r || (w && !s.write);
    let write_seen = w && s.write;
    // Fresh: the registration is for these directions only, and its
    // readiness was cleared when last reported, so only an edge seen since
    // (or a hang-up, which stays) sets it. An fd listed twice is merged by
    // the turn.
    if read_seen || write_seen {
        polled.push(Ready::Fd {
            fd,
            readable: read_seen,
            writable: write_seen,
        });
    }
}

/// Current readiness of `fd` for the wanted directions, by `poll(2)` with a
/// zero timeout. Errors and hang-ups count as both, as selectors report.
pub(super) fn poll_now(fd: RawFd, read: bool, write: bool) -> (bool, bool) {
    let mut events = 0;
    if read {
        events |= libc::POLLIN;
    }
    if write {
        events |= libc::POLLOUT;
    }
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout: no blocking, and no memory
    // beyond `pfd` is touched.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    if n <= 0 {
        return (false, false);
    }
    let broken = pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
    (
        read && (pfd.revents & libc::POLLIN != 0 || broken),
        write && (pfd.revents & libc::POLLOUT != 0 || broken),
    )
}

/// The signal pipe and its registration (dropped first).
pub(super) struct SignalSlot {
    pub afd: AsyncFd<Fd>,
    pub pipe: SignalPipe,
    /// Its waker in tokio's reactor (fd_wake.rs).
    pub wake: Arc<FdWake>,
}

/// Listeners and raw fd watchers: the scheduler's side of them.
impl TokioScheduler {
    /// A non-blocking fd whose every write wakes a blocked `turn`, which
    /// reads it empty and returns (a signal's C handler writes to it:
    /// signal_pipe.rs). Made at the first call; the same fd afterwards.
    pub fn signal_fd(&mut self) -> io::Result<RawFd> {
        if let Some(slot) = &self.signal {
            return Ok(slot.pipe.write_fd());
        }
        let pipe = SignalPipe::new()?;
        let afd = self.register(pipe.read_fd(), TokioInterest::READABLE)?;
        let wake = FdWake::new(Source::Signal, &self.woken);
        wake.arm(&afd, true, false);
        let fd = pipe.write_fd();
        self.signal = Some(SignalSlot { afd, pipe, wake });
        Ok(fd)
    }

    /// asyncio's add_reader is level-triggered: an fd still ready after its
    /// callback ran is reported again.
    pub(super) fn recheck_fired_fds(&mut self, busy: bool, out: &mut Vec<Ready>) {
        for fd in self.fired_fds.take_due(self.turn_no - 1, busy) {
            let Some(slot) = self.fds.get(&fd).filter(|s| s.watched) else {
                continue;
            };
            let (r, w) = poll_now(fd, slot.read, slot.write);
            if r || w {
                self.fired_fds.fired(fd, self.turn_no);
                out.push(Ready::Fd {
                    fd,
                    readable: r,
                    writable: w,
                });
            }
        }
    }

    // ----- listeners -----

    pub fn add_listener(&mut self, listener: Listener) -> io::Result<ListenerId> {
        let afd = self.register(listener.as_raw_fd(), TokioInterest::READABLE)?;
        let gen = self.gen();
        let entry = self.listeners.vacant_entry();
        let key = entry.key();
        let wake = FdWake::new(Source::Listener(key), &self.woken);
        wake.arm(&afd, true, false);
        entry.insert(ListenerSlot {
            gen,
            listener,
            afd,
            wake,
            active: true,
            hot: false,
            queued_hot: false,
        });
        Ok(ListenerId { key, gen })
    }

    fn listener_slot(&mut self, id: ListenerId) -> Option<&mut ListenerSlot> {
        self.listeners.get_mut(id.key).filter(|s| s.gen == id.gen)
    }

    pub fn accept(&mut self, id: ListenerId) -> io::Result<Option<(Stream, Addr)>> {
        let Some(s) = self.listener_slot(id) else {
            return Err(io::ErrorKind::NotFound.into());
        };
        let r = s.listener.accept();
        s.hot = !matches!(r, Ok(None));
        if s.hot && s.active && !s.queued_hot {
            s.queued_hot = true;
            self.hot_listeners.push((id.key, id.gen));
        }
        r
    }

    pub fn pause_listener(&mut self, id: ListenerId) -> io::Result<()> {
        let s = self
            .listener_slot(id)
            .ok_or(io::Error::from(io::ErrorKind::NotFound))?;
        s.active = false;
        Ok(())
    }

    pub fn resume_listener(&mut self, id: ListenerId) -> io::Result<()> {
        let s = self
            .listener_slot(id)
            .ok_or(io::Error::from(io::ErrorKind::NotFound))?;
        if !s.active {
            s.active = true;
            if s.wake.is_woken() {
                // An edge took the waker while paused: the turn polls the
                // listener again, which registers it.
                s.wake.list_again();
            }
            // Connections may have queued while paused, with no new edge.
            s.hot = true;
            if !s.queued_hot {
                s.queued_hot = true;
                self.hot_listeners.push((id.key, id.gen));
            }
        }
        Ok(())
    }

    /// Stops accepting. The scheduler keeps no reference: the listener is
    /// handed back (its tokio registration is already gone).
    pub fn remove_listener(&mut self, id: ListenerId) -> Option<Listener> {
        self.listener_slot(id)?;
        let slot = self.listeners.remove(id.key);
        drop(slot.afd);
        Some(slot.listener)
    }

    // ----- raw fd watchers -----

    /// Watches `fd` for the given directions (asyncio's add_reader /
    /// add_writer). Only those directions are registered: a new
    /// registration starts from what the kernel reports, so tokio's
    /// readiness is never stale and an fd that is already ready is
    /// reported at the next turn.
    pub fn watch_fd(&mut self, fd: RawFd, read: bool, write: bool) -> io::Result<()> {
        self.watch_fd_as(fd, read, write, Idle::No)
    }

    /// `watch_fd`, by a caller that has just seen every direction it asks
    /// for would block (a `sock_recv` whose `recv` said EAGAIN): a kept
    /// registration is watched again without the `poll(2)` that asks
    /// whether the fd became ready unseen. Nothing can have been missed:
    /// readiness tokio saw before that EAGAIN is stale, and what comes
    /// after it is a new edge, which tokio's reactor reports.
    /// `same_file`: the caller knows the fd still names the file it named
    /// when last watched, so the fstat(2) that tells a kept registration's
    /// file from a reused fd number's is not needed.
    pub fn watch_fd_idle(
        &mut self,
        fd: RawFd,
        read: bool,
        write: bool,
        same_file: bool,
    ) -> io::Result<()> {
        let idle = if same_file { Idle::SameFile } else { Idle::Yes };
        self.watch_fd_as(fd, read, write, idle)
    }

    fn watch_fd_as(&mut self, fd: RawFd, read: bool, write: bool, idle: Idle) -> io::Result<()> {
        if !read && !write {
            self.unwatch_fd(fd);
            return Ok(());
        }
        if let Some(slot) = self.fds.get_mut(&fd) {
            let same_directions = (slot.read, slot.write) == (read, write);
            if slot.watched && same_directions {
                return Ok(());
            }
            let kept = match idle {
                Idle::SameFile => !slot.watched,
                _ => slot.kept_for_same_file(fd),
            };
            if same_directions && kept {
                // Kept since unwatch_fd, and still the same file: watched
                // again with no new registration. What tokio saw meanwhile
                // may be stale; the next turn asks poll(2) instead, which
                // reports it if ready, as a new registration would (unless
                // the caller knows it is not: `watch_fd_idle`). If no edge
                // came since the turn last polled it, tokio saw nothing and
                // the fd's waker is still registered: nothing to do.
                if slot.wake.is_woken() {
                    clear_readiness(&slot.afd);
                    slot.wake.list_again();
                }
                slot.watched = true;
                if idle == Idle::No {
                    self.fired_fds.fired(fd, 0);
                }
                return Ok(());
            }
            // The old registration goes first: epoll refuses a second one.
            self.forget_fd(fd);
        }
        // A watch for writing alone (a socket's connect, mostly) registers
        // reading too, unpolled, so that the connection made on the socket
        // next can keep the registration (`add_connection`). Reading is
        // polled, and reported, only when watched: a read-only watch
        // registers reading alone (it polls the write side for errors).
        let registered = if write && !read {
            (true, true)
        } else {
            (read, write)
        };
        let afd = self.register(fd, watch::interest_of(registered))?;
        let slot = FdSlot {
            afd,
            read,
            write,
            watched: true,
            file: file_id(fd),
            registered,
            wake: FdWake::new(Source::Fd(fd), &self.woken),
        };
        let (polled_read, polled_write) = slot.polled();
        slot.wake.arm(&slot.afd, polled_read, polled_write);
        self.fds.insert(fd, slot);
        Ok(())
    }

    /// Stops watching `fd`. Returns whether it was watched.
    ///
    /// The tokio registration is kept, as RLoop keeps its epoll one
    /// (mio_sched/fds.rs): `sock_recv` and friends add a reader each time
    /// a read would block and remove it once it ran, and watching the same
    /// file again then costs an fstat(2) instead of a registration and a
    /// deregistration. Nothing is reported for it meanwhile. Every
    /// registration the scheduler makes for that number drops the kept
    /// one first (`register`), so its deregistration never reaches another
    /// file's.
    pub fn unwatch_fd(&mut self, fd: RawFd) -> bool {
        self.fired_fds.forget(fd);
        match self.fds.get_mut(&fd) {
            Some(slot) => std::mem::replace(&mut slot.watched, false),
            None => false,
        }
    }

    /// Drops `fd`'s registration, watched or kept.
    pub(super) fn forget_fd(&mut self, fd: RawFd) {
        self.fired_fds.forget(fd);
        self.fds.remove(&fd);
    }
}
