//! One direction of a poisoned connection: when each admitted byte may
//! pass, and where the direction ends (closed, failed, panicked).
//!
//! Bytes are admitted in the order the socket (upstream) or the protocol
//! (downstream) produced them, and leave in that order: each toxic can
//! only push a byte's release time later, never before the byte ahead of
//! it. A [`Flow`] keeps only lengths and times; the bytes themselves wait
//! in the connection (its write queue downstream, a held buffer upstream).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::plan::ToxicKind;
use super::rng::Rng;

/// How a direction ends when the bytes ahead of the end have passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The direction (and, as a proxy would, the connection) closes: EOF.
    Close,
    /// The socket call fails with this errno.
    Error(i32),
    /// The actor panics.
    Panic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    Data(usize),
    End(End),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Piece {
    pub(crate) mark: Mark,
    pub(crate) due: Instant,
    /// The plan whose toxic placed an `End` (removing the plan lifts it).
    plan: usize,
}

/// Bandwidth is released in pieces of at most this much time's worth, so
/// a big chunk trickles out rather than leaving in one burst.
const BANDWIDTH_STEP: Duration = Duration::from_millis(20);

/// The state of one direction; see the module docs.
#[derive(Debug)]
pub(crate) struct Flow {
    /// The direction's toxics, each with the index of its plan.
    toxics: Vec<(usize, ToxicKind)>,
    rng: Rng,
    last_due: Instant,
    bandwidth_free: Instant,
    admitted: u64,
    pieces: VecDeque<Piece>,
    /// An `End` is queued: nothing more is admitted.
    cut: bool,
    /// A timeout toxic's close time.
    timeout_at: Option<(Instant, usize)>,
    /// When this direction's EOF may pass (set once it is asked for).
    eof_at: Option<Instant>,
}

impl Flow {
    pub(crate) fn new(toxics: Vec<(usize, ToxicKind)>, seed: u64, now: Instant) -> Self {
        let mut flow = Flow {
            toxics,
            rng: Rng::new(seed),
            last_due: now,
            bandwidth_free: now,
            admitted: 0,
            pieces: VecDeque::new(),
            cut: false,
            timeout_at: None,
            eof_at: None,
        };
        flow.start(now);
        flow
    }

    /// Timers that run from the moment the toxics are installed, and ends
    /// due after zero bytes.
    fn start(&mut self, now: Instant) {
        for (plan, kind) in &self.toxics {
            if let ToxicKind::Timeout { after } = kind {
                if !after.is_zero() {
                    self.timeout_at = Some((now + *after, *plan));
                }
            }
        }
        if let Some((plan, end)) = self.threshold_end(0) {
            self.push_end(end, plan, now);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.toxics.is_empty()
    }

    /// A timeout toxic is on: data is dropped.
    fn blocked(&self) -> bool {
        self.toxics
            .iter()
            .any(|(_, k)| matches!(k, ToxicKind::Timeout { .. }))
    }

    /// The nearest byte-count end at or below `admitted`: (plan, end, at).
    fn threshold_end(&self, admitted: u64) -> Option<(usize, End)> {
        self.thresholds()
            .filter(|(_, _, at)| *at <= admitted)
            .min_by_key(|(_, _, at)| *at)
            .map(|(plan, end, _)| (plan, end))
    }

    fn thresholds(&self) -> impl Iterator<Item = (usize, End, u64)> + '_ {
        self.toxics.iter().filter_map(|(plan, kind)| match kind {
            ToxicKind::LimitData { bytes } => Some((*plan, End::Close, *bytes)),
            ToxicKind::Error { errno, after_bytes } => {
                Some((*plan, End::Error(*errno), *after_bytes))
            }
            ToxicKind::Panic { after_bytes } => Some((*plan, End::Panic, *after_bytes)),
            _ => None,
        })
    }

    fn push_end(&mut self, end: End, plan: usize, now: Instant) {
        let due = self.last_due.max(now);
        self.pieces.push_back(Piece {
            mark: Mark::End(end),
            due,
            plan,
        });
        self.cut = true;
    }

    fn latency(&mut self) -> Duration {
        let mut total = Duration::ZERO;
        for (_, kind) in &self.toxics {
            if let ToxicKind::Latency { delay, jitter } = kind {
                let spread = jitter.as_micros().min(u64::MAX as u128) as u64;
                let shift = self.rng.around(spread);
                let d = delay.as_micros() as i64 + shift;
                total += Duration::from_micros(d.max(0) as u64);
            }
        }
        total
    }

    fn slicer(&self) -> Option<(usize, usize, Duration)> {
        self.toxics.iter().find_map(|(_, k)| match k {
            ToxicKind::Slicer {
                average,
                variation,
                delay,
            } => Some((*average, *variation, *delay)),
            _ => None,
        })
    }

    fn bandwidth(&self) -> Option<u64> {
        self.toxics
            .iter()
            .filter_map(|(_, k)| match k {
                ToxicKind::Bandwidth { bytes_per_sec } => Some((*bytes_per_sec).max(1)),
                _ => None,
            })
            .min()
    }

    fn slow_close(&self) -> Duration {
        self.toxics
            .iter()
            .filter_map(|(_, k)| match k {
                ToxicKind::SlowClose { delay } => Some(*delay),
                _ => None,
            })
            .sum()
    }

    /// Admits `len` bytes produced at `now`; returns how many of them may
    /// pass (the leading part; the rest is dropped by a cut or a timeout).
    pub(crate) fn admit(&mut self, len: usize, now: Instant) -> usize {
        if self.cut || self.blocked() || len == 0 {
            return 0;
        }
        let mut take = len as u64;
        let mut end = None;
        if let Some((plan, kind, at)) = self
            .thresholds()
            .filter(|(_, _, at)| *at < self.admitted + take)
            .min_by_key(|(_, _, at)| *at)
        {
            take = at.saturating_sub(self.admitted);
            end = Some((plan, kind));
        } else if let Some((plan, kind)) = self
            .thresholds()
            .find(|(_, _, at)| *at == self.admitted + take)
            .map(|(p, k, _)| (p, k))
        {
            end = Some((plan, kind));
        }
        self.schedule(take as usize, now);
        self.admitted += take;
        if let Some((plan, kind)) = end {
            self.push_end(kind, plan, now);
        }
        take as usize
    }

    fn schedule(&mut self, len: usize, now: Instant) {
        if len == 0 {
            return;
        }
        let mut base = (now + self.latency()).max(self.last_due);
        let slicer = self.slicer();
        let rate = self.bandwidth();
        let mut left = len;
        while left > 0 {
            let slice = match slicer {
                Some((average, variation, _)) => {
                    let v = self.rng.around(variation as u64);
                    ((average as i64 + v).max(1) as usize).min(left)
                }
                None => left,
            };
            let mut rest = slice;
            while rest > 0 {
                let (part, due) = match rate {
                    Some(rate) => {
                        let step = ((rate as u128 * BANDWIDTH_STEP.as_micros()) / 1_000_000).max(1)
                            as usize;
                        let part = rest.min(step);
                        let due = base.max(self.bandwidth_free);
                        let cost = Duration::from_micros(
                            ((part as u128 * 1_000_000) / rate as u128) as u64,
                        );
                        self.bandwidth_free = due + cost;
                        (part, due)
                    }
                    None => (rest, base),
                };
                self.pieces.push_back(Piece {
                    mark: Mark::Data(part),
                    due,
                    plan: usize::MAX,
                });
                self.last_due = due;
                base = due;
                rest -= part;
            }
            left -= slice;
            if let Some((_, _, delay)) = slicer {
                if left > 0 {
                    base += delay;
                }
            }
        }
    }

    /// When the EOF of this direction may pass: after every admitted byte,
    /// the latency, and any slow close. Fixed at the first call.
    pub(crate) fn eof_due(&mut self, now: Instant) -> Instant {
        if let Some(at) = self.eof_at {
            return at;
        }
        let at = (now + self.latency()).max(self.last_due) + self.slow_close();
        self.eof_at = Some(at);
        at
    }

    /// The first piece, if it may pass at `now`.
    pub(crate) fn front_due(&self, now: Instant) -> Option<Mark> {
        self.pieces.front().filter(|p| p.due <= now).map(|p| p.mark)
    }

    /// Bytes at the front that may pass at `now` (up to the first end).
    pub(crate) fn due_bytes(&self, now: Instant) -> usize {
        let mut n = 0;
        for p in &self.pieces {
            match p.mark {
                Mark::Data(len) if p.due <= now => n += len,
                _ => break,
            }
        }
        n
    }

    /// Bytes admitted and not yet passed.
    pub(crate) fn held(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p.mark {
                Mark::Data(len) => len,
                Mark::End(_) => 0,
            })
            .sum()
    }

    /// `n` leading bytes have passed.
    pub(crate) fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.pieces.front_mut() else {
                return;
            };
            match &mut front.mark {
                Mark::Data(len) if *len > n => {
                    *len -= n;
                    return;
                }
                Mark::Data(len) => {
                    n -= *len;
                    self.pieces.pop_front();
                }
                Mark::End(_) => return,
            }
        }
    }

    /// The front data piece's length, if it may pass (one slice at a time).
    #[cfg(test)]
    pub(crate) fn front_slice(&self, now: Instant) -> Option<usize> {
        match self.front_due(now) {
            Some(Mark::Data(len)) => Some(len),
            _ => None,
        }
    }

    /// Removes the end at the front (it is being carried out).
    pub(crate) fn pop_end(&mut self) {
        if let Some(Piece {
            mark: Mark::End(_), ..
        }) = self.pieces.front()
        {
            self.pieces.pop_front();
        }
    }

    /// The timeout toxic's close, if it is due.
    pub(crate) fn timeout_due(&mut self, now: Instant) -> bool {
        match self.timeout_at {
            Some((at, _)) if at <= now => {
                self.timeout_at = None;
                true
            }
            _ => false,
        }
    }

    /// The earliest time something of this direction becomes due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        [
            self.pieces.front().map(|p| p.due),
            self.timeout_at.map(|(at, _)| at),
            self.eof_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// `n` bytes that were admitted elsewhere (by the toxics this flow
    /// replaces) go first, at once.
    pub(crate) fn prepend_due(&mut self, n: usize, now: Instant) {
        if n > 0 {
            self.pieces.push_front(Piece {
                mark: Mark::Data(n),
                due: now,
                plan: usize::MAX,
            });
        }
    }

    /// Takes the toxics of removed plans off: what they held passes now,
    /// the ends they placed are lifted.
    pub(crate) fn remove_plans(&mut self, removed: &dyn Fn(usize) -> bool, now: Instant) {
        self.toxics.retain(|(plan, _)| !removed(*plan));
        self.pieces
            .retain(|p| !matches!(p.mark, Mark::End(_)) || !removed(p.plan));
        if !self.pieces.iter().any(|p| matches!(p.mark, Mark::End(_))) {
            self.cut = false;
        }
        if self.timeout_at.is_some_and(|(_, plan)| removed(plan)) {
            self.timeout_at = None;
        }
        // What is left was timed by the removed toxics as much as by the
        // others: let it all go now rather than guess.
        for p in self.pieces.iter_mut() {
            p.due = p.due.min(now);
        }
        self.last_due = now;
        self.bandwidth_free = now;
        if self.eof_at.is_some() {
            self.eof_at = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn latency_delays_and_keeps_order() {
        let t0 = Instant::now();
        let mut f = Flow::new(
            vec![(
                0,
                ToxicKind::Latency {
                    delay: ms(50),
                    jitter: ms(0),
                },
            )],
            1,
            t0,
        );
        assert_eq!(f.admit(10, t0), 10);
        assert_eq!(f.due_bytes(t0), 0);
        assert_eq!(f.due_bytes(t0 + ms(50)), 10);
        assert_eq!(f.deadline(), Some(t0 + ms(50)));
    }

    #[test]
    fn limit_cuts_at_the_exact_byte() {
        let t0 = Instant::now();
        let mut f = Flow::new(vec![(0, ToxicKind::LimitData { bytes: 15 })], 1, t0);
        assert_eq!(f.admit(10, t0), 10);
        assert_eq!(f.admit(10, t0), 5);
        assert_eq!(f.admit(10, t0), 0);
        assert_eq!(f.due_bytes(t0), 15);
        f.consume(15);
        assert_eq!(f.front_due(t0), Some(Mark::End(End::Close)));
    }

    #[test]
    fn slicer_sizes_repeat_with_the_seed() {
        let t0 = Instant::now();
        let sizes = |seed| {
            let mut f = Flow::new(
                vec![(
                    0,
                    ToxicKind::Slicer {
                        average: 10,
                        variation: 4,
                        delay: Duration::ZERO,
                    },
                )],
                seed,
                t0,
            );
            f.admit(200, t0);
            let mut out = vec![];
            while let Some(n) = f.front_slice(t0) {
                out.push(n);
                f.consume(n);
            }
            out
        };
        let a = sizes(3);
        assert_eq!(a, sizes(3));
        assert_eq!(a.iter().sum::<usize>(), 200);
        assert!(a[..a.len() - 1].iter().all(|n| (6..=14).contains(n)));
    }

    #[test]
    fn bandwidth_spreads_bytes_over_time() {
        let t0 = Instant::now();
        let mut f = Flow::new(
            vec![(
                0,
                ToxicKind::Bandwidth {
                    bytes_per_sec: 1000,
                },
            )],
            1,
            t0,
        );
        f.admit(100, t0);
        // 20 bytes per 20 ms step.
        assert_eq!(f.due_bytes(t0), 20);
        assert_eq!(f.due_bytes(t0 + ms(80)), 100);
    }

    #[test]
    fn removal_releases_everything() {
        let t0 = Instant::now();
        let mut f = Flow::new(
            vec![
                (
                    0,
                    ToxicKind::Latency {
                        delay: ms(1000),
                        jitter: ms(0),
                    },
                ),
                (0, ToxicKind::LimitData { bytes: 5 }),
            ],
            1,
            t0,
        );
        f.admit(5, t0);
        f.remove_plans(&|p| p == 0, t0);
        assert!(f.is_empty());
        assert_eq!(f.due_bytes(t0), 5);
        assert_eq!(f.admit(3, t0), 3);
    }
}
