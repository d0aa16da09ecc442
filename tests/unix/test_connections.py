"""Connection scenarios over Unix sockets (shared with tests/tcp): see
net_scenarios and server_scenarios."""

from net_scenarios import *
from server_scenarios import *
