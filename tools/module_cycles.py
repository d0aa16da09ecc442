"""Fails if the top-level modules of a crate import each other in a circle.

Usage::

    python tools/module_cycles.py [CRATE_SRC ...]   # default: src actors/src

A module is a top-level file (``src/iteration.rs``) or folder
(``src/transport/``) of the crate; it depends on another when its code (not
its comments) names ``crate::other``. The layering docs/architecture.md
describes has no circle: the loop's state (event_loop.rs) depends on no
module that depends on it. Prints each circle found and exits 1, else 0.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATE_PATH = re.compile(r"\bcrate::([a-z_0-9]+)")
COMMENT = re.compile(r"//.*$", re.MULTILINE)


def dependencies(src: Path) -> dict[str, set[str]]:
    """Top-level module -> the top-level modules its code names."""
    deps: dict[str, set[str]] = {}
    for path in sorted(src.rglob("*.rs")):
        top = path.relative_to(src).parts[0].removesuffix(".rs")
        code = COMMENT.sub("", path.read_text(encoding="utf-8"))
        named = deps.setdefault(top, set())
        named.update(m for m in CRATE_PATH.findall(code) if m != top)
    return deps


def circles(deps: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(deps.get(node, ())):
            if other not in deps:
                continue
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(deps):
        if node not in index:
            visit(node)
    return found


def main(argv: list[str]) -> int:
    sys.setrecursionlimit(10_000)
    crates = argv or ["src", "actors/src"]
    status = 0
    for crate in crates:
        for circle in circles(dependencies(ROOT / crate)):
            print(f"{crate}: import circle: {' <-> '.join(circle)}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
