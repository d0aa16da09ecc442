"""One fd per connection over TCP (shared with tests/unix): see fd_scenarios."""

from fd_scenarios import *
