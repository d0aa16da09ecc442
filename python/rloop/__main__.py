"""python -m rloop [--loop rloop|tokio] (SCRIPT | -m MODULE) [ARGS...]: see rloop.cli."""

from rloop.cli import main

if __name__ == "__main__":
    main()
