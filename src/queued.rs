//! Handles wait in the ready queue and the timer heap out of the cycle
//! collector's sight.
//!
//! A queued handle cannot be garbage: the loop holds it. Yet every handle is
//! a GC-tracked object (it holds a callback, arguments and a context, which
//! may form cycles), so a burst of `call_soon` (a callback per item of a
//! batch, per chunk, per waiter) made each collection the burst triggers walk
//! all the handles still waiting: a quarter of the CPU time of 100,000
//! `call_soon` then one run (or of 100,000 `call_later` + `cancel`) went to
//! the collector. So `call_soon` untracks the handle it queues, and the
//! timer heap the timers it holds; the loop tracks a handle again as it
//! takes it out (to run it, as a cancelled timer it drops, or when it is
//! closed), before it lets go of it: from then on, a cycle through it
//! (`self.h = loop.call_soon(self.m)`) is the collector's again, as with
//! asyncio's handles.

use pyo3::ffi;
use pyo3::prelude::*;

/// Out of the collector's sight while the loop holds it in its queue.
pub(crate) fn untrack<T>(handle: &Py<T>) {
    let ptr = handle.as_ptr();
    // SAFETY: GIL held by the caller (it holds a Py and queues it); `ptr` is
    // a live GC object; untracking is only done on a tracked object.
    unsafe {
        if ffi::PyObject_GC_IsTracked(ptr) == 1 {
            ffi::PyObject_GC_UnTrack(ptr.cast());
        }
    }
}

/// Back in the collector's sight (a no-op for a handle that never left it:
/// timers, fd watchers, transports' handles).
pub(crate) fn track<T>(handle: &Py<T>) {
    let ptr = handle.as_ptr();
    // SAFETY: GIL held by the caller (it is taking the handle out of the
    // loop's queue); `ptr` is a live GC object; it is tracked only if it
    // is not (tracking a tracked object is a fatal error).
    unsafe {
        if ffi::PyObject_GC_IsTracked(ptr) == 0 {
            ffi::PyObject_GC_Track(ptr.cast());
        }
    }
}
