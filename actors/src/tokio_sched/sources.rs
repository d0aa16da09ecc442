//! What `turn` polls itself rather than through a task: listeners and raw
//! fd watchers (asyncio's add_reader/add_writer).

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::task::Poll;

use slab::Slab;
use tokio::io::unix::AsyncFd;

use super::task::Fd;
use crate::acceptor::Listener;
use crate::ready::{ListenerId, Ready};

pub(super) struct ListenerSlot {
    pub gen: u64,
    pub listener: Listener,
    pub afd: AsyncFd<Fd>,
    pub active: bool,
    pub hot: bool,
    pub queued_hot: bool,
}

pub(super) struct FdSlot {
    pub afd: AsyncFd<Fd>,
    pub read: bool,
    pub write: bool,
}

/// Polls listeners and raw fds for readiness (without blocking), pushing
/// reports and clearing tokio's readiness so the next report needs an edge.
pub(super) fn poll_sources(
    cx: &mut std::task::Context<'_>,
    listeners: &Slab<ListenerSlot>,
    fds: &HashMap<RawFd, FdSlot>,
    polled: &mut Vec<Ready>,
) {
    for (key, s) in listeners.iter() {
        if !s.active {
            continue;
        }
        if let Poll::Ready(Ok(mut guard)) = s.afd.poll_read_ready(cx) {
            guard.clear_ready();
            let id = ListenerId { key, gen: s.gen };
            if !polled
                .iter()
                .any(|x| matches!(x, Ready::Listener { id: other } if *other == id))
            {
                polled.push(Ready::Listener { id });
            }
        }
    }
    for (fd, s) in fds.iter() {
        let mut read_seen = false;
        let mut write_seen = false;
        if s.read {
            if let Poll::Ready(Ok(mut guard)) = s.afd.poll_read_ready(cx) {
                guard.clear_ready();
                read_seen = true;
            }
        }
        if s.write {
            if let Poll::Ready(Ok(mut guard)) = s.afd.poll_write_ready(cx) {
                guard.clear_ready();
                write_seen = true;
            }
        } else if s.read {
            // An fd watched for reading that can only fail, never become
            // readable (the write end of a pipe, which asyncio's pipe
            // transport watches to see the reader go away): epoll reports
            // the error alone, and tokio files that as "write closed", not
            // as readable. selectors reports an error in every direction
            // watched; so does this. (Nothing else reaches the write side
            // of a registration made for reading only.)
            if let Poll::Ready(Ok(mut guard)) = s.afd.poll_write_ready(cx) {
                guard.clear_ready();
                read_seen = true;
            }
        }
        // Fresh: the registration is for these directions only, and its
        // readiness was cleared when last reported, so only an edge seen
        // by this turn's poll (or a hang-up, which stays) sets it.
        if read_seen || write_seen {
            match polled.iter_mut().find_map(|x| match x {
                Ready::Fd {
                    fd: other,
                    readable,
                    writable,
                } if *other == *fd => Some((readable, writable)),
                _ => None,
            }) {
                Some((readable, writable)) => {
                    *readable |= read_seen;
                    *writable |= write_seen;
                }
                None => polled.push(Ready::Fd {
                    fd: *fd,
                    readable: read_seen,
                    writable: write_seen,
                }),
            }
        }
    }
}

/// Current readiness of `fd` for the wanted directions, by `poll(2)` with a
/// zero timeout. Errors and hang-ups count as both, as selectors report.
pub(super) fn poll_now(fd: RawFd, read: bool, write: bool) -> (bool, bool) {
    let mut events = 0;
    if read {
        events |= libc::POLLIN;
    }
    if write {
        events |= libc::POLLOUT;
    }
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout: no blocking, and no memory
    // beyond `pfd` is touched.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    if n <= 0 {
        return (false, false);
    }
    let broken = pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
    (
        read && (pfd.revents & libc::POLLIN != 0 || broken),
        write && (pfd.revents & libc::POLLOUT != 0 || broken),
    )
}
