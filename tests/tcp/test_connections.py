"""Connection scenarios over TCP (shared with tests/unix): see net_scenarios."""

from net_scenarios import *
