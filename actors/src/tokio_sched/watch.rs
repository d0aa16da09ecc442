//! A connection's watch on tokio's reactor: its registration, the
//! readiness its connection wants, and a waker that tokio's reactor calls
//! on an edge. The socket I/O itself runs in the scheduler's methods,
//! under the supervisor (see the module docs of the scheduler).
//!
//! A connection is not a tokio task. A task per connection cost a
//! cache-line-aligned task cell (256 bytes, a quarter of TokioLoop's
//! memory per idle connection), its spawn and its free (about 2,000
//! instructions per connection that came and went) and a wake, a queue
//! and a poll per readiness edge (about 650 instructions per echoed
//! message, half of TokioLoop's gap to RLoop), and all the task did was
//! poll a registration and file a report. So the watch is the waker: an
//! edge puts the watch on the scheduler's woken list ([`Woken`]) and wakes
//! the turn, which polls each woken watch itself, inside the runtime, and
//! files its report. What the scheduler wants of it (new directions, watch
//! again, stop) it sets in the watch directly.
//!
//! A registration covers the directions the connection wants, and is made
//! anew only when it does not: a direction registered but not wanted
//! calls no waker (the watch polls only what it wants, so only that
//! direction's waker is set), and costs no reactor wake-up either on a
//! TCP socket whose send buffer has not filled (Linux raises a write edge
//! then only together with a read edge, not for the ACKs: checked with
//! `epoll` over 2,000 echoed messages). So a connection whose writes once
//! blocked keeps reading and writing registered, and a client connection
//! keeps the registration its connect waited on (registered for both
//! directions: sources.rs): the registration made anew, and the one it
//! replaced, were each a cache-line-aligned allocation, and a freed one is
//! not reused by the next (glibc 2.36), which left some 270 bytes of
//! every client connection resident.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};

use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, Ready as TokioReady};

use super::fd_wake::FdWake;

/// A raw fd handed to tokio's reactor; never closed through this.
pub(super) struct Fd(pub(super) RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// (read, write) readiness wanted by a connection; None: nothing.
pub(super) type Want = Option<(bool, bool)>;

/// A registration with the reactor, with the interest it was made for.
type Registration = (AsyncFd<Fd>, (bool, bool));

/// The tokio interest for a (read, write) want; reading when neither.
pub(super) fn interest_of((r, w): (bool, bool)) -> Interest {
    match (r, w) {
        (true, true) => Interest::READABLE | Interest::WRITABLE,
        (false, true) => Interest::WRITABLE,
        _ => Interest::READABLE,
    }
}

/// Whether a registration for `registered` sees every direction of `want`.
pub(super) fn covers(registered: (bool, bool), want: (bool, bool)) -> bool {
    (registered.0 || !want.0) && (registered.1 || !want.1)
}

/// Registers `fd` with the reactor of the current runtime (the caller is
/// inside it).
pub(super) fn register(fd: RawFd, interest: Interest) -> io::Result<AsyncFd<Fd>> {
    // SAFETY: `fd` stays open for the registration's whole life: a
    // connection's registration is in its watch, from which the scheduler
    // takes and drops it before it closes the socket (and a stopped watch
    // registers no more); a listener's registration is dropped before the
    // listener is handed back. A raw fd's may outlive the fd: unwatch_fd
    // keeps it (asyncio's contract has remove_reader before close), and
    // the fd may be closed after. That is safe for the registration's one
    // use of the fd, its EPOLL_CTL_DEL when dropped: epoll forgot a closed
    // fd by itself, and the scheduler drops a kept registration before it
    // registers that number again (TokioScheduler::register), so the DEL
    // never names a file registered since; at worst it fails, which tokio
    // ignores.
    unsafe { AsyncFd::register_with_interest(Fd(fd), interest) }.map_err(|e| e.into_parts().1)
}

/// One readiness report of a connection's watch.
#[derive(Clone, Copy)]
pub(super) struct Report {
    pub key: usize,
    pub gen: u64,
    pub readable: bool,
    pub writable: bool,
    /// The peer closed its side (or the socket broke).
    pub read_closed: bool,
    /// The watch waits for [`Watch::rearm`] before watching again.
    pub sticky: bool,
    /// The watch failed (it panicked, could not register with the
    /// reactor, or the reactor is gone): its connection must end.
    pub ended: bool,
}

/// The watches and raw fds (fd_wake.rs) tokio's reactor woke since the
/// turn last looked, and the waker of a `turn` blocked until one comes or
/// another thread pokes it (`TokioWaker`). One lock for all of it, and
/// a poke is forgotten when the turn ends, so a wake nobody waited for
/// leaves no permit behind (a `Notify`'s would end the next blocking turn
/// at once, with nothing to report; until 2026-12-04 the loop's waker
/// was one, and creating, polling and dropping its `Notified` cost about
/// 180 instructions per blocking turn).
#[derive(Default)]
pub(super) struct Woken(Mutex<WokenList>);

#[derive(Default)]
struct WokenList {
    watches: Vec<Arc<Watch>>,
    fds: Vec<Arc<FdWake>>,
    /// Another thread woke the loop (or a signal came) since the turn
    /// last ended.
    poked: bool,
    waiter: Option<Waker>,
}

impl Woken {
    /// The list; a poisoned lock (a panic elsewhere) still holds it.
    fn lock(&self) -> MutexGuard<'_, WokenList> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Files `add` in the list and wakes a waiting turn.
    fn push_with(&self, add: impl FnOnce(&mut WokenList)) {
        let waiter = {
            let mut woken = self.lock();
            add(&mut woken);
            woken.waiter.take()
        };
        if let Some(waker) = waiter {
            waker.wake();
        }
    }

    fn push(&self, watch: Arc<Watch>) {
        self.push_with(|w| w.watches.push(watch));
    }

    pub fn push_fd(&self, fd: Arc<FdWake>) {
        self.push_with(|w| w.fds.push(fd));
    }

    /// Ends a blocked turn, or the next one to block, with nothing to
    /// report: another thread woke the loop (its flag, set before this,
    /// says so), or a signal came. The flag is cleared when the turn
    /// ends; a poke that comes between that and the flag being read
    /// ends the next blocking turn early, empty, which is harmless.
    pub fn poke(&self) {
        self.push_with(|w| w.poked = true);
    }

    pub fn has_any(&self) -> bool {
        let woken = self.lock();
        !woken.watches.is_empty() || !woken.fds.is_empty()
    }

    /// Ready when a watch or fd is waiting, or after a poke; else `cx` is
    /// woken by the next.
    pub fn poll_any(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut woken = self.lock();
        if !woken.watches.is_empty() || !woken.fds.is_empty() || woken.poked {
            return Poll::Ready(());
        }
        match &mut woken.waiter {
            Some(waker) => waker.clone_from(cx.waker()),
            none => *none = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Swaps every woken watch and fd waker into `watches` and `fds`
    /// (empty; their buffers are reused), under one lock.
    fn take(&self, watches: &mut Vec<Arc<Watch>>, fds: &mut Vec<Arc<FdWake>>) {
        let mut woken = self.lock();
        std::mem::swap(&mut woken.watches, watches);
        std::mem::swap(&mut woken.fds, fds);
    }

    /// Forgets a waiter that is not waiting now, and any poke (the turn
    /// is over).
    pub fn forget_waiter(&self) {
        let mut woken = self.lock();
        woken.waiter = None;
        woken.poked = false;
    }

    /// Polls every woken watch (inside the runtime), filing its reports in
    /// `out`, and hands the woken fd wakers over in `fds`, for the sources
    /// to poll. A watch that panics ends its own connection only.
    pub fn poll_woken(
        &self,
        buf: &mut Vec<Arc<Watch>>,
        fds: &mut Vec<Arc<FdWake>>,
        out: &mut Vec<Report>,
    ) {
        self.take(buf, fds);
        for watch in buf.drain(..) {
            let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                watch.poll(out);
            }));
            if polled.is_err() {
                drop(watch.stop());
                out.push(watch.report_ended());
            }
        }
    }
}

/// A waker's edge: files its owner with `push` unless `flag` says it is
/// filed already (or the scheduler is gone).
pub(super) fn list_once(flag: &AtomicBool, list: &Weak<Woken>, push: impl FnOnce(&Woken)) {
    if !flag.swap(true, Ordering::Relaxed) {
        if let Some(list) = list.upgrade() {
            push(&list);
        }
    }
}

#[derive(Default)]
struct State {
    /// Dropped by the scheduler before it closes the socket.
    registration: Option<Registration>,
    want: Want,
    /// False after a sticky report, until the scheduler's `rearm`: tokio
    /// keeps "closed" readiness set for good, so watching on would spin.
    armed: bool,
    stopped: bool,
    /// Test-only fault: the next poll panics.
    panic: bool,
}

/// See the module docs.
pub(super) struct Watch {
    key: usize,
    gen: u64,
    fd: RawFd,
    /// Weak: the list holds its watches, and a wake that comes after the
    /// scheduler is gone (tokio frees a released registration, and wakes
    /// its waker, at its reactor's next turn or its own drop) finds none.
    woken: Weak<Woken>,
    /// On the woken list already: an edge in each direction, or an edge
    /// and a new want, queue it once.
    queued: AtomicBool,
    state: Mutex<State>,
}

impl Wake for Watch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        list_once(&self.queued, &self.woken, |w| w.push(Arc::clone(self)));
    }
}

impl Watch {
    /// A watch holding the connection's first registration (with the
    /// interest it was made for); polled at the next turn.
    pub fn start(
        key: usize,
        gen: u64,
        fd: RawFd,
        want: Want,
        registration: (AsyncFd<Fd>, (bool, bool)),
        woken: &Arc<Woken>,
    ) -> Arc<Self> {
        let watch = Arc::new(Watch {
            key,
            gen,
            fd,
            woken: Arc::downgrade(woken),
            queued: AtomicBool::new(false),
            state: Mutex::new(State {
                registration: Some(registration),
                want,
                armed: true,
                ..State::default()
            }),
        });
        watch.wake_by_ref();
        watch
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The connection wants other directions: watched from the next turn.
    pub fn want(self: &Arc<Self>, want: Want) {
        {
            let mut state = self.lock();
            state.want = want;
            state.armed = true;
        }
        self.wake_by_ref();
    }

    /// Watch again after a sticky report.
    pub fn rearm(self: &Arc<Self>) {
        self.lock().armed = true;
        self.wake_by_ref();
    }

    /// Stops watching and hands back the registration: dropped (outside
    /// the lock) by the caller, it leaves the reactor at once, and the
    /// socket may close. A stopped watch never registers again.
    #[must_use]
    pub fn stop(&self) -> Option<AsyncFd<Fd>> {
        let mut state = self.lock();
        state.stopped = true;
        state.registration.take().map(|(afd, _)| afd)
    }

    /// Test-only fault: the next poll panics. False if stopped already.
    pub fn inject_panic(self: &Arc<Self>) -> bool {
        let alive = {
            let mut state = self.lock();
            state.panic = true;
            !state.stopped
        };
        self.wake_by_ref();
        alive
    }

    fn report_ended(&self) -> Report {
        Report {
            key: self.key,
            gen: self.gen,
            readable: false,
            writable: false,
            read_closed: false,
            sticky: false,
            ended: true,
        }
    }

    /// Polls the registration for the wanted directions (registering it
    /// anew if they changed) with this watch as the waker, and files what
    /// it saw.
    fn poll(self: &Arc<Self>, out: &mut Vec<Report>) {
        self.queued.store(false, Ordering::Relaxed);
        let mut guard = self.lock();
        if guard.stopped {
            return;
        }
        if std::mem::take(&mut guard.panic) {
            drop(guard);
            panic!("injected connection watch panic");
        }
        let (r, w) = match guard.want {
            Some(want) if guard.armed => want,
            _ => return,
        };
        let state = &mut *guard;
        if !state
            .registration
            .as_ref()
            .is_some_and(|(_, registered)| covers(*registered, (r, w)))
        {
            // The old registration goes first: epoll refuses a second one.
            state.registration = None;
            match register(self.fd, interest_of((r, w))) {
                Ok(afd) => state.registration = Some((afd, (r, w))),
                Err(_) => {
                    state.stopped = true;
                    out.push(self.report_ended());
                    return;
                }
            }
        }
        let Some((afd, _)) = state.registration.as_ref() else {
            return;
        };
        let waker = Waker::from(Arc::clone(self));
        let mut cx = Context::from_waker(&waker);
        // Twice at most: the second poll registers the waker for the next
        // edge, unless readiness came back meanwhile; then report that
        // too and look again at the next turn instead of spinning here.
        for _ in 0..2 {
            let mut got = TokioReady::EMPTY;
            let alive = (!r || poll_side(afd, &mut cx, false, &mut got).is_some())
                && (!w || poll_side(afd, &mut cx, true, &mut got).is_some());
            if !alive {
                // tokio's reactor is gone (runtime shutting down).
                state.stopped = true;
                out.push(self.report_ended());
                return;
            }
            if got.is_empty() {
                return;
            }
            let broken = got.is_error();
            let read_closed = got.is_read_closed() || broken;
            let sticky = read_closed || got.is_write_closed();
            out.push(Report {
                key: self.key,
                gen: self.gen,
                readable: r && (got.is_readable() || read_closed),
                writable: w && (got.is_writable() || got.is_write_closed() || broken),
                read_closed,
                sticky,
                ended: false,
            });
            state.armed = !sticky;
            if sticky {
                return;
            }
        }
        drop(guard);
        self.wake_by_ref();
    }
}

/// Polls one direction: the readiness seen (cleared in tokio, so the next
/// one needs a new edge), or `None` if the registration is gone.
pub(super) fn poll_side(
    afd: &AsyncFd<Fd>,
    cx: &mut Context<'_>,
    write: bool,
    got: &mut TokioReady,
) -> Option<()> {
    let polled = if write {
        afd.poll_write_ready(cx)
    } else {
        afd.poll_read_ready(cx)
    };
    match polled {
        Poll::Ready(Ok(mut guard)) => {
            *got |= guard.ready();
            guard.clear_ready();
            Some(())
        }
        Poll::Ready(Err(_)) => None,
        Poll::Pending => Some(()),
    }
}
