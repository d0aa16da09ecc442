//! What a scheduler's `turn` reports: the ids of connections and listeners,
//! and one [`Ready`] record per source that became ready, merged when a
//! source is reported twice in one turn.

use std::os::fd::RawFd;

/// Handle of a connection actor. Carries a generation, so an id whose
/// actor has ended never reaches a newer actor that reused the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub(crate) key: usize,
    pub(crate) gen: u64,
}

/// Handle of a listener; generation-checked like [`ConnId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId {
    pub(crate) key: usize,
    pub(crate) gen: u64,
}

/// One readiness record produced by a scheduler's `turn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// The waker was triggered (at most once per turn).
    Woken,
    /// A watched raw fd; flags only for directions being watched. Errors
    /// and hang-ups set every watched direction, like `selectors`.
    Fd {
        fd: RawFd,
        readable: bool,
        writable: bool,
    },
    /// A connection: call `read` (until `WouldBlock`, or once — the
    /// scheduler reports it again next turn if data may remain) and/or
    /// `on_writable`.
    Conn {
        id: ConnId,
        readable: bool,
        writable: bool,
    },
    /// A listener has (or may have) pending connections: call `accept`.
    Listener { id: ListenerId },
}

/// Where this turn's record of a connection is, so that a second report of
/// it in the same turn (an edge and a re-read, say) merges into the first.
#[derive(Debug, Default)]
pub(crate) struct TurnRecord {
    turn: u64,
    index: usize,
}

impl TurnRecord {
    /// Adds readiness to turn `turn`'s record of connection `id` in `out`,
    /// or makes that record.
    pub(crate) fn report(
        &mut self,
        turn: u64,
        id: ConnId,
        readable: bool,
        writable: bool,
        out: &mut Vec<Ready>,
    ) {
        if self.turn == turn {
            if let Some(Ready::Conn {
                readable: r,
                writable: w,
                ..
            }) = out.get_mut(self.index)
            {
                *r |= readable;
                *w |= writable;
                return;
            }
        }
        self.turn = turn;
        self.index = out.len();
        out.push(Ready::Conn {
            id,
            readable,
            writable,
        });
    }
}
