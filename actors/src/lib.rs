//! Supervised connection actors for rloop. No pyo3 here.
//!
//! Each TCP/Unix connection is an actor ([`Connection`]) that owns its
//! socket, read buffer and write queue. A scheduler drives the actors and
//! guarantees, through the [`supervisor`] rules, exactly one
//! [`Event::Closed`] per actor however it ends (clean close, peer reset,
//! abort, panic, scheduler shutdown).
//!
//! # The pull-style contract
//!
//! The caller runs Python in response to events, and that Python may call
//! straight back into the same scheduler (`data_received` calling
//! `transport.write`). So the scheduler never calls the caller:
//!
//! * [`MioScheduler::turn`] polls once and returns readiness records
//!   ([`Ready`]) as values.
//! * For each record the caller calls back in: `read`/`read_into` for
//!   readable connections, `on_writable` for writable ones, `accept` for
//!   listeners. Every such method (and `write`, `command`, ...) pushes the
//!   events it caused into a caller-provided `&mut Vec<Event>`.
//! * Read data is lent as `&[u8]` borrowing the scheduler; the borrow ends
//!   before the caller can run Python (copy into a `bytes` first).
//! * After the caller has seen `Event::Closed` for an id, that id is dead:
//!   commands return [`ActorError::Closed`] or are ignored, and it never
//!   yields another event.
//!
//! mio is edge-triggered; the scheduler hides that: a connection whose
//! last read may have left data, or a listener whose last accept did not
//! hit `WouldBlock`, is reported again next turn, and raw fd watchers are
//! re-armed each turn so they behave level-triggered like asyncio's.

mod acceptor;
mod actors_api;
mod addr;
mod command;
mod connection;
pub mod datagram;
mod error;
mod event;
mod fault;
pub mod heap;
mod io_counts;
mod level;
mod mio_sched;
mod ready;
mod sendfile;
mod signal_pipe;
pub mod sparse;
mod stream;
pub mod supervisor;
mod tokio_sched;
pub mod toxics;
mod write_queue;

pub use acceptor::{is_transient_accept_error, Listener};
pub use actors_api::Actors;
pub use addr::Addr;
pub use command::Command;
pub use connection::{ConnInfo, Connection, ReadCount, ReadResult, DEFAULT_READ_BUFFER};
pub use error::{ActorError, LimitsError};
pub use event::{CloseError, Event};
pub use fault::FaultPlan;
pub use io_counts::IoCounts;
pub use mio_sched::MioScheduler;
pub use ready::{ConnId, ListenerId, Ready};
pub use sendfile::{FileSegment, SendfileError, SendfileOutcome};
pub use stream::{socket_family, SharedFd, Stream, StreamKind};
pub use tokio_sched::{Driver, TokioScheduler, TokioWaker};
pub use toxics::{Direction, EveryNth, Toxic, ToxicKind, ToxicPlan};
pub use write_queue::{WriteQueue, DEFAULT_HIGH_WATER};
