//! Raw fd watchers for asyncio's add_reader/add_writer.
//!
//! An fd the scheduler already owns (connection, listener) cannot be
//! watched as well: registration fails with `AlreadyExists`.

use std::io;
use std::os::fd::RawFd;

use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::{Entry, FdSlot, MioScheduler};

impl MioScheduler {
    /// Watches `fd` for the given directions, replacing any previous
    /// choice; both `false` unwatches. One registration per fd.
    pub fn watch_fd(&mut self, fd: RawFd, read: bool, write: bool) -> io::Result<()> {
        let interest = match (read, write) {
            (true, true) => Interest::READABLE | Interest::WRITABLE,
            (true, false) => Interest::READABLE,
            (false, true) => Interest::WRITABLE,
            (false, false) => {
                self.unwatch_fd(fd);
                return Ok(());
            }
        };
        if let Some(&key) = self.fds.get(&fd) {
            if let Some(Entry::Fd(s)) = self.slab.get_mut(key) {
                self.poll
                    .registry()
                    .reregister(&mut SourceFd(&fd), Token(key), interest)?;
                s.interest = interest;
                return Ok(());
            }
        }
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), Token(key), interest)?;
        entry.insert(Entry::Fd(FdSlot { fd, interest }));
        self.fds.insert(fd, key);
        Ok(())
    }

    /// Stops watching `fd`. Returns whether it was watched. Deregistration
    /// errors (fd already closed) are ignored: the watcher is gone anyway.
    pub fn unwatch_fd(&mut self, fd: RawFd) -> bool {
        let Some(key) = self.fds.remove(&fd) else {
            return false;
        };
        self.fired_fds.forget(fd);
        if matches!(self.slab.get(key), Some(Entry::Fd(_))) {
            self.slab.remove(key);
        }
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        true
    }

    /// `(read, write)` currently watched for `fd`.
    pub fn fd_interest(&self, fd: RawFd) -> Option<(bool, bool)> {
        match self.fds.get(&fd).and_then(|&k| self.slab.get(k)) {
            Some(Entry::Fd(s)) => Some((s.interest.is_readable(), s.interest.is_writable())),
            _ => None,
        }
    }
}
