"""run_in_executor and the default executor, as asyncio has them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any


class ExecutorMixin:
    _default_executor: concurrent.futures.ThreadPoolExecutor | None
    _executor_shutdown_called: bool

    def __init__(self) -> None:
        self._default_executor = None
        self._executor_shutdown_called = False

    def run_in_executor(
        self, executor: concurrent.futures.Executor | None, func: Callable[..., Any], *args: Any
    ) -> asyncio.Future[Any]:
        """Run func(*args) in `executor` (None: the loop's default thread pool);
        return an asyncio Future of its result."""
        loop: Any = self
        loop._check_closed()
        if loop.get_debug():
            loop._check_callback(func, "run_in_executor")
        if executor is None:
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            executor = self._default_executor
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self._default_executor = executor
        return asyncio.wrap_future(executor.submit(func, *args), loop=loop)

    def set_default_executor(self, executor: Any) -> None:
        """Use `executor` (a ThreadPoolExecutor) for run_in_executor(None, ...)."""
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor instance")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Wait for the default executor's threads, without blocking the loop."""
        loop: Any = self
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        done = loop.create_future()

        def shutdown() -> None:
            try:
                executor.shutdown(wait=True)
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting future
                if not loop.is_closed():
                    loop.call_soon_threadsafe(_set_exception_unless_done, done, exc)
            else:
                if not loop.is_closed():
                    loop.call_soon_threadsafe(_set_result_unless_done, done, None)

        thread = threading.Thread(target=shutdown, name="rloop-executor-shutdown")
        thread.start()
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            import warnings

            warnings.warn(
                "The executor did not finishing joining "
                f"its threads within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            executor.shutdown(wait=False)
        else:
            thread.join()

    def _close_executor(self) -> None:
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)


def _set_result_unless_done(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception_unless_done(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
