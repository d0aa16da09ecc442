"""rloop: a drop-in asyncio event loop written in Rust.

    import rloop
    rloop.run(main())                 # like asyncio.run, on RLoop
    rloop.install()                   # asyncio.new_event_loop() -> RLoop
    rloop.install("tokio")            # ... -> TokioLoop
    asyncio.Runner(loop_factory=rloop.new_event_loop)
    await rloop.drain(server)         # graceful shutdown of a server
"""

from . import faults
from ._rloop import BACKENDS, Handle, TimerHandle
from .loop import RLoop
from .policy import EventLoopPolicy, install, new_event_loop, new_tokio_event_loop
from .runners import run
from .shutdown import DrainReport, drain

__all__ = [
    "DrainReport",
    "EventLoopPolicy",
    "Handle",
    "RLoop",
    "TimerHandle",
    "drain",
    "faults",
    "install",
    "new_event_loop",
    "new_tokio_event_loop",
    "run",
]
__version__ = "0.1.0"

if "tokio" in BACKENDS:
    from .loop import TokioLoop

    __all__ += ["TokioLoop"]
