"""Server: what create_server() and create_unix_server() return.

Behaves as asyncio's Server of the running Python, with what 3.13 added
on every version: close_clients()/abort_clients() exist, and
wait_closed() waits until the server is closed and every connection it
accepted has ended. A Unix server removes its socket file when it closes
where the running asyncio does (3.13+).
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextvars
import errno
import functools
import itertools
import os
import socket
import stat
import sys
import weakref
from asyncio import trsock
from asyncio.log import logger
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Self

from . import tls
from .connections import check_not_ssl_socket, check_ssl_only_args
from .versions import SERVE_FOREVER_CLOSES_CLIENTS, UNIX_SOCKET_CLEANUP


class Server(asyncio.AbstractServer):
    def __init__(
        self,
        loop: Any,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        backlog: int,
        ssl_context: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> None:
        self._loop = loop
        # Each connection's protocol runs in a copy of the context current
        # where the server was made (as 3.15's asyncio).
        self._context = contextvars.copy_context()
        self._sockets: list[socket.socket] | None = sockets
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._ssl_context = ssl_context
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        # The connections open. A plain set, not asyncio's WeakSet: the loop
        # detaches every transport it attached when its connection ends
        # (its connection_lost always comes), and a weak reference was 81
        # bytes of each connection.
        self._clients: set[asyncio.Transport] = set()
        self._anonymous = 0
        self._waiters: list[asyncio.Future[None]] | None = []
        self._serving = False
        self._serving_forever_fut: asyncio.Future[None] | None = None
        # Unix sockets whose file this server removes when it closes, with
        # the file's inode when the server started: a file that another
        # process has put at the same path since is left alone.
        self._unix_files: dict[socket.socket, tuple[Any, int]] = {}
        # The drain in progress (rloop.shutdown), told of each connection's
        # start and end.
        self._drain: Any = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sockets={self.sockets!r}>"

    # Called by the loop as transports of this server start and end. 3.12's
    # asyncio counts connections without naming them (`_attach()`), and its
    # tests call these so: a call without a transport counts as one.
    def _attach(self, transport: asyncio.Transport | None = None) -> None:
        if transport is None:
            self._anonymous += 1
        else:
            self._clients.add(transport)
            if self._drain is not None:
                self._drain._attached(transport)

    def _detach(self, transport: asyncio.Transport | None = None) -> None:
        if transport is None:
            self._anonymous -= 1
        else:
            self._clients.discard(transport)
            if self._drain is not None:
                self._drain._detached(transport)
        if self._active() == 0 and self._sockets is None:
            self._wakeup()

    def _active(self) -> int:
        return len(self._clients) + self._anonymous

    def _wakeup(self) -> None:
        waiters = self._waiters
        self._waiters = None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def _start_serving(self) -> None:
        if self._serving or self._sockets is None:
            return
        self._serving = True
        for sock in self._sockets:
            sock.listen(self._backlog)
            self._loop._start_serving(
                self._protocol_factory, sock, self._ssl_context, self, self._backlog,
                self._ssl_handshake_timeout, self._ssl_shutdown_timeout,
            )

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the server serves on."""
        return self._loop  # type: ignore[no-any-return]

    def is_serving(self) -> bool:
        """Whether the server accepts new connections."""
        return self._serving

    @property
    def sockets(self) -> tuple[trsock.TransportSocket, ...]:
        """The listening sockets (wrapped, as asyncio's), or () once closed."""
        if self._sockets is None:
            return ()
        return tuple(trsock.TransportSocket(s) for s in self._sockets)

    def close(self) -> None:
        """Stop listening (the connections stay: see close_clients)."""
        sockets = self._sockets
        if sockets is None:
            return
        self._sockets = None
        for sock in sockets:
            self._loop._stop_serving(sock)
        self._remove_unix_files()
        self._serving = False
        fut = self._serving_forever_fut
        if fut is not None and not fut.done():
            fut.cancel()
            self._serving_forever_fut = None
        if self._active() == 0:
            self._wakeup()

    def _remove_unix_files(self) -> None:
        files, self._unix_files = self._unix_files, {}
        for path, inode in files.values():
            try:
                if os.stat(path).st_ino == inode:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)

    def _track_unix_file(self, sock: socket.socket) -> None:
        """Remember `sock`'s file, to remove it when the server closes."""
        path = sock.getsockname()
        if not path or _is_abstract(path):
            return  # unnamed or abstract: no file
        try:
            self._unix_files[sock] = (path, os.stat(path).st_ino)
        except FileNotFoundError:
            pass

    def close_clients(self) -> None:
        """Close every connection of the server (each flushes, then closes)."""
        for transport in list(self._clients):
            transport.close()

    def abort_clients(self) -> None:
        """Abort every connection of the server at once, dropping unsent data."""
        for transport in list(self._clients):
            transport.abort()

    async def start_serving(self) -> None:
        """Start accepting connections, if not already."""
        self._start_serving()
        # One iteration, so the listening sockets are registered on return.
        await asyncio.sleep(0)

    async def serve_forever(self) -> None:
        """Accept connections until cancelled; then close the server."""
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except asyncio.CancelledError:
            try:
                self.close()
                if SERVE_FOREVER_CLOSES_CLIENTS:
                    self.close_clients()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        """Wait until the server is closed (and, as the running Python's asyncio
        does, its connections are gone)."""
        if self._waiters is None:
            return
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


def _hosts(host: Any) -> list[Any]:
    if host == "":
        return [None]
    if isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
        return [host]
    return list(host)


def _check_server_ssl(
    ssl: Any, handshake_timeout: float | None, shutdown_timeout: float | None
) -> None:
    """asyncio's checks of a server's TLS arguments."""
    if isinstance(ssl, bool):
        raise TypeError("ssl argument must be an SSLContext or None")
    check_ssl_only_args(
        ssl, ssl_handshake_timeout=handshake_timeout, ssl_shutdown_timeout=shutdown_timeout
    )


def _bind_error(err: OSError, address: Any) -> OSError:
    reason = (err.strerror or str(err)).lower()
    return OSError(err.errno, f"error while attempting to bind on address {address!r}: {reason}")


class ServersMixin:
    def __init__(self) -> None:
        # Every server of the loop, for the drain on a shutdown signal
        # (rloop.run's shutdown_signals=).
        self._servers: weakref.WeakSet[Server] = weakref.WeakSet()

    async def create_server(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: Any = None,
        port: int | None = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        keep_alive: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
    ) -> Server:
        """Listen for TCP connections on host and port (or `sock`); each one gets
        a protocol from protocol_factory(). Return the Server."""
        loop: Any = self
        _check_server_ssl(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            check_not_ssl_socket(sock)

        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            if reuse_address is None:
                reuse_address = os.name == "posix" and sys.platform != "cygwin"
            resolved = await asyncio.gather(
                *[loop._create_server_getaddrinfo(h, port, family, flags) for h in _hosts(host)]
            )
            infos = set(itertools.chain.from_iterable(resolved))
            sockets = self._bind_all(infos, reuse_address, reuse_port, keep_alive)
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            sockets = [sock]

        for s in sockets:
            s.setblocking(False)
        server = Server(
            loop, sockets, protocol_factory, backlog, ssl, ssl_handshake_timeout, ssl_shutdown_timeout
        )
        self._servers.add(server)
        if start_serving:
            server._start_serving()
            # One iteration, so the listening sockets are registered on return.
            await asyncio.sleep(0)
        if loop.get_debug():
            logger.info("%r is serving", server)
        return server

    def _bind_all(
        self,
        infos: Any,
        reuse_address: bool | None,
        reuse_port: bool | None,
        keep_alive: bool | None,
    ) -> list[socket.socket]:
        loop: Any = self
        sockets: list[socket.socket] = []
        done = False
        try:
            for af, socktype, proto, _canonname, sa in infos:
                try:
                    sock = socket.socket(af, socktype, proto)
                except OSError:
                    if loop.get_debug():
                        logger.warning(
                            "create_server() failed to create socket.socket(%r, %r, %r)",
                            af, socktype, proto, exc_info=True,
                        )
                    continue
                sockets.append(sock)
                if reuse_address:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                if reuse_port:
                    if not hasattr(socket, "SO_REUSEPORT"):
                        raise ValueError("reuse_port not supported by socket module")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if keep_alive:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                if af == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    # One socket per family: an IPv6 socket must not grab IPv4 too.
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                try:
                    sock.bind(sa)
                except OSError as err:
                    raise _bind_error(err, sa) from None
            done = True
        finally:
            if not done:
                for sock in sockets:
                    sock.close()
        return sockets

    async def create_unix_server(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        path: Any = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        cleanup_socket: bool = True,
    ) -> Server:
        """Listen for Unix socket connections on `path` (or `sock`); each one
        gets a protocol from protocol_factory(). Return the Server."""
        loop: Any = self
        # Before 3.13 asyncio has no such keyword (rloop.signatures refuses
        # it) and leaves the socket file behind.
        cleanup_socket = cleanup_socket and UNIX_SOCKET_CLEANUP
        _check_server_ssl(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if not _is_abstract(path):
                _remove_stale_unix_socket(path)
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        sock.setblocking(False)
        server = Server(
            loop, [sock], protocol_factory, backlog, ssl, ssl_handshake_timeout, ssl_shutdown_timeout
        )
        if cleanup_socket:
            server._track_unix_file(sock)
        self._servers.add(server)
        if start_serving:
            server._start_serving()
            await asyncio.sleep(0)
        return server

    def _start_serving(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> None:
        loop: Any = self
        if sslcontext is not None:
            # Each accepted socket's protocol is asyncio's SSLProtocol, in
            # front of one the server's factory makes.
            protocol_factory = functools.partial(
                _tls_server_protocol, loop, protocol_factory, sslcontext,
                ssl_handshake_timeout, ssl_shutdown_timeout,
            )
        # The acceptor owns a duplicate; `sock` stays the server's and is
        # closed by _stop_serving.
        context = getattr(server, "_context", None)
        loop._serve(os.dup(sock.fileno()), protocol_factory, server, backlog, sock, context)

    def _stop_serving(self, sock: socket.socket) -> None:
        loop: Any = self
        loop._unserve(sock)
        sock.close()


def _tls_server_protocol(
    loop: Any,
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    sslcontext: Any,
    handshake_timeout: float | None,
    shutdown_timeout: float | None,
) -> asyncio.BaseProtocol:
    return tls.SSLProtocol(
        loop, protocol_factory(), sslcontext, None, True, None,
        ssl_handshake_timeout=handshake_timeout,
        ssl_shutdown_timeout=shutdown_timeout,
    )


def _is_abstract(path: Any) -> bool:
    """Whether a Unix socket address is in the abstract namespace (a leading
    NUL, str or bytes), where no file stands."""
    return path[0] in (0, "\x00")


def _remove_stale_unix_socket(path: str) -> None:
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)
