//! The write path of a transport: asyncio's `write()` and `writelines()`,
//! with its rules on what may be written (bytes-like objects only, not
//! after `write_eof()`, not while a sendfile runs, silently dropped after
//! the connection is lost, with asyncio's warning past a threshold). The
//! bytes go to the actor, which sends at once what the socket takes.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyMemoryView, PyTuple};

use super::{actor_error, SocketTransport, State, LOG_THRESHOLD_FOR_CONNLOST_WRITES};
use crate::py_imports;

/// The bytes of `data`, which asyncio's write() takes only as bytes,
/// bytearray or memoryview (anything else: its TypeError, worded as the
/// running asyncio words it).
fn with_bytes<R>(data: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    if let Ok(b) = data.cast::<PyByteArray>() {
        // A copy: the caller may mutate its bytearray once we return.
        return Ok(f(&b.to_vec()));
    }
    if data.is_instance_of::<PyMemoryView>() {
        return chunk_bytes(data).map(|b| f(&b));
    }
    let py = data.py();
    Err(py_imports::write_type_error(py)
        .and_then(|f| f.call1((data,)))
        .map_or_else(|e| e, PyErr::from_value))
}

/// The bytes of any bytes-like object (a memoryview of any format too).
fn chunk_bytes(chunk: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(buf) = pyo3::buffer::PyBuffer::<u8>::get(chunk) {
        return buf.to_vec(chunk.py());
    }
    // Not a buffer of bytes (e.g. an array of ints): its raw bytes.
    Ok(chunk
        .py()
        .get_type::<PyBytes>()
        .call1((chunk,))?
        .cast_into::<PyBytes>()?
        .as_bytes()
        .to_vec())
}

/// The chunks of writelines(list_of_data): a list or tuple of bytes-like
/// objects at once; anything else (or a bad item) is checked by the running
/// asyncio's rules, which raise its exceptions (rloop.versions).
fn writelines_chunks(list_of_data: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    let fast = |items: &mut dyn Iterator<Item = Bound<'_, PyAny>>| -> Option<Vec<Vec<u8>>> {
        items
            .map(|item| {
                pyo3::buffer::PyBuffer::<u8>::get(&item)
                    .ok()?
                    .to_vec(item.py())
                    .ok()
            })
            .collect()
    };
    let quick = if let Ok(list) = list_of_data.cast::<PyList>() {
        fast(&mut list.iter())
    } else if let Ok(tuple) = list_of_data.cast::<PyTuple>() {
        fast(&mut tuple.iter())
    } else {
        None
    };
    if let Some(chunks) = quick {
        return Ok(chunks);
    }
    let checked = py_imports::writelines_chunks(list_of_data.py())?.call1((list_of_data,))?;
    checked
        .try_iter()?
        .map(|chunk| chunk_bytes(&chunk?))
        .collect()
}

/// asyncio's refusals of `method` (write or writelines): after write_eof(),
/// and while a sendfile runs.
fn refuse_write(st: &State, method: &str) -> PyResult<()> {
    if st.eof_written {
        return Err(PyRuntimeError::new_err(
            "Cannot call write() after write_eof()",
        ));
    }
    if st.sendfile.busy {
        return Err(PyRuntimeError::new_err(format!(
            "unable to {method}; sendfile is in progress"
        )));
    }
    Ok(())
}

#[pymethods]
impl SocketTransport {
    /// Write the bytes-like `data` to the connection without blocking: what
    /// cannot be sent at once is buffered and sent in the background.
    pub(crate) fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let id = this.id;
        // Type errors first, as asyncio does.
        let empty = with_bytes(data, |b| b.is_empty())?;
        {
            let mut st = this.st.lock();
            refuse_write(&st, "write")?;
            if empty {
                return Ok(());
            }
            if st.lost {
                st.writes_after_lost += 1;
                let n = st.writes_after_lost;
                drop(st);
                if n >= LOG_THRESHOLD_FOR_CONNLOST_WRITES {
                    py_imports::asyncio_logger(py)?
                        .call_method1("warning", ("socket.send() raised exception.",))?;
                }
                return Ok(());
            }
        }
        let r = with_bytes(data, |bytes| {
            Self::act(slf, |r, out| r.writelines(id, &[bytes], out))
        })??;
        match r {
            Ok(()) => Ok(()),
            Err(e) => actor_error(e).map_or(Ok(()), Err),
        }
    }

    /// Write every bytes-like object of the iterable `list_of_data`, as
    /// write() would their concatenation.
    fn writelines(slf: &Bound<'_, Self>, list_of_data: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let owned = writelines_chunks(list_of_data)?;
        let this = slf.get();
        {
            let st = this.st.lock();
            refuse_write(&st, "writelines")?;
            if st.lost {
                drop(st);
                return Self::write(slf, PyBytes::new(py, &[]).as_any());
            }
        }
        let chunks: Vec<&[u8]> = owned
            .iter()
            .map(Vec::as_slice)
            .filter(|c| !c.is_empty())
            .collect();
        if chunks.is_empty() {
            return Ok(());
        }
        let id = this.id;
        match Self::act(slf, |r, out| r.writelines(id, &chunks, out))? {
            Ok(()) => Ok(()),
            Err(e) => actor_error(e).map_or(Ok(()), Err),
        }
    }
}
