"""The loop's methods take the arguments, and carry the names, of the
running Python's asyncio.

rloop's Python methods are written once for every supported version, with
every keyword any version has (``keep_alive=`` came in 3.13, ``all_errors=``
in 3.12...). asyncio refuses a keyword its version does not have with a
TypeError at the call, and names its methods ``BaseEventLoop.create_server``
in that error; so does rloop, by two adjustments made once at import:

- each public method defined here takes the qualified name asyncio's has;
- a method with keywords the running asyncio lacks is wrapped, where the
  version lacks them only, by one that refuses them as Python would (the
  wrapper is a cold path: only the connection and server setup methods and
  ``shutdown_default_executor`` have such keywords).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import types
from collections.abc import Callable
from typing import Any

from .versions import mark_coroutine_function

#: The loop class whose methods asyncio users get on this platform.
REFERENCE: type = asyncio.SelectorEventLoop

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def adopt_asyncio_signatures(cls: type) -> None:
    """Name and trim the public methods that rloop defines on `cls` and its
    bases (asyncio's own, borrowed, already are asyncio's)."""
    for name in dir(asyncio.AbstractEventLoop):
        if name.startswith("_"):
            continue
        func = inspect.getattr_static(cls, name, None)
        reference = getattr(REFERENCE, name, None)
        if not isinstance(func, types.FunctionType) or reference is None:
            continue
        if not func.__module__.startswith("rloop."):
            continue
        func.__qualname__ = reference.__qualname__
        extra = _keywords_missing_from(func, reference)
        if extra:
            setattr(cls, name, _refusing(func, extra))


def _keywords_missing_from(func: Callable[..., Any], reference: Callable[..., Any]) -> list[str]:
    ours = inspect.signature(func).parameters
    theirs = inspect.signature(reference).parameters
    return [name for name in ours if name not in theirs]


def _refusing(func: Callable[..., Any], extra: list[str]) -> Callable[..., Any]:
    """`func` without the parameters `extra` (keywords with defaults)."""
    signature = inspect.signature(func)
    kept = [p for p in signature.parameters.values() if p.name not in extra]
    positional = [p for p in kept if p.kind in _POSITIONAL]
    at_most = len(positional)
    at_least = len([p for p in positional if p.default is inspect.Parameter.empty])
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in kept)
    qualname = func.__qualname__

    @functools.wraps(func)
    def method(*args: Any, **kwargs: Any) -> Any:
        for key in kwargs:
            if key in extra:
                raise TypeError(f"{qualname}() got an unexpected keyword argument '{key}'")
        if not varargs and len(args) > at_most:
            raise TypeError(_too_many(qualname, at_least, at_most, len(args)))
        return func(*args, **kwargs)

    method.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
    if inspect.iscoroutinefunction(func):
        mark_coroutine_function(method)
    return method


def _too_many(qualname: str, at_least: int, at_most: int, given: int) -> str:
    """Python's own message for too many positional arguments."""
    were = "was" if given == 1 else "were"
    if at_least == at_most:
        plural = "" if at_most == 1 else "s"
        return f"{qualname}() takes {at_most} positional argument{plural} but {given} {were} given"
    return f"{qualname}() takes from {at_least} to {at_most} positional arguments but {given} {were} given"




_Bound = tuple[Any, Any, tuple[Any, ...], Any]


def _soon(self: object, callback: object, *args: object, context: object = None) -> _Bound:
    return None, callback, args, context


def _later(
    self: object, delay: object, callback: object, *args: object, context: object = None
) -> _Bound:
    return delay, callback, args, context


def _at(self: object, when: object, callback: object, *args: object, context: object = None) -> _Bound:
    return when, callback, args, context


def _binder(name: str, signature: Callable[..., _Bound]) -> Callable[..., _Bound]:
    """A copy of `signature`, a function with the signature of the loop
    method `name`, named as asyncio's method: it returns what a call binds,
    ``(delay or when or None, callback, args, context)``.
    src/callback_methods.rs makes the calls it does not take apart itself
    again to it, so that they are bound, or refused with the running
    Python's own TypeError (its wording changes between versions: 3.13
    suggests the keyword meant)."""
    method = types.FunctionType(
        signature.__code__, signature.__globals__, name, signature.__defaults__
    )
    method.__kwdefaults__ = signature.__kwdefaults__
    method.__qualname__ = f"BaseEventLoop.{name}"
    return method


#: Used by src/callback_methods.rs for the calls it does not take apart.
CALLBACK_METHOD_BINDERS: dict[str, Callable[..., _Bound]] = {
    "call_soon": _binder("call_soon", _soon),
    "call_soon_threadsafe": _binder("call_soon_threadsafe", _soon),
    "call_later": _binder("call_later", _later),
    "call_at": _binder("call_at", _at),
}
