//! The supervision rule: every actor ends with exactly one `Closed`.
//!
//! How a scheduler must use this module:
//!
//! 1. Every call into an actor's state machine runs inside [`supervise`].
//! 2. If the call returns normally and the actor reports itself finished
//!    (it pushed its own `Closed`), the scheduler deregisters and drops the
//!    socket and forgets the id.
//! 3. If the call panicked, the scheduler emits
//!    `Closed(Some(CloseError::Panic(msg)))` — unless the actor had already
//!    emitted its `Closed` before panicking — and drops the actor *without
//!    calling into it again*: its state may be inconsistent.
//! 4. A dead id answers `ActorError::Closed` to commands that need a live
//!    transport (write, ...) and silently ignores close/abort/write_eof/
//!    pause/resume, as asyncio does for a closing transport. It never
//!    produces another event.
//! 5. On scheduler shutdown every live actor gets one `Closed(None)`.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::event::CloseError;

/// Runs `f`, turning a panic into `CloseError::Panic`.
///
/// `AssertUnwindSafe` is sound here by rule 3: after a panic the state `f`
/// touched is dropped without being observed again.
pub fn supervise<R>(f: impl FnOnce() -> R) -> Result<R, CloseError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| CloseError::Panic(panic_message(&*payload)))
}

/// Best-effort text of a panic payload (`panic!` gives `&str` or `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
