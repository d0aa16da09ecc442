//! Fault injection: toxics that delay, slice, cut or break a connection's
//! bytes, in-process, at the socket boundary of its actor.
//!
//! The vocabulary is toxiproxy's. A proxy sits between two sockets and
//! can only hold, drop or close; here the toxic sits inside the actor, so
//! it can also make a socket call fail with an errno, or make the actor
//! panic, and it applies to a client's own connections as well as to a
//! server's, with no port to route through.
//!
//! A connection without toxics pays one branch per socket call. With
//! toxics, each direction is a [`flow::Flow`]: the bytes admitted get a
//! release time and wait in the connection (upstream: a held buffer in
//! front of the protocol; downstream: the write queue, so the protocol's
//! flow control sees them). Release times are deadlines the scheduler
//! folds into its poll timeout ([`Deadlines`]): no thread, no sleep, and
//! the same monotonic clock as the loop's `time()`.
//!
//! Randomness (jitter, slice sizes, toxicity) comes from the plan's seed
//! mixed with the connection's ordinal among those the plan reached, so a
//! program run twice sees the same faults on the same connections.

mod deadlines;
pub(crate) mod flow;
mod plan;
mod rng;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

pub use deadlines::Deadlines;
pub use plan::{Direction, EveryNth, Toxic, ToxicKind, ToxicPlan};

use flow::Flow;
use rng::Rng;

/// The toxics of one connection: its plans and a flow per direction.
#[derive(Debug)]
pub struct Toxics {
    plans: Vec<Arc<ToxicPlan>>,
    pub(crate) up: Flow,
    pub(crate) down: Flow,
    /// When a reset_peer toxic resets the connection.
    reset_at: Option<(Instant, usize)>,
    /// Bytes read from the socket, waiting for their release time.
    pub(crate) held: VecDeque<u8>,
    /// The socket has returned EOF (the protocol sees it when it passes).
    pub(crate) socket_eof: bool,
    /// A toxic closed the connection: the protocol's next read is EOF.
    pub(crate) local_eof: bool,
    /// The deadline last handed to the scheduler.
    armed: Option<Instant>,
}

impl Toxics {
    /// The toxics `plans` give a new connection (each toxic kept or not by
    /// its toxicity roll). `None` when none applies.
    pub fn for_connection(plans: &[Arc<ToxicPlan>], now: Instant) -> Option<Box<Toxics>> {
        let mut kept = Vec::new();
        let mut up = Vec::new();
        let mut down = Vec::new();
        let mut reset_at = None;
        let mut seed = 0u64;
        for plan in plans.iter().filter(|p| p.has_toxics() && !p.is_removed()) {
            let index = kept.len();
            let plan_seed = plan.next_connection_seed();
            seed = seed.rotate_left(17) ^ plan_seed;
            let mut roll = Rng::new(plan_seed);
            for toxic in &plan.toxics {
                if roll.unit() >= toxic.toxicity {
                    continue;
                }
                match (&toxic.kind, toxic.direction) {
                    (ToxicKind::ResetPeer { after }, _) => {
                        let at = now + *after;
                        if reset_at.is_none_or(|(t, _)| at < t) {
                            reset_at = Some((at, index));
                        }
                    }
                    (kind, Direction::Upstream) => up.push((index, kind.clone())),
                    (kind, Direction::Downstream) => down.push((index, kind.clone())),
                }
            }
            kept.push(Arc::clone(plan));
        }
        if up.is_empty() && down.is_empty() && reset_at.is_none() {
            return None;
        }
        Some(Box::new(Toxics {
            plans: kept,
            up: Flow::new(up, seed, now),
            down: Flow::new(down, seed.rotate_left(32), now),
            reset_at,
            held: VecDeque::new(),
            socket_eof: false,
            local_eof: false,
            armed: None,
        }))
    }

    /// The plans this connection's toxics come from.
    pub(crate) fn plans(&self) -> &[Arc<ToxicPlan>] {
        &self.plans
    }

    /// Replaces `old` (this connection's previous toxics): what it held
    /// passes first, at once, and its state carries over.
    pub(crate) fn take_over(&mut self, old: Toxics, now: Instant) {
        self.up.prepend_due(old.up.held(), now);
        self.down.prepend_due(old.down.held(), now);
        let mut held = old.held;
        held.extend(self.held.drain(..));
        self.held = held;
        self.socket_eof = old.socket_eof;
        self.local_eof = old.local_eof;
    }

    /// Takes the toxics of removed plans off; true if none is left.
    pub(crate) fn prune(&mut self, now: Instant) -> bool {
        if !self.plans.iter().any(|p| p.is_removed()) {
            return false;
        }
        let removed: Vec<bool> = self.plans.iter().map(|p| p.is_removed()).collect();
        let is_removed = |i: usize| removed.get(i).copied().unwrap_or(false);
        self.up.remove_plans(&is_removed, now);
        self.down.remove_plans(&is_removed, now);
        if self.reset_at.is_some_and(|(_, plan)| is_removed(plan)) {
            self.reset_at = None;
        }
        self.armed = None;
        self.up.is_empty() && self.down.is_empty() && self.reset_at.is_none()
    }

    /// Whether the reset is due.
    pub(crate) fn reset_due(&self, now: Instant) -> bool {
        self.reset_at.is_some_and(|(at, _)| at <= now)
    }

    /// The earliest moment a toxic of this connection acts.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        [
            self.up.deadline(),
            self.down.deadline(),
            self.reset_at.map(|(at, _)| at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The deadline, when it differs from the one last handed out (the
    /// scheduler keeps one heap entry per arming).
    /// Past deadlines are not handed out: what is due is read or written
    /// at the next readiness report (or at `resume_reading`) anyway.
    pub(crate) fn rearm(&mut self, now: Instant) -> Option<Instant> {
        let d = self.deadline().filter(|d| *d > now);
        if d.is_some() && d != self.armed {
            self.armed = d;
            return d;
        }
        None
    }

    /// The deadline handed out has fired: the next one must be handed out
    /// even if it is the same instant (it was not reached after all).
    pub(crate) fn disarm(&mut self) {
        self.armed = None;
    }
}

/// Bytes held upstream beyond which the actor stops reading its socket,
/// so that a slow toxic pushes back on the peer rather than on memory.
pub(crate) const UPSTREAM_HOLD_LIMIT: usize = 1 << 20;
