//! The mio reactor behind RLoop: one epoll, single-threaded.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::reactor::{Reactor, Readiness, Wake};

const WAKER: Token = Token(usize::MAX);

struct MioWaker(mio::Waker);

impl Wake for MioWaker {
    fn wake(&self) -> io::Result<()> {
        self.0.wake()
    }
}

pub struct MioReactor {
    poll: Poll,
    events: Events,
    waker: Arc<MioWaker>,
    /// Raw fds registered for add_reader/add_writer, with their interest.
    fds: HashMap<RawFd, Interest>,
}

impl MioReactor {
    pub fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(MioWaker(mio::Waker::new(poll.registry(), WAKER)?));
        Ok(MioReactor {
            poll,
            events: Events::with_capacity(1024),
            waker,
            fds: HashMap::new(),
        })
    }
}

fn interest(read: bool, write: bool) -> Option<Interest> {
    match (read, write) {
        (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
        (true, false) => Some(Interest::READABLE),
        (false, true) => Some(Interest::WRITABLE),
        (false, false) => None,
    }
}

impl Reactor for MioReactor {
    fn turn(&mut self, timeout: Option<Duration>, out: &mut Vec<Readiness>) -> io::Result<()> {
        self.poll.poll(&mut self.events, timeout)?;
        for ev in self.events.iter() {
            if ev.token() == WAKER {
                out.push(Readiness::Woken);
                continue;
            }
            let fd = ev.token().0 as RawFd;
            // An error or hang-up wakes both sides, as select() would.
            let broken = ev.is_error() || ev.is_read_closed() || ev.is_write_closed();
            out.push(Readiness::Fd {
                fd,
                readable: ev.is_readable() || broken,
                writable: ev.is_writable() || broken,
            });
        }
        Ok(())
    }

    fn waker(&self) -> Arc<dyn Wake> {
        self.waker.clone()
    }

    fn watch_fd(&mut self, fd: RawFd, read: bool, write: bool) -> io::Result<()> {
        let registry = self.poll.registry();
        match (self.fds.get(&fd).copied(), interest(read, write)) {
            (None, None) => Ok(()),
            (Some(_), None) => {
                self.fds.remove(&fd);
                // The fd may be closed already; the kernel then forgot it.
                let _ = registry.deregister(&mut SourceFd(&fd));
                Ok(())
            }
            (None, Some(i)) => {
                let token = Token(fd as usize);
                match registry.register(&mut SourceFd(&fd), token, i) {
                    // A dup of a closed fd can still be in the epoll set.
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                        registry.reregister(&mut SourceFd(&fd), token, i)?
                    }
                    r => r?,
                }
                self.fds.insert(fd, i);
                Ok(())
            }
            (Some(_), Some(i)) => {
                registry.reregister(&mut SourceFd(&fd), Token(fd as usize), i)?;
                self.fds.insert(fd, i);
                Ok(())
            }
        }
    }

    fn rearm_fd(&mut self, fd: RawFd) {
        if let Some(i) = self.fds.get(&fd).copied() {
            // Re-registering makes epoll report the fd again if it is still
            // ready: level-triggered behaviour on top of mio's edge trigger.
            let _ = self
                .poll
                .registry()
                .reregister(&mut SourceFd(&fd), Token(fd as usize), i);
        }
    }
}
