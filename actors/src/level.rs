//! asyncio's add_reader/add_writer are level-triggered: an fd still ready
//! after its callback ran is reported again. Both schedulers get edges
//! (epoll with EPOLLET, tokio's readiness), so they check the fds that
//! fired again before a later poll: mio re-arms them (EPOLL_CTL_MOD), tokio
//! asks `poll(2)`. Either is a system call per fd.
//!
//! The check waits one poll when the loop is busy (callbacks waiting, a
//! zero timeout). The common case then needs none: asyncio's own users of
//! raw fds (sock_recv, sock_sendall, sock_connect, ...) remove the watcher
//! in a done-callback right after it fired, and a removed fd is forgotten.
//! A watcher left in place is still reported again, one busy poll later at
//! most; a poll that may block always checks first, so nothing is missed.

use std::os::fd::RawFd;

use rustc_hash::FxHashMap;

/// Fds that fired, each with the turn that reported it. A map: every fd a
/// turn reports is filed here and every watcher removed is forgotten, and
/// a loop may watch thousands (a list cost a scan of it per fd).
#[derive(Debug, Default)]
pub(crate) struct FiredFds(FxHashMap<RawFd, u64>);

impl FiredFds {
    /// `fd` was reported by `turn`; returns whether `turn` had reported it
    /// already.
    pub(crate) fn fired(&mut self, fd: RawFd, turn: u64) -> bool {
        self.0.insert(fd, turn) == Some(turn)
    }

    /// `fd` is no longer watched: nothing to check.
    pub(crate) fn forget(&mut self, fd: RawFd) {
        self.0.remove(&fd);
    }

    /// Takes the fds to check before the poll that follows turn `last`;
    /// if that poll is `busy`, the fds `last` itself reported wait for the
    /// next one.
    pub(crate) fn take_due(&mut self, last: u64, busy: bool) -> Vec<RawFd> {
        if self.0.is_empty() {
            return Vec::new();
        }
        if !busy {
            return self.0.drain().map(|(fd, _)| fd).collect();
        }
        let mut due = Vec::new();
        self.0.retain(|&fd, &mut turn| {
            let wait = turn == last;
            if !wait {
                due.push(fd);
            }
            wait
        });
        due
    }
}

#[cfg(test)]
mod tests {
    use super::FiredFds;

    #[test]
    fn a_busy_poll_defers_only_what_the_last_turn_reported() {
        let mut fired = FiredFds::default();
        assert!(!fired.fired(3, 1));
        assert!(!fired.fired(4, 2));
        assert!(fired.fired(4, 2));
        assert_eq!(fired.take_due(2, true), vec![3]);
        assert_eq!(fired.take_due(3, true), vec![4]);
        assert!(fired.take_due(4, false).is_empty());
    }

    #[test]
    fn a_poll_that_may_block_checks_everything_and_forgotten_fds_never() {
        let mut fired = FiredFds::default();
        fired.fired(3, 5);
        fired.fired(4, 5);
        fired.fired(3, 6);
        fired.forget(4);
        assert_eq!(fired.take_due(6, false), vec![3]);
        assert!(fired.take_due(7, false).is_empty());
    }
}
