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

use parking_lot::{Mutex, MutexGuard};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::busy_poll::BusyPoll;
use crate::clock;
use crate::errors::os_error;
use crate::gil_cell::GilRefCell;
use crate::handles::Handle;
use crate::listening::Listening;
use crate::py_imports;
use crate::queued;
use crate::reactor::{ConnId, Driver, ListenerId, Reactor, Ready, Wake};
use crate::sock_files::SockFiles;
use crate::timers::TimerHeap;

/// The schedulers this build has (`backend=` of the constructor).
pub const BACKENDS: &[&str] = &["mio", "tokio"];

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
    // Touched only with the GIL held (gil_cell.rs); the others are
    // mutexes where a thread reaches them without it, or rarely.
    pub(crate) ready: GilRefCell<VecDeque<Item>>,
    pub(crate) timers: GilRefCell<TimerHeap>,
    pub(crate) reactor: Mutex<Option<Box<dyn Reactor>>>,
    waker: Mutex<Option<Arc<dyn Wake>>>,
    pub(crate) readiness: GilRefCell<Vec<Ready>>,
    /// Live transports by connection (each a `SocketTransport`: held as
    /// a plain object here, so that the loop's state does not depend on
    /// the transport module, which depends on it; `EventLoop::transport`
    /// in transport/mod.rs gives one back typed).
    pub(crate) transports: Mutex<HashMap<ConnId, Py<PyAny>>>,
    /// fds (the actor's and the Python socket's) of live transports.
    pub(crate) transport_fds: Mutex<HashMap<RawFd, ConnId>>,
    /// The Python socket's fd of a transport made from one (`sock=`), when
    /// it is not the actor's: its second key in `transport_fds`.
    pub(crate) transport_sock_fds: Mutex<HashMap<ConnId, RawFd>>,
    pub(crate) listeners: Mutex<HashMap<ListenerId, Listening>>,
    /// Fault plans of the loop and its servers (faults.rs).
    pub(crate) faults: crate::fault_plans::SharedFaultTargets,
    pub(crate) readers: Mutex<HashMap<RawFd, Py<Handle>>>,
    pub(crate) writers: Mutex<HashMap<RawFd, Py<Handle>>>,
    /// The socket that last waited on each fd (sock_files.rs).
    pub(crate) sock_files: SockFiles,
    pub(crate) stopping: AtomicBool,
    /// Set while the loop may block in `turn`: only then must
    /// call_soon_threadsafe pay for a wake-up.
    pub(crate) polling: AtomicBool,
    /// Whether a busy iteration polls (see busy_poll.rs).
    pub(crate) busy_poll: GilRefCell<BusyPoll>,
    closed: AtomicBool,
    pub(crate) running: AtomicBool,
    pub(crate) thread_id: AtomicU64,
    pub(crate) debug: AtomicBool,
    pub(crate) slow_callback_duration: Mutex<f64>,
    pub(crate) exception_handler: Mutex<Option<Py<PyAny>>>,
    pub(crate) task_factory: GilRefCell<Option<Py<PyAny>>>,
    pub(crate) current_handle: GilRefCell<Option<Py<Handle>>>,
    pub(crate) saved_origin_depth: Mutex<Option<Py<PyAny>>>,
    /// The loop's signal wakeup fd in this run (signal_wakeup.rs):
    /// WAKEUP_UNTRIED, WAKEUP_OFF or the fd.
    pub(crate) signal_wakeup: AtomicI32,
    /// The wakeup fd add_signal_handler set (-1: none).
    pub(crate) handler_wakeup_fd: AtomicI32,
    /// The thread (and process) where Python refused the loop's wakeup fd.
    pub(crate) wakeup_refused: Mutex<Option<(u64, u32)>>,
    pub(crate) clock_resolution: f64,
}

/// `signal_wakeup` of a loop not tried in this run yet (and the state
/// between runs): signal_wakeup.rs sets it up at the first poll that may
/// block.
pub const WAKEUP_UNTRIED: RawFd = -2;
/// `signal_wakeup` of a loop whose wakeup fd is not set in this run:
/// another's is, or the loop does not run on the main thread.
pub const WAKEUP_OFF: RawFd = -1;

pub fn current_thread_id() -> u64 {
    // SAFETY: pthread_self has no preconditions. It is what
    // threading.get_ident() returns on Linux.
    unsafe { libc::pthread_self() as u64 }
}

pub(crate) fn closed_error() -> PyErr {
    PyRuntimeError::new_err("Event loop is closed")
}

impl EventLoop {
    pub fn with_reactor(reactor: Box<dyn Reactor>) -> Self {
        let waker = reactor.waker();
        EventLoop {
            ready: GilRefCell::new(VecDeque::with_capacity(1024)),
            timers: GilRefCell::new(TimerHeap::new()),
            reactor: Mutex::new(Some(reactor)),
            waker: Mutex::new(Some(waker)),
            readiness: GilRefCell::new(Vec::with_capacity(1024)),
            transports: Mutex::new(HashMap::default()),
            transport_fds: Mutex::new(HashMap::default()),
            transport_sock_fds: Mutex::new(HashMap::default()),
            listeners: Mutex::new(HashMap::default()),
            faults: Mutex::new(crate::fault_plans::FaultTargets::default()),
            readers: Mutex::new(HashMap::default()),
            writers: Mutex::new(HashMap::default()),
            sock_files: SockFiles::default(),
            stopping: AtomicBool::new(false),
            polling: AtomicBool::new(false),
            busy_poll: GilRefCell::new(BusyPoll::default()),
            closed: AtomicBool::new(false),
            running: AtomicBool::new(false),
            thread_id: AtomicU64::new(0),
            debug: AtomicBool::new(false),
            slow_callback_duration: Mutex::new(0.1),
            exception_handler: Mutex::new(None),
            task_factory: GilRefCell::new(None),
            current_handle: GilRefCell::new(None),
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
    /// work, with the GIL held; `run_once` looks at the queue and raises
    /// `polling` with the GIL held, before anything lets go of it on the
    /// way to blocking: so either it saw the work or we see the flag. A
    /// busy iteration never blocks and leaves the flag down (two atomic
    /// writes per iteration saved). The first caller takes
    /// the flag: one wake-up (a system call) is enough for a burst of
    /// callbacks from other threads, which the woken loop runs together.
    ///
    /// Every access to the flag is made with the GIL held, whose release
    /// and acquire order them: relaxed loads and stores are enough, and a
    /// load and a store (no swap) cannot race another caller.
    pub fn wake_if_polling(&self) {
        if self.polling.load(Ordering::Relaxed) {
            self.polling.store(false, Ordering::Relaxed);
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

    pub fn push_ready(&self, py: Python<'_>, item: Item) {
        self.ready.borrow_mut(py).push_back(item);
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

    /// Iterations until stop(): inside the scheduler's runtime when it has
    /// one to run in (TokioLoop: src/driven.rs), else one `run_once` after
    /// another. A TokioLoop run from inside another's runtime (from one of
    /// its callbacks, or in a process forked there) cannot enter its own:
    /// its turns then run on a thread of their own (actors'
    /// tokio_sched/nested.rs).
    fn run_iterations(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        let driver = this.reactor(slf.py())?.as_ref().and_then(|r| r.driver());
        if let Some(driver) = driver.filter(|_| !Driver::is_driving()) {
            return Self::run_driven(slf, driver);
        }
        loop {
            Self::run_once(slf)?;
            if this.stopping.load(Ordering::Relaxed) {
                return Ok(());
            }
        }
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

        let result = Self::run_iterations(slf);

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
        let ready = std::mem::take(&mut *this.ready.borrow_mut(py));
        track_ready(py, &ready);
        let timers = this.timers.borrow_mut(py).clear(py);
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
