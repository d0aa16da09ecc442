//! The outgoing side of a TLS connection: the application's `write` is
//! encrypted and handed to the socket transport in the same call.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PySlice};

use super::{fatal_on_error, names, process_outgoing};

/// asyncio's `_SSLProtocolTransport.write`, bound to each of rloop's TLS
/// transports as its `write` (python/rloop/tls.py): bytes and bytearrays
/// here, anything else (type errors included) by asyncio's method.
#[pyfunction]
pub fn ssl_transport_write(transport: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = transport.py();
    if !(data.is_exact_instance_of::<PyBytes>() || data.is_exact_instance_of::<PyByteArray>()) {
        names(py)?.stock_write.bind(py).call1((transport, data))?;
        return Ok(());
    }
    if data.len()? == 0 {
        return Ok(());
    }
    let proto = transport.getattr(intern!(py, "_ssl_protocol"))?;
    write_appdata(&proto, data)
}

/// asyncio's `_write_appdata((data,))`. The fast case is the steady one:
/// `WRAPPED` with nothing queued before this write.
fn write_appdata(proto: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = proto.py();
    let names = names(py)?;
    let backlog = proto.getattr(intern!(py, "_write_backlog"))?;
    let state = proto.getattr(intern!(py, "_state"))?;
    if !state.is(&names.wrapped) || backlog.is_truthy()? {
        proto.call_method1(intern!(py, "_write_appdata"), ((data,),))?;
        return Ok(());
    }
    let result = encrypt(proto, &backlog, data);
    fatal_on_error(proto, result)
}

/// asyncio's `_do_write` then `_process_outgoing`, for one piece of data:
/// what the `SSLObject` does not take is queued, as asyncio queues it.
fn encrypt(
    proto: &Bound<'_, PyAny>,
    backlog: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let py = proto.py();
    let sslobj = proto.getattr(intern!(py, "_sslobj"))?;
    let len = data.len()?;
    match sslobj.call_method1(intern!(py, "write"), (data,)) {
        Ok(count) => {
            let count: usize = count.extract()?;
            if count >= len {
                return process_outgoing(proto);
            }
            // Taken in part: the rest is queued and asyncio's loop goes on
            // writing the queue, as it would have.
            let rest = data.get_item(PySlice::new(py, count as isize, len as isize, 1))?;
            queue(proto, backlog, &rest)?;
            proto.call_method0(intern!(py, "_do_write"))?;
            Ok(())
        }
        Err(e) if e.matches(py, names(py)?.again.bind(py))? => {
            queue(proto, backlog, data)?;
            process_outgoing(proto)
        }
        Err(e) => {
            queue(proto, backlog, data)?;
            Err(e)
        }
    }
}

/// Data the `SSLObject` has not taken yet, counted in the write buffer.
fn queue(
    proto: &Bound<'_, PyAny>,
    backlog: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let py = proto.py();
    let queued = data.len()?;
    backlog.call_method1(intern!(py, "append"), (data,))?;
    let size = proto
        .getattr(intern!(py, "_write_buffer_size"))?
        .add(queued)?;
    proto.setattr(intern!(py, "_write_buffer_size"), size)
}
