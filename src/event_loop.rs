//! The loop core shared by RLoop and TokioLoop: the ready queue, the timer
//! heap and `run_forever`. Scheduling, tasks, I/O watchers, the exception
//! handler and debug live in sibling files as more `#[pymethods]` blocks.

use std::collections::VecDeque;

// The loop's maps are keyed by its own ids and fds, never by input a peer
// controls: a fast hash, not a DoS-resistant one.
use rustc_hash::FxHashMap as HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::busy_poll::BusyPoll;
use crate::clock;
use crate::errors::os_error;
use crate::handles::Handle;
use crate::py_imports;
use crate::queued;
use crate::reactor::{ConnId, ListenerId, Reactor, Ready, Wake};
use crate::server_io::Listening;
use crate::signal_wakeup::WAKEUP_UNTRIED;
use crate::timers::TimerHeap;
use crate::transport::SocketTransport;

/// The schedulers this build has (`backend=` of the constructor).
pub const BACKENDS: &[&str] = &["mio", "tokio"];

/// asyncio caps one wait at a day, so a clock jump can't freeze the loop.
const MAX_WAIT: f64 = 24.0 * 3600.0;

/// A unit of work in the ready queue.
pub enum Item {
    Call(Py<Handle>),
    /// A connection actor is readable and/or writable.
    Conn {
        id: ConnId,
        readable: bool,
        writable: bool,
    },
    /// A listener may have connections to accept.
    Accept(ListenerId),
}

/// The loop core: callbacks, timers, I/O polling, tasks and the exception
/// handler. rloop.RLoop and rloop.TokioLoop are this class plus the rest of
/// asyncio's event loop API, in Python.
#[pyclass(subclass, frozen, module = "rloop._rloop", name = "BaseEventLoop")]
pub struct EventLoop {
    pub(crate) ready: Mutex<VecDeque<Item>>,
    pub(crate) timers: Mutex<TimerHeap>,
    reactor: Mutex<Option<Box<dyn Reactor>>>,
    waker: Mutex<Option<Arc<dyn Wake>>>,
    readiness: Mutex<Vec<Ready>>,
    pub(crate) transports: Mutex<HashMap<ConnId, Py<SocketTransport>>>,
    /// fds (the actor's and the Python socket's) of live transports.
    pub(crate) transport_fds: Mutex<HashMap<RawFd, ConnId>>,
    pub(crate) listeners: Mutex<HashMap<ListenerId, Listening>>,
    /// Fault plans of the loop and its servers (faults.rs).
    pub(crate) faults: crate::fault_plans::SharedFaultTargets,
    pub(crate) readers: Mutex<HashMap<RawFd, Py<Handle>>>,
    pub(crate) writers: Mutex<HashMap<RawFd, Py<Handle>>>,
    stopping: AtomicBool,
    /// Set while the loop may block in `turn`: only then must
    /// call_soon_threadsafe pay for a wake-up.
    polling: AtomicBool,
    /// Whether a busy iteration polls (see busy_poll.rs).
    busy_poll: Mutex<BusyPoll>,
    closed: AtomicBool,
    running: AtomicBool,
    pub(crate) thread_id: AtomicU64,
    pub(crate) debug: AtomicBool,
    pub(crate) slow_callback_duration: Mutex<f64>,
    pub(crate) exception_handler: Mutex<Option<Py<PyAny>>>,
    pub(crate) task_factory: Mutex<Option<Py<PyAny>>>,
    pub(crate) current_handle: Mutex<Option<Py<Handle>>>,
    pub(crate) saved_origin_depth: Mutex<Option<Py<PyAny>>>,
    /// The loop's signal wakeup fd in this run (signal_wakeup.rs):
    /// WAKEUP_UNTRIED, WAKEUP_OFF or the fd.
    pub(crate) signal_wakeup: AtomicI32,
    /// The wakeup fd add_signal_handler set (-1: none).
    pub(crate) handler_wakeup_fd: AtomicI32,
    /// The thread (and process) where Python refused the loop's wakeup fd.
    pub(crate) wakeup_refused: Mutex<Option<(u64, u32)>>,
    clock_resolution: f64,
}

pub fn current_thread_id() -> u64 {
    // SAFETY: pthread_self has no preconditions. It is what
    // threading.get_ident() returns on Linux.
    unsafe { libc::pthread_self() as u64 }
}

fn closed_error() -> PyErr {
    PyRuntimeError::new_err("Event loop is closed")
}

impl EventLoop {
    pub fn with_reactor(reactor: Box<dyn Reactor>) -> Self {
        let waker = reactor.waker();
        EventLoop {
            ready: Mutex::new(VecDeque::with_capacity(1024)),
            timers: Mutex::new(TimerHeap::new()),
            reactor: Mutex::new(Some(reactor)),
            waker: Mutex::new(Some(waker)),
            readiness: Mutex::new(Vec::with_capacity(1024)),
            transports: Mutex::new(HashMap::default()),
            transport_fds: Mutex::new(HashMap::default()),
            listeners: Mutex::new(HashMap::default()),
            faults: Mutex::new(crate::fault_plans::FaultTargets::default()),
            readers: Mutex::new(HashMap::default()),
            writers: Mutex::new(HashMap::default()),
            stopping: AtomicBool::new(false),
            polling: AtomicBool::new(false),
            busy_poll: Mutex::new(BusyPoll::default()),
            closed: AtomicBool::new(false),
            running: AtomicBool::new(false),
            thread_id: AtomicU64::new(0),
            debug: AtomicBool::new(false),
            slow_callback_duration: Mutex::new(0.1),
            exception_handler: Mutex::new(None),
            task_factory: Mutex::new(None),
            current_handle: Mutex::new(None),
            saved_origin_depth: Mutex::new(None),
            signal_wakeup: AtomicI32::new(WAKEUP_UNTRIED),
            handler_wakeup_fd: AtomicI32::new(-1),
            wakeup_refused: Mutex::new(None),
            clock_resolution: clock::resolution(),
        }
    }

    pub fn check_closed(&self) -> PyResult<()> {
        if self.closed.load(Ordering::Relaxed) {
            Err(closed_error())
        } else {
            Ok(())
        }
    }

    pub fn is_debug(&self) -> bool {
        self.debug.load(Ordering::Relaxed)
    }

    /// Wakes the loop if it may be blocked waiting. Called after queueing
    /// work; `run_once` raises `polling` before it checks the queue, so
    /// either it sees the work or we see the flag. The first caller takes
    /// the flag: one wake-up (a system call) is enough for a burst of
    /// callbacks from other threads, which the woken loop runs together.
    pub fn wake_if_polling(&self) {
        if self.polling.swap(false, Ordering::SeqCst) {
            self.wake();
        }
    }

    pub fn wake(&self) {
        let waker = self.waker.lock().clone();
        if let Some(w) = waker {
            // A failed wake means the eventfd is full: the loop is awake anyway.
            let _ = w.wake();
        }
    }

    /// The reactor, for a Python method on the loop thread. Another thread
    /// may hold it while blocked in poll: wake it and wait without the GIL.
    pub fn reactor<'a>(
        &'a self,
        py: Python<'_>,
    ) -> PyResult<MutexGuard<'a, Option<Box<dyn Reactor>>>> {
        let guard = match self.reactor.try_lock() {
            Some(g) => g,
            None => {
                self.wake();
                py.detach(|| self.reactor.lock())
            }
        };
        if guard.is_none() {
            return Err(closed_error());
        }
        Ok(guard)
    }

    pub fn push_ready(&self, item: Item) {
        self.ready.lock().push_back(item);
    }

    fn check_not_running(&self, py: Python<'_>) -> PyResult<()> {
        if self.running.load(Ordering::Relaxed) {
            return Err(PyRuntimeError::new_err(
                "This event loop is already running",
            ));
        }
        if !py_imports::get_running_loop(py)?.call0()?.is_none() {
            return Err(PyRuntimeError::new_err(
                "Cannot run the event loop while another loop is running",
            ));
        }
        Ok(())
    }

    /// How long the next poll may block.
    fn poll_timeout(&self, py: Python<'_>) -> Option<Duration> {
        // Compact first, even on a busy loop: dead timers keep their
        // callbacks and contexts alive until they leave the heap.
        let (next, dead) = {
            let mut timers = self.timers.lock();
            timers.compact_if_mostly_cancelled(py);
            let next = timers.next_when(py);
            (next, timers.take_dead())
        };
        drop(dead);
        if self.stopping.load(Ordering::Relaxed) || !self.ready.lock().is_empty() {
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
    fn run_once(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        this.polling.store(true, Ordering::SeqCst);
        let timeout = this.poll_timeout(py);
        if timeout == Some(Duration::ZERO) {
            this.polling.store(false, Ordering::SeqCst);
        }

        let busy = timeout == Some(Duration::ZERO);
        if !busy
            && this.signal_wakeup.load(Ordering::Relaxed) == WAKEUP_UNTRIED
            && this.running.load(Ordering::Relaxed)
        {
            // The first poll of this run_forever that may block: a signal
            // taken by any thread must end it (signal_wakeup.rs).
            this.install_signal_wakeup(py)?;
        }
        let mut readiness = std::mem::take(&mut *this.readiness.lock());
        readiness.clear();
        let polled = if this.busy_poll.lock().should_poll(busy) {
            let mut reactor = this.reactor(py)?;
            let polled = match reactor.as_mut() {
                // A zero timeout never blocks: keep the GIL.
                Some(r) if busy => r.turn(timeout, &mut readiness),
                Some(r) => py.detach(|| r.turn(timeout, &mut readiness)),
                None => return Err(closed_error()),
            };
            this.busy_poll.lock().polled(busy, !readiness.is_empty());
            polled
        } else {
            Ok(())
        };
        this.polling.store(false, Ordering::SeqCst);
        if let Err(e) = polled {
            *this.readiness.lock() = readiness;
            if e.kind() == std::io::ErrorKind::Interrupted {
                // A signal arrived: run Python's handlers (KeyboardInterrupt
                // surfaces here, as it would from select()).
                py.check_signals()?;
                return Ok(());
            }
            return Err(os_error(e));
        }
        this.queue_io(py, &readiness);
        *this.readiness.lock() = readiness;
        this.queue_due_timers(py);
        if !busy {
            // The wait may have ended for a signal (signal_wakeup.rs): its
            // handler runs now, outside any callback, so an exception from
            // it leaves run_forever. What the poll found stays queued.
            py.check_signals()?;
        }

        let ntodo = this.ready.lock().len();
        for _ in 0..ntodo {
            let item = match this.ready.lock().pop_front() {
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
                    let transport = this.transports.lock().get(&id).map(|t| t.bind(py).clone());
                    if let Some(t) = transport {
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
                } => self.push_ready(Item::Conn {
                    id,
                    readable,
                    writable,
                }),
                Ready::Listener { id } => self.push_ready(Item::Accept(id)),
            }
        }
    }

    fn queue_fd_side(&self, py: Python<'_>, fd: RawFd, side: &Mutex<HashMap<RawFd, Py<Handle>>>) {
        let handle = side.lock().get(&fd).map(|h| h.clone_ref(py));
        if let Some(h) = handle {
            if !h.get().is_cancelled() {
                self.push_ready(Item::Call(h));
            }
        }
    }

    fn queue_due_timers(&self, py: Python<'_>) {
        let end = clock::monotonic() + self.clock_resolution;
        loop {
            let (due, dead) = {
                let mut timers = self.timers.lock();
                let due = timers.pop_due(py, end);
                (due, timers.take_dead())
            };
            drop(dead);
            match due {
                Some(h) => self.push_ready(Item::Call(h)),
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
        *self.current_handle.lock() = Some(handle.clone_ref(py));
        let t0 = clock::monotonic();
        let result = handle.get().run(py);
        let dt = clock::monotonic() - t0;
        let previous = self.current_handle.lock().take();
        drop(previous);
        if dt >= *self.slow_callback_duration.lock() {
            let described = py_imports::format_handle(py)?.call1((handle.bind(py),))?;
            py_imports::asyncio_logger(py)?
                .call_method1("warning", ("Executing %s took %.3f seconds", described, dt))?;
        }
        result
    }

    pub(crate) fn set_origin_tracking(&self, py: Python<'_>, enabled: bool) -> PyResult<()> {
        let sys = py_imports::sys(py)?;
        if enabled {
            let mut saved = self.saved_origin_depth.lock();
            if saved.is_none() {
                *saved = Some(
                    sys.call_method0("get_coroutine_origin_tracking_depth")?
                        .unbind(),
                );
                sys.call_method1("set_coroutine_origin_tracking_depth", (10,))?;
            }
        } else {
            let saved = self.saved_origin_depth.lock().take();
            if let Some(depth) = saved {
                sys.call_method1("set_coroutine_origin_tracking_depth", (depth,))?;
            }
        }
        Ok(())
    }

    pub fn closed_flag(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    pub fn is_running_flag(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }
}

/// The queued handles back in the collector's sight, before the loop lets
/// go of its queue (src/queued.rs).
fn track_ready(py: Python<'_>, ready: &VecDeque<Item>) {
    for item in ready {
        if let Item::Call(handle) = item {
            queued::track_handle(handle.bind(py));
        }
    }
}

impl Drop for EventLoop {
    /// A loop dropped with callbacks or timers still queued (never closed): they go
    /// back into the collector's sight before it lets go of them
    /// (src/queued.rs). Runs in the object's deallocation, with the GIL.
    fn drop(&mut self) {
        let (ready, timers) = (self.ready.get_mut(), self.timers.get_mut());
        Python::attach(|py| {
            track_ready(py, ready);
            // The timers, tracked again by clear().
            drop(timers.clear(py));
        });
    }
}

#[pymethods]
impl EventLoop {
    /// `backend` picks the connection scheduler: "mio" (RLoop) or "tokio"
    /// (TokioLoop). Extra arguments are ignored, so Python subclasses may
    /// take their own.
    #[new]
    #[pyo3(signature = (*_args, backend=None, **_kwargs))]
    fn py_new(
        _args: &Bound<'_, pyo3::types::PyTuple>,
        backend: Option<&str>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let reactor: Box<dyn Reactor> = match backend.unwrap_or("mio") {
            "mio" => Box::new(actors::MioScheduler::new().map_err(os_error)?),
            "tokio" => Box::new(actors::TokioScheduler::new().map_err(os_error)?),
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown backend {other:?}: expected one of {BACKENDS:?}"
                )))
            }
        };
        Ok(EventLoop::with_reactor(reactor))
    }

    /// Return the loop's current time, in seconds, on a monotonic clock
    /// (the clock of call_at() and TimerHandle.when()).
    fn time(&self) -> f64 {
        clock::monotonic()
    }

    /// Return True if the loop is running (in run_forever() or
    /// run_until_complete()).
    fn is_running(&self) -> bool {
        self.is_running_flag()
    }

    /// Return True if the loop was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Stop the loop: run_forever() returns once the callbacks already
    /// scheduled have run. If the loop is not running, the next
    /// run_forever() runs one iteration and returns.
    fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Run the loop until stop() is called.
    fn run_forever(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        this.check_closed()?;
        this.check_not_running(py)?;

        let sys = py_imports::sys(py)?;
        let old_hooks = sys.call_method0(intern!(py, "get_asyncgen_hooks"))?;
        if let (Ok(first), Ok(fin)) = (
            slf.getattr(intern!(py, "_asyncgen_firstiter_hook")),
            slf.getattr(intern!(py, "_asyncgen_finalizer_hook")),
        ) {
            sys.call_method1(intern!(py, "set_asyncgen_hooks"), (first, fin))?;
        }
        this.thread_id.store(current_thread_id(), Ordering::Relaxed);
        this.set_origin_tracking(py, this.is_debug())?;
        py_imports::set_running_loop(py)?.call1((slf,))?;
        this.running.store(true, Ordering::Relaxed);

        let result = loop {
            if let Err(e) = Self::run_once(slf) {
                break Err(e);
            }
            if this.stopping.load(Ordering::Relaxed) {
                break Ok(());
            }
        };

        this.stopping.store(false, Ordering::Relaxed);
        this.running.store(false, Ordering::Relaxed);
        this.thread_id.store(0, Ordering::Relaxed);
        let restored = this.restore_signal_wakeup(py);
        let cleanup = (|| -> PyResult<()> {
            py_imports::set_running_loop(py)?.call1((py.None(),))?;
            this.set_origin_tracking(py, false)?;
            sys.call_method1(
                intern!(py, "set_asyncgen_hooks"),
                old_hooks.cast::<pyo3::types::PyTuple>()?,
            )?;
            Ok(())
        })();
        result.and(restored).and(cleanup)
    }

    /// Close the loop: pending callbacks are dropped, transports closed.
    /// The loop must not be running; closing it again does nothing.
    ///
    /// Drops every pending callback and timer, and the reactor with its
    /// file descriptors.
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        if this.is_running_flag() {
            return Err(PyRuntimeError::new_err("Cannot close a running event loop"));
        }
        if this.closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        if this.is_debug() {
            py_imports::asyncio_logger(py)?.call_method1("debug", ("Close %r", slf))?;
        }
        Self::close_transports(slf)?;
        this.closed.store(true, Ordering::Relaxed);
        // Take everything out first and drop it after the locks are released:
        // a finalizer run by a drop may call back into the loop.
        let ready = std::mem::take(&mut *this.ready.lock());
        track_ready(py, &ready);
        let timers = this.timers.lock().clear(py);
        let readers = std::mem::take(&mut *this.readers.lock());
        let writers = std::mem::take(&mut *this.writers.lock());
        let listeners = std::mem::take(&mut *this.listeners.lock());
        drop(listeners);
        // Fault plans hold their servers: a closed loop lets go of both.
        let faults = std::mem::take(&mut *this.faults.lock());
        drop(faults);
        let reactor = this.reactor.lock().take();
        let waker = this.waker.lock().take();
        drop((ready, timers, readers, writers));
        drop((reactor, waker));
        Ok(())
    }

    #[getter(_closed)]
    fn closed_attr(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    #[getter(_stopping)]
    fn stopping_attr(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    fn _run_once(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::run_once(slf)
    }
}
