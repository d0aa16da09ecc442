//! One turn of the loop (`run_once`), as asyncio's `_run_once`: work out
//! how long the poll may block (zero when callbacks wait, else until the
//! next timer), poll the reactor for I/O, queue what it reported and the
//! timers that are due, then run exactly the callbacks queued at that
//! point; what they schedule waits for the next turn.
//!
//! Two things asyncio doesn't do: a busy turn polls only now and then
//! (busy_poll.rs), and `polling` is raised only when the turn may block,
//! so that call_soon_threadsafe pays for a wake-up only then.

use std::os::fd::RawFd;

use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::prelude::*;

use crate::clock;
use crate::errors::os_error;
use crate::event_loop::{closed_error, EventLoop, Item, WAKEUP_UNTRIED};
use crate::handle_freelist;
use crate::handles::Handle;
use crate::py_imports;
use crate::queued;
use crate::reactor::Ready;
use crate::transport::SocketTransport;

/// An iteration between its two halves (see `run_once`).
pub(crate) struct Iteration {
    /// How long its poll may block (None: until woken).
    pub(crate) timeout: Option<Duration>,
    /// Callbacks are waiting: the poll must not block.
    pub(crate) busy: bool,
    /// It polls the reactor (busy_poll.rs).
    pub(crate) poll: bool,
    /// What the poll reported.
    pub(crate) readiness: Vec<Ready>,
}

/// asyncio caps one wait at a day, so a clock jump can't freeze the loop.
const MAX_WAIT: f64 = 24.0 * 3600.0;

impl EventLoop {
    /// How long the next poll may block.
    pub(crate) fn poll_timeout(&self, py: Python<'_>) -> Option<Duration> {
        // Compact first, even on a busy loop: dead timers keep their
        // callbacks and contexts alive until they leave the heap.
        let (next, dead) = {
            let mut timers = self.timers.borrow_mut(py);
            timers.compact_if_mostly_cancelled(py);
            let next = timers.next_when(py);
            (next, timers.take_dead())
        };
        drop(dead);
        if self.stopping.load(Ordering::Relaxed) || !self.ready.borrow_mut(py).is_empty() {
            return Some(Duration::ZERO);
        }
        let when = next?;
        let wait = (when - clock::monotonic()).clamp(0.0, MAX_WAIT);
        // A NaN deadline (call_at(nan)) is due now, as in asyncio.
        let wait = if wait.is_nan() { 0.0 } else { wait };
        Some(Duration::from_secs_f64(wait))
    }

    /// One iteration: wait for I/O or the next timer, queue what became
    /// ready, then run exactly the callbacks that were ready at that point.
    pub(crate) fn run_once(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut it = Self::begin_iteration(slf)?;
        let polled = if it.poll {
            let mut reactor = this.reactor(py)?;
            let Iteration {
                timeout,
                busy,
                readiness,
                ..
            } = &mut it;
            match reactor.as_mut() {
                // A zero timeout never blocks: keep the GIL.
                Some(r) if *busy => r.turn(*timeout, readiness),
                Some(r) => py.detach(|| r.turn(*timeout, readiness)),
                None => return Err(closed_error()),
            }
        } else {
            Ok(())
        };
        Self::finish_iteration(slf, it, polled)
    }

    /// An iteration's first half: how long its poll may block, and whether
    /// it polls at all.
    pub(crate) fn begin_iteration(slf: &Bound<'_, Self>) -> PyResult<Iteration> {
        let py = slf.py();
        let this = slf.get();
        let mut timeout = this.poll_timeout(py);
        let mut busy = timeout == Some(Duration::ZERO);
        if !busy {
            // Raised with the GIL held, once the queue was seen empty: from
            // here on, whatever lets go of the GIL (the signal wakeup's
            // setup, waiting for the reactor, the poll) is covered, as a
            // call_soon_threadsafe finds the flag (see wake_if_polling).
            this.polling.store(true, Ordering::Relaxed);
            handle_freelist::release(py);
        }
        if !busy
            && this.signal_wakeup.load(Ordering::Relaxed) == WAKEUP_UNTRIED
            && this.running.load(Ordering::Relaxed)
        {
            // The first poll of this run_forever that may block: a signal
            // taken by any thread must end it (signal_wakeup.rs).
            this.install_signal_wakeup(py)?;
            // That ran Python code (it ends by running the signal handlers
            // due): a callback one scheduled with call_soon, or a stop(),
            // must not wait for the timeout worked out before.
            if this.stopping.load(Ordering::Relaxed) || !this.ready.borrow_mut(py).is_empty() {
                this.polling.store(false, Ordering::Relaxed);
                timeout = Some(Duration::ZERO);
                busy = true;
            }
        }
        let mut readiness = std::mem::take(&mut *this.readiness.borrow_mut(py));
        readiness.clear();
        let poll = this.busy_poll.borrow_mut(py).should_poll(busy);
        Ok(Iteration {
            timeout,
            busy,
            poll,
            readiness,
        })
    }

    /// An iteration's second half, once its poll (if any) is over: queue
    /// what the poll found and the timers due, then run the callbacks.
    pub(crate) fn finish_iteration(
        slf: &Bound<'_, Self>,
        it: Iteration,
        polled: std::io::Result<()>,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let Iteration {
            busy,
            poll,
            readiness,
            ..
        } = it;
        if poll {
            this.busy_poll
                .borrow_mut(py)
                .polled(busy, !readiness.is_empty());
        }
        if !busy {
            this.polling.store(false, Ordering::Relaxed);
        }
        if let Err(e) = polled {
            *this.readiness.borrow_mut(py) = readiness;
            if e.kind() == std::io::ErrorKind::Interrupted {
                // A signal arrived: run Python's handlers (KeyboardInterrupt
                // surfaces here, as it would from select()).
                py.check_signals()?;
                return Ok(());
            }
            return Err(os_error(e));
        }
        this.queue_io(py, &readiness);
        *this.readiness.borrow_mut(py) = readiness;
        this.queue_due_timers(py);
        if !busy {
            // The wait may have ended for a signal (signal_wakeup.rs): its
            // handler runs now, outside any callback, so an exception from
            // it leaves run_forever. What the poll found stays queued.
            py.check_signals()?;
        }

        let ntodo = this.ready.borrow_mut(py).len();
        for _ in 0..ntodo {
            let item = match this.ready.borrow_mut(py).pop_front() {
                Some(item) => item,
                None => break,
            };
            match item {
                Item::Call(handle) => {
                    queued::track_handle(handle.bind(py));
                    Self::run_handle(slf, &handle)?
                }
                Item::Conn {
                    id,
                    readable,
                    writable,
                } => {
                    if let Some(t) = this.transport(py, id) {
                        SocketTransport::on_ready(&t, readable, writable)?;
                    }
                }
                Item::Accept(id) => Self::accept_connections(slf, id)?,
            }
        }
        Ok(())
    }

    fn queue_io(&self, py: Python<'_>, readiness: &[Ready]) {
        for r in readiness {
            match *r {
                Ready::Woken => {}
                Ready::Fd {
                    fd,
                    readable,
                    writable,
                } => {
                    if readable {
                        self.queue_fd_side(py, fd, &self.readers);
                    }
                    if writable {
                        self.queue_fd_side(py, fd, &self.writers);
                    }
                }
                Ready::Conn {
                    id,
                    readable,
                    writable,
                } => self.push_ready(
                    py,
                    Item::Conn {
                        id,
                        readable,
                        writable,
                    },
                ),
                Ready::Listener { id } => self.push_ready(py, Item::Accept(id)),
            }
        }
    }

    fn queue_fd_side(&self, py: Python<'_>, fd: RawFd, side: &Mutex<HashMap<RawFd, Py<Handle>>>) {
        let handle = side.lock().get(&fd).map(|h| h.clone_ref(py));
        if let Some(h) = handle {
            if !h.get().is_cancelled() {
                self.push_ready(py, Item::Call(h));
            }
        }
    }

    fn queue_due_timers(&self, py: Python<'_>) {
        if self.timers.borrow_mut(py).is_empty() {
            return; // no clock read for a loop without timers
        }
        let end = clock::monotonic() + self.clock_resolution;
        loop {
            let (due, dead) = {
                let mut timers = self.timers.borrow_mut(py);
                let due = timers.pop_due(py, end);
                (due, timers.take_dead())
            };
            drop(dead);
            match due {
                Some(h) => self.push_ready(py, Item::Call(h)),
                None => break,
            }
        }
    }

    fn run_handle(slf: &Bound<'_, Self>, handle: &Py<Handle>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let h = handle.get();
        if h.is_cancelled() {
            return Ok(());
        }
        let result = if this.is_debug() {
            this.run_timed(py, handle)
        } else {
            h.run(py)
        };
        match result {
            Ok(()) => Ok(()),
            Err(err) => Self::report_callback_error(slf, handle, err),
        }
    }

    /// Debug mode: remember the running handle and warn about slow ones.
    fn run_timed(&self, py: Python<'_>, handle: &Py<Handle>) -> PyResult<()> {
        let previous = self
            .current_handle
            .borrow_mut(py)
            .replace(handle.clone_ref(py));
        drop(previous);
        let t0 = clock::monotonic();
        let result = handle.get().run(py);
        let dt = clock::monotonic() - t0;
        let previous = self.current_handle.borrow_mut(py).take();
        drop(previous);
        if dt >= *self.slow_callback_duration.lock() {
            let described = py_imports::format_handle(py)?.call1((handle.bind(py),))?;
            py_imports::asyncio_logger(py)?
                .call_method1("warning", ("Executing %s took %.3f seconds", described, dt))?;
        }
        result
    }
}
