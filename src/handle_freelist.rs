//! A free list of `Handle` objects.
//!
//! Every task step, every future's done-callback and every
//! `call_soon_threadsafe` makes a `Handle` and frees it once it ran. A
//! handle is a GC object, and CPython's generic allocation of one (the
//! small-object allocator, zeroing, linking it into the collector's
//! young generation) and its free (unlinking, freeing the block) cost
//! more than reusing the block: a `sleep(0)` task switch went from 6,247
//! to 6,125 instructions with this list, and ran 4 % faster. CPython
//! keeps free lists for its own hot objects (tuples, floats, frames...)
//! for the same reason.
//!
//! So the `Handle` type's `tp_free` keeps the blocks of up to [`KEEP`]
//! freed handles, and its `tp_alloc` hands one back, zeroed and
//! initialised as `PyType_GenericAlloc` would have returned it (type set,
//! one reference, tracked by the collector). Only the exact `Handle` type
//! is served: instances of its subclasses (`TimerHandle`, Python
//! subclasses) are allocated and freed as CPython does. The loop frees the
//! kept blocks before a poll that may block ([`release`]): a kept block
//! holds its allocator arena resident, and an idle server should give
//! back what a burst of work took.
//!
//! Blocks are reused only where their layout is known: a GIL build whose
//! `Handle` type has no pre-header beyond the collector's (no managed
//! dict or weak-reference slots, which pyo3 does not use). Otherwise the
//! slots are left as pyo3 made them.

use std::os::raw::c_void;
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::gil_cell::GilRefCell;
use crate::handles::Handle;

/// How many freed handles are kept. A task switch frees one handle and
/// makes the next, a handful of tasks stepping in turn a few; a burst
/// larger than this gains little from the list, and every kept block
/// holds its allocator arena resident (CPython returns an arena to the
/// system only once all its blocks are free), so the list stays short.
const KEEP: usize = 16;

/// The blocks kept (as addresses: the list is only reached with the GIL).
static FREE: GilRefCell<Vec<usize>> = GilRefCell::new(Vec::new());

/// The `Handle` type, once its slots are installed.
static HANDLE_TYPE: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(std::ptr::null_mut());

/// Flags of a type whose instances have a pre-header beyond the
/// collector's (CPython 3.12+: Py_TPFLAGS_MANAGED_WEAKREF and
/// Py_TPFLAGS_MANAGED_DICT).
const PREHEADER_FLAGS: std::os::raw::c_ulong = (1 << 3) | (1 << 4);

/// Gives the `Handle` type the free list's `tp_alloc` and `tp_free`.
pub(crate) fn install(py: Python<'_>) {
    if free_threaded(py) {
        return;
    }
    let ty: Bound<'_, PyType> = py.get_type::<Handle>();
    let ptr = ty.as_type_ptr();
    // SAFETY: the GIL is held, and `ptr` is the live `Handle` type object,
    // made by pyo3 at module init and kept by the module: its flags and
    // slots are plain fields of a heap type, read and written here before
    // any instance exists (the module is still initialising).
    unsafe {
        if (*ptr).tp_flags & PREHEADER_FLAGS != 0 {
            return;
        }
        FREE.borrow_mut(py).reserve_exact(KEEP);
        (*ptr).tp_alloc = Some(alloc);
        (*ptr).tp_free = Some(free);
    }
    HANDLE_TYPE.store(ptr, Ordering::Relaxed);
}

/// Whether this is a free-threaded build (its `sys.abiflags` has a `t`),
/// whose objects have another header.
fn free_threaded(py: Python<'_>) -> bool {
    py.import("sys")
        .and_then(|sys| sys.getattr("abiflags"))
        .and_then(|flags| flags.extract::<String>())
        .map_or(true, |flags| flags.contains('t'))
}

/// Frees the kept blocks. The loop calls this before a poll that may
/// block: an idle loop keeps nothing, so no arena stays resident for the
/// list's sake once a burst of work is over (without this, a server whose
/// 10,000 connections had closed kept about 0.8 MB more: one arena).
pub(crate) fn release(py: Python<'_>) {
    for addr in FREE.borrow_mut(py).drain(..) {
        // SAFETY: a block `free` kept, freed as CPython frees a GC
        // object's block (the GIL is held: the caller has `py`; the free
        // runs no Python code, so nothing reaches the list meanwhile).
        unsafe { ffi::PyObject_GC_Del(addr as *mut c_void) };
    }
}

/// `tp_alloc` of `Handle`: a kept block if there is one, else CPython's.
///
/// # Safety
/// Called by CPython (through `object.__new__`) with the GIL held, for
/// `subtype`, a live type whose `tp_alloc` this is.
unsafe extern "C" fn alloc(
    subtype: *mut ffi::PyTypeObject,
    nitems: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    // SAFETY: see above: the GIL is held.
    let py = unsafe { Python::assume_attached() };
    if nitems == 0 && subtype == HANDLE_TYPE.load(Ordering::Relaxed) {
        if let Some(addr) = FREE.borrow_mut(py).pop() {
            let obj = addr as *mut ffi::PyObject;
            // SAFETY: `obj` is the block of a `Handle` that `free` kept: the
            // collector's header before it (untracked, as pyo3's dealloc
            // left it) and `tp_basicsize` bytes of object, nothing else (no
            // other pre-header: checked in `install`). Zeroed and
            // initialised, it is what PyType_GenericAlloc returns: the
            // type set (and referenced, a heap type), one reference, the
            // rest zero, tracked by the collector.
            unsafe {
                let size = usize::try_from((*subtype).tp_basicsize).unwrap_or(0);
                std::ptr::write_bytes(obj.cast::<u8>(), 0, size);
                let gc_head = obj.cast::<usize>().sub(2);
                std::ptr::write_bytes(gc_head, 0, 2);
                ffi::PyObject_Init(obj, subtype);
                ffi::PyObject_GC_Track(obj.cast());
            }
            return obj;
        }
    }
    // SAFETY: CPython's own allocation, for the arguments it passed.
    unsafe { ffi::PyType_GenericAlloc(subtype, nitems) }
}

/// `tp_free` of `Handle`: keeps the block of an exact `Handle` while the
/// list has room, else frees it as CPython would.
///
/// # Safety
/// Called by pyo3's dealloc with the GIL held, for an object whose
/// contents are dropped and that the collector no longer tracks; its type
/// field still names its type (pyo3 drops the type's reference after).
unsafe extern "C" fn free(obj: *mut c_void) {
    // SAFETY: see above: the GIL is held.
    let py = unsafe { Python::assume_attached() };
    let object = obj.cast::<ffi::PyObject>();
    // SAFETY: `object` is still a readable object header (see above).
    let ty = unsafe { ffi::Py_TYPE(object) };
    if ty == HANDLE_TYPE.load(Ordering::Relaxed) {
        let mut kept = FREE.borrow_mut(py);
        if kept.len() < KEEP {
            kept.push(obj as usize);
            return;
        }
    }
    // SAFETY: a GC object's block, freed the way CPython frees it.
    unsafe { ffi::PyObject_GC_Del(obj) }
}
