"""Connection scenarios over Unix sockets (shared with tests/tcp): see net_scenarios."""

from net_scenarios import *
