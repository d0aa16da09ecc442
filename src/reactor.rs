//! What the loop core needs from an I/O scheduler. RLoop plugs in the mio
//! scheduler of the `actors` crate; the core never knows which one runs.
//!
//! The API is pull-style: a scheduler never calls back into the core.
//! `turn` reports readiness; the core then asks the scheduler to act on a
//! connection (read, write, command) and gets that connection's events
//! back as values, so no scheduler borrow is held while Python code runs.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub use actors::sparse::shrink_if_sparse;
pub use actors::{
    socket_family, ActorError, Addr, CloseError, Command, ConnId, ConnInfo, Direction, Driver,
    Event, EveryNth, FaultPlan, FileSegment, IoCounts, Listener, ListenerId, ReadCount, ReadResult,
    Ready, SendfileError, SendfileOutcome, SharedFd, Stream, StreamKind, Toxic, ToxicKind,
    ToxicPlan,
};

/// Wakes a loop blocked in `turn`, from any thread.
pub trait Wake: Send + Sync {
    fn wake(&self) -> io::Result<()>;
}

/// A scheduler whose turns can be steps of the one future a loop's whole
/// run is, inside its [`Driver`] (TokioLoop: actors' tokio_sched/driver.rs
/// and turn.rs): `begin_turn`, then `poll_turn` until it is ready, then
/// `end_turn`, as `Reactor::turn` does in one call.
pub trait DrivenTurns {
    fn begin_turn(&mut self, timeout: Option<Duration>, out: &mut Vec<Ready>) -> io::Result<()>;
    fn poll_turn(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    fn end_turn(&mut self, out: &mut Vec<Ready>);
}

pub trait Reactor: Send {
    /// The runtime a run of the loop may go inside (src/driven.rs), for a
    /// scheduler whose turns are [`DrivenTurns`].
    fn driver(&self) -> Option<Driver> {
        None
    }
    fn driven(&mut self) -> Option<&mut dyn DrivenTurns> {
        None
    }
    /// Waits at most `timeout` (None: forever) for readiness. A signal taken
    /// by this thread, or a byte on `signal_fd`, ends the wait: with
    /// `ErrorKind::Interrupted` (mio's `EINTR`) or with `Ok` and maybe
    /// nothing ready; either way the caller runs Python's signal handlers.
    fn turn(&mut self, timeout: Option<Duration>, out: &mut Vec<Ready>) -> io::Result<()>;
    fn waker(&self) -> Arc<dyn Wake>;
    /// A non-blocking fd whose every write wakes a blocked `turn` (which
    /// reads it empty): `signal.set_wakeup_fd`'s, so that a signal taken by
    /// any thread ends the poll. Made at the first call.
    fn signal_fd(&mut self) -> io::Result<RawFd>;

    /// Raw fds (asyncio's add_reader/add_writer), level-triggered: an fd
    /// still ready after its callback ran is reported again.
    fn watch_fd(&mut self, fd: RawFd, read: bool, write: bool) -> io::Result<()>;
    /// `watch_fd`, by a caller that has just seen every direction it asks
    /// for would block: a scheduler may then skip asking whether the fd
    /// became ready unseen. `same_file`: the caller knows the fd names the
    /// file it named the last time it was watched (src/sock_files.rs), so
    /// a registration kept since still watches it.
    fn watch_fd_idle(
        &mut self,
        fd: RawFd,
        read: bool,
        write: bool,
        same_file: bool,
    ) -> io::Result<()>;

    // Connection actors.
    fn add_connection(&mut self, stream: Stream) -> io::Result<ConnId>;
    fn read(&mut self, id: ConnId, out: &mut Vec<Event>) -> ReadResult<'_>;
    fn read_at_most(&mut self, id: ConnId, max: usize, out: &mut Vec<Event>) -> ReadResult<'_>;
    fn read_into(&mut self, id: ConnId, buf: &mut [u8], out: &mut Vec<Event>) -> ReadCount;
    fn writelines(
        &mut self,
        id: ConnId,
        chunks: &[&[u8]],
        out: &mut Vec<Event>,
    ) -> Result<(), ActorError>;
    fn command(&mut self, id: ConnId, cmd: Command, out: &mut Vec<Event>)
        -> Result<(), ActorError>;
    fn on_writable(&mut self, id: ConnId, out: &mut Vec<Event>);
    /// A file segment queued behind the written bytes (loop.sendfile).
    fn sendfile(
        &mut self,
        id: ConnId,
        segment: FileSegment,
        out: &mut Vec<Event>,
    ) -> Result<(), ActorError>;
    fn cancel_sendfile(&mut self, id: ConnId, out: &mut Vec<Event>) -> Option<u64>;
    fn is_reading(&self, id: ConnId) -> bool;
    fn write_buffer_size(&self, id: ConnId) -> Option<usize>;
    fn write_buffer_limits(&self, id: ConnId) -> Option<(usize, usize)>;
    fn info(&self, id: ConnId) -> Option<ConnInfo>;
    fn set_fault(&mut self, id: ConnId, plan: FaultPlan) -> bool;
    /// Fault plans (toxics) for a live connection; false if it is gone.
    fn add_toxic_plans(
        &mut self,
        id: ConnId,
        plans: &[Arc<ToxicPlan>],
        out: &mut Vec<Event>,
    ) -> bool;
    /// Every connection with toxics is reported next turn (a plan was
    /// removed).
    fn wake_toxics(&mut self);
    /// The connection's byte counters (they outlive it); None for a dead id.
    fn io_counter(&self, id: ConnId) -> Option<Arc<IoCounts>>;
    /// Loop shutdown: every live actor ends, each with exactly one Closed.
    fn close_all(&mut self, out: &mut Vec<(ConnId, Event)>);

    // Acceptors.
    fn add_listener(&mut self, listener: Listener) -> io::Result<ListenerId>;
    fn accept(&mut self, id: ListenerId) -> io::Result<Option<(Stream, Addr)>>;
    fn pause_listener(&mut self, id: ListenerId) -> io::Result<()>;
    fn resume_listener(&mut self, id: ListenerId) -> io::Result<()>;
    fn remove_listener(&mut self, id: ListenerId) -> Option<Listener>;
}
