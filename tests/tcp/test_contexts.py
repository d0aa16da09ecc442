"""Protocol contexts over TCP (shared with tests/unix): see context_scenarios."""

from context_scenarios import *
