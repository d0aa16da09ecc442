"""create_connection, create_unix_connection, connect_accepted_socket and
the transports they make, as asyncio's loops have them."""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
from asyncio import base_events, staggered
from asyncio.log import logger
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from .borrow import rebound
from .tls import SSLProtocol

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


def check_not_ssl_socket(sock: Any) -> None:
    """Refuse an ssl.SSLSocket, as asyncio's loop methods do."""
    if type(sock).__name__ == "SSLSocket":
        raise TypeError("Socket cannot be of type SSLSocket")


def check_ssl_only_args(ssl: Any, **args: Any) -> None:
    """Refuse the TLS-only arguments without ssl=, with asyncio's messages."""
    for name, value in args.items():
        if value is not None and not ssl:
            raise ValueError(f"{name} is only meaningful with ssl")


class ConnectionsMixin:
    # Upgrading a connection to TLS: asyncio's own, making rloop's
    # SSLProtocol (asyncio's, with its per-record calls in Rust).
    start_tls = rebound(
        base_events.BaseEventLoop.start_tls, sslproto=SimpleNamespace(SSLProtocol=SSLProtocol)
    )

    async def create_connection(
        self,
        protocol_factory: ProtocolFactory,
        host: str | None = None,
        port: int | None = None,
        *,
        ssl: Any = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: socket.socket | None = None,
        local_addr: Any = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
        all_errors: bool = False,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """Open a TCP connection to host and port (or over `sock`), happy eyeballs
        included; return (transport, protocol)."""
        loop: Any = self
        check_ssl_only_args(
            ssl,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        if sock is not None:
            check_not_ssl_socket(sock)
        if ssl and server_hostname is None:
            # asyncio's rule: check the certificate against the host asked for.
            if not host:
                raise ValueError("You must set server_hostname when using ssl without a host")
            server_hostname = host
        if happy_eyeballs_delay is not None and interleave is None:
            # Happy eyeballs wants the address families interleaved.
            interleave = 1

        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            sock = await self._connect_first(
                host, port, family, proto, flags, local_addr,
                happy_eyeballs_delay, interleave, all_errors,
            )
        else:
            if sock is None:
                raise ValueError("host and port was not specified and no sock specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")

        transport, protocol = await loop._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        if loop.get_debug():
            logger.debug(
                "%r connected to %s:%r: (%r, %r)",
                transport.get_extra_info("socket"), host, port, transport, protocol,
            )
        return transport, protocol

    async def _connect_first(
        self,
        host: str | None,
        port: int | None,
        family: int,
        proto: int,
        flags: int,
        local_addr: Any,
        happy_eyeballs_delay: float | None,
        interleave: int | None,
        all_errors: bool,
    ) -> socket.socket:
        """Resolve, then try the addresses (in turn, or staggered) until one connects."""
        loop: Any = self
        infos = await loop._ensure_resolved(
            (host, port), family=family, type=socket.SOCK_STREAM, proto=proto,
            flags=flags, loop=loop,
        )
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        laddr_infos = None
        if local_addr is not None:
            laddr_infos = await loop._ensure_resolved(
                local_addr, family=family, type=socket.SOCK_STREAM, proto=proto,
                flags=flags, loop=loop,
            )
            if not laddr_infos:
                raise OSError("getaddrinfo() returned empty list")
        if interleave:
            infos = base_events._interleave_addrinfos(infos, interleave)

        errors: list[list[OSError]] = []
        sock: socket.socket | None = None
        if happy_eyeballs_delay is None:
            for info in infos:
                try:
                    sock = await loop._connect_sock(errors, info, laddr_infos)
                    break
                except OSError:
                    continue
        else:
            # Closures over `errors`, not partials holding the list, and only
            # the socket kept of the race's result: once `errors` is dropped
            # below, nothing here refers to the exceptions any more, so the
            # one raised is not kept alive by this frame's traceback (CPython's
            # test_streams checks that its only referrer is the caller).
            sock = (
                await staggered.staggered_race(
                    (
                        lambda info=info: loop._connect_sock(errors, info, laddr_infos)
                        for info in infos
                    ),
                    happy_eyeballs_delay,
                    loop=loop,
                )
            )[0]
        if sock is not None:
            return sock

        flat = [exc for attempt in errors for exc in attempt]
        try:
            if all_errors:
                raise ExceptionGroup("create_connection failed", flat)
            if len(flat) == 1 or all(str(exc) == str(flat[0]) for exc in flat):
                raise flat[0]
            raise OSError(
                "Multiple exceptions: {}".format(", ".join(str(exc) for exc in flat))
            )
        finally:
            flat = []
            errors = []

    async def create_unix_connection(
        self,
        protocol_factory: ProtocolFactory,
        path: str | None = None,
        *,
        ssl: Any = None,
        sock: socket.socket | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """Open a Unix socket connection to `path` (or over `sock`); return
        (transport, protocol)."""
        loop: Any = self
        check_ssl_only_args(
            ssl,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        if ssl and server_hostname is None:
            # asyncio's rule for Unix sockets: no host name to check.
            server_hostname = ""
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
            sock.setblocking(False)
        return await loop._create_connection_transport(  # type: ignore[no-any-return]
            sock, protocol_factory, ssl, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def connect_accepted_socket(
        self,
        protocol_factory: ProtocolFactory,
        sock: socket.socket,
        *,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """Make a transport of `sock`, a connection accepted outside the loop;
        return (transport, protocol)."""
        loop: Any = self
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        check_ssl_only_args(
            ssl,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        check_not_ssl_socket(sock)
        transport, protocol = await loop._create_connection_transport(
            sock, protocol_factory, ssl, "", server_side=True,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        if loop.get_debug():
            logger.debug("%r handled: (%r, %r)", transport.get_extra_info("socket"), transport, protocol)
        return transport, protocol

    async def _create_connection_transport(
        self,
        sock: socket.socket,
        protocol_factory: ProtocolFactory,
        ssl: Any,
        server_hostname: str | None,
        server_side: bool = False,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        context: Any = None,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """The transport of a connected socket, once connection_made has run
        (and, with TLS, the handshake is done). Owned here, not borrowed:
        asyncio's changes between versions (3.15 passes a context through)."""
        loop: Any = self
        try:
            sock.setblocking(False)
            # The protocol's methods run in a copy of the caller's context.
            if context is None:
                context = contextvars.copy_context()
            protocol = protocol_factory()
            waiter: asyncio.Future[None] | None = loop.create_future()
            if ssl:
                transport = self._make_ssl_transport(
                    sock, protocol, None if isinstance(ssl, bool) else ssl, waiter,
                    server_side=server_side, server_hostname=server_hostname,
                    ssl_handshake_timeout=ssl_handshake_timeout,
                    ssl_shutdown_timeout=ssl_shutdown_timeout,
                    context=context,
                )
            else:
                transport = self._make_socket_transport(sock, protocol, waiter, context=context)
        except BaseException:
            # No transport took the socket over: it is ours to close.
            sock.close()
            raise
        try:
            await waiter  # type: ignore[misc]
        except BaseException:
            transport.close()
            waiter = None  # no reference cycle through the exception's traceback
            raise
        return transport, protocol

    def _make_ssl_transport(
        self,
        rawsock: socket.socket,
        protocol: asyncio.BaseProtocol,
        sslcontext: Any,
        waiter: asyncio.Future[None] | None = None,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        extra: dict[str, Any] | None = None,
        server: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        call_connection_made: bool = True,
        context: Any = None,
    ) -> asyncio.Transport:
        """TLS is asyncio's own SSLProtocol (a BufferedProtocol) between the
        socket transport and the application's protocol, its per-record
        calls in Rust (rloop.tls)."""
        tls = SSLProtocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,  # type: ignore[arg-type]
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            call_connection_made=call_connection_made,
        )
        self._make_socket_transport(rawsock, tls, extra=extra, server=server, context=context)
        return tls._app_transport  # type: ignore[return-value]

    def _make_socket_transport(
        self,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None] | None = None,
        *,
        extra: dict[str, Any] | None = None,
        server: Any = None,
        context: Any = None,
    ) -> asyncio.Transport:
        # `context`: where the protocol's methods run (None: a copy of the
        # current one); 3.15's asyncio passes it.
        loop: Any = self
        sock.setblocking(False)
        # The connection actor shares the fd with `sock`, which stays the
        # transport's 'socket' and lets go of it after connection_lost.
        fd = sock.fileno()
        return loop._new_transport(  # type: ignore[no-any-return]
            fd, protocol, waiter, extra, server, sock, context
        )
