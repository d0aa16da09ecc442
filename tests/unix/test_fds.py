"""One fd per connection over Unix sockets (shared with tests/tcp): see fd_scenarios."""

from fd_scenarios import *
