//! Events an actor reports back to its transport.

use std::fmt;
use std::io;

use crate::sendfile::SendfileOutcome;

/// Something the transport must tell its protocol about.
#[derive(Debug)]
pub enum Event {
    /// Received bytes, owned (used by threaded schedulers; the mio scheduler
    /// lends read data as a slice instead).
    Data(Vec<u8>),
    /// The peer shut down its write side.
    Eof,
    /// The write queue went above the high-water mark: `pause_writing()`.
    PauseWriting,
    /// The write queue drained to the low-water mark: `resume_writing()`.
    ResumeWriting,
    /// The file segment (`sendfile`) is over: sent, failed or dropped.
    /// Comes before the `Closed` of a connection that ends with one
    /// pending.
    SendfileDone(SendfileOutcome),
    /// The actor is gone; emitted exactly once per actor.
    /// `None` is a clean close (close/abort/shutdown), `Some` the cause.
    Closed(Option<CloseError>),
}

/// Why an actor ended abnormally.
#[derive(Debug)]
pub enum CloseError {
    /// A fatal socket error (reset, broken pipe, ...).
    Io(io::Error),
    /// The actor panicked; the message of the panic.
    Panic(String),
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseError::Io(e) => write!(f, "{e}"),
            CloseError::Panic(msg) => write!(f, "connection actor panicked: {msg}"),
        }
    }
}

impl std::error::Error for CloseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CloseError::Io(e) => Some(e),
            CloseError::Panic(_) => None,
        }
    }
}

impl From<io::Error> for CloseError {
    fn from(e: io::Error) -> Self {
        CloseError::Io(e)
    }
}
