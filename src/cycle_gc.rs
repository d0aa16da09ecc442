//! The loop's part in Python's cycle collection: what it holds that may
//! refer back to it (handles, timers, transports, servers, the exception
//! handler, the task factory), shown to the collector, and what it lets go
//! of to break a cycle.

use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use crate::event_loop::{EventLoop, Item};

#[pymethods]
impl EventLoop {
    /// The loop takes part in cycle collection (a loop and the exception
    /// handler or tasks that refer to it). A lock held elsewhere means the
    /// loop is in use: skipping it only keeps objects alive longer.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for slot in [&self.exception_handler, &self.saved_origin_depth] {
            if let Some(guard) = slot.try_lock() {
                if let Some(obj) = guard.as_ref() {
                    visit.call(obj)?;
                }
            }
        }
        if let Some(guard) = self.task_factory.borrow_in_gc(&visit) {
            if let Some(obj) = guard.as_ref() {
                visit.call(obj)?;
            }
        }
        if let Some(ready) = self.ready.borrow_in_gc(&visit) {
            for item in ready.iter() {
                match item {
                    Item::Call(h) => visit.call(h)?,
                    Item::Conn { .. } | Item::Accept(_) => {}
                }
            }
        }
        if let Some(timers) = self.timers.borrow_in_gc(&visit) {
            timers.traverse(&visit)?;
        }
        for side in [&self.readers, &self.writers] {
            if let Some(map) = side.try_lock() {
                for h in map.values() {
                    visit.call(h)?;
                }
            }
        }
        if let Some(map) = self.transports.try_lock() {
            for t in map.values() {
                visit.call(t)?;
            }
        }
        if let Some(map) = self.listeners.try_lock() {
            for l in map.values() {
                l.traverse(&visit)?;
            }
        }
        if let Some(targets) = self.faults.try_lock() {
            targets.traverse(&visit)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        let handler = self.exception_handler.try_lock().and_then(|mut g| g.take());
        let factory = Python::attach(|py| self.task_factory.borrow_mut(py).take());
        let faults = self.faults.try_lock().map(|mut g| std::mem::take(&mut *g));
        drop((handler, factory, faults));
    }
}
