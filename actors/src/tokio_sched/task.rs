//! The tokio task of one connection actor: it waits on tokio's reactor for
//! the readiness its connection needs, reports it to the scheduler, and
//! obeys its mailbox. The socket I/O itself runs in the scheduler's
//! methods, under the supervisor (see the module docs of the scheduler).
//!
//! Written as a plain `Future` rather than an `async` block with
//! `select!`: a task is polled once per readiness edge, the hottest thing
//! TokioLoop does, and `AsyncFd::poll_*_ready` keeps one waker slot per
//! direction where a `ready()` future would be made, queued on tokio's
//! waiter list and unlinked again on every edge.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, Ready as TokioReady};

use super::mailbox::Mailbox;

/// A raw fd handed to tokio's reactor; never closed through this.
pub(super) struct Fd(pub(super) RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// (read, write) readiness wanted by an actor; None: nothing.
pub(super) type Want = Option<(bool, bool)>;

/// A connection's registration with the reactor, with the interest it was
/// made for. Only what is wanted is registered: a socket registered for
/// writing while nothing waits to be written would wake the reactor on
/// every ACK.
pub(super) type Registration = (AsyncFd<Fd>, (bool, bool));

/// The tokio interest for a (read, write) want; reading when neither.
pub(super) fn interest_of((r, w): (bool, bool)) -> Interest {
    match (r, w) {
        (true, true) => Interest::READABLE | Interest::WRITABLE,
        (false, true) => Interest::WRITABLE,
        _ => Interest::READABLE,
    }
}

/// Registers `fd` with the reactor of the current runtime (the caller is
/// inside it).
pub(super) fn register(fd: RawFd, interest: Interest) -> io::Result<AsyncFd<Fd>> {
    // SAFETY: `fd` stays open for the registration's whole life: a
    // connection's registration is in its mailbox, from which the
    // scheduler takes and drops it before it closes the socket (and the
    // task, stopped by then, registers no more); a listener's
    // registration is dropped before the listener is handed back. A raw
    // fd's may outlive the fd: unwatch_fd keeps it (asyncio's contract
    // has remove_reader before close), and the fd may be closed after.
    // That is safe for the registration's one use of the fd, its
    // EPOLL_CTL_DEL when dropped: epoll forgot a closed fd by itself, and
    // the scheduler drops a kept registration before it registers that
    // number again (TokioScheduler::register), so the DEL never names a
    // file registered since; at worst it fails, which tokio ignores.
    unsafe { AsyncFd::register_with_interest(Fd(fd), interest) }.map_err(|e| e.into_parts().1)
}

/// One readiness report of a connection task.
#[derive(Clone, Copy)]
pub(super) struct Report {
    pub key: usize,
    pub gen: u64,
    pub readable: bool,
    pub writable: bool,
    /// The peer closed its side (or the socket broke).
    pub read_closed: bool,
    /// The task waits for a [`Mail::Rearm`] before watching again.
    pub sticky: bool,
    /// The task ended without a Stop (it panicked, or could not register
    /// with the reactor): its connection must end.
    pub ended: bool,
}

/// Where connection tasks leave their reports for the next `turn`, and
/// the waker of a `turn` blocked until one comes. One lock for both, and
/// no permit left behind by reports nobody waited for (a `Notify` would
/// end the next blocking turn at once, with nothing to report).
#[derive(Default)]
pub(super) struct Reports {
    list: Mutex<ReportList>,
    /// Tasks told to stop that have not ended yet: the memory of a closed
    /// connection is freed only once its task has (see `HeapTrim` in
    /// the scheduler's `turn`).
    pub ending: AtomicUsize,
}

#[derive(Default)]
pub(super) struct ReportList {
    pub list: Vec<Report>,
    waiter: Option<Waker>,
}

impl Reports {
    /// The reports; a poisoned lock (a panic elsewhere) still holds them.
    pub fn lock(&self) -> MutexGuard<'_, ReportList> {
        self.list
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, report: Report) {
        let waiter = {
            let mut reports = self.lock();
            reports.list.push(report);
            reports.waiter.take()
        };
        if let Some(waker) = waiter {
            waker.wake();
        }
    }

    pub fn has_any(&self) -> bool {
        !self.lock().list.is_empty()
    }

    /// Ready when a report is waiting; else `cx` is woken by the next one.
    pub fn poll_any(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut reports = self.lock();
        if !reports.list.is_empty() {
            return Poll::Ready(());
        }
        match &mut reports.waiter {
            Some(waker) => waker.clone_from(cx.waker()),
            none => *none = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Swaps every report into `into` (empty; its buffer is reused) and
    /// forgets a waiter that is not waiting now.
    pub fn take(&self, into: &mut Vec<Report>) {
        let mut reports = self.lock();
        reports.waiter = None;
        std::mem::swap(&mut reports.list, into);
    }
}

/// The actor task of one connection.
pub(super) struct ConnectionTask {
    pub key: usize,
    pub gen: u64,
    pub fd: RawFd,
    pub want: Want,
    /// Also holds the registration (`Mailbox::with_registration`).
    pub mailbox: Arc<Mailbox>,
    /// Told to stop (or the scheduler is gone): ending is not a fault.
    pub stopped: bool,
    pub reports: Arc<Reports>,
    /// False after a sticky report, until the scheduler's Rearm: tokio
    /// keeps "closed" readiness set for good, so watching on would spin.
    pub armed: bool,
}

/// Polls one direction: the readiness seen (cleared in tokio, so the next
/// one needs a new edge), or `None` if the registration is gone.
fn poll_side(
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

impl Future for ConnectionTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // The mailbox first: a stop or a new want applies before readiness.
        let mail = this.mailbox.take(cx);
        if mail.panic {
            panic!("injected connection task panic");
        }
        if mail.stop {
            this.stopped = true;
            return Poll::Ready(());
        }
        if let Some(want) = mail.want {
            this.want = want;
            this.armed = true;
        }
        if mail.rearm {
            this.armed = true;
        }
        let (r, w) = match this.want {
            Some(want) if this.armed => want,
            _ => return Poll::Pending,
        };
        let ConnectionTask {
            key,
            gen,
            fd,
            mailbox,
            reports,
            armed,
            ..
        } = this;
        mailbox.with_registration(|registration| {
            if registration.as_ref().map(|(_, registered)| *registered) != Some((r, w)) {
                // The old registration goes first: epoll refuses a second one.
                *registration = None;
                match register(*fd, interest_of((r, w))) {
                    Ok(afd) => *registration = Some((afd, (r, w))),
                    // The task ends; the scheduler ends its connection.
                    Err(_) => return Poll::Ready(()),
                }
            }
            let Some((afd, _)) = registration.as_ref() else {
                return Poll::Ready(());
            };
            // Twice at most: the second poll registers the waker for the
            // next edge, unless readiness came back meanwhile; then report
            // that too and come back later instead of spinning here.
            for _ in 0..2 {
                if !*armed {
                    return Poll::Pending;
                }
                let mut got = TokioReady::EMPTY;
                let alive = (!r || poll_side(afd, cx, false, &mut got).is_some())
                    && (!w || poll_side(afd, cx, true, &mut got).is_some());
                if !alive {
                    // tokio's reactor is gone (runtime shutting down).
                    return Poll::Ready(());
                }
                if got.is_empty() {
                    return Poll::Pending;
                }
                let broken = got.is_error();
                let read_closed = got.is_read_closed() || broken;
                let sticky = read_closed || got.is_write_closed();
                reports.push(Report {
                    key: *key,
                    gen: *gen,
                    readable: r && (got.is_readable() || read_closed),
                    writable: w && (got.is_writable() || got.is_write_closed() || broken),
                    read_closed,
                    sticky,
                    ended: false,
                });
                *armed = !sticky;
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }
}

impl Drop for ConnectionTask {
    /// However the task ends without a Stop (a panic unwinds through here
    /// too), its registration goes and the scheduler hears of it at the
    /// next turn.
    fn drop(&mut self) {
        let (registration, counted) = self.mailbox.gone();
        drop(registration);
        if counted {
            self.reports.ending.fetch_sub(1, Ordering::Relaxed);
        }
        if !self.stopped {
            self.reports.push(Report {
                key: self.key,
                gen: self.gen,
                readable: false,
                writable: false,
                read_closed: false,
                sticky: false,
                ended: true,
            });
        }
    }
}
