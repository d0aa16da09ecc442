"""``python -m rloop``: run a program as ``python`` would, on rloop.

    python -m rloop [--loop rloop|tokio] SCRIPT [ARGS...]
    python -m rloop [--loop rloop|tokio] -m MODULE [ARGS...]

After installing rloop's policy, the program must not be able to tell it was
not started as ``python SCRIPT`` (or ``python -m MODULE``): the same
``sys.argv``, ``sys.path[0]``, ``__file__``, ``__main__`` module and globals,
exit status, and tracebacks that start at the program's own code. So the
script runs in the real ``__main__`` module, whose namespace is first
emptied of what ``runpy`` put there to run rloop's own ``__main__``.
"""

from __future__ import annotations

import builtins
import os
import runpy
import sys
import types
from collections.abc import Sequence
from importlib.machinery import SourceFileLoader
from typing import NoReturn

USAGE = """\
usage: python -m rloop [--loop {rloop,tokio}] (SCRIPT | -m MODULE) [ARGS...]

Run a Python program with rloop as its asyncio event loop, as `python SCRIPT`
or `python -m MODULE` would run it.

options:
  -h, --help            show this help message and exit
  --loop {rloop,tokio}  which loop: rloop (mio, the default) or tokio
                        (TokioLoop); default: $RLOOP_LOOP or rloop
  -m MODULE             run a library module as a script, as `python -m`
"""

LOOPS = ("rloop", "tokio")


def _usage_error(message: str) -> NoReturn:
    sys.stderr.write(USAGE.split("\n\n")[0] + f"\npython -m rloop: error: {message}\n")
    raise SystemExit(2)


def _parse(argv: Sequence[str]) -> tuple[str | None, bool, str, list[str]]:
    """(loop, is_module, target, args); options stop at the program's name,
    as the interpreter's do, so the program's own options pass through."""
    loop = None
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg in ("-h", "--help"):
            sys.stdout.write(USAGE)
            raise SystemExit(0)
        if arg == "--loop" or arg.startswith("--loop="):
            value = arg.partition("=")[2] if "=" in arg else (rest.pop(0) if rest else None)
            if value not in LOOPS:
                _usage_error(f"argument --loop: expected one of {', '.join(LOOPS)}")
            loop = value
        elif arg == "-m" or (arg.startswith("-m") and len(arg) > 2):
            module = arg[2:] or (rest.pop(0) if rest else "")
            if not module:
                _usage_error("argument -m: expected a module name")
            return loop, True, module, rest
        elif arg == "--":
            break
        elif arg.startswith("-") and arg != "-":
            _usage_error(f"unrecognized option {arg}")
        else:
            return loop, False, arg, rest
    if not rest:
        _usage_error("a script or -m MODULE is required")
    return loop, False, rest[0], rest[1:]


def _fresh_main() -> dict[str, object]:
    """The real ``__main__`` namespace, emptied to what the interpreter
    starts a program with (which differs by version: 3.11-3.13 have
    ``__annotations__``, runpy sets ``__cached__`` before 3.15)."""
    namespace = sys.modules["__main__"].__dict__
    keep_annotations = "__annotations__" in namespace
    has_cached = "__cached__" in namespace
    namespace.clear()
    namespace.update(__name__="__main__", __doc__=None, __package__=None, __spec__=None)
    namespace["__builtins__"] = builtins
    if keep_annotations:
        namespace["__annotations__"] = {}
    if has_cached:
        namespace["__cached__"] = None
    return namespace


def _program_name() -> str:
    """The interpreter's name as the user typed it (its error messages start so)."""
    return sys.orig_argv[0] if sys.orig_argv else sys.executable


def _run_script(script: str) -> None:
    """``python SCRIPT``: a source file, or a folder or zip file with a
    ``__main__.py`` (run as the interpreter does, through runpy)."""
    # The interpreter joins the working directory and the name without
    # normalising it, and puts the directory of the resolved file first on
    # the path.
    path = script if os.path.isabs(script) else os.path.join(os.getcwd(), script)
    if os.path.isdir(path) or (os.path.isfile(path) and _is_zip(path)):
        sys.path[0] = path
        _fresh_main()
        runpy._run_module_as_main("__main__", alter_argv=False)  # type: ignore[attr-defined]
        return
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as e:
        sys.stderr.write(
            f"{_program_name()}: can't open file {path!r}: [Errno {e.errno}] {e.strerror}\n"
        )
        raise SystemExit(2) from None
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    namespace = _fresh_main()
    namespace["__file__"] = path
    namespace["__loader__"] = SourceFileLoader("__main__", path)
    code = compile(source, path, "exec", dont_inherit=True)
    exec(code, namespace)  # noqa: S102 (running the program is the point)


def _is_zip(path: str) -> bool:
    import zipfile

    return zipfile.is_zipfile(path)


def _program_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback from the program's code on: rloop's and runpy's frames,
    which ``python SCRIPT`` does not have, are dropped."""
    ours = {__file__, runpy.__file__, "<frozen runpy>"}
    while tb is not None and tb.tb_frame.f_code.co_filename in ours:
        tb = tb.tb_next
    return tb


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``python -m rloop``'s command line (`argv`: its arguments, without
    the program name; default sys.argv[1:])."""
    loop, is_module, target, args = _parse(sys.argv[1:] if argv is None else argv)

    from . import install

    install(loop)
    try:
        if is_module:
            sys.argv = ["-m", *args]  # runpy puts the module's file first
            _fresh_main()
            runpy._run_module_as_main(target)  # type: ignore[attr-defined]
        else:
            sys.argv = [target, *args]
            _run_script(target)
    except SystemExit:
        raise
    except BaseException as exc:
        # Printed as the interpreter would, through sys.excepthook (which
        # reads the exception's own traceback from 3.12).
        tb = _program_traceback(exc.__traceback__)
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        # Re-raised for the interpreter's exit status (1, or death by SIGINT
        # for a KeyboardInterrupt), with nothing more printed.
        sys.excepthook = lambda *_: None
        raise
