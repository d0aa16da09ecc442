"""Type stubs for rloop.loop: the event loop classes as type checkers see them.

At run time RLoop and TokioLoop are the Rust core (``_rloop.BaseEventLoop``)
plus Python mixins, several of whose methods are asyncio's own, attached at
import time (``borrow.py``), which a checker cannot follow. This stub states
the whole ``asyncio.AbstractEventLoop`` API of the running Python version
instead, as the loops implement it.

Handles and servers are declared as asyncio's classes, whose API rloop's
share: ``call_soon`` returns an ``rloop.Handle`` and ``create_server`` an
rloop ``Server``, not subclasses of ``asyncio.Handle`` / ``asyncio.Server``,
but code written against ``asyncio.AbstractEventLoop`` works with them
unchanged (uvloop's stubs do the same). For the same reason LoopBase is
declared over ``asyncio.AbstractEventLoop`` alone: ``_rloop.pyi`` types the
core's methods as the core has them.

Where asyncio's API differs between versions (create_server's keep_alive=,
create_connection's all_errors=, ...), ``sys.version_info`` picks the
running Python's, as the loops do at run time (``signatures.py``).
"""

import asyncio
import concurrent.futures
import contextvars
import os
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from socket import _Address, _GetAddrInfoResult, _RetAddress
from typing import IO, Any, Literal, Protocol, TypeAlias, TypeVar, TypeVarTuple, Unpack

from _typeshed import ReadableBuffer, WriteableBuffer

# Addresses are the socket module's own types (_Address, _RetAddress,
# _GetAddrInfoResult: typeshed's names), so that these methods agree with
# socket's functions and with asyncio.AbstractEventLoop's.

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")
_P = TypeVar("_P", bound=asyncio.BaseProtocol)

class _HasFileno(Protocol):
    def fileno(self) -> int: ...

class _Pipe(Protocol):
    """What connect_read_pipe/connect_write_pipe need: a file-like object."""

    def fileno(self) -> int: ...
    def close(self) -> object: ...

_FileDescriptor: TypeAlias = int | _HasFileno
_SSLArg: TypeAlias = ssl.SSLContext | bool | None
_ProtocolFactory: TypeAlias = Callable[[], asyncio.BaseProtocol]
_ErrorContext: TypeAlias = dict[str, Any]
_ExceptionHandler: TypeAlias = Callable[[asyncio.AbstractEventLoop, _ErrorContext], object]
_TaskFactory: TypeAlias = Callable[..., asyncio.Future[Any]]
_StdioArg: TypeAlias = int | IO[Any] | None

# What create_task() and run_until_complete() take: 3.11's asyncio still
# accepts generator-based coroutines.
if sys.version_info >= (3, 12):
    _Coro: TypeAlias = Coroutine[Any, Any, _T]
    _Awaitable: TypeAlias = Awaitable[_T]
else:
    _Coro: TypeAlias = Generator[Any, None, _T] | Coroutine[Any, Any, _T]
    _Awaitable: TypeAlias = Generator[Any, None, _T] | Awaitable[_T]

class LoopBase(asyncio.AbstractEventLoop):
    """What RLoop and TokioLoop share."""

    def __init__(self) -> None: ...

    # Running and stopping.
    def run_forever(self) -> None: ...
    def run_until_complete(self, future: _Awaitable[_T]) -> _T: ...
    def stop(self) -> None: ...
    def is_running(self) -> bool: ...
    def is_closed(self) -> bool: ...
    def close(self) -> None: ...
    async def shutdown_asyncgens(self) -> None: ...
    if sys.version_info >= (3, 12):
        async def shutdown_default_executor(self, timeout: float | None = None) -> None: ...
    else:
        async def shutdown_default_executor(self) -> None: ...

    # Callbacks and timers.
    def call_soon(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle: ...
    def call_soon_threadsafe(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle: ...
    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle: ...
    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle: ...
    def time(self) -> float: ...

    # Futures and tasks.
    def create_future(self) -> asyncio.Future[Any]: ...
    if sys.version_info >= (3, 13):
        # The later 3.13 releases and 3.14 pass other keywords (eager_start=)
        # on to the task factory or Task.
        def create_task(
            self,
            coro: _Coro[_T],
            *,
            name: str | None = None,
            context: contextvars.Context | None = None,
            eager_start: bool | None = None,
            **kwargs: Any,
        ) -> asyncio.Task[_T]: ...
    else:
        def create_task(
            self,
            coro: _Coro[_T],
            *,
            name: str | None = None,
            context: contextvars.Context | None = None,
        ) -> asyncio.Task[_T]: ...

    def set_task_factory(self, factory: _TaskFactory | None) -> None: ...
    def get_task_factory(self) -> _TaskFactory | None: ...

    # Threads.
    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[Unpack[_Ts]], _T],
        *args: *_Ts,
    ) -> asyncio.Future[_T]: ...
    # asyncio's loops take only a ThreadPoolExecutor (TypeError otherwise).
    def set_default_executor(  # type: ignore[override]
        self, executor: concurrent.futures.ThreadPoolExecutor
    ) -> None: ...

    # Name resolution.
    async def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> _GetAddrInfoResult: ...
    async def getnameinfo(
        self, sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int = 0
    ) -> tuple[str, str]: ...

    # Connections and servers.
    if sys.version_info >= (3, 12):
        async def create_connection(
            self,
            protocol_factory: Callable[[], _P],
            host: str | None = None,
            port: int | str | None = None,
            *,
            ssl: _SSLArg = None,
            family: int = 0,
            proto: int = 0,
            flags: int = 0,
            sock: socket.socket | None = None,
            local_addr: tuple[str, int] | None = None,
            server_hostname: str | None = None,
            ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None,
            happy_eyeballs_delay: float | None = None,
            interleave: int | None = None,
            all_errors: bool = False,
        ) -> tuple[asyncio.Transport, _P]: ...
    else:
        async def create_connection(
            self,
            protocol_factory: Callable[[], _P],
            host: str | None = None,
            port: int | str | None = None,
            *,
            ssl: _SSLArg = None,
            family: int = 0,
            proto: int = 0,
            flags: int = 0,
            sock: socket.socket | None = None,
            local_addr: tuple[str, int] | None = None,
            server_hostname: str | None = None,
            ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None,
            happy_eyeballs_delay: float | None = None,
            interleave: int | None = None,
        ) -> tuple[asyncio.Transport, _P]: ...

    if sys.version_info >= (3, 13):
        async def create_server(
            self,
            protocol_factory: _ProtocolFactory,
            host: str | Sequence[str] | None = None,
            port: int | str | None = None,
            *,
            family: int = ...,
            flags: int = ...,
            sock: socket.socket | None = None,
            backlog: int = 100,
            ssl: _SSLArg = None,
            reuse_address: bool | None = None,
            reuse_port: bool | None = None,
            keep_alive: bool | None = None,
            ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None,
            start_serving: bool = True,
        ) -> asyncio.Server: ...
        async def create_unix_server(
            self,
            protocol_factory: _ProtocolFactory,
            path: str | os.PathLike[str] | None = None,
            *,
            sock: socket.socket | None = None,
            backlog: int = 100,
            ssl: _SSLArg = None,
            ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None,
            start_serving: bool = True,
            cleanup_socket: bool = True,
        ) -> asyncio.Server: ...
    else:
        async def create_server(
            self,
            protocol_factory: _ProtocolFactory,
            host: str | Sequence[str] | None = None,
            port: int | str | None = None,
            *,
            family: int = ...,
            flags: int = ...,
            sock: socket.socket | None = None,
            backlog: int = 100,
            ssl: _SSLArg = None,
            reuse_address: bool | None = None,
            reuse_port: bool | None = None,
            ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None,
            start_serving: bool = True,
        ) -> asyncio.Server: ...
        async def create_unix_server(
            self,
            protocol_factory: _ProtocolFactory,
            path: str | os.PathLike[str] | None = None,
            *,
            sock: socket.socket | None = None,
            backlog: int = 100,
            ssl: _SSLArg = None,
            ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None,
            start_serving: bool = True,
        ) -> asyncio.Server: ...

    async def create_unix_connection(
        self,
        protocol_factory: Callable[[], _P],
        path: str | os.PathLike[str] | None = None,
        *,
        ssl: _SSLArg = None,
        sock: socket.socket | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, _P]: ...
    async def connect_accepted_socket(
        self,
        protocol_factory: Callable[[], _P],
        sock: socket.socket,
        *,
        ssl: _SSLArg = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, _P]: ...
    async def start_tls(
        self,
        transport: asyncio.BaseTransport,
        protocol: asyncio.BaseProtocol,
        sslcontext: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport: ...
    async def sendfile(
        self,
        transport: asyncio.WriteTransport,
        file: IO[bytes],
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int: ...
    # asyncio's create_datagram_endpoint has had no reuse_address= since 3.11.
    async def create_datagram_endpoint(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], _P],
        local_addr: tuple[str, int] | str | None = None,
        remote_addr: tuple[str, int] | str | None = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: socket.socket | None = None,
    ) -> tuple[asyncio.DatagramTransport, _P]: ...

    # Pipes and subprocesses.
    async def connect_read_pipe(
        self, protocol_factory: Callable[[], _P], pipe: _Pipe
    ) -> tuple[asyncio.ReadTransport, _P]: ...
    async def connect_write_pipe(
        self, protocol_factory: Callable[[], _P], pipe: _Pipe
    ) -> tuple[asyncio.WriteTransport, _P]: ...
    async def subprocess_exec(
        self,
        protocol_factory: Callable[[], _P],
        program: str | bytes | os.PathLike[str] | os.PathLike[bytes],
        *args: str | bytes | os.PathLike[str] | os.PathLike[bytes],
        stdin: _StdioArg = -1,
        stdout: _StdioArg = -1,
        stderr: _StdioArg = -1,
        universal_newlines: Literal[False] = False,
        shell: Literal[False] = False,
        bufsize: Literal[0] = 0,
        encoding: None = None,
        errors: None = None,
        text: Literal[False] | None = None,
        **kwargs: Any,
    ) -> tuple[asyncio.SubprocessTransport, _P]: ...
    async def subprocess_shell(
        self,
        protocol_factory: Callable[[], _P],
        cmd: str | bytes,
        *,
        stdin: _StdioArg = -1,
        stdout: _StdioArg = -1,
        stderr: _StdioArg = -1,
        universal_newlines: Literal[False] = False,
        shell: Literal[True] = True,
        bufsize: Literal[0] = 0,
        encoding: None = None,
        errors: None = None,
        text: Literal[False] | None = None,
        **kwargs: Any,
    ) -> tuple[asyncio.SubprocessTransport, _P]: ...

    # File descriptors and sockets.
    def add_reader(
        self, fd: _FileDescriptor, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> None: ...
    def remove_reader(self, fd: _FileDescriptor) -> bool: ...
    def add_writer(
        self, fd: _FileDescriptor, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> None: ...
    def remove_writer(self, fd: _FileDescriptor) -> bool: ...
    async def sock_recv(self, sock: socket.socket, n: int) -> bytes: ...
    async def sock_recv_into(self, sock: socket.socket, buf: WriteableBuffer) -> int: ...
    async def sock_recvfrom(
        self, sock: socket.socket, bufsize: int
    ) -> tuple[bytes, _RetAddress]: ...
    async def sock_recvfrom_into(
        self, sock: socket.socket, buf: WriteableBuffer, nbytes: int = 0
    ) -> tuple[int, _RetAddress]: ...
    async def sock_sendall(self, sock: socket.socket, data: ReadableBuffer) -> None: ...
    async def sock_sendto(
        self, sock: socket.socket, data: ReadableBuffer, address: _Address
    ) -> int: ...
    async def sock_connect(self, sock: socket.socket, address: _Address) -> None: ...
    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, _RetAddress]: ...
    async def sock_sendfile(
        self,
        sock: socket.socket,
        file: IO[bytes],
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool | None = True,
    ) -> int: ...

    # Signals (Unix, main thread).
    def add_signal_handler(
        self, sig: int, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> None: ...
    def remove_signal_handler(self, sig: int) -> bool: ...

    # Errors and debug mode.
    def set_exception_handler(self, handler: _ExceptionHandler | None) -> None: ...
    def get_exception_handler(self) -> _ExceptionHandler | None: ...
    def default_exception_handler(self, context: _ErrorContext) -> None: ...
    def call_exception_handler(self, context: _ErrorContext) -> None: ...
    def get_debug(self) -> bool: ...
    def set_debug(self, enabled: bool) -> None: ...

class RLoop(LoopBase):
    """The single-threaded loop on mio."""

class TokioLoop(LoopBase):
    """The same loop, with connections scheduled by tokio."""
