"""Taking asyncio's own loop-agnostic methods at import time.

Cold paths that need no speed reuse the stdlib's implementations rather
than copies: a mixin class body does ``locals().update(borrow(cls, names))``.
A name the running Python's class lacks is skipped, so one list serves
several Python versions.
"""

from __future__ import annotations

import types
from typing import Any


def borrow(cls: type, names: list[str]) -> dict[str, Any]:
    """The functions `names` of `cls` (those it has), by name."""
    return {name: cls.__dict__[name] for name in names if name in cls.__dict__}


def documented(func: Any, doc: str) -> Any:
    """A copy of asyncio's function `func` with the docstring `doc`, for
    the borrowed methods asyncio gives none.

    asyncio's own function is left as it is: the copy shares its code.
    """
    copy = _copy(func, func.__globals__)
    copy.__doc__ = doc
    return copy


def rebound(func: Any, **names: Any) -> Any:
    """A copy of asyncio's function `func` that finds `names` where it looks
    up its module's globals: asyncio's code, with one of the classes it makes
    replaced by rloop's (``sslproto=`` a namespace whose ``SSLProtocol`` is
    rloop's, for ``start_tls``).

    The module's other globals are those it has when rloop is imported.
    """
    return _copy(func, {**func.__globals__, **names})


def _copy(func: Any, globals_: dict[str, Any]) -> Any:
    copy = types.FunctionType(
        func.__code__, globals_, func.__name__, func.__defaults__, func.__closure__
    )
    copy.__kwdefaults__ = func.__kwdefaults__
    copy.__qualname__ = func.__qualname__
    copy.__doc__ = func.__doc__
    return copy
