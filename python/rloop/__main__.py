"""python -m rloop [--loop rloop] SCRIPT [ARGS...]: run a script on rloop."""

from __future__ import annotations

import argparse
import runpy
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m rloop",
        description="Run a Python script with rloop as its asyncio event loop.",
    )
    parser.add_argument(
        "--loop",
        choices=["rloop", "tokio"],
        default=None,
        help="which loop: rloop (mio, the default) or tokio (TokioLoop); "
        "default: $RLOOP_LOOP or rloop",
    )
    parser.add_argument("script", help="the script to run, as `python SCRIPT` would")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    ns = parser.parse_args(argv)

    from . import install

    install(ns.loop)
    sys.argv = [ns.script, *ns.args]
    runpy.run_path(ns.script, run_name="__main__")


if __name__ == "__main__":
    main()
