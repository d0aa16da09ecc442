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

impl Command {
    /// Sent to an actor that has already ended: close, abort, write_eof and
    /// pause/resume are no-ops then (as asyncio ignores them on a closed
    /// transport); writes and limit changes report `ActorError::Closed`.
    pub(crate) fn ignorable_when_dead(&self) -> bool {
        matches!(
            self,
            Command::Close
                | Command::Abort
                | Command::WriteEof
                | Command::PauseReading
                | Command::ResumeReading
        )
    }

    /// Applies this command to a live actor (schedulers call this under the
    /// supervisor).
    pub(crate) fn apply(
        self,
        c: &mut crate::connection::Connection,
        out: &mut Vec<crate::event::Event>,
    ) -> Result<(), crate::error::ActorError> {
        match self {
            Command::Write(data) => c.write_owned(data, out),
            Command::WriteEof => c.write_eof(),
            Command::PauseReading => {
                c.pause_reading();
                Ok(())
            }
            Command::ResumeReading => {
                c.resume_reading();
                Ok(())
            }
            Command::Close => {
                c.close(out);
                Ok(())
            }
            Command::Abort => {
                c.abort(out);
                Ok(())
            }
            Command::SetWriteBufferLimits { high, low } => {
                c.set_write_buffer_limits(high, low, out)
            }
        }
    }
}
