//! TokioLoop's `run_forever`: the whole run is one future that tokio's
//! runtime blocks on (actors' tokio_sched/driver.rs), and each loop
//! iteration a step of it. Entering the runtime once per run instead of
//! once per iteration saved about 330 instructions a turn (a
//! one-connection Protocol round trip, three turns: 14.6k to 13.6k).
//!
//! An iteration is `run_once`'s, cut at its poll: `begin_iteration`, the
//! scheduler's `begin_turn`, then `poll_turn` until the turn is over, then
//! `end_turn` and `finish_iteration`. A turn that may block returns
//! `Pending` with the GIL let go, and tokio parks its reactor until a
//! waker fires (an edge, another thread's wake-up, a signal, the turn's
//! timer); the next poll takes the GIL back before anything else.

use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use pyo3::ffi;
use pyo3::prelude::*;

use crate::event_loop::{closed_error, EventLoop};
use crate::iteration::Iteration;
use crate::reactor::Driver;

/// Where an iteration got to.
enum Step {
    /// Its turn waits for the reactor.
    Waiting(Iteration),
    /// It ran its callbacks.
    Done,
}

/// The GIL, let go while tokio parks.
struct Detached(*mut ffi::PyThreadState);

impl Detached {
    /// SAFETY: the caller holds the GIL, and touches no Python object
    /// until this is dropped (which takes the GIL back).
    unsafe fn new() -> Self {
        Detached(ffi::PyEval_SaveThread())
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        // SAFETY: restores the thread state `new` saved, once.
        unsafe { ffi::PyEval_RestoreThread(self.0) }
    }
}

impl EventLoop {
    /// Runs iterations inside `driver` until stop() (or an error).
    pub(crate) fn run_driven(slf: &Bound<'_, Self>, driver: Driver) -> PyResult<()> {
        let this = slf.get();
        let mut current: Option<Iteration> = None;
        // Dropped on every way out of block_on, a panic included: the GIL
        // is always taken back.
        let mut detached: Option<Detached> = None;
        driver.block_on(|cx| {
            drop(detached.take());
            loop {
                match Self::drive_step(slf, cx, current.take()) {
                    Err(e) => return Poll::Ready(Err(e)),
                    Ok(Step::Waiting(it)) => {
                        let blocking = !it.busy;
                        current = Some(it);
                        if blocking {
                            // SAFETY: nothing runs between here and the
                            // next poll but tokio's park, which touches no
                            // Python object; that poll takes the GIL back
                            // first.
                            detached = Some(unsafe { Detached::new() });
                        }
                        return Poll::Pending;
                    }
                    Ok(Step::Done) => {
                        if this.stopping.load(Ordering::Relaxed) {
                            return Poll::Ready(Ok(()));
                        }
                    }
                }
            }
        })
    }

    /// Takes an iteration as far as it can go: to a turn that must wait, or
    /// to its end.
    fn drive_step(
        slf: &Bound<'_, Self>,
        cx: &mut Context<'_>,
        current: Option<Iteration>,
    ) -> PyResult<Step> {
        let py = slf.py();
        let this = slf.get();
        let (mut it, resumed) = match current {
            Some(it) => (it, true),
            None => (Self::begin_iteration(slf)?, false),
        };
        let mut polled = Ok(());
        if it.poll {
            let mut reactor = this.reactor(py)?;
            let Some(turns) = reactor.as_mut().and_then(|r| r.driven()) else {
                return Err(closed_error());
            };
            if !resumed {
                polled = turns.begin_turn(it.timeout, &mut it.readiness);
            }
            if polled.is_ok() {
                if turns.poll_turn(cx).is_pending() {
                    return Ok(Step::Waiting(it));
                }
                turns.end_turn(&mut it.readiness);
            }
        }
        Self::finish_iteration(slf, it, polled)?;
        Ok(Step::Done)
    }
}
