//! Fault injection, the loop's side: where plans apply — every connection
//! of the loop, every connection a server accepts, or one transport. The
//! toxics themselves run in the actors (actors/src/toxics), at the socket
//! boundary; fault_plans.rs holds the plans.

use std::sync::Arc;

use pyo3::prelude::*;

use crate::event_loop::EventLoop;
use crate::fault_plans::PyToxicPlan;
use crate::transport::SocketTransport;

#[pymethods]
impl EventLoop {
    /// Applies `plan` to every connection the loop makes or accepts from
    /// now on, or (with `server`) to every connection that server accepts.
    #[pyo3(signature = (plan, server=None))]
    fn _add_toxic_plan(&self, plan: &PyToxicPlan, server: Option<Py<PyAny>>) {
        let mut targets = self.faults.lock();
        let plan = Arc::clone(&plan.plan);
        match server {
            Some(s) => targets.server_plans.push((s, plan)),
            None => targets.loop_plans.push(plan),
        }
    }

    /// Takes `plan` off the loop, its servers and every connection that
    /// has it; what its toxics hold passes at the next turn.
    fn _remove_toxic_plan(&self, py: Python<'_>, plan: &PyToxicPlan) -> PyResult<()> {
        plan.plan.remove();
        let servers = self.faults.lock().remove(&plan.plan);
        drop(servers); // without the lock held
        let mut guard = self.reactor(py)?;
        if let Some(r) = guard.as_mut() {
            r.wake_toxics();
        }
        Ok(())
    }
}

#[pymethods]
impl SocketTransport {
    /// Applies `plan` to this connection (on top of any it has).
    fn _add_toxic_plan(&self, py: Python<'_>, plan: &PyToxicPlan) -> PyResult<bool> {
        let mut out = Vec::new();
        let mut guard = self.lp.get().reactor(py)?;
        Ok(guard
            .as_mut()
            .is_some_and(|r| r.add_toxic_plans(self.id, &[Arc::clone(&plan.plan)], &mut out)))
    }

    /// (bytes received, bytes sent) by the socket: so far, or in all once
    /// the connection is gone.
    fn _io_counts(&self) -> (u64, u64) {
        self.io_counts.get()
    }

    /// Test-only fault injection: make this connection's actor panic on its
    /// next read or write, or fail its next read/write with an errno.
    #[pyo3(signature = (*, panic_on_read=None, panic_on_write=None, fail_next_read=None, fail_next_write=None))]
    fn _inject_fault(
        &self,
        py: Python<'_>,
        panic_on_read: Option<u64>,
        panic_on_write: Option<u64>,
        fail_next_read: Option<i32>,
        fail_next_write: Option<i32>,
    ) -> PyResult<bool> {
        let plan = crate::reactor::FaultPlan {
            panic_on_read,
            panic_on_write,
            fail_next_read,
            fail_next_write,
        };
        let mut guard = self.lp.get().reactor(py)?;
        Ok(guard.as_mut().is_some_and(|r| r.set_fault(self.id, plan)))
    }
}
