"""Protocol contexts over Unix sockets (shared with tests/tcp): see context_scenarios."""

from context_scenarios import *
