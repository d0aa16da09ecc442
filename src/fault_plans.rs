//! Fault plans as the loop keeps them: `_rloop.ToxicPlan` (a compiled
//! `rloop.faults.Plan`), and the plans of a loop and of each of its
//! servers (`FaultTargets`, which the loop consults when it makes a
//! transport or accepts a connection). faults.rs applies them.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use crate::reactor::{Direction, EveryNth, Toxic, ToxicKind, ToxicPlan};

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
    pub(crate) loop_plans: Vec<Arc<ToxicPlan>>,
    pub(crate) server_plans: Vec<(Py<PyAny>, Arc<ToxicPlan>)>,
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

    /// Takes `plan` off the loop and its servers; returns the servers it
    /// was on, for the caller to drop once it has let go of the lock (a
    /// server's last reference may run Python code).
    pub(crate) fn remove(&mut self, plan: &Arc<ToxicPlan>) -> Vec<Py<PyAny>> {
        self.loop_plans.retain(|p| !Arc::ptr_eq(p, plan));
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.server_plans)
            .into_iter()
            .partition(|(_, p)| Arc::ptr_eq(p, plan));
        self.server_plans = kept;
        gone.into_iter().map(|(server, _)| server).collect()
    }
}

pub type SharedFaultTargets = Mutex<FaultTargets>;
