"""loop.sendfile() over Unix sockets (shared with tests/tcp): see sendfile_scenarios."""

from sendfile_scenarios import *
