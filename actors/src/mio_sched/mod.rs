//! Single-threaded mio scheduler: owns the poller, the connection actors,
//! the listeners and the raw-fd watchers, all in one token space.
//!
//! Pull style (see the crate docs): `turn` reports readiness as values;
//! the caller then calls back in (`read`, `on_writable`, `accept`, ...) and
//! gets events as values. Every call into a connection is supervised.

// Keyed by fd numbers, which the kernel hands out, never by input a peer
// controls: a fast hash, not a DoS-resistant one.
use rustc_hash::FxHashMap as HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::acceptor::Listener;
use crate::actors_api::Actors;
use crate::connection::{Connection, DEFAULT_READ_BUFFER};
use crate::event::{CloseError, Event};
use crate::level::FiredFds;
use crate::ready::TurnRecord;
use crate::ready::{ConnId, ListenerId, Ready};
use crate::signal_pipe::SignalPipe;
use crate::stream::Stream;
use crate::toxics::Deadlines;

mod fds;
mod listeners;

/// Reserved token of the cross-thread waker; slab keys never reach it.
const WAKER_TOKEN: Token = Token(usize::MAX);
/// Reserved token of the signal pipe's read end.
const SIGNAL_TOKEN: Token = Token(usize::MAX - 1);
const EVENTS_CAPACITY: usize = 1024;

struct ConnSlot {
    gen: u64,
    conn: Connection,
    registered: Option<Interest>,
    /// Already in `hot`.
    queued_hot: bool,
    record: TurnRecord,
}

struct ListenerSlot {
    gen: u64,
    listener: Listener,
    /// Registered (not paused).
    active: bool,
    /// The last accept did not hit WouldBlock: more may be pending.
    hot: bool,
    queued_hot: bool,
    seen_turn: u64,
}

struct FdSlot {
    fd: RawFd,
    interest: Interest,
    /// False once unwatched: still registered in epoll (fds.rs).
    watched: bool,
}

enum Entry {
    Conn(ConnSlot),
    Listener(ListenerSlot),
    Fd(FdSlot),
}

/// See the module docs.
pub struct MioScheduler {
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
    slab: Slab<Entry>,
    fds: HashMap<RawFd, usize>,
    /// Slab keys that must be reported next turn without an OS event.
    hot: Vec<(usize, u64)>,
    /// Fds reported, re-armed before a later poll so fd watchers get
    /// asyncio's level-triggered behaviour on top of edge-triggered epoll.
    fired_fds: FiredFds,
    /// Made by the first `signal_fd` call (signal_pipe.rs).
    signal: Option<SignalPipe>,
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

impl MioScheduler {
    pub fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
        Ok(MioScheduler {
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            waker,
            slab: Slab::new(),
            fds: HashMap::default(),
            hot: Vec::new(),
            fired_fds: FiredFds::default(),
            signal: None,
            next_gen: 0,
            turn_no: 0,
            heap: crate::heap::HeapTrim::new(1),
            deadlines: Deadlines::default(),
            due: Vec::new(),
            read_buf: vec![0u8; DEFAULT_READ_BUFFER].into_boxed_slice(),
        })
    }

    /// Wakes a blocked (or the next) `turn` from any thread.
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// A non-blocking fd whose every write wakes a blocked `turn`, which
    /// reads it empty and returns (a signal's C handler writes to it:
    /// signal_pipe.rs). Made at the first call; the same fd afterwards.
    pub fn signal_fd(&mut self) -> io::Result<RawFd> {
        if let Some(pipe) = &self.signal {
            return Ok(pipe.write_fd());
        }
        let pipe = SignalPipe::new()?;
        self.poll.registry().register(
            &mut SourceFd(&pipe.read_fd()),
            SIGNAL_TOKEN,
            Interest::READABLE,
        )?;
        let fd = pipe.write_fd();
        self.signal = Some(pipe);
        Ok(fd)
    }

    fn gen(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }

    /// Polls once and appends readiness records to `out`. Blocks up to
    /// `timeout` (`None` = forever) unless something is already pending.
    /// `EINTR` is returned as `Err(Interrupted)` so the caller can run
    /// signal handlers; nothing is lost by it. A byte on the signal pipe
    /// ends the wait too (`Ok`, with nothing to report, maybe).
    pub fn turn(&mut self, timeout: Option<Duration>, out: &mut Vec<Ready>) -> io::Result<()> {
        self.heap.turned();
        self.rearm_fds(timeout == Some(Duration::ZERO));
        let timeout = if !self.hot.is_empty() {
            Some(Duration::ZERO)
        } else if !self.deadlines.is_empty() {
            self.deadlines.clamp(timeout, Instant::now())
        } else {
            timeout
        };
        self.poll.poll(&mut self.events, timeout)?;
        self.turn_no += 1;
        let turn = self.turn_no;
        let mut woken = false;
        // Fds an event came for that nobody watches any more (fds.rs).
        let mut unwatched = Vec::new();
        for ev in self.events.iter() {
            let token = ev.token();
            if token == WAKER_TOKEN {
                if !woken {
                    woken = true;
                    out.push(Ready::Woken);
                }
                continue;
            }
            if token == SIGNAL_TOKEN {
                // Edge-triggered: read it empty so the next byte wakes us.
                if let Some(pipe) = &self.signal {
                    pipe.drain();
                }
                continue;
            }
            let closed_or_err = ev.is_error();
            match self.slab.get_mut(token.0) {
                Some(Entry::Conn(s)) => {
                    if ev.is_read_closed() || closed_or_err {
                        s.conn.note_read_closed();
                    }
                    s.record.report(
                        turn,
                        ConnId {
                            key: token.0,
                            gen: s.gen,
                        },
                        ev.is_readable() || ev.is_read_closed() || closed_or_err,
                        ev.is_writable() || ev.is_write_closed() || closed_or_err,
                        out,
                    );
                }
                Some(Entry::Listener(s)) => {
                    s.seen_turn = turn;
                    out.push(Ready::Listener {
                        id: ListenerId {
                            key: token.0,
                            gen: s.gen,
                        },
                    });
                }
                Some(Entry::Fd(s)) if !s.watched => unwatched.push(s.fd),
                Some(Entry::Fd(s)) => {
                    let r = s.interest.is_readable()
                        && (ev.is_readable() || ev.is_read_closed() || closed_or_err);
                    let w = s.interest.is_writable()
                        && (ev.is_writable() || ev.is_write_closed() || closed_or_err);
                    self.fired_fds.fired(s.fd, turn);
                    if r || w {
                        out.push(Ready::Fd {
                            fd: s.fd,
                            readable: r,
                            writable: w,
                        });
                    }
                }
                // Removed earlier in this batch's processing; stale.
                None => {}
            }
        }
        for fd in unwatched {
            self.drop_unwatched(fd);
        }
        self.report_hot(turn, out);
        if !self.deadlines.is_empty() {
            self.report_due(turn, out);
        }
        Ok(())
    }

    /// Reports connections whose toxic deadline has come, both ways: the
    /// caller's read hands over what is due upstream, its `on_writable`
    /// sends what is due downstream.
    fn report_due(&mut self, turn: u64, out: &mut Vec<Ready>) {
        let mut due = std::mem::take(&mut self.due);
        self.deadlines.take_due(Instant::now(), &mut due);
        for id in due.drain(..) {
            if let Some(Entry::Conn(s)) = self.slab.get_mut(id.key) {
                if s.gen == id.gen {
                    s.conn.toxic_fired();
                    s.record.report(turn, id, true, true, out);
                }
            }
        }
        self.due = due;
    }

    /// Every connection with toxics is reported at the next turn (a plan
    /// was removed: what its toxics held must pass now).
    pub fn wake_toxics(&mut self) {
        let now = Instant::now();
        for (key, e) in self.slab.iter() {
            if let Entry::Conn(s) = e {
                if s.conn.has_toxics() {
                    self.deadlines.push(now, ConnId { key, gen: s.gen });
                }
            }
        }
    }

    /// Re-reports actors whose last read/accept may have left data behind,
    /// and closing ones that wait only for a writable report.
    fn report_hot(&mut self, turn: u64, out: &mut Vec<Ready>) {
        let hot = std::mem::take(&mut self.hot);
        for &(key, gen) in &hot {
            match self.slab.get_mut(key) {
                Some(Entry::Conn(s)) if s.gen == gen => {
                    s.queued_hot = false;
                    let (r, w) = (s.conn.read_pending(), s.conn.close_pending());
                    if r || w {
                        s.record.report(turn, ConnId { key, gen }, r, w, out);
                    }
                }
                Some(Entry::Listener(s)) if s.gen == gen => {
                    s.queued_hot = false;
                    if s.hot && s.active && s.seen_turn != turn {
                        out.push(Ready::Listener {
                            id: ListenerId { key, gen },
                        });
                    }
                }
                _ => {}
            }
        }
        // Keep the allocation for the next turn.
        let mut hot = hot;
        hot.clear();
        if self.hot.is_empty() {
            self.hot = hot;
        }
    }

    fn rearm_fds(&mut self, busy: bool) {
        for fd in self.fired_fds.take_due(self.turn_no, busy) {
            let Some(&key) = self.fds.get(&fd) else {
                continue;
            };
            if let Some(Entry::Fd(s)) = self.slab.get(key) {
                if !s.watched {
                    continue;
                }
                // EPOLL_CTL_MOD re-queues the fd if it is still ready. A
                // failure means the fd was closed behind our back; the
                // watcher stays until unwatch_fd, as with asyncio.
                let _ = self
                    .poll
                    .registry()
                    .reregister(&mut SourceFd(&fd), Token(key), s.interest);
            }
        }
    }

    /// Adopts a connected non-blocking stream as a new actor (reading).
    pub fn add_connection(&mut self, stream: Stream) -> io::Result<ConnId> {
        self.add_actor(Connection::new(stream))
    }

    /// Adopts a pre-configured actor (e.g. custom read buffer size).
    pub fn add_actor(&mut self, mut conn: Connection) -> io::Result<ConnId> {
        self.release_unwatched(conn.stream_mut().as_raw_fd());
        let gen = self.gen();
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        let registered = conn.interest();
        if let Some(i) = registered {
            self.poll
                .registry()
                .register(conn.stream_mut(), Token(key), i)?;
        }
        entry.insert(Entry::Conn(ConnSlot {
            gen,
            conn,
            registered,
            queued_hot: false,
            record: TurnRecord::default(),
        }));
        self.heap.count(self.slab.len());
        Ok(ConnId { key, gen })
    }

    fn slot(&self, id: ConnId) -> Option<&ConnSlot> {
        match self.slab.get(id.key) {
            Some(Entry::Conn(s)) if s.gen == id.gen => Some(s),
            _ => None,
        }
    }

    fn slot_mut(&mut self, id: ConnId) -> Option<&mut ConnSlot> {
        match self.slab.get_mut(id.key) {
            Some(Entry::Conn(s)) if s.gen == id.gen => Some(s),
            _ => None,
        }
    }

    /// Post-call bookkeeping for a live-or-just-finished actor.
    fn settle_conn(&mut self, id: ConnId, out: &mut Vec<Event>) {
        let registry = self.poll.registry();
        let Some(Entry::Conn(slot)) = self.slab.get_mut(id.key) else {
            return;
        };
        if slot.conn.is_finished() {
            self.drop_conn(id);
            return;
        }
        let want = slot.conn.interest();
        if want != slot.registered {
            let stream = slot.conn.stream_mut();
            let r = match (slot.registered, want) {
                (Some(_), None) => registry.deregister(stream),
                (None, Some(i)) => registry.register(stream, Token(id.key), i),
                (Some(_), Some(i)) => registry.reregister(stream, Token(id.key), i),
                (None, None) => Ok(()),
            };
            match r {
                Ok(()) => slot.registered = want,
                Err(e) => {
                    // Without a registration the actor would hang forever.
                    slot.conn.finish(Some(CloseError::Io(e)), out);
                    self.drop_conn(id);
                    return;
                }
            }
        }
        if (slot.conn.read_pending() || slot.conn.close_pending()) && !slot.queued_hot {
            slot.queued_hot = true;
            self.hot.push((id.key, id.gen));
        }
        if let Some(at) = slot.conn.toxic_rearm() {
            self.deadlines.push(at, id);
        }
    }

    /// Deregisters and drops (closes) an actor's socket.
    fn drop_conn(&mut self, id: ConnId) {
        if self.slot(id).is_none() {
            return;
        }
        if let Entry::Conn(mut slot) = self.slab.remove(id.key) {
            if slot.registered.is_some() {
                // Closing the fd below removes it from epoll regardless.
                let _ = self.poll.registry().deregister(slot.conn.stream_mut());
            }
        }
        crate::sparse::shrink_if_sparse(&mut self.slab);
        self.heap.count(self.slab.len());
    }

    /// Live connection actors.
    pub fn connection_count(&self) -> usize {
        self.slab
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Conn(_)))
            .count()
    }

    /// Scheduler shutdown: every live actor ends with one `Closed(None)`;
    /// queued data is dropped. Listeners and fd watchers are untouched.
    pub fn close_all(&mut self, out: &mut Vec<(ConnId, Event)>) {
        let ids: Vec<ConnId> = self
            .slab
            .iter()
            .filter_map(|(key, e)| match e {
                Entry::Conn(s) => Some(ConnId { key, gen: s.gen }),
                _ => None,
            })
            .collect();
        self.abort_and_drop(ids, out);
    }
}

impl Actors for MioScheduler {
    fn actor(&self, id: ConnId) -> Option<&Connection> {
        self.slot(id).map(|s| &s.conn)
    }
    fn actor_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        self.slot_mut(id).map(|s| &mut s.conn)
    }
    fn actor_and_buffer(&mut self, id: ConnId) -> Option<(&mut Connection, &mut [u8])> {
        match self.slab.get_mut(id.key) {
            Some(Entry::Conn(s)) if s.gen == id.gen => Some((&mut s.conn, &mut self.read_buf)),
            _ => None,
        }
    }
    fn read_buffer(&self) -> &[u8] {
        &self.read_buf
    }
    fn settle(&mut self, id: ConnId, out: &mut Vec<Event>) {
        self.settle_conn(id, out)
    }
    fn remove_conn(&mut self, id: ConnId) {
        self.drop_conn(id)
    }
}
