//! The outgoing side of a TLS connection: the application's `write` is
//! encrypted and handed to the socket transport in the same call.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PySlice};

use super::{fatal_on_error, names, process_outgoing, protocol_of, Parts, Slot, SslRecords};

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
    let proto = protocol_of(transport)?;
    write_appdata(&proto, data)
}

/// asyncio's `_write_appdata((data,))`. The fast case is the steady one:
/// rloop's SSLProtocol, `WRAPPED`, with nothing queued before this write;
/// anything else is asyncio's method.
fn write_appdata(proto: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = proto.py();
    let steady = match proto.cast::<SslRecords>() {
        Ok(records) => {
            let parts = SslRecords::parts(records)?;
            let backlog = parts.get(proto, Slot::WriteBacklog)?;
            let state = parts.get(proto, Slot::State)?;
            (state.is(&names(py)?.wrapped) && !backlog.is_truthy()?).then_some((parts, backlog))
        }
        Err(_) => None,
    };
    let Some((parts, backlog)) = steady else {
        proto.call_method1(intern!(py, "_write_appdata"), ((data,),))?;
        return Ok(());
    };
    let result = encrypt(proto, parts, &backlog, data);
    fatal_on_error(proto, result)
}

/// asyncio's `_do_write` then `_process_outgoing`, for one piece of data:
/// what the `SSLObject` does not take is queued, as asyncio queues it.
fn encrypt(
    proto: &Bound<'_, PyAny>,
    parts: &Parts,
    backlog: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let py = proto.py();
    let len = data.len()?;
    match parts.tls_write.bind(py).call1((data,)) {
        Ok(count) => {
            let count: usize = count.extract()?;
            if count >= len {
                return process_outgoing(proto, parts);
            }
            // Taken in part: the rest is queued and asyncio's loop goes on
            // writing the queue, as it would have.
            let rest = data.get_item(PySlice::new(py, count as isize, len as isize, 1))?;
            queue(proto, parts, backlog, &rest)?;
            proto.call_method0(intern!(py, "_do_write"))?;
            Ok(())
        }
        Err(e) if e.matches(py, names(py)?.again.bind(py))? => {
            queue(proto, parts, backlog, data)?;
            process_outgoing(proto, parts)
        }
        Err(e) => {
            queue(proto, parts, backlog, data)?;
            Err(e)
        }
    }
}

/// Data the `SSLObject` has not taken yet, counted in the write buffer.
fn queue(
    proto: &Bound<'_, PyAny>,
    parts: &Parts,
    backlog: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let py = data.py();
    let queued = data.len()?;
    backlog.call_method1(intern!(py, "append"), (data,))?;
    let size = parts.get(proto, Slot::WriteBufferSize)?.add(queued)?;
    parts.set(proto, Slot::WriteBufferSize, &size)
}
