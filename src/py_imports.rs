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

/// Looked up on every call (once per run_forever), not cached: code that
/// swaps asyncio's C and Python implementations of these (CPython's own
/// tests do) must be followed, as asyncio's loops follow it.
pub fn get_running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import("asyncio.events")?.getattr("_get_running_loop")
}

pub fn set_running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import("asyncio.events")?.getattr("_set_running_loop")
}
cached!(future_class, "asyncio", "Future");
cached!(task_class, "asyncio", "Task");
cached!(iscoroutine, "asyncio.coroutines", "iscoroutine");
// asyncio's own is deprecated from 3.14: rloop's twin says nothing.
cached!(iscoroutinefunction, "rloop.versions", "iscoroutinefunction");
cached!(extract_stack, "asyncio.format_helpers", "extract_stack");
cached!(format_handle, "asyncio.base_events", "_format_handle");
cached!(asyncio_logger, "asyncio.log", "logger");
cached!(buffered_protocol_class, "asyncio", "BufferedProtocol");
cached!(transport_socket, "asyncio.trsock", "TransportSocket");
cached!(
    set_result_unless_cancelled,
    "asyncio.futures",
    "_set_result_unless_cancelled"
);
cached!(transport_face, "rloop.transports", "SocketTransport");
