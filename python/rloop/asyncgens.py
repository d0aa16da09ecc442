"""Async-generator hooks and shutdown_asyncgens, as asyncio has them."""

from __future__ import annotations

import asyncio
import warnings
import weakref
from typing import Any


class AsyncGenMixin:
    _asyncgens: weakref.WeakSet[Any]
    _asyncgens_shutdown_called: bool

    def __init__(self) -> None:
        self._asyncgens = weakref.WeakSet()
        self._asyncgens_shutdown_called = False

    def _asyncgen_finalizer_hook(self, agen: Any) -> None:
        # Called by the garbage collector, possibly from another thread.
        self._asyncgens.discard(agen)
        loop: Any = self
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                f"loop.shutdown_asyncgens() call",
                ResourceWarning,
                source=self,
            )
        self._asyncgens.add(agen)

    async def shutdown_asyncgens(self) -> None:
        """Close every async generator still open on this loop."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        agens = list(self._asyncgens)
        self._asyncgens.clear()
        results = await asyncio.gather(*[ag.aclose() for ag in agens], return_exceptions=True)
        loop: Any = self
        for result, agen in zip(results, agens):
            if isinstance(result, Exception):
                loop.call_exception_handler(
                    {
                        "message": f"an error occurred during closing of "
                        f"asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )
