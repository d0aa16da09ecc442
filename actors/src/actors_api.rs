//! What a scheduler does with its connection actors, written once for
//! both schedulers: each provides access to its actors and its own
//! bookkeeping after a call (`settle`, `remove_conn`); the supervised calls
//! and the asyncio-facing operations are these provided methods.

use crate::command::Command;
use crate::connection::{ConnInfo, Connection, ReadCount, ReadResult};
use crate::error::ActorError;
use crate::event::{CloseError, Event};
use crate::fault::FaultPlan;
use crate::io_counts::IoCounts;
use crate::ready::ConnId;
use crate::sendfile::FileSegment;
use crate::supervisor::supervise;
use crate::toxics::ToxicPlan;
use std::sync::Arc;

/// Connection operations of a scheduler (see the crate docs: pull style).
pub trait Actors {
    /// The live actor behind `id`, if any.
    fn actor(&self, id: ConnId) -> Option<&Connection>;
    fn actor_mut(&mut self, id: ConnId) -> Option<&mut Connection>;
    /// A live actor and the scheduler's read buffer, shared by all its
    /// actors (a read's bytes are lent from it until the next call).
    fn actor_and_buffer(&mut self, id: ConnId) -> Option<(&mut Connection, &mut [u8])>;
    /// The scheduler's read buffer.
    fn read_buffer(&self) -> &[u8];
    /// After a successful call: drop a finished actor, follow interest
    /// changes, queue a re-read.
    fn settle(&mut self, id: ConnId, out: &mut Vec<Event>);
    /// Ends the actor's slot and releases its socket.
    fn remove_conn(&mut self, id: ConnId);
    /// An actor that ended outside any call (a scheduler task of its died)
    /// and the error it ended with, once; delivered by the next call.
    fn take_ended(&mut self, _id: ConnId) -> Option<CloseError> {
        None
    }

    /// Runs `f` on a live actor under the supervisor: a panic ends that
    /// actor with exactly one `Closed(Some(Panic))`. `None` if the id is
    /// dead or the call panicked.
    fn supervised<R>(
        &mut self,
        id: ConnId,
        out: &mut Vec<Event>,
        f: impl FnOnce(&mut Connection, &mut Vec<Event>) -> R,
    ) -> Option<R> {
        self.supervised_reading(id, out, |c, _, out| f(c, out))
    }

    /// [`Actors::supervised`], with the scheduler's read buffer lent to
    /// `f` too.
    fn supervised_reading<R>(
        &mut self,
        id: ConnId,
        out: &mut Vec<Event>,
        f: impl FnOnce(&mut Connection, &mut [u8], &mut Vec<Event>) -> R,
    ) -> Option<R> {
        if let Some(err) = self.take_ended(id) {
            out.push(Event::Closed(Some(err)));
            self.remove_conn(id);
            return None;
        }
        let (conn, buf) = self.actor_and_buffer(id)?;
        let result = supervise(|| f(&mut *conn, buf, out));
        match result {
            Ok(r) => {
                self.settle(id, out);
                Some(r)
            }
            Err(panic) => {
                if !conn.is_finished() {
                    out.push(Event::Closed(Some(panic)));
                }
                self.remove_conn(id);
                None
            }
        }
    }

    /// One read. The data borrows the scheduler: copy or consume it
    /// before calling into Python.
    fn read(&mut self, id: ConnId, out: &mut Vec<Event>) -> ReadResult<'_> {
        self.read_at_most(id, usize::MAX, out)
    }

    /// [`Actors::read`] of at most `max` bytes (at least one).
    fn read_at_most(&mut self, id: ConnId, max: usize, out: &mut Vec<Event>) -> ReadResult<'_> {
        let read = |c: &mut Connection, buf: &mut [u8], out: &mut Vec<Event>| {
            let n = max.max(1).min(buf.len());
            c.read_count(&mut buf[..n], out)
        };
        match self.supervised_reading(id, out, read) {
            Some(ReadCount::Data(n)) => ReadResult::Data(&self.read_buffer()[..n]),
            Some(ReadCount::Eof) => ReadResult::Eof,
            Some(ReadCount::WouldBlock) => ReadResult::WouldBlock,
            Some(ReadCount::Closed) | None => ReadResult::Closed,
        }
    }

    /// One read into a caller buffer (BufferedProtocol).
    fn read_into(&mut self, id: ConnId, buf: &mut [u8], out: &mut Vec<Event>) -> ReadCount {
        self.supervised(id, out, |c, out| c.read_into(buf, out))
            .unwrap_or(ReadCount::Closed)
    }

    /// asyncio `write()`; see [`Connection::write`].
    fn write(&mut self, id: ConnId, data: &[u8], out: &mut Vec<Event>) -> Result<(), ActorError> {
        self.supervised(id, out, |c, out| c.write(data, out))
            .unwrap_or(Err(ActorError::Closed))
    }

    /// asyncio `writelines()`; see [`Connection::writelines`].
    fn writelines(
        &mut self,
        id: ConnId,
        chunks: &[&[u8]],
        out: &mut Vec<Event>,
    ) -> Result<(), ActorError> {
        self.supervised(id, out, |c, out| c.writelines(chunks, out))
            .unwrap_or(Err(ActorError::Closed))
    }

    /// Applies one [`Command`]. On a dead id, `Close`, `Abort`, `WriteEof`,
    /// `PauseReading` and `ResumeReading` are ignored (`Ok`), the rest
    /// return `ActorError::Closed`.
    fn command(
        &mut self,
        id: ConnId,
        cmd: Command,
        out: &mut Vec<Event>,
    ) -> Result<(), ActorError> {
        let ignorable = cmd.ignorable_when_dead();
        match self.supervised(id, out, |c, out| cmd.apply(c, out)) {
            Some(r) => r,
            None if ignorable => Ok(()),
            None => Err(ActorError::Closed),
        }
    }

    /// Scheduler shutdown: each of `ids` is aborted (its one `Closed` goes
    /// to `out`) and dropped, even one that somehow did not end.
    fn abort_and_drop(&mut self, ids: Vec<ConnId>, out: &mut Vec<(ConnId, Event)>) {
        let mut evs = Vec::new();
        for id in ids {
            self.command(id, Command::Abort, &mut evs).ok();
            self.remove_conn(id);
            out.extend(evs.drain(..).map(|e| (id, e)));
        }
    }

    /// asyncio `loop.sendfile()`; see [`Connection::sendfile`].
    fn sendfile(
        &mut self,
        id: ConnId,
        segment: FileSegment,
        out: &mut Vec<Event>,
    ) -> Result<(), ActorError> {
        self.supervised(id, out, |c, out| c.sendfile(segment, out))
            .unwrap_or(Err(ActorError::Closed))
    }

    /// Drops a pending file segment; see [`Connection::cancel_sendfile`].
    fn cancel_sendfile(&mut self, id: ConnId, out: &mut Vec<Event>) -> Option<u64> {
        self.supervised(id, out, |c, out| c.cancel_sendfile(out))
            .flatten()
    }

    /// The connection was reported writable: flush and follow up.
    fn on_writable(&mut self, id: ConnId, out: &mut Vec<Event>) {
        self.supervised(id, out, |c, out| c.on_writable(out));
    }

    /// Installs a fault plan; `false` if the id is dead.
    fn set_fault(&mut self, id: ConnId, plan: FaultPlan) -> bool {
        match self.actor_mut(id) {
            Some(c) => {
                c.set_fault(plan);
                true
            }
            None => false,
        }
    }

    /// Applies fault plans to a live connection; `false` if the id is dead.
    fn add_toxic_plans(
        &mut self,
        id: ConnId,
        plans: &[Arc<ToxicPlan>],
        out: &mut Vec<Event>,
    ) -> bool {
        self.supervised(id, out, |c, _| c.add_toxic_plans(plans))
            .is_some()
    }

    /// The connection's byte counters (they outlive it); `None` for dead
    /// ids.
    fn io_counter(&self, id: ConnId) -> Option<Arc<IoCounts>> {
        self.actor(id).map(|c| c.io_counter())
    }

    /// Whether the actor has not yet emitted `Closed`.
    fn is_alive(&self, id: ConnId) -> bool {
        self.actor(id).is_some()
    }

    fn is_reading(&self, id: ConnId) -> bool {
        self.actor(id).is_some_and(|c| c.is_reading())
    }

    /// asyncio `is_closing()`; true for dead ids.
    fn is_closing(&self, id: ConnId) -> bool {
        self.actor(id).is_none_or(|c| c.is_closing())
    }

    /// Pending write bytes; `None` for dead ids (asyncio reports 0).
    fn write_buffer_size(&self, id: ConnId) -> Option<usize> {
        self.actor(id).map(|c| c.write_buffer_size())
    }

    /// `(low, high)`; `None` for dead ids.
    fn write_buffer_limits(&self, id: ConnId) -> Option<(usize, usize)> {
        self.actor(id).map(|c| c.write_buffer_limits())
    }

    /// Fd, family and addresses (queried now); `None` for dead ids.
    fn info(&self, id: ConnId) -> Option<ConnInfo> {
        self.actor(id).map(|c| c.info())
    }
}
