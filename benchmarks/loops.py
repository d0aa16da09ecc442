"""Event-loop factories shared by the benchmark servers, micro benchmarks and runner.

A loop is referred to by a short name:

* ``asyncio`` - the stock CPython selector event loop;
* ``uvloop``  - ``uvloop.new_event_loop()`` (the reference every ratio is taken to);
* ``rloop``   - ``rloop.new_event_loop()`` (class ``rloop.RLoop``);
* ``tokio``   - ``rloop.new_tokio_event_loop()`` (class ``rloop.TokioLoop``), when present;
* ``rloop05`` - ``rloop.new_event_loop()`` of rloop 0.5.0 from PyPI, the project this one
  descends from. Its package is also called ``rloop``, so it lives in a directory of its
  own, named by the ``RLOOP05_PATH`` environment variable (``run.py`` installs it there
  with ``pip install --target``); a process imports one rloop or the other, never both.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Callable

LOOP_NAMES: tuple[str, ...] = ("asyncio", "uvloop", "rloop", "tokio", "rloop05")
RLOOP05_ENV = "RLOOP05_PATH"


class LoopUnavailable(Exception):
    """The requested loop cannot be imported on this interpreter."""


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """Return a zero-argument callable creating a fresh loop of kind ``name``."""
    if name == "asyncio":
        return asyncio.SelectorEventLoop
    if name == "uvloop":
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError as exc:
            raise LoopUnavailable(f"uvloop: {exc}") from exc
        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    if name in ("rloop", "tokio"):
        try:
            rloop = importlib.import_module("rloop")
        except ImportError as exc:
            raise LoopUnavailable(f"rloop: {exc}") from exc
        attr = "new_event_loop" if name == "rloop" else "new_tokio_event_loop"
        found = getattr(rloop, attr, None)
        if found is None:
            raise LoopUnavailable(f"rloop has no {attr}()")
        return found  # type: ignore[no-any-return]
    if name == "rloop05":
        return _rloop05_factory()
    raise LoopUnavailable(f"unknown loop {name!r} (choose from {', '.join(LOOP_NAMES)})")


def _rloop05_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    path = os.environ.get(RLOOP05_ENV)
    if not path or not os.path.isdir(os.path.join(path, "rloop")):
        raise LoopUnavailable(f"rloop 0.5: set {RLOOP05_ENV} to where it is installed")
    if "rloop" in sys.modules:
        raise LoopUnavailable("rloop 0.5: this process already imported another rloop")
    sys.path.insert(0, path)
    try:
        rloop = importlib.import_module("rloop")
    except ImportError as exc:
        raise LoopUnavailable(f"rloop 0.5: {exc}") from exc
    finally:
        sys.path.remove(path)
    if os.path.dirname(os.path.dirname(os.path.abspath(rloop.__file__ or ""))) != os.path.abspath(
        path
    ):
        raise LoopUnavailable("rloop 0.5: imported the wrong rloop")
    return rloop.new_event_loop  # type: ignore[no-any-return]


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    """Create a new event loop of kind ``name`` and make it the current loop."""
    loop = loop_factory(name)()
    asyncio.set_event_loop(loop)
    return loop


def describe(loop: asyncio.AbstractEventLoop) -> str:
    """``module.Class`` of a loop, for sanity checks in the report."""
    cls = type(loop)
    return f"{cls.__module__}.{cls.__qualname__}"
