//! The connection table of the tokio scheduler: a slot per connection
//! actor (its state machine, its watch on the reactor, what it last
//! reported), and its end: the watch is stopped, its registration with
//! the reactor dropped, and the socket closed, all at once.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use mio::Interest;
use tokio::io::unix::AsyncFd;

use super::watch::{self, Want, Watch};
use super::TokioScheduler;
use crate::actors_api::Actors;
use crate::connection::Connection;
use crate::event::{CloseError, Event};
use crate::ready::{ConnId, Ready, TurnRecord};
use crate::stream::Stream;

fn want_of(interest: Option<Interest>) -> Want {
    interest.map(|i| (i.is_readable(), i.is_writable()))
}

/// A slot's watch, stopped (its registration dropped) when the slot goes.
pub(super) struct WatchOwner(pub(super) Arc<Watch>);

impl Drop for WatchOwner {
    fn drop(&mut self) {
        drop(self.0.stop());
    }
}

pub(super) struct ConnSlot {
    pub(super) gen: u64,
    /// Before `conn`: field order is drop order, and the registration
    /// must leave the reactor before the socket closes.
    pub(super) watch: WatchOwner,
    pub(super) conn: Connection,
    pub(super) want: Want,
    pub(super) queued_hot: bool,
    pub(super) record: TurnRecord,
    /// The watch failed: the error the next call ends the connection with.
    pub(super) ended: Option<CloseError>,
}

impl ConnSlot {
    pub(super) fn report(
        &mut self,
        key: usize,
        turn: u64,
        readable: bool,
        writable: bool,
        out: &mut Vec<Ready>,
    ) {
        let id = ConnId { key, gen: self.gen };
        self.record.report(turn, id, readable, writable, out);
    }

    /// The watch failed (it panicked, or could not register): the
    /// connection ends with a panic error, the supervisor's one Closed,
    /// delivered by the caller's next call; it is reported readable so
    /// that call comes.
    pub(super) fn watch_ended(&mut self, key: usize, turn: u64, out: &mut Vec<Ready>) {
        if self.ended.is_none() && !self.conn.is_finished() {
            self.ended = Some(CloseError::Panic("connection watch failed".into()));
            self.report(key, turn, true, false, out);
        }
    }
}

impl TokioScheduler {
    pub fn add_connection(&mut self, stream: Stream) -> io::Result<ConnId> {
        let fd = stream.as_raw_fd();
        let conn = Connection::new(stream);
        let want = want_of(conn.interest());
        let first = want.unwrap_or((true, false));
        let (afd, registered) = match self.adopt_kept(fd, first) {
            Some(kept) => kept,
            None => (self.register(fd, watch::interest_of(first))?, first),
        };
        let gen = self.gen();
        let key = self.conns.vacant_key();
        let watch = Watch::start(key, gen, fd, want, (afd, registered), &self.woken);
        self.conns.insert(ConnSlot {
            gen,
            watch: WatchOwner(watch),
            conn,
            want,
            queued_hot: false,
            record: TurnRecord::default(),
            ended: None,
        });
        self.heap.count(self.conns.len());
        Ok(ConnId { key, gen })
    }

    /// The registration kept for `fd` since its last raw watch ended (a
    /// client socket's connect: sources.rs registers such a watch for both
    /// directions), if it still names this file and covers `want`. A
    /// registration made anew would be freed after its successor is
    /// allocated, and the freed cache-line-aligned block is not reused by
    /// the next one: some 270 bytes of every client connection stayed
    /// resident (TokioLoop's client RSS per connection at 10,000: 2.1 KiB
    /// against 1.8 for connections made with `sock=`). Its readiness is
    /// kept: data that came in since the connect must still be read.
    fn adopt_kept(
        &mut self,
        fd: RawFd,
        want: (bool, bool),
    ) -> Option<(AsyncFd<watch::Fd>, (bool, bool))> {
        let slot = self.fds.get(&fd)?;
        if !watch::covers(slot.registered, want) || !slot.kept_for_same_file(fd) {
            return None;
        }
        let slot = self.fds.remove(&fd)?;
        self.fired_fds.forget(fd);
        Some((slot.afd, slot.registered))
    }

    fn slot(&self, id: ConnId) -> Option<&ConnSlot> {
        self.conns.get(id.key).filter(|s| s.gen == id.gen)
    }

    fn slot_mut(&mut self, id: ConnId) -> Option<&mut ConnSlot> {
        self.conns.get_mut(id.key).filter(|s| s.gen == id.gen)
    }

    /// After a call: drop a finished actor, tell the watch about changed
    /// interest, queue a re-read.
    fn settle_conn(&mut self, id: ConnId) {
        let Some(slot) = self.conns.get_mut(id.key).filter(|s| s.gen == id.gen) else {
            return;
        };
        if slot.conn.is_finished() {
            self.drop_conn(id);
            return;
        }
        let want = want_of(slot.conn.interest());
        if want != slot.want {
            slot.want = want;
            slot.watch.0.want(want);
        }
        let rearm = slot.conn.toxic_rearm();
        if (slot.conn.read_pending() || slot.conn.close_pending()) && !slot.queued_hot {
            slot.queued_hot = true;
            self.hot.push((id.key, id.gen));
        }
        if let Some(at) = rearm {
            self.deadlines.push(at, id);
        }
    }

    fn drop_conn(&mut self, id: ConnId) {
        if self.slot(id).is_none() {
            return;
        }
        let slot = self.conns.remove(id.key);
        crate::sparse::shrink_if_sparse(&mut self.conns);
        self.heap.count(self.conns.len());
        // The registration leaves the reactor (the watch goes first), then
        // the socket closes, so the peer gets its FIN at once and no stale
        // registration can outlive the fd.
        drop(slot);
    }

    /// Test-only fault: makes the connection's watch panic when next
    /// polled, as a bug in it would. The connection must end alone with a
    /// panic error.
    #[doc(hidden)]
    pub fn inject_watch_panic(&mut self, id: ConnId) -> bool {
        match self.conns.get(id.key).filter(|s| s.gen == id.gen) {
            Some(slot) => slot.watch.0.inject_panic(),
            None => false,
        }
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
        self.abort_and_drop(ids, out);
    }
}

impl Actors for TokioScheduler {
    fn actor(&self, id: ConnId) -> Option<&Connection> {
        self.slot(id).map(|s| &s.conn)
    }
    fn actor_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        self.slot_mut(id).map(|s| &mut s.conn)
    }
    fn actor_and_buffer(&mut self, id: ConnId) -> Option<(&mut Connection, &mut [u8])> {
        match self.conns.get_mut(id.key) {
            Some(s) if s.gen == id.gen => Some((&mut s.conn, &mut self.read_buf)),
            _ => None,
        }
    }
    fn read_buffer(&self) -> &[u8] {
        &self.read_buf
    }
    fn settle(&mut self, id: ConnId, _out: &mut Vec<Event>) {
        self.settle_conn(id)
    }
    fn remove_conn(&mut self, id: ConnId) {
        self.drop_conn(id)
    }
    fn take_ended(&mut self, id: ConnId) -> Option<CloseError> {
        self.slot_mut(id)?.ended.take()
    }
}
