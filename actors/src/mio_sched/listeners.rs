//! Listening sockets: registration, accept, pause/resume.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use mio::{Interest, Token};

use super::{Entry, ListenerId, ListenerSlot, MioScheduler};
use crate::acceptor::Listener;
use crate::addr::Addr;
use crate::stream::Stream;

impl MioScheduler {
    /// Registers a listener (accepting).
    pub fn add_listener(&mut self, mut listener: Listener) -> io::Result<ListenerId> {
        self.release_unwatched(listener.as_raw_fd());
        let gen = self.gen();
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(&mut listener, Token(key), Interest::READABLE)?;
        entry.insert(Entry::Listener(ListenerSlot {
            gen,
            listener,
            active: true,
            hot: false,
            queued_hot: false,
            seen_turn: 0,
        }));
        Ok(ListenerId { key, gen })
    }

    fn listener_slot(&mut self, id: ListenerId) -> Option<&mut ListenerSlot> {
        match self.slab.get_mut(id.key) {
            Some(Entry::Listener(s)) if s.gen == id.gen => Some(s),
            _ => None,
        }
    }

    /// Accepts one connection (`Ok(None)`: none pending). The caller loops
    /// up to its backlog and then `add_connection`s the stream; if it stops
    /// before `Ok(None)`, the listener is reported again next turn.
    /// `NotFound` for a removed listener.
    pub fn accept(&mut self, id: ListenerId) -> io::Result<Option<(Stream, Addr)>> {
        let Some(s) = self.listener_slot(id) else {
            return Err(io::ErrorKind::NotFound.into());
        };
        let r = s.listener.accept();
        // Errors keep it hot: the failed connection may still be queued,
        // as a level-triggered selector would report.
        s.hot = !matches!(r, Ok(None));
        if s.hot && s.active && !s.queued_hot {
            s.queued_hot = true;
            self.hot.push((id.key, id.gen));
        }
        r
    }

    /// Stops reporting the listener (deregisters it).
    pub fn pause_listener(&mut self, id: ListenerId) -> io::Result<()> {
        let registry = self.poll.registry();
        let Some(Entry::Listener(s)) = self.slab.get_mut(id.key) else {
            return Err(io::ErrorKind::NotFound.into());
        };
        if s.gen != id.gen {
            return Err(io::ErrorKind::NotFound.into());
        }
        if s.active {
            registry.deregister(&mut s.listener)?;
            s.active = false;
        }
        Ok(())
    }

    /// Reports the listener again (re-registering re-checks readiness).
    pub fn resume_listener(&mut self, id: ListenerId) -> io::Result<()> {
        let registry = self.poll.registry();
        let Some(Entry::Listener(s)) = self.slab.get_mut(id.key) else {
            return Err(io::ErrorKind::NotFound.into());
        };
        if s.gen != id.gen {
            return Err(io::ErrorKind::NotFound.into());
        }
        if !s.active {
            registry.register(&mut s.listener, Token(id.key), Interest::READABLE)?;
            s.active = true;
        }
        Ok(())
    }

    /// Unregisters and hands back the listener (drop it to close the fd).
    pub fn remove_listener(&mut self, id: ListenerId) -> Option<Listener> {
        self.listener_slot(id)?;
        match self.slab.remove(id.key) {
            Entry::Listener(mut s) => {
                if s.active {
                    let _ = self.poll.registry().deregister(&mut s.listener);
                }
                Some(s.listener)
            }
            // Unreachable (checked above); put it back rather than panic.
            // The slab refills the slot it just freed, so the key holds.
            other => {
                self.slab.insert(other);
                None
            }
        }
    }

    pub fn listener_fd(&mut self, id: ListenerId) -> Option<RawFd> {
        self.listener_slot(id).map(|s| s.listener.as_raw_fd())
    }

    pub fn listener_addr(&mut self, id: ListenerId) -> Option<io::Result<Addr>> {
        self.listener_slot(id).map(|s| s.listener.local_addr())
    }
}
