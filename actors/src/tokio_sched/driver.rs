//! Running a whole loop inside one `Runtime::block_on`.
//!
//! A turn driven by [`TokioScheduler::turn`](super::TokioScheduler::turn)
//! enters tokio's runtime and leaves it again: `block_on` takes the
//! scheduler's core, sets the thread's runtime context and a fresh random
//! seed, polls, parks the driver, and undoes all of it, on every loop
//! iteration that polls: in a bare runtime, 1,329 instructions an
//! iteration against 555 with one `block_on` for all.
//!
//! A loop that runs for a while instead hands its whole run to
//! [`Driver::block_on`]: the caller's closure is the one future tokio
//! polls, and it does a loop iteration per step, turns included
//! ([`begin_turn`](super::TokioScheduler::begin_turn),
//! [`poll_turn`](super::TokioScheduler::poll_turn),
//! [`end_turn`](super::TokioScheduler::end_turn)). A turn that must wait
//! returns `Pending`, and tokio parks its driver until a waker fires; a
//! turn that must not wait wakes itself first, so tokio polls the driver
//! without blocking and comes straight back. The runtime is entered once
//! per run, not once per iteration.
//!
//! Whatever runs inside the closure runs inside the runtime: blocking on
//! another runtime there would panic (tokio refuses nested `block_on`),
//! so [`Driver::is_driving`] tells a scheduler to hand its turns to a
//! thread instead (nested.rs). Dropping a runtime there would panic too,
//! unless it is shut down in the background, as the scheduler's `Drop`
//! does.

use std::cell::Cell;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::runtime::Runtime;

thread_local! {
    /// This thread is inside a `Driver::block_on`.
    static DRIVING: Cell<bool> = const { Cell::new(false) };
}

/// A scheduler's runtime, to run a loop inside (see the module docs).
#[derive(Clone)]
pub struct Driver(pub(super) Arc<Runtime>);

/// Clears the thread's flag however `block_on` ends, a panic included.
struct Driving;

impl Driving {
    fn enter() -> Self {
        DRIVING.with(|d| d.set(true));
        Driving
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        DRIVING.with(|d| d.set(false));
    }
}

impl Driver {
    /// Whether this thread runs inside a `Driver::block_on` (where another
    /// runtime cannot be started).
    pub fn is_driving() -> bool {
        DRIVING.with(Cell::get)
    }

    /// Polls `step` until it is ready, parking tokio's driver whenever it
    /// is pending (without blocking when it woke itself). Not to be called
    /// while [`Driver::is_driving`].
    pub fn block_on<R>(&self, step: impl FnMut(&mut Context<'_>) -> Poll<R>) -> R {
        let _driving = Driving::enter();
        // Unconstrained: tokio's budget of 128 readiness polls per poll of
        // a future would hold back the watches past it.
        self.0
            .block_on(tokio::task::coop::unconstrained(poll_fn(step)))
    }
}
