//! Python objects the core looks up once per interpreter.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

macro_rules! cached {
    ($name:ident, $module:expr, $attr:expr) => {
        pub fn $name(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
            static CELL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            CELL.import(py, $module, $attr)
        }
    };
}

/// An attribute of a module read at each call (the module is cached), as
/// asyncio's loops read `futures.Future` and `tasks.Task`: code that swaps
/// in the Python classes (CPython's tests do; on 3.14 a C task then fails on
/// a loop that set the running loop through the Python functions) must be
/// followed. One dict lookup a call.
macro_rules! looked_up {
    ($name:ident, $module:expr, $attr:expr) => {
        pub fn $name(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
            static MODULE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            let module =
                MODULE.get_or_try_init(py, || py.import($module).map(|m| m.into_any().unbind()))?;
            module.bind(py).getattr(pyo3::intern!(py, $attr))
        }
    };
}
// Read from the module at every call (once per run_forever): code that
// swaps asyncio's C and Python implementations of these (CPython's own
// tests do) must be followed, as asyncio's loops follow it.
looked_up!(get_running_loop, "asyncio.events", "_get_running_loop");
looked_up!(set_running_loop, "asyncio.events", "_set_running_loop");
looked_up!(future_class, "asyncio.futures", "Future");
looked_up!(task_class, "asyncio.tasks", "Task");
cached!(iscoroutine, "asyncio.coroutines", "iscoroutine");

/// The `sys` module, imported once (an import statement's lookup costs
/// some 15,000 instructions, and run_forever needs sys four times).
pub fn sys(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static MODULE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    MODULE
        .get_or_try_init(py, || py.import("sys").map(|m| m.into_any().unbind()))
        .map(|m| m.bind(py))
}
// asyncio's own is deprecated from 3.14: rloop's twin says nothing.
cached!(iscoroutinefunction, "rloop.versions", "iscoroutinefunction");
// What the running asyncio does where versions differ (error and cold paths).
cached!(write_type_error, "rloop.versions", "write_type_error");
cached!(writelines_chunks, "rloop.versions", "writelines_chunks");
cached!(extract_stack, "asyncio.format_helpers", "extract_stack");
cached!(format_handle, "asyncio.base_events", "_format_handle");
cached!(asyncio_logger, "asyncio.log", "logger");
cached!(buffered_protocol_class, "asyncio", "BufferedProtocol");
cached!(transport_socket, "asyncio.trsock", "TransportSocket");
cached!(socket_class, "socket", "socket");
cached!(
    set_result_unless_cancelled,
    "asyncio.futures",
    "_set_result_unless_cancelled"
);
cached!(
    stream_reader_protocol,
    "asyncio.streams",
    "StreamReaderProtocol"
);
cached!(stream_reader, "asyncio.streams", "StreamReader");
// asyncio's C future and task, whose tracking by the collector is known
// (src/queued.rs).
cached!(c_future_type, "_asyncio", "Future");
cached!(c_task_type, "_asyncio", "Task");
cached!(transport_face, "rloop.transports", "SocketTransport");
cached!(set_wakeup_fd, "signal", "set_wakeup_fd");
