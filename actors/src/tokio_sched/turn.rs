//! One turn of the tokio scheduler, in three steps: `begin_turn` works out
//! how long the turn may wait, `poll_turn` is polled by tokio's
//! `block_on` until the turn is over, and `end_turn` files what it found.
//!
//! [`turn`](TokioScheduler::turn) runs the three in a `block_on` of its
//! own; a loop run inside a [`Driver`](super::Driver) calls them from the
//! one future its whole run is (driver.rs), which saves entering the
//! runtime each turn.

use std::io;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{poll_sources, TokioScheduler};
use crate::ready::Ready;

/// The turn in progress.
#[derive(Default)]
pub(super) struct Turning {
    /// How long it may wait (`None`: until woken).
    timeout: Option<Duration>,
    /// A turn that must not wait has let tokio poll its reactor once.
    yielded: bool,
    /// Where its reports begin in the caller's `out`.
    start: usize,
}

impl TokioScheduler {
    /// Waits up to `timeout` for readiness and appends it to `out`. A
    /// signal taken by this thread, or a byte on the signal pipe, ends the
    /// wait early (with nothing to report, maybe): the caller runs its
    /// signal handlers after a turn that could block.
    ///
    /// Inside a [`Driver`](super::Driver)'s `block_on` (this loop is run
    /// from a callback of another TokioLoop, or in a process forked from
    /// one) tokio cannot block on this runtime: the turn then runs on a
    /// thread of the scheduler's own (nested.rs).
    pub fn turn(&mut self, timeout: Option<Duration>, out: &mut Vec<Ready>) -> io::Result<()> {
        if super::Driver::is_driving() {
            return self.turn_nested(timeout, out);
        }
        self.turn_here(timeout, out)
    }

    pub(super) fn turn_here(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<Ready>,
    ) -> io::Result<()> {
        self.begin_turn(timeout, out)?;
        self.driver().block_on(|cx| self.poll_turn(cx));
        self.end_turn(out);
        Ok(())
    }

    /// Starts a turn that may wait up to `timeout` (less if work is known
    /// to be waiting); what is known ready already goes to `out`.
    pub fn begin_turn(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<Ready>,
    ) -> io::Result<()> {
        self.heap.turned();
        self.turn_no += 1;
        let start = out.len();
        self.recheck_fired_fds(timeout == Some(Duration::ZERO), out);
        // A trim that waits for tokio to release registrations must not
        // wait for the loop's next event.
        let busy = out.len() > start
            || self.heap.pending()
            || !self.hot.is_empty()
            || !self.hot_listeners.is_empty()
            || self.woken.has_any()
            || self.waker.woken.load(Ordering::SeqCst);
        let timeout = if busy {
            Some(Duration::ZERO)
        } else if !self.deadlines.is_empty() {
            self.deadlines.clamp(timeout, std::time::Instant::now())
        } else {
            timeout
        };
        if let Some(d) = timeout.filter(|d| !d.is_zero()) {
            self.timer.set(d)?;
        }
        self.turning = Turning {
            timeout,
            yielded: false,
            start,
        };
        Ok(())
    }

    /// Polled by tokio's `block_on` (inside the runtime): ready once the
    /// turn is over. A turn that may not wait first lets tokio poll its
    /// reactor once without blocking; one that may wait ends when a watch
    /// reports, another thread wakes it, a listener or watched fd is
    /// ready, a signal comes, or the timeout. Watches woken by one poll of
    /// the reactor are all polled together, so their reports come in one
    /// turn.
    pub fn poll_turn(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.turning.timeout == Some(Duration::ZERO) {
            if !self.turning.yielded {
                // Woken at once: tokio polls its reactor without blocking
                // and polls this again straight after.
                self.turning.yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.poll_all();
            return Poll::Ready(());
        }
        // Only the reactor's park (or another thread) lists anything, so
        // most first polls find the list empty: they only leave the waker.
        if self.woken.poll_any(cx).is_pending() {
            return Poll::Pending;
        }
        if self.poll_all() || self.woken.poll_any(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Polls the woken watches, then the woken sources, so what the
    /// reactor's last poll saw reports in this turn; true if that ends a
    /// blocking turn (a report, a signal, the timeout).
    fn poll_all(&mut self) -> bool {
        self.woken.poll_woken(
            &mut self.polling,
            &mut self.polling_fds,
            &mut self.collected,
        );
        let seen = poll_sources(
            &self.listeners,
            &self.fds,
            self.signal.as_ref(),
            &self.timer,
            &mut self.polling_fds,
            &mut self.polled,
        );
        seen.signalled || seen.timed_out || !self.polled.is_empty() || !self.collected.is_empty()
    }

    /// Ends the turn: files what it found in `out`.
    pub fn end_turn(&mut self, out: &mut Vec<Ready>) {
        self.woken.forget_waiter();
        if self.waker.woken.swap(false, Ordering::SeqCst) {
            out.push(Ready::Woken);
        }
        let start = self.turning.start;
        for r in self.polled.drain(..) {
            if let Ready::Fd {
                fd,
                readable,
                writable,
            } = r
            {
                // Reported already this turn (by the re-check above, or a
                // woken list holding it twice): one report, with both.
                if self.fired_fds.fired(fd, self.turn_no) {
                    let known = out[start..].iter_mut().find_map(|x| match x {
                        Ready::Fd {
                            fd: other,
                            readable,
                            writable,
                        } if *other == fd => Some((readable, writable)),
                        _ => None,
                    });
                    if let Some((r0, w0)) = known {
                        *r0 |= readable;
                        *w0 |= writable;
                        continue;
                    }
                }
            }
            out.push(r);
        }
        let mut reports = std::mem::take(&mut self.collected);
        self.collect_reports(&mut reports, out);
        self.collected = reports;
        self.report_hot(out);
        if !self.deadlines.is_empty() {
            self.report_due(out);
        }
    }
}
