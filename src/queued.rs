//! Handles wait in the ready queue and the timer heap out of the cycle
//! collector's sight.
//!
//! A queued handle cannot be garbage: the loop holds it, and through it what
//! it holds. Yet every handle is a GC-tracked object (it holds a callback,
//! arguments and a context, which may form cycles), so a burst of
//! `call_soon` (a callback per item of a batch, per chunk, per waiter) made
//! each collection the burst triggers walk all the handles still waiting: a
//! quarter of the CPU time of 100,000 `call_soon` then one run (or of
//! 100,000 `call_later` + `cancel`) went to the collector. So `call_soon`
//! untracks the handle it queues behind `HIDDEN_FROM` others (a short
//! queue, such as a few tasks stepping in turn, costs a collection little),
//! and the timer heap the timers it holds;
//! the loop tracks a handle again as it takes it out (to run it, as a
//! cancelled timer it drops, or when it is closed), before it lets go of it:
//! from then on, a cycle through it (`self.h = loop.call_soon(self.m)`) is
//! the collector's again, as with asyncio's handles.
//!
//! The same holds for what the handle holds for the call: its context, and
//! its arguments' tuple or, for a future's done-callback, the future itself
//! (asyncio's `set_result` schedules `call_soon(cb, fut, context=ctx)` per
//! callback: 100,000 futures resolved in a burst left 200,000 objects, the
//! futures and the contexts, for every collection of the burst to walk).
//! Only objects whose tracking is known are hidden: contexts, asyncio's C
//! futures and tasks, and the tuple the handle made; each is tracked again
//! by whoever takes the handle out, and by the handle itself, whatever way
//! it ends, before it lets go of them (CPython frees a context assuming it
//! is tracked). An object two queued handles hold is tracked again by the
//! first to leave: the other merely hides it for less time.

use pyo3::ffi;
use pyo3::prelude::*;

use crate::gc_tracking::{
    hideable_arg, is_context, track_args, track_context, track_ptr, untrack_ptr,
};
use crate::handles::Handle;

/// How many handles the ready queue holds before it hides the next ones.
/// A collection walks the ones before at little cost; hiding and showing
/// a handle again is some 200 instructions, a tenth of what the loop
/// spends on a task step (`sleep(0)`), whose queue holds a few handles.
pub(crate) const HIDDEN_FROM: usize = 64;

/// A queued handle (a Handle, or a TimerHandle's Handle part) out of the
/// collector's sight, with its context and arguments.
pub(crate) fn untrack_handle(handle: &Bound<'_, Handle>) {
    let py = handle.py();
    untrack_ptr(handle.as_ptr());
    let h = handle.get();
    if is_context(h.context.as_ptr()) {
        untrack_ptr(h.context.as_ptr());
    }
    h.with_args(py, |args| {
        if let Some(ptr) = hideable_arg(py, args) {
            untrack_ptr(ptr);
        }
    });
}

/// Back in the collector's sight, with its context and its arguments (a
/// no-op for what never left it: handles queued while the queue was
/// short, timers of a closed loop, fd watchers, transports' handles).
/// Only a hidden handle hid what it holds.
pub(crate) fn track_handle(handle: &Bound<'_, Handle>) {
    let py = handle.py();
    // SAFETY: GIL held (the caller takes the handle out of a queue); the
    // handle is a live GC object.
    if unsafe { ffi::PyObject_GC_IsTracked(handle.as_ptr()) } == 1 {
        return;
    }
    track_ptr(handle.as_ptr());
    let h = handle.get();
    track_context(&h.context);
    h.with_args(py, |args| track_args(py, args));
}
