//! A fault plan as the user wrote it: toxics, each on one direction of a
//! connection, and the seed that makes their random parts repeat.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Which bytes a toxic acts on, seen from the local side (toxiproxy's
/// words): `Upstream` is what the local side receives, `Downstream` what
/// it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upstream,
    Downstream,
}

/// What one toxic does.
#[derive(Debug, Clone, PartialEq)]
pub enum ToxicKind {
    /// Every chunk is held `delay` ± up to `jitter`.
    Latency { delay: Duration, jitter: Duration },
    /// At most this many bytes per second pass.
    Bandwidth { bytes_per_sec: u64 },
    /// Chunks are cut into slices of `average` ± up to `variation` bytes,
    /// `delay` apart.
    Slicer {
        average: usize,
        variation: usize,
        delay: Duration,
    },
    /// After this many bytes the connection is closed (the rest dropped).
    LimitData { bytes: u64 },
    /// No data passes; after `after` (if not zero) the connection closes.
    Timeout { after: Duration },
    /// After `after`, the connection is reset (RST to the peer,
    /// ECONNRESET locally).
    ResetPeer { after: Duration },
    /// The close (EOF in this direction) is held back this long.
    SlowClose { delay: Duration },
    /// After this many bytes, the socket call fails with `errno`.
    Error { errno: i32, after_bytes: u64 },
    /// After this many bytes, the actor panics (the supervisor's test).
    Panic { after_bytes: u64 },
}

/// One toxic of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    pub kind: ToxicKind,
    pub direction: Direction,
    /// Chance in [0, 1] that the toxic applies to a given connection,
    /// rolled once per connection from the plan's seed.
    pub toxicity: f64,
}

/// Every `every`-th accept (or connect) fails with `errno`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EveryNth {
    pub errno: i32,
    pub every: u64,
}

/// A plan shared by every connection it applies to. Removing it takes its
/// toxics off those connections too (they pass what they hold at once).
#[derive(Debug)]
pub struct ToxicPlan {
    pub toxics: Vec<Toxic>,
    pub accept_error: Option<EveryNth>,
    seed: u64,
    /// Connections that received the plan so far: the ordinal mixed into
    /// each connection's seed, so the n-th connection of two runs of the
    /// same program sees the same random choices.
    connections: AtomicU64,
    accepts: AtomicU64,
    removed: AtomicBool,
}

impl ToxicPlan {
    pub fn new(seed: u64, toxics: Vec<Toxic>, accept_error: Option<EveryNth>) -> Self {
        ToxicPlan {
            toxics,
            accept_error,
            seed,
            connections: AtomicU64::new(0),
            accepts: AtomicU64::new(0),
            removed: AtomicBool::new(false),
        }
    }

    /// The seed of the next connection the plan is applied to.
    pub(crate) fn next_connection_seed(&self) -> u64 {
        let n = self.connections.fetch_add(1, Ordering::Relaxed);
        let mut rng = super::rng::Rng::new(self.seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407));
        rng.next_u64()
    }

    /// Counts one accepted connection; the errno it must fail with, if
    /// this one is an n-th.
    pub fn accept_fault(&self) -> Option<i32> {
        let rule = self.accept_error?;
        if self.is_removed() || rule.every == 0 {
            return None;
        }
        let n = self.accepts.fetch_add(1, Ordering::Relaxed) + 1;
        n.is_multiple_of(rule.every).then_some(rule.errno)
    }

    pub fn remove(&self) {
        self.removed.store(true, Ordering::Release);
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// Whether it acts on connections at all (not only on accepts).
    pub fn has_toxics(&self) -> bool {
        !self.toxics.is_empty()
    }
}
