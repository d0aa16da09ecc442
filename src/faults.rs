//! Fault injection, the loop's side: fault plans as Python objects
//! (`_rloop.ToxicPlan`), and where each applies — every connection of the
//! loop, every connection a server accepts, or one transport. The toxics
//! themselves run in the actors (actors/src/toxics), at the socket
//! boundary; this file only routes plans to connections and accepts.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use crate::event_loop::EventLoop;
use crate::reactor::{Direction, EveryNth, Toxic, ToxicKind, ToxicPlan};
use crate::transport::SocketTransport;

/// A plan, built by `rloop.faults.Plan`; shared by every connection it
/// reaches. `remove()` takes it off all of them.
#[pyclass(frozen, module = "rloop._rloop", name = "ToxicPlan")]
pub struct PyToxicPlan {
    pub(crate) plan: Arc<ToxicPlan>,
}

fn millis(v: f64) -> Duration {
    Duration::from_secs_f64(v.max(0.0) / 1000.0)
}

fn toxic_kind(name: &str, p: &[f64]) -> PyResult<ToxicKind> {
    let arg = |i: usize| p.get(i).copied().unwrap_or(0.0);
    let count = |i: usize| arg(i).max(0.0) as u64;
    Ok(match name {
        "latency" => ToxicKind::Latency {
            delay: millis(arg(0)),
            jitter: millis(arg(1)),
        },
        "bandwidth" => ToxicKind::Bandwidth {
            bytes_per_sec: count(0).max(1),
        },
        "slicer" => ToxicKind::Slicer {
            average: count(0).max(1) as usize,
            variation: count(1) as usize,
            delay: Duration::from_micros(count(2)),
        },
        "limit_data" => ToxicKind::LimitData { bytes: count(0) },
        "timeout" => ToxicKind::Timeout {
            after: millis(arg(0)),
        },
        "reset_peer" => ToxicKind::ResetPeer {
            after: millis(arg(0)),
        },
        "slow_close" => ToxicKind::SlowClose {
            delay: millis(arg(0)),
        },
        "error" => ToxicKind::Error {
            errno: arg(0) as i32,
            after_bytes: count(1),
        },
        "panic" => ToxicKind::Panic {
            after_bytes: count(0),
        },
        other => return Err(PyValueError::new_err(format!("unknown toxic {other:?}"))),
    })
}

#[pymethods]
impl PyToxicPlan {
    /// `toxics`: (name, direction, toxicity, numeric parameters) each, as
    /// `rloop.faults.Plan` makes them (it checks the values first).
    #[new]
    #[pyo3(signature = (seed, toxics, accept_error=None))]
    fn new(
        seed: u64,
        toxics: Vec<(String, String, f64, Vec<f64>)>,
        accept_error: Option<(i32, u64)>,
    ) -> PyResult<Self> {
        let mut list = Vec::with_capacity(toxics.len());
        for (name, direction, toxicity, params) in toxics {
            let direction = match direction.as_str() {
                "upstream" => Direction::Upstream,
                "downstream" => Direction::Downstream,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "direction must be 'upstream' or 'downstream', not {other:?}"
                    )))
                }
            };
            list.push(Toxic {
                kind: toxic_kind(&name, &params)?,
                direction,
                toxicity,
            });
        }
        let accept_error = accept_error.map(|(errno, every)| EveryNth { errno, every });
        Ok(PyToxicPlan {
            plan: Arc::new(ToxicPlan::new(seed, list, accept_error)),
        })
    }

    /// Marks the plan removed: no new connection gets it, and the
    /// connections that have it let what it holds pass (the loop must be
    /// told too: `loop._remove_toxic_plan`).
    fn remove(&self) {
        self.plan.remove();
    }

    #[getter]
    fn removed(&self) -> bool {
        self.plan.is_removed()
    }
}

/// The plans of a loop and of its servers.
#[derive(Default)]
pub struct FaultTargets {
    loop_plans: Vec<Arc<ToxicPlan>>,
    server_plans: Vec<(Py<PyAny>, Arc<ToxicPlan>)>,
}

impl FaultTargets {
    fn is_empty(&self) -> bool {
        self.loop_plans.is_empty() && self.server_plans.is_empty()
    }

    /// The plans a new connection (accepted by `server`, if any) gets.
    pub fn for_connection(&self, server: Option<&Bound<'_, PyAny>>) -> Vec<Arc<ToxicPlan>> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut plans: Vec<Arc<ToxicPlan>> = self
            .loop_plans
            .iter()
            .filter(|p| p.has_toxics())
            .cloned()
            .collect();
        if let Some(server) = server {
            plans.extend(
                self.server_plans
                    .iter()
                    .filter(|(s, p)| s.is(server) && p.has_toxics())
                    .map(|(_, p)| Arc::clone(p)),
            );
        }
        plans
    }

    /// The errno the connection `server` just accepted must fail with, if
    /// an accept_error toxic says so (each plan counts its accepts).
    pub fn accept_fault(&self, server: &Bound<'_, PyAny>) -> Option<i32> {
        if self.is_empty() {
            return None;
        }
        let servers = self
            .server_plans
            .iter()
            .filter(|(s, _)| s.is(server))
            .map(|(_, p)| p);
        self.loop_plans
            .iter()
            .chain(servers)
            .find_map(|p| p.accept_fault())
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        for (server, _) in &self.server_plans {
            visit.call(server)?;
        }
        Ok(())
    }

    fn remove(&mut self, plan: &Arc<ToxicPlan>) {
        self.loop_plans.retain(|p| !Arc::ptr_eq(p, plan));
        self.server_plans.retain(|(_, p)| !Arc::ptr_eq(p, plan));
    }
}

pub type SharedFaultTargets = Mutex<FaultTargets>;

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
        let removed = {
            let mut targets = self.faults.lock();
            let before = targets.server_plans.len();
            let servers: Vec<Py<PyAny>> = targets
                .server_plans
                .iter()
                .filter(|(_, p)| Arc::ptr_eq(p, &plan.plan))
                .map(|(s, _)| s.clone_ref(py))
                .collect();
            targets.remove(&plan.plan);
            debug_assert!(targets.server_plans.len() <= before);
            servers
        };
        // Dropped without the lock held: a server's last reference may
        // run Python code.
        drop(removed);
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
