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
//! asyncio's handles. A context must never be freed untracked (CPython
//! frees one assuming it is tracked): a handle tracks its own again when it
//! is freed, whatever way it left the queue.

use pyo3::ffi;
use pyo3::prelude::*;

use crate::handles::Handle;

/// A queued handle (a Handle, or a TimerHandle's Handle part) out of the
/// collector's sight, with the context it made for itself (a fresh copy per
/// handle, which the collector walked as often) and its arguments' tuple
/// (made for the call, when it keeps one: src/callback_args.rs).
pub(crate) fn untrack_handle(handle: &Bound<'_, Handle>) {
    untrack_ptr(handle.as_ptr());
    let h = handle.get();
    if let Some(context) = h.own_context() {
        untrack_ptr(context.as_ptr());
    }
    if let Some(args) = h.args_ptr(handle.py()) {
        untrack_ptr(args);
    }
}

/// Back in the collector's sight, with its own context and its arguments (a
/// no-op for what never left it: timers of a closed loop, fd watchers,
/// transports' handles).
pub(crate) fn track_handle(handle: &Bound<'_, Handle>) {
    track_ptr(handle.as_ptr());
    let h = handle.get();
    if let Some(context) = h.own_context() {
        track_ptr(context.as_ptr());
    }
    if let Some(args) = h.args_ptr(handle.py()) {
        track_ptr(args);
    }
}

/// A handle's own context back in the collector's sight (the handle is being
/// freed: see `Drop for Handle`).
pub(crate) fn track_context(context: &Py<PyAny>) {
    track_ptr(context.as_ptr());
}

/// A cancelled handle's arguments back in the collector's sight (they may
/// outlive the handle).
pub(crate) fn track_args(args: *mut ffi::PyObject) {
    track_ptr(args);
}

fn untrack_ptr(ptr: *mut ffi::PyObject) {
    // SAFETY: GIL held by the caller (it holds a Py and queues it); `ptr` is
    // a live GC object; untracking is only done on a tracked object.
    unsafe {
        if ffi::PyObject_GC_IsTracked(ptr) == 1 {
            ffi::PyObject_GC_UnTrack(ptr.cast());
        }
    }
}

fn track_ptr(ptr: *mut ffi::PyObject) {
    // SAFETY: GIL held by the caller (it is taking the handle out of the
    // loop's queue); `ptr` is a live GC object; it is tracked only if it
    // is not (tracking a tracked object is a fatal error).
    unsafe {
        if ffi::PyObject_GC_IsTracked(ptr) == 0 {
            ffi::PyObject_GC_Track(ptr.cast());
        }
    }
}
