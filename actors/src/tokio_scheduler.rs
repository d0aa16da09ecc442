//! The tokio scheduler behind `rloop.TokioLoop`: the same pull-style API as
//! [`MioScheduler`](crate::MioScheduler), with tokio as the reactor.
//!
//! - A current-thread tokio runtime, owned here and driven by `turn` on the
//!   thread running the loop (`Runtime::block_on`): no cross-thread hop
//!   per message. The scheduler is `Send` (tasks and their state are), so a
//!   loop made in one thread may run in another, as asyncio allows.
//!   A multi-threaded runtime could later move socket I/O off the loop
//!   thread; the actor state machine would not change.
//! - **Each connection actor is a tokio task** with a channel mailbox. The
//!   task waits on tokio's reactor for the readiness its connection needs
//!   (the mailbox tells it when that changes, or to stop) and reports it to
//!   the scheduler's ready queue. The socket I/O itself runs in the
//!   scheduler's methods, called by the loop core, on the same
//!   [`Connection`] state machine as the mio scheduler, under the same
//!   supervisor: exactly one `Closed` per actor, a panic included. A task
//!   that ends on its own (it panicked, or tokio dropped it) ends its
//!   connection with `Closed(Some(Panic))` at the next turn.
//! - Listeners and raw-fd watchers (asyncio's add_reader) are polled by the
//!   scheduler itself inside `turn`; raw fds get asyncio's level-triggered
//!   behaviour by re-checking, with `poll(2)`, the fds that fired last turn.
//! - A socket is closed only after its task (and the task's registration
//!   with tokio's reactor) is gone, so a reused fd number can never be
//!   deregistered by a stale registration.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use mio::Interest;
use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest as TokioInterest;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::acceptor::Listener;
use crate::actors_api::Actors;
use crate::addr::Addr;
use crate::command::Command;
use crate::connection::Connection;
use crate::event::{CloseError, Event};
use crate::mio_sched::{ConnId, ListenerId, Ready};
use crate::stream::Stream;

/// Wakes a blocked (or the next) `turn` from any thread.
#[derive(Default)]
pub struct TokioWaker {
    notify: Notify,
    woken: AtomicBool,
}

impl TokioWaker {
    pub fn wake(&self) -> io::Result<()> {
        self.woken.store(true, Ordering::SeqCst);
        self.notify.notify_one();
        Ok(())
    }
}

/// A raw fd handed to tokio's reactor; never closed through this.
struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// (read, write) readiness wanted by an actor; None: nothing.
type Want = Option<(bool, bool)>;

enum Mail {
    /// The readiness the connection needs changed.
    Want(Want),
    /// The last report was collected: wait for readiness again.
    Rearm,
    Stop,
}

/// What connection tasks report: slab key, generation, readable,
/// writable, peer closed its side, and whether the task waits for a
/// Rearm before watching again.
type Report = (usize, u64, bool, bool, bool, bool);

#[derive(Default)]
struct Shared {
    reports: Mutex<Vec<Report>>,
    notify: Notify,
}

impl Shared {
    /// The reports; a poisoned lock (a panic elsewhere) still holds them.
    fn reports(&self) -> MutexGuard<'_, Vec<Report>> {
        self.reports
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn want_of(interest: Option<Interest>) -> Want {
    interest.map(|i| (i.is_readable(), i.is_writable()))
}

fn tokio_interest((r, w): (bool, bool)) -> TokioInterest {
    match (r, w) {
        (true, true) => TokioInterest::READABLE | TokioInterest::WRITABLE,
        (false, true) => TokioInterest::WRITABLE,
        _ => TokioInterest::READABLE,
    }
}

/// The actor task of one connection: wait for the wanted readiness, report
/// it, repeat; obey the mailbox.
async fn connection_task(
    key: usize,
    gen: u64,
    afd: AsyncFd<Fd>,
    mut want: Want,
    mut mailbox: mpsc::UnboundedReceiver<Mail>,
    shared: Arc<Shared>,
) {
    // After a report the task clears tokio's readiness and waits for the
    // next edge, with no round trip through the mailbox. But tokio keeps
    // "closed" and error readiness set for good: after reporting one of
    // those the task waits for the scheduler to collect it (Rearm), else it
    // would spin.
    let mut armed = true;
    loop {
        let ready = async {
            match want {
                Some(w) if armed => afd.ready(tokio_interest(w)).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            mail = mailbox.recv() => match mail {
                Some(Mail::Want(w)) => {
                    want = w;
                    armed = true;
                }
                Some(Mail::Rearm) => armed = true,
                Some(Mail::Stop) | None => return,
            },
            guard = ready => {
                let Ok(mut guard) = guard else { return };
                let got = guard.ready();
                guard.clear_ready();
                let (r, w) = want.unwrap_or((false, false));
                let broken = got.is_error();
                let sticky = broken || got.is_read_closed() || got.is_write_closed();
                shared.reports().push((
                    key,
                    gen,
                    r && (got.is_readable() || got.is_read_closed() || broken),
                    w && (got.is_writable() || got.is_write_closed() || broken),
                    got.is_read_closed() || broken,
                    sticky,
                ));
                armed = !sticky;
                shared.notify.notify_one();
            }
        }
    }
}

struct ConnSlot {
    gen: u64,
    conn: Connection,
    mailbox: mpsc::UnboundedSender<Mail>,
    task: JoinHandle<()>,
    want: Want,
    queued_hot: bool,
}

struct ListenerSlot {
    gen: u64,
    listener: Listener,
    afd: AsyncFd<Fd>,
    active: bool,
    hot: bool,
    queued_hot: bool,
}

struct FdSlot {
    afd: AsyncFd<Fd>,
    read: bool,
    write: bool,
}

/// A socket kept open until the task that registered it is gone.
struct Dying {
    task: JoinHandle<()>,
    _socket: Connection,
}

/// See the module docs.
pub struct TokioScheduler {
    // Field order is drop order: the runtime (with the tasks and their
    // reactor registrations) goes first, then the sockets.
    rt: tokio::runtime::Runtime,
    conns: Slab<ConnSlot>,
    listeners: Slab<ListenerSlot>,
    fds: HashMap<RawFd, FdSlot>,
    dying: Vec<Dying>,
    shared: Arc<Shared>,
    waker: Arc<TokioWaker>,
    /// Connections (key, gen) to report again next turn without an event.
    hot: Vec<(usize, u64)>,
    hot_listeners: Vec<(usize, u64)>,
    /// Raw fds reported last turn: re-checked before the next wait.
    fired_fds: Vec<RawFd>,
    next_gen: u64,
}

impl TokioScheduler {
    pub fn new() -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        Ok(TokioScheduler {
            rt,
            conns: Slab::new(),
            listeners: Slab::new(),
            fds: HashMap::new(),
            dying: Vec::new(),
            shared: Arc::new(Shared::default()),
            waker: Arc::new(TokioWaker::default()),
            hot: Vec::new(),
            hot_listeners: Vec::new(),
            fired_fds: Vec::new(),
            next_gen: 0,
        })
    }

    pub fn waker(&self) -> Arc<TokioWaker> {
        Arc::clone(&self.waker)
    }

    fn gen(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }

    fn register(&self, fd: RawFd, interest: TokioInterest) -> io::Result<AsyncFd<Fd>> {
        let _runtime = self.rt.enter();
        // SAFETY: `fd` stays open for the registration's whole life: a
        // connection's socket is kept (in `dying`) until its task, which
        // owns the registration, has ended; a listener's registration is
        // dropped before the listener is handed back; a raw fd's is dropped
        // by unwatch_fd, which asyncio's contract calls before the fd is
        // closed (as remove_reader must precede close with any selector).
        unsafe { AsyncFd::register_with_interest(Fd(fd), interest) }.map_err(|e| e.into_parts().1)
    }

    /// Waits up to `timeout` for readiness and appends it to `out`.
    pub fn turn(&mut self, timeout: Option<Duration>, out: &mut Vec<Ready>) -> io::Result<()> {
        self.reap_dying();
        let start = out.len();
        self.recheck_fired_fds(out);
        // Sockets waiting for their task to end are closed as soon as it
        // has: don't block while any are left (a peer may wait for FIN).
        let busy = out.len() > start
            || !self.dying.is_empty()
            || !self.hot.is_empty()
            || !self.hot_listeners.is_empty()
            || !self.shared.reports().is_empty()
            || self.waker.woken.load(Ordering::SeqCst);
        let timeout = if busy { Some(Duration::ZERO) } else { timeout };
        let mut polled: Vec<Ready> = Vec::new();
        {
            let shared = &self.shared;
            let waker = &self.waker;
            let listeners = &self.listeners;
            let fds = &self.fds;
            let polled = &mut polled;
            let wait = async move {
                let io_ready = std::future::poll_fn(|cx| {
                    poll_sources(cx, listeners, fds, polled);
                    if polled.is_empty() {
                        Poll::Pending
                    } else {
                        Poll::Ready(())
                    }
                });
                match timeout {
                    Some(d) if d.is_zero() => {
                        // One yield lets the runtime run the tasks woken
                        // so far and poll its reactor; tasks woken by that
                        // poll report at the next turn.
                        tokio::task::yield_now().await;
                        std::future::poll_fn(|cx| {
                            poll_sources(cx, listeners, fds, polled);
                            Poll::Ready(())
                        })
                        .await;
                    }
                    Some(d) => {
                        tokio::select! {
                            _ = shared.notify.notified() => {}
                            _ = waker.notify.notified() => {}
                            _ = io_ready => {}
                            _ = tokio::time::sleep(d) => {}
                        }
                        tokio::task::yield_now().await;
                    }
                    None => {
                        tokio::select! {
                            _ = shared.notify.notified() => {}
                            _ = waker.notify.notified() => {}
                            _ = io_ready => {}
                        }
                        tokio::task::yield_now().await;
                    }
                }
            };
            self.rt.block_on(wait);
        }
        if self.waker.woken.swap(false, Ordering::SeqCst) {
            out.push(Ready::Woken);
        }
        for r in polled {
            if let Ready::Fd {
                fd,
                readable,
                writable,
            } = r
            {
                // The re-check above may have reported this fd already.
                let known = out.iter_mut().find_map(|x| match x {
                    Ready::Fd {
                        fd: other,
                        readable,
                        writable,
                    } if *other == fd => Some((readable, writable)),
                    _ => None,
                });
                if let Some((r0, w0)) = known {
                    *r0 |= readable;
                    *w0 |= writable;
                    continue;
                }
                if !self.fired_fds.contains(&fd) {
                    self.fired_fds.push(fd);
                }
            }
            out.push(r);
        }
        self.collect_reports(out);
        self.report_hot(out);
        self.reap_dead_tasks(out);
        self.reap_dying();
        Ok(())
    }

    fn collect_reports(&mut self, out: &mut Vec<Ready>) {
        let reports = std::mem::take(&mut *self.shared.reports());
        for (key, gen, r, w, closed, sticky) in reports {
            let Some(slot) = self.conns.get_mut(key) else {
                continue;
            };
            if slot.gen != gen {
                continue;
            }
            if closed {
                slot.conn.note_read_closed();
            }
            if sticky {
                let _ = slot.mailbox.send(Mail::Rearm);
            }
            let id = ConnId { key, gen };
            let merged = out.iter_mut().find_map(|x| match x {
                Ready::Conn {
                    id: other,
                    readable,
                    writable,
                } if *other == id => Some((readable, writable)),
                _ => None,
            });
            match merged {
                Some((readable, writable)) => {
                    *readable |= r;
                    *writable |= w;
                }
                None => out.push(Ready::Conn {
                    id,
                    readable: r,
                    writable: w,
                }),
            }
        }
    }

    fn report_hot(&mut self, out: &mut Vec<Ready>) {
        for (key, gen) in std::mem::take(&mut self.hot) {
            let Some(slot) = self.conns.get_mut(key) else {
                continue;
            };
            if slot.gen != gen {
                continue;
            }
            slot.queued_hot = false;
            if !slot.conn.read_pending() {
                continue;
            }
            let id = ConnId { key, gen };
            let seen = out.iter_mut().find_map(|x| match x {
                Ready::Conn {
                    id: other,
                    readable,
                    ..
                } if *other == id => Some(readable),
                _ => None,
            });
            match seen {
                Some(readable) => *readable = true,
                None => out.push(Ready::Conn {
                    id,
                    readable: true,
                    writable: false,
                }),
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

    /// asyncio's add_reader is level-triggered: an fd still ready after its
    /// callback ran is reported again.
    fn recheck_fired_fds(&mut self, out: &mut Vec<Ready>) {
        for fd in std::mem::take(&mut self.fired_fds) {
            let Some(slot) = self.fds.get(&fd) else {
                continue;
            };
            let (r, w) = poll_now(fd, slot.read, slot.write);
            if r || w {
                self.fired_fds.push(fd);
                out.push(Ready::Fd {
                    fd,
                    readable: r,
                    writable: w,
                });
            }
        }
    }

    /// A connection whose task ended without being told to (it panicked)
    /// ends with a panic error: the supervisor's one Closed.
    fn reap_dead_tasks(&mut self, out: &mut Vec<Ready>) {
        let dead: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, s)| s.task.is_finished())
            .map(|(k, _)| k)
            .collect();
        for key in dead {
            if let Some(slot) = self.conns.get_mut(key) {
                if !slot.conn.is_finished() {
                    let mut evs = Vec::new();
                    slot.conn.finish(
                        Some(CloseError::Panic("connection task ended".into())),
                        &mut evs,
                    );
                    // Reported as readable so the caller acts and sees the
                    // connection gone; the Closed event is delivered by the
                    // caller's next call (the slot is dead then).
                    out.push(Ready::Conn {
                        id: ConnId { key, gen: slot.gen },
                        readable: true,
                        writable: false,
                    });
                }
            }
        }
    }

    /// Drops sockets whose task has ended (and deregistered from tokio).
    fn reap_dying(&mut self) {
        self.dying.retain(|d| !d.task.is_finished());
    }

    // ----- connections -----

    pub fn add_connection(&mut self, stream: Stream) -> io::Result<ConnId> {
        let fd = stream.as_raw_fd();
        let conn = Connection::new(stream);
        let afd = self.register(fd, TokioInterest::READABLE | TokioInterest::WRITABLE)?;
        let gen = self.gen();
        let key = self.conns.vacant_key();
        let want = want_of(conn.interest());
        let (tx, rx) = mpsc::unbounded_channel();
        let task = self.rt.spawn(connection_task(
            key,
            gen,
            afd,
            want,
            rx,
            Arc::clone(&self.shared),
        ));
        self.conns.insert(ConnSlot {
            gen,
            conn,
            mailbox: tx,
            task,
            want,
            queued_hot: false,
        });
        Ok(ConnId { key, gen })
    }

    fn slot(&self, id: ConnId) -> Option<&ConnSlot> {
        self.conns.get(id.key).filter(|s| s.gen == id.gen)
    }

    fn slot_mut(&mut self, id: ConnId) -> Option<&mut ConnSlot> {
        self.conns.get_mut(id.key).filter(|s| s.gen == id.gen)
    }

    /// After a call: drop a finished actor, tell the task about changed
    /// interest, queue a re-read.
    fn settle_conn(&mut self, id: ConnId) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        if slot.conn.is_finished() {
            self.drop_conn(id);
            return;
        }
        let want = want_of(slot.conn.interest());
        if want != slot.want {
            slot.want = want;
            // A send fails only if the task is gone; reap_dead_tasks
            // handles that.
            let _ = slot.mailbox.send(Mail::Want(want));
        }
        if slot.conn.read_pending() && !slot.queued_hot {
            slot.queued_hot = true;
            self.hot.push((id.key, id.gen));
        }
    }

    fn drop_conn(&mut self, id: ConnId) {
        if self.slot(id).is_none() {
            return;
        }
        let slot = self.conns.remove(id.key);
        let _ = slot.mailbox.send(Mail::Stop);
        self.dying.push(Dying {
            task: slot.task,
            _socket: slot.conn,
        });
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Scheduler shutdown: every live actor ends with one `Closed(None)`.
    pub fn close_all(&mut self, out: &mut Vec<(ConnId, Event)>) {
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .map(|(key, s)| ConnId { key, gen: s.gen })
            .collect();
        let mut evs = Vec::new();
        for id in ids {
            self.command(id, Command::Abort, &mut evs).ok();
            self.drop_conn(id);
            out.extend(evs.drain(..).map(|e| (id, e)));
        }
    }

    // ----- listeners -----

    pub fn add_listener(&mut self, listener: Listener) -> io::Result<ListenerId> {
        let afd = self.register(listener.as_raw_fd(), TokioInterest::READABLE)?;
        let gen = self.gen();
        let key = self.listeners.insert(ListenerSlot {
            gen,
            listener,
            afd,
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

    pub fn watch_fd(&mut self, fd: RawFd, read: bool, write: bool) -> io::Result<()> {
        if !read && !write {
            self.unwatch_fd(fd);
            return Ok(());
        }
        if let Some(slot) = self.fds.get_mut(&fd) {
            slot.read = read;
            slot.write = write;
            // Report at once if already ready, as a level-triggered poller.
            if !self.fired_fds.contains(&fd) {
                self.fired_fds.push(fd);
            }
            return Ok(());
        }
        let afd = self.register(fd, TokioInterest::READABLE | TokioInterest::WRITABLE)?;
        self.fds.insert(fd, FdSlot { afd, read, write });
        self.fired_fds.push(fd);
        Ok(())
    }

    /// Stops watching `fd` (its tokio registration is dropped now, before
    /// the caller may close the fd).
    pub fn unwatch_fd(&mut self, fd: RawFd) -> bool {
        self.fired_fds.retain(|f| *f != fd);
        self.fds.remove(&fd).is_some()
    }
}

impl Actors for TokioScheduler {
    fn actor(&self, id: ConnId) -> Option<&Connection> {
        self.slot(id).map(|s| &s.conn)
    }
    fn actor_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        self.slot_mut(id).map(|s| &mut s.conn)
    }
    fn settle(&mut self, id: ConnId, _out: &mut Vec<Event>) {
        self.settle_conn(id)
    }
    fn remove_conn(&mut self, id: ConnId) {
        self.drop_conn(id)
    }
}

/// Polls listeners and raw fds for readiness (without blocking), pushing
/// reports and clearing tokio's readiness so the next report needs an edge.
fn poll_sources(
    cx: &mut std::task::Context<'_>,
    listeners: &Slab<ListenerSlot>,
    fds: &HashMap<RawFd, FdSlot>,
    polled: &mut Vec<Ready>,
) {
    for (key, s) in listeners.iter() {
        if !s.active {
            continue;
        }
        if let Poll::Ready(Ok(mut guard)) = s.afd.poll_read_ready(cx) {
            guard.clear_ready();
            let id = ListenerId { key, gen: s.gen };
            if !polled
                .iter()
                .any(|x| matches!(x, Ready::Listener { id: other } if *other == id))
            {
                polled.push(Ready::Listener { id });
            }
        }
    }
    for (fd, s) in fds.iter() {
        let mut fired = false;
        if s.read {
            if let Poll::Ready(Ok(mut guard)) = s.afd.poll_read_ready(cx) {
                guard.clear_ready();
                fired = true;
            }
        }
        if s.write {
            if let Poll::Ready(Ok(mut guard)) = s.afd.poll_write_ready(cx) {
                guard.clear_ready();
                fired = true;
            }
        }
        // tokio remembers readiness until cleared, which may be stale once
        // a callback drained the fd: ask the kernel what holds now.
        let (r, w) = if fired {
            poll_now(*fd, s.read, s.write)
        } else {
            (false, false)
        };
        if r || w {
            match polled.iter_mut().find_map(|x| match x {
                Ready::Fd {
                    fd: other,
                    readable,
                    writable,
                } if *other == *fd => Some((readable, writable)),
                _ => None,
            }) {
                Some((readable, writable)) => {
                    *readable |= r;
                    *writable |= w;
                }
                None => polled.push(Ready::Fd {
                    fd: *fd,
                    readable: r,
                    writable: w,
                }),
            }
        }
    }
}

/// Current readiness of `fd` for the wanted directions, by `poll(2)` with a
/// zero timeout. Errors and hang-ups count as both, as selectors report.
fn poll_now(fd: RawFd, read: bool, write: bool) -> (bool, bool) {
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
