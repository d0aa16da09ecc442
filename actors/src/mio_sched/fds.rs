//! Raw fd watchers for asyncio's add_reader/add_writer.
//!
//! An fd the scheduler already owns (connection, listener) cannot be
//! watched as well: registration fails with `AlreadyExists`.

use std::io;
use std::os::fd::RawFd;

use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::{Entry, FdSlot, MioScheduler};

fn interest_of(read: bool, write: bool) -> Option<Interest> {
    match (read, write) {
        (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
        (true, false) => Some(Interest::READABLE),
        (false, true) => Some(Interest::WRITABLE),
        (false, false) => None,
    }
}

impl MioScheduler {
    /// Watches `fd` for the given directions, replacing any previous
    /// choice; both `false` unwatches. One registration per fd.
    pub fn watch_fd(&mut self, fd: RawFd, read: bool, write: bool) -> io::Result<()> {
        let Some(interest) = interest_of(read, write) else {
            self.unwatch_fd(fd);
            return Ok(());
        };
        if let Some(&key) = self.fds.get(&fd) {
            if let Some(Entry::Fd(s)) = self.slab.get_mut(key) {
                // EPOLL_CTL_MOD re-arms the fd and reports it if ready, as a
                // new registration would.
                let registry = self.poll.registry();
                match registry.reregister(&mut SourceFd(&fd), Token(key), interest) {
                    Ok(()) => {}
                    // Kept after unwatch_fd, but the fd was closed since
                    // (epoll dropped it), maybe reused: register it anew.
                    Err(e) if !s.watched && e.raw_os_error() == Some(libc::ENOENT) => {
                        if let Err(e) = registry.register(&mut SourceFd(&fd), Token(key), interest)
                        {
                            self.forget_fd(fd);
                            return Err(e);
                        }
                    }
                    Err(e) => return Err(e),
                }
                s.interest = interest;
                s.watched = true;
                return Ok(());
            }
        }
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), Token(key), interest)?;
        entry.insert(Entry::Fd(FdSlot {
            fd,
            interest,
            watched: true,
        }));
        self.fds.insert(fd, key);
        Ok(())
    }

    /// `watch_fd`, by a caller that has just seen the directions it asks
    /// for would block. Re-arming a kept registration (EPOLL_CTL_MOD) is
    /// what tells a closed and reused fd number from the file it was, so
    /// it is skipped only when the caller knows the fd still names that
    /// file (`same_file`). Then a registration kept for the same
    /// directions is watched again as it is: the caller's EAGAIN means
    /// that whatever arrives next is a new edge, which epoll reports, and
    /// an edge it queued before is stale (the watcher's call would block,
    /// and waits for the next one).
    pub fn watch_fd_idle(
        &mut self,
        fd: RawFd,
        read: bool,
        write: bool,
        same_file: bool,
    ) -> io::Result<()> {
        if same_file {
            if let Some(Entry::Fd(s)) = self.fds.get(&fd).and_then(|&k| self.slab.get_mut(k)) {
                if !s.watched && Some(s.interest) == interest_of(read, write) {
                    s.watched = true;
                    return Ok(());
                }
            }
        }
        self.watch_fd(fd, read, write)
    }

    /// Stops watching `fd`. Returns whether it was watched.
    ///
    /// The epoll registration stays, as libuv's does: `sock_recv` and
    /// friends add a reader each time a read would block and remove it
    /// once it ran, and keeping the registration turns that pair of
    /// system calls (EPOLL_CTL_ADD, EPOLL_CTL_DEL) into one
    /// (EPOLL_CTL_MOD) when the fd is watched again. An event for an fd
    /// nobody watches any more deregisters it then (`drop_unwatched`);
    /// closing the fd removes it from epoll by itself. Nothing is
    /// reported for an unwatched fd.
    pub fn unwatch_fd(&mut self, fd: RawFd) -> bool {
        let Some(&key) = self.fds.get(&fd) else {
            return false;
        };
        self.fired_fds.forget(fd);
        match self.slab.get_mut(key) {
            Some(Entry::Fd(s)) => std::mem::replace(&mut s.watched, false),
            _ => false,
        }
    }

    /// An event came for `key`, an fd nobody watches: deregister it now.
    /// Errors (the fd was closed) are ignored: epoll forgot it already.
    pub(super) fn drop_unwatched(&mut self, fd: RawFd) {
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        self.forget_fd(fd);
    }

    /// Before the scheduler registers `fd` for a connection or listener of
    /// its own: an fd once watched and not closed since is still in epoll.
    pub(super) fn release_unwatched(&mut self, fd: RawFd) {
        let unwatched = match self.fds.get(&fd).and_then(|&k| self.slab.get(k)) {
            Some(Entry::Fd(s)) => !s.watched,
            _ => false,
        };
        if unwatched {
            self.drop_unwatched(fd);
        }
    }

    fn forget_fd(&mut self, fd: RawFd) {
        if let Some(key) = self.fds.remove(&fd) {
            self.fired_fds.forget(fd);
            if matches!(self.slab.get(key), Some(Entry::Fd(_))) {
                self.slab.remove(key);
            }
        }
    }

    /// `(read, write)` currently watched for `fd`.
    pub fn fd_interest(&self, fd: RawFd) -> Option<(bool, bool)> {
        match self.fds.get(&fd).and_then(|&k| self.slab.get(k)) {
            Some(Entry::Fd(s)) if s.watched => {
                Some((s.interest.is_readable(), s.interest.is_writable()))
            }
            _ => None,
        }
    }
}
