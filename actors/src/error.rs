//! Errors the caller maps to Python exceptions.
//!
//! These are *misuse* or *rejected request* errors. A socket dying is never
//! an `ActorError`: it ends the actor with `Event::Closed(Some(..))`.

use std::fmt;
use std::io;

/// `set_write_buffer_limits` got values that violate `high >= low >= 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsError {
    pub high: usize,
    pub low: usize,
}

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same wording as asyncio's ValueError.
        write!(
            f,
            "high ({}) must be >= low ({}) must be >= 0",
            self.high, self.low
        )
    }
}

impl std::error::Error for LimitsError {}

/// A command the actor refused. The actor itself is unaffected.
#[derive(Debug)]
pub enum ActorError {
    /// `write()` after `write_eof()` (asyncio raises RuntimeError).
    WriteAfterEof,
    /// The actor already emitted `Closed`; the id is dead.
    Closed,
    /// A file segment is already pending (one at a time).
    SendfileInProgress,
    /// Bad write-buffer limits (asyncio raises ValueError).
    Limits(LimitsError),
    /// A synchronous OS call made on behalf of the command failed; the
    /// connection stays open (e.g. `shutdown(SHUT_WR)` in `write_eof`).
    Io(io::Error),
}

impl fmt::Display for ActorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActorError::WriteAfterEof => f.write_str("Cannot call write() after write_eof()"),
            ActorError::Closed => f.write_str("transport is closed"),
            ActorError::SendfileInProgress => f.write_str("sendfile is in progress"),
            ActorError::Limits(e) => write!(f, "{e}"),
            ActorError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ActorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ActorError::Limits(e) => Some(e),
            ActorError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<LimitsError> for ActorError {
    fn from(e: LimitsError) -> Self {
        ActorError::Limits(e)
    }
}
