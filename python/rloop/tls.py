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

#: asyncio's ``SSLProtocol.max_size``: the most read from the socket, or
#: decrypted, per call.
_READ_SIZE = 256 * 1024

#: One full TLS record (16 KiB and its overhead).
_FIRST_WINDOW = 16 * 1024 + 256

#: A burst of at least this many TLS handshakes in flight on one loop is
#: followed by a trim of the C heap (``_Handshakes``).
_HANDSHAKE_BURST = 256


def _loop_buffer(loop: Any) -> memoryview:
    """The buffer every TLS connection of ``loop`` reads into, made at the
    first.

    asyncio gives each connection a 256 KiB buffer of its own, zero-filled,
    so resident: 1,000 TLS connections held 300 MB of server RSS (102 MB
    with a buffer of one record each that grew on demand, 86 MB with this
    one). What is in the buffer never outlives the call that filled it:
    the socket transport reads into it and calls ``buffer_updated`` at
    once, which hands the ciphertext to the connection's incoming
    ``MemoryBIO``, and the plaintext decrypted into it is copied out before
    the application sees it (src/tls/read.rs). A loop makes one such call
    at a time, so its connections can share one buffer.
    """
    view: memoryview | None = getattr(loop, "_rloop_tls_buffer", None)
    if view is None:
        view = memoryview(bytearray(_READ_SIZE))
        loop._rloop_tls_buffer = view
    return view


class _Handshakes:
    """The TLS handshakes in flight on one loop.

    OpenSSL holds a 16 KB buffer per handshake and frees it at the end.
    rloop accepts a whole backlog in one turn, so a burst of connections
    has all its handshakes in flight together, and their buffers, freed
    among longer-lived allocations, leave the C heap fragmented: free but
    resident. Once a burst of at least ``_HANDSHAKE_BURST`` is down to a
    quarter, the heap is trimmed, once.
    """

    __slots__ = ("in_flight", "peak")

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0

    def started(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    def ended(self) -> None:
        self.in_flight -= 1
        if self.peak >= _HANDSHAKE_BURST and self.in_flight <= self.peak // 4:
            self.peak = self.in_flight
            _rloop.trim_heap()


def _loop_handshakes(loop: Any) -> _Handshakes:
    """The handshakes in flight on ``loop``, counted from the first."""
    handshakes: _Handshakes | None = getattr(loop, "_rloop_tls_handshakes", None)
    if handshakes is None:
        handshakes = _Handshakes()
        loop._rloop_tls_handshakes = handshakes
    return handshakes


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

    # Read by ``write`` at its offset (src/tls/mod.rs), as the protocol's.
    __slots__ = ("_ssl_protocol",)

    def __init__(self, loop: Any, ssl_protocol: Any) -> None:
        super().__init__(loop, ssl_protocol)
        self.write = MethodType(_rloop.ssl_transport_write, self)  # type: ignore[method-assign]

    def _unbind(self) -> None:
        # asyncio's write (the class's) from now on: same behaviour.
        self.__dict__.pop("write", None)


class SSLProtocol(_rloop.SSLRecords, sslproto.SSLProtocol):
    """asyncio's TLS protocol, fed by the socket transport in Rust."""

    # What src/tls/ reads per record is kept in slots, at offsets it reads
    # directly (a dict lookup each cost more than the rest of the record's
    # glue): asyncio's attributes, all set by its ``__init__``.
    __slots__ = (*_rloop.ssl_slots(), "_rloop_handshaking")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # asyncio's ``__init__`` allocates the connection's buffer
        # (ciphertext in, plaintext out) of ``max_size``: none here. Every
        # TLS connection of a loop reads into the loop's one
        # (``_loop_buffer``), through a window of one TLS record at first;
        # asyncio's read size is then set, which src/tls/read.rs widens the
        # window to by doubling it after each read that filled it (only
        # bulk transfers do: reading at most 64 KiB per call cost 15 % more
        # CPU per message on 100 KiB TLS echo).
        self.max_size = 0
        self._rloop_handshaking = False
        super().__init__(*args, **kwargs)
        self.max_size = _READ_SIZE
        # A list, not asyncio's deque: the queue of writes made before the
        # handshake ends (or that the TLS object could not take) is short
        # and mostly empty, and an empty deque holds a block of 64 slots:
        # 760 bytes of every connection, against 56. asyncio's code uses
        # only what both have (append, [0], del [0], clear, truth).
        self._write_backlog = []
        buffer = _loop_buffer(self._loop)
        self._ssl_buffer = buffer.obj
        self._ssl_buffer_view = buffer[:_FIRST_WINDOW]

    def _set_state(self, new_state: Any) -> None:
        # The handshakes in flight are counted here, where every handshake
        # starts and ends (done, failed, or cut by connection_lost), rather
        # than in an override of ``_on_handshake_complete``, whose frame
        # would hold the handshake's exception while asyncio's raises it:
        # a cycle through the traceback (which asyncio's own code avoids).
        super()._set_state(new_state)
        handshaking = new_state is sslproto.SSLProtocolState.DO_HANDSHAKE
        if handshaking != self._rloop_handshaking:
            self._rloop_handshaking = handshaking
            handshakes = _loop_handshakes(self._loop)
            if handshaking:
                handshakes.started()
            else:
                handshakes.ended()

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


_rloop.ssl_classes(SSLProtocol, SSLProtocolTransport)
