//! Commands a transport sends to its connection actor.
//!
//! The mio scheduler exposes most of these as direct methods (so written
//! bytes can be borrowed instead of copied); the enum is the mailbox format
//! for schedulers that run actors on other threads, and the argument type of
//! `MioScheduler::command`.

/// One request from the transport to the actor that owns the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Queue bytes for sending (owned, so it can cross a channel).
    Write(Vec<u8>),
    /// Half-close: shut down the write side once the queue has drained.
    WriteEof,
    /// Stop delivering received data.
    PauseReading,
    /// Deliver received data again.
    ResumeReading,
    /// Stop reading, flush the queue, then finish with `Closed(None)`.
    Close,
    /// Drop the queue and finish with `Closed(None)` now.
    Abort,
    /// asyncio `set_write_buffer_limits(high, low)`.
    SetWriteBufferLimits {
        high: Option<usize>,
        low: Option<usize>,
    },
}
