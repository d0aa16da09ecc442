//! `get_extra_info()` of a socket transport: the extra dict, completed on
//! first use with the Python socket and its addresses (for an accepted
//! connection the socket object is made then, over the actor's own fd).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::py_imports;
use crate::transport::SocketTransport;

impl SocketTransport {
    fn extra_dict(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyDict>>> {
        let py = slf.py();
        let this = slf.get();
        let (complete, sock) = {
            let st = this.st.lock();
            if st.extra.is_none() {
                return Ok(None);
            }
            (st.extra_complete, st.sock.as_ref().map(|s| s.clone_ref(py)))
        };
        if !complete {
            let sock = match sock {
                Some(s) => Some(s.into_bound(py)),
                None => this.shared_socket(py)?,
            };
            let extra = this.st.lock().extra.as_ref().map(|e| e.clone_ref(py));
            if let (Some(sock), Some(extra)) = (sock, extra) {
                let extra = extra.bind(py);
                let wrapper = py_imports::transport_socket(py)?.call1((&sock,))?;
                extra.set_item("socket", wrapper)?;
                if let Ok(name) = sock.call_method0(intern!(py, "getsockname")) {
                    extra.set_item("sockname", name)?;
                }
                if !extra.contains("peername")? {
                    if let Ok(peer) = sock.call_method0(intern!(py, "getpeername")) {
                        extra.set_item("peername", peer)?;
                    }
                }
                this.st.lock().extra_complete = true;
            }
        }
        Ok(this.st.lock().extra.as_ref().map(|e| e.clone_ref(py)))
    }

    /// A Python socket object over the actor's fd, for an accepted
    /// connection: one fd for both (the object never closes it, see
    /// `transport::release_fd`). None once connection_lost was delivered.
    fn shared_socket<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if self.st.lock().fd_holder.is_none() {
            return Ok(None);
        }
        let kwargs = PyDict::new(py);
        kwargs.set_item("fileno", self.fd)?;
        let sock = py_imports::socket_class(py)?
            .call((self.family, libc::SOCK_STREAM, 0), Some(&kwargs))?;
        // Held by the transport at once, so that it is never dropped (and
        // finalized: closing the fd) before release_fd detaches it.
        self.st.lock().sock = Some(sock.clone().unbind());
        // As asyncio's accepted sockets (the fd is non-blocking already).
        sock.call_method1(intern!(py, "setblocking"), (false,))?;
        Ok(Some(sock))
    }
}

#[pymethods]
impl SocketTransport {
    /// Return the transport's information `name` ('socket', 'sockname',
    /// 'peername', 'sslcontext', ...), or `default` if it has none.
    #[pyo3(signature = (name, default=None))]
    fn get_extra_info(
        slf: &Bound<'_, Self>,
        name: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let default = default.unwrap_or_else(|| py.None());
        match Self::extra_dict(slf)? {
            Some(extra) => Ok(match extra.bind(py).get_item(name)? {
                Some(v) => v.unbind(),
                None => default,
            }),
            None => Ok(default),
        }
    }
}
