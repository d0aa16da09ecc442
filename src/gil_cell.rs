//! Loop state that only code holding the GIL touches.
//!
//! The loop's ready queue, timer heap and the like, and a handle's
//! callback (handles.rs), are reached from Python methods (call_soon,
//! call_soon_threadsafe from any thread, run_once): always with the GIL
//! held, and never while this thread has let go of it. A mutex around
//! them bought nothing the GIL does not already give, and cost two atomic
//! read-modify-writes per access, several times per callback (a tenth of
//! `sleep(0)` ping-pong's time went there).
//!
//! [`GilRefCell`] is a `RefCell` whose every access needs the `Python`
//! token: the GIL serialises accesses from different threads, and the
//! borrow flag turns a reentrant access (a `__del__` run while the cell is
//! borrowed calling back into the loop) into a panic, which pyo3 reports as
//! a `PanicException`, instead of two live `&mut`. So code keeps Python
//! objects it takes out of a cell until the borrow has ended, as it already
//! did under the mutexes (where the same mistake would deadlock).

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use pyo3::{PyVisit, Python};

pub struct GilRefCell<T> {
    value: UnsafeCell<T>,
    borrowed: Cell<bool>,
}

// SAFETY: `value` and `borrowed` are reached only through `borrow_mut`,
// which needs the `Python` token: every access happens with the GIL held,
// so accesses from different threads never overlap (the GIL's release and
// acquire order them), and `borrowed` rules out overlap on one thread. The
// guard is not `Send` (a raw-pointer marker), so it never leaves the thread
// that holds the GIL. `T: Send` because the value may be used from any
// thread that takes the GIL.
unsafe impl<T: Send> Sync for GilRefCell<T> {}

impl<T> GilRefCell<T> {
    pub const fn new(value: T) -> Self {
        GilRefCell {
            value: UnsafeCell::new(value),
            borrowed: Cell::new(false),
        }
    }

    /// The value, through the only reference to the cell (no GIL needed:
    /// nobody else can reach it).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// The value, for as long as the guard lives. Panics if it is already
    /// borrowed (a reentrant access: see the module's doc).
    pub fn borrow_mut<'a>(&'a self, _py: Python<'a>) -> GilRefMut<'a, T> {
        if self.borrowed.replace(true) {
            panic!("rloop: loop state reached again while in use (reentrant access)");
        }
        GilRefMut {
            cell: self,
            _not_send: PhantomData,
        }
    }

    /// For `__traverse__`, which has no `Python` token but runs inside the
    /// collector, with the GIL held (a `PyVisit` exists only there). None
    /// if the cell is in use: a collection that started inside a borrow
    /// (an allocation) skips it, as it skipped a locked mutex.
    pub fn borrow_in_gc<'a>(&'a self, _visit: &PyVisit<'_>) -> Option<GilRefMut<'a, T>> {
        if self.borrowed.replace(true) {
            return None;
        }
        Some(GilRefMut {
            cell: self,
            _not_send: PhantomData,
        })
    }
}

pub struct GilRefMut<'a, T> {
    cell: &'a GilRefCell<T>,
    /// Keeps the guard on the thread that holds the GIL.
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for GilRefMut<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard is the only borrow (the flag) and the GIL is
        // held (the token), see the Sync impl.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T> DerefMut for GilRefMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in deref; `&mut self` makes this the only reference.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T> Drop for GilRefMut<'_, T> {
    fn drop(&mut self) {
        self.cell.borrowed.set(false);
    }
}
