//! rloop's extension module: the loop core and its schedulers.

use pyo3::prelude::*;

mod busy_poll;
mod callback_args;
mod callback_methods;
mod clock;
mod context;
mod cycle_gc;
mod datagram;
mod debug;
mod driven;
mod errors;
mod event_loop;
mod exception_handler;
mod extra_info;
mod fault_plans;
mod faults;
mod gc_tracking;
mod gil_cell;
mod handle_freelist;
mod handles;
mod io_watch;
mod iteration;
mod listening;
mod native_method;
mod py_imports;
mod queued;
mod reactor;
mod run_guard;
mod schedulers;
mod scheduling;
mod server_io;
mod signal_wakeup;
mod slots;
mod sock_call;
mod sock_coro;
mod sock_files;
mod sock_recv;
mod sock_send;
mod sock_wait;
mod streams;
mod tasks;
mod timers;
mod tls;
mod transport;
mod vectorcall;

#[pymodule(gil_used = true)]
fn _rloop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("BACKENDS", event_loop::BACKENDS.to_vec())?;
    m.add_class::<event_loop::EventLoop>()?;
    callback_methods::install_methods(&m.py().get_type::<event_loop::EventLoop>())?;
    m.add_class::<handles::Handle>()?;
    handle_freelist::install(m.py());
    m.add_class::<handles::TimerHandle>()?;
    m.add_class::<transport::SocketTransport>()?;
    m.add_class::<fault_plans::PyToxicPlan>()?;
    m.add_class::<sock_coro::SockCoroutine>()?;
    m.add_class::<tls::SslRecords>()?;
    m.add_function(wrap_pyfunction!(tls::ssl_transport_write, m)?)?;
    m.add_function(wrap_pyfunction!(tls::ssl_slots, m)?)?;
    m.add_function(wrap_pyfunction!(tls::ssl_classes, m)?)?;
    m.add_function(wrap_pyfunction!(tls::trim_heap, m)?)?;
    m.add_function(wrap_pyfunction!(transport::face::transport_methods, m)?)?;
    m.add_function(wrap_pyfunction!(datagram::datagram_methods, m)?)?;
    Ok(())
}
