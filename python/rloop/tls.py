"""TLS on rloop's transports: asyncio's ``SSLProtocol`` and its transport,
with the calls made per record in Rust (``src/tls/``).

Everything but those calls is the running Python's asyncio: the handshake,
the shutdown, timeouts, errors and log messages, and the private hooks its
tests use. Each Rust method calls asyncio's own for any state but the
steady one.
"""

from __future__ import annotations

from asyncio import sslproto
from types import MethodType
from typing import Any

from . import _rloop


class SSLProtocolTransport(sslproto._SSLProtocolTransport):
    """The transport a TLS connection's protocol writes to: asyncio's, with
    ``write`` encrypting and sending in the same call.

    ``write`` is bound on the instance (asyncio's class has ``__slots__`` in
    its bases, so it cannot take a Rust base), so a call goes straight to
    Rust with no Python frame in between. The binding refers to the
    transport: the protocol undoes it when the connection is lost, so that,
    as with asyncio's, nothing but the cycle asyncio itself breaks there
    keeps either alive.
    """

    def __init__(self, loop: Any, ssl_protocol: Any) -> None:
        super().__init__(loop, ssl_protocol)
        self.write = MethodType(_rloop.ssl_transport_write, self)  # type: ignore[method-assign]

    def _unbind(self) -> None:
        # asyncio's write (the class's) from now on: same behaviour.
        self.__dict__.pop("write", None)


class SSLProtocol(_rloop.SSLRecords, sslproto.SSLProtocol):
    """asyncio's TLS protocol, fed by the socket transport in Rust."""

    #: The connection's buffer (ciphertext in, plaintext out) starts at one
    #: full TLS record, which is what asyncio's ``__init__`` allocates from
    #: this class attribute; ``__init__`` then sets the most it may grow to
    #: (src/tls/read.rs doubles it after a read that filled it). asyncio's
    #: is 256 KiB from the start, zero-filled, so resident: 1,000 TLS
    #: connections held 300 MB. Only a connection moving bulk data fills
    #: its buffer and grows it, up to asyncio's 256 KiB: a cap of 64 KiB
    #: cost 15 % more CPU per message on 100 KiB TLS echo.
    max_size = 16 * 1024 + 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_size = 256 * 1024

    def connection_lost(self, exc: BaseException | None) -> None:
        transport = self._app_transport
        super().connection_lost(exc)
        if isinstance(transport, SSLProtocolTransport):
            transport._unbind()

    def _get_app_transport(self) -> SSLProtocolTransport:
        # asyncio's, but making rloop's transport class: one per protocol.
        if self._app_transport is None:
            if self._app_transport_created:
                raise RuntimeError("Creating _SSLProtocolTransport twice")
            self._app_transport = SSLProtocolTransport(self._loop, self)
            self._app_transport_created = True
        return self._app_transport  # type: ignore[return-value]
