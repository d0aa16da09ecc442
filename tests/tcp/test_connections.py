"""Connection scenarios over TCP (shared with tests/unix): see
net_scenarios and server_scenarios."""

from net_scenarios import *
from server_scenarios import *
