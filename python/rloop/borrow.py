"""Taking asyncio's own loop-agnostic methods at import time.

Cold paths that need no speed reuse the stdlib's implementations rather
than copies: a mixin class body does ``locals().update(borrow(cls, names))``.
A name the running Python's class lacks is skipped, so one list serves
several Python versions.
"""

from __future__ import annotations

from typing import Any


def borrow(cls: type, names: list[str]) -> dict[str, Any]:
    """The functions `names` of `cls` (those it has), by name."""
    return {name: cls.__dict__[name] for name in names if name in cls.__dict__}
