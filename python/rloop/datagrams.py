"""create_datagram_endpoint and the UDP transport it makes.

These are asyncio's own implementations (base_events' endpoint setup and
selector_events' datagram transport), taken from the stdlib at import
time. The transport needs from its loop what a selector loop has: the
private _add_reader/_remove_reader/_add_writer/_remove_writer (from the
Rust core), a ``_transports`` table of the fds transports own, and, for
its repr, a ``_selector`` that can say what an fd is watched for.

A UDP transport reads at most 64 KiB at a time (``_UDP_READ_SIZE``), the
largest datagram UDP has, not asyncio's 256 KiB, and up to 32 datagrams
each time its socket is readable (asyncio's reads one).

Its two per-datagram methods, ``_read_ready`` and ``sendto``, are C
methods (src/datagram.rs) on an IPv4 or IPv6 endpoint: no Python frame,
and one ``(host, port)`` tuple per peer, made once, instead of a tuple made
and parsed again per datagram. The cases they do not take on go to the
Python methods below and asyncio's.

One fix on top (uvloop's behaviour and the documented one): ``sendto(data)``
without an address on a socket that came connected (``sock=``) to a peer
without a name, e.g. one end of ``socketpair(AF_UNIX, SOCK_DGRAM)``, sends
to that peer. asyncio's transport tells a connected socket by the truth of
its ``peername``, which is ``''`` there, so it calls ``sendto(data, None)``
(a TypeError, fatal to the transport) both at once and from its write
buffer. The transport gets such a socket behind :class:`_UnnamedPeerSocket`,
which turns that call into ``send(data)``; anything else passes unchanged.
"""

from __future__ import annotations

import selectors
import socket
import weakref
from asyncio import base_events, selector_events
from typing import Any, NamedTuple

from ._rloop import datagram_methods
from .borrow import borrow


class _Key(NamedTuple):
    fd: int
    events: int


class _WatchedFds:
    """The one selector method asyncio's transports call: get_key(fd)."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop

    def get_key(self, fd: int) -> _Key:
        read, write = self._loop._fd_watched(fd)
        events = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
        if not events:
            raise KeyError(fd)
        return _Key(fd, events)


class _UnnamedPeerSocket:
    """A datagram socket connected to a peer without a name, as asyncio's
    transport uses it: ``sendto(data, None)`` (no address: the transport
    wants the connected peer) is ``send(data)``; every other call and
    attribute is the socket's own, an explicit address included."""

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def sendto(self, data: Any, *args: Any) -> int:
        if args == (None,):
            return self._sock.send(data)
        return self._sock.sendto(data, *args)

    def __getattr__(self, name: str) -> Any:
        if name == "_sock":  # not set yet (a copy): no recursion
            raise AttributeError(name)
        return getattr(self._sock, name)

    def __repr__(self) -> str:
        return repr(self._sock)


def _connected_to_unnamed_peer(sock: socket.socket) -> bool:
    try:
        return not sock.getpeername()
    except OSError:
        return False


#: What a UDP transport reads at most: no UDP datagram is larger. asyncio
#: reads up to 256 KiB (for Unix datagrams), so that every read allocated a
#: bytes object of 256 KiB first, which glibc maps and unmaps (three system
#: calls per datagram, on top of recvfrom).
_UDP_READ_SIZE = 65536

#: How many datagrams a transport reads when its socket is readable, at most
#: (libuv's figure): under load that is one loop iteration, and one
#: re-arm of the fd, for several datagrams instead of each.
_READS_PER_EVENT = 32


#: asyncio's UDP transport class (private: typeshed has no stub of it).
_SelectorDatagramTransport: Any = vars(selector_events)["_SelectorDatagramTransport"]


class _DatagramTransport(_SelectorDatagramTransport):  # type: ignore[misc]
    """asyncio's UDP transport, reading up to ``_READS_PER_EVENT``
    datagrams each time its socket is readable (asyncio's reads one)."""

    #: ``(fd, family, connected)`` while the native paths serve this
    #: transport (an IPv4 or IPv6 endpoint), else None.
    _rloop_native: tuple[int, int, bool] | None = None

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        # The socket is closed here: its fd may be reused at once.
        self._rloop_native = None
        super()._call_connection_lost(exc)

    def _py_read_ready(self) -> None:
        recvfrom, max_size = self._sock.recvfrom, self.max_size
        for _ in range(_READS_PER_EVENT):
            # A datagram_received may have closed or paused the transport
            # (what is_reading() tells, without its two calls per datagram).
            if self._conn_lost or self._closing or self._paused:
                return
            try:
                data, addr = recvfrom(max_size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001 - asyncio's own handling
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return
            self._protocol.datagram_received(data, addr)


datagram_methods(_DatagramTransport, _DatagramTransport._py_read_ready, _SelectorDatagramTransport.sendto)


class DatagramsMixin:
    locals().update(borrow(base_events.BaseEventLoop, ["create_datagram_endpoint"]))

    def _make_datagram_transport(
        self,
        sock: socket.socket,
        protocol: Any,
        address: Any = None,
        waiter: Any = None,
        extra: Any = None,
    ) -> Any:
        """asyncio's selector transport (reading several datagrams per
        event), on the socket as it is or, when it is connected to an
        unnamed peer, behind _UnnamedPeerSocket."""
        used: Any = _UnnamedPeerSocket(sock) if _connected_to_unnamed_peer(sock) else sock
        transport = _DatagramTransport(self, used, protocol, address, waiter, extra)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            transport.max_size = _UDP_READ_SIZE
            connected = bool(address or transport.get_extra_info("peername"))
            transport._rloop_native = (sock.fileno(), int(sock.family), connected)
        return transport

    def __init__(self) -> None:
        # fd -> transport, as a selector loop keeps it; only Python-level
        # transports (UDP) are here, TCP and Unix ones are the core's.
        self._transports: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()

    @property
    def _selector(self) -> _WatchedFds | None:
        """None once the loop is closed, as a selector loop's."""
        return None if self.is_closed() else _WatchedFds(self)  # type: ignore[attr-defined]
