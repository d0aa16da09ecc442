//! The read and write paths of a connection with toxics (toxics/): the
//! same asyncio transport rules as the plain paths in `mod.rs`, with each
//! byte passing only when its direction's [`Flow`] lets it.
//!
//! Upstream, bytes read from the socket wait in `Toxics::held` and reach
//! the protocol one slice per read. Downstream, written bytes wait in the
//! write queue (so `get_write_buffer_size` and pause/resume_writing see
//! them) and leave as their release times come. A direction's end (a
//! limit, an error, a panic) is carried out once the bytes ahead of it
//! have passed.
//!
//! [`Flow`]: crate::toxics::flow::Flow

use std::io;
use std::sync::Arc;
use std::time::Instant;

use mio::Interest;

use super::{read_once, Connection, ReadCount};
use crate::error::ActorError;
use crate::event::{CloseError, Event};
use crate::fault::Faulty;
use crate::io_counts::IoCounts;
use crate::toxics::flow::{End, Mark};
use crate::toxics::{ToxicPlan, Toxics, UPSTREAM_HOLD_LIMIT};

impl Connection {
    /// Applies more fault plans to this connection, on top of those it
    /// has. Bytes already held stay ahead of everything newer and pass
    /// at once.
    pub fn add_toxic_plans(&mut self, plans: &[Arc<ToxicPlan>]) {
        let now = Instant::now();
        let mut all: Vec<Arc<ToxicPlan>> = match &self.toxics {
            Some(t) => t.plans().to_vec(),
            None => Vec::new(),
        };
        all.extend(plans.iter().cloned());
        let Some(mut new) = Toxics::for_connection(&all, now) else {
            return;
        };
        if let Some(old) = self.toxics.take() {
            new.take_over(*old, now);
        }
        self.toxics = Some(new);
        self.read_hot = true;
    }

    /// Bytes received from and sent to the socket so far.
    pub fn io_counts(&self) -> (u64, u64) {
        self.fault.counts.get()
    }

    /// The counters themselves, which outlive the connection.
    pub fn io_counter(&self) -> Arc<IoCounts> {
        Arc::clone(&self.fault.counts)
    }

    /// Whether toxics are installed.
    pub fn has_toxics(&self) -> bool {
        self.toxics.is_some()
    }

    /// A toxic deadline the scheduler has not been given yet.
    pub(crate) fn toxic_rearm(&mut self) -> Option<Instant> {
        self.toxics.as_mut()?.rearm(Instant::now())
    }

    /// The scheduler's deadline for this connection has fired.
    pub(crate) fn toxic_fired(&mut self) {
        if let Some(t) = &mut self.toxics {
            t.disarm();
        }
    }

    /// `interest()` narrowed by the toxics: no reading while the held
    /// buffer is full or the socket is done; no write readiness while
    /// nothing queued may leave yet (a deadline will come instead).
    pub(super) fn toxic_interest(&self, read: bool, write: bool) -> (bool, bool) {
        let Some(t) = &self.toxics else {
            return (read, write);
        };
        let read = read && !t.socket_eof && !t.local_eof && t.held.len() < UPSTREAM_HOLD_LIMIT;
        let write = write && (self.file.is_some() || t.down.due_bytes(Instant::now()) > 0);
        (read, write)
    }

    /// Timers that act on the whole connection (reset, timeout) and the
    /// removal of plans. True if the connection has ended.
    fn toxic_tick(&mut self, now: Instant, out: &mut Vec<Event>) -> bool {
        let Some(t) = &mut self.toxics else {
            return self.finished;
        };
        t.prune(now);
        if t.reset_due(now) {
            // The peer gets an RST when the socket closes, as when the
            // proxy in between resets; locally it is a reset too.
            let _ = self.stream.set_reset_on_close();
            self.finish(Some(CloseError::Io(reset_error())), out);
            return true;
        }
        let up = t.up.timeout_due(now);
        let down = t.down.timeout_due(now);
        if up || down {
            self.toxic_close();
        }
        self.finished
    }

    /// A direction was closed by a toxic: both ends of the connection see
    /// it closed, as they would through a proxy that closed both sockets.
    fn toxic_close(&mut self) {
        let _ = self.stream.shutdown_both();
        self.queue.clear();
        if let Some(t) = &mut self.toxics {
            t.local_eof = true;
        }
        self.read_hot = true;
    }

    /// Carries out a direction's end: close, error or panic.
    fn toxic_end(&mut self, end: End, out: &mut Vec<Event>) {
        match end {
            End::Close => self.toxic_close(),
            End::Error(errno) => self.finish(
                Some(CloseError::Io(io::Error::from_raw_os_error(errno))),
                out,
            ),
            End::Panic => {
                let (received, sent) = self.io_counts();
                panic!("injected fault: toxic panic (received {received} bytes, sent {sent})")
            }
        }
    }

    /// `read_count`/`read_into` with toxics: pull what the socket has into
    /// the held buffer (through `buf`), then hand over one due slice (in
    /// `buf`), an end, or nothing.
    pub(super) fn toxic_read(&mut self, buf: &mut [u8], out: &mut Vec<Event>) -> ReadCount {
        let now = Instant::now();
        if self.toxic_tick(now, out) {
            return ReadCount::Closed;
        }
        if !self.wants_read() {
            return ReadCount::WouldBlock;
        }
        if buf.is_empty() {
            return ReadCount::Data(0);
        }
        let socket_more = match self.pull_upstream(buf, now) {
            Ok(more) => more,
            Err(e) => {
                self.finish(Some(CloseError::Io(e)), out);
                return ReadCount::Closed;
            }
        };
        let Some(t) = &mut self.toxics else {
            return ReadCount::WouldBlock;
        };
        match t.up.front_due(now) {
            Some(Mark::Data(len)) => {
                let n = len.min(buf.len()).min(t.held.len());
                for (d, s) in buf.iter_mut().zip(t.held.drain(..n)) {
                    *d = s;
                }
                t.up.consume(n);
                // More slices may be due, or more bytes in the socket.
                self.read_hot = true;
                return ReadCount::Data(n);
            }
            Some(Mark::End(end)) => {
                t.up.pop_end();
                self.toxic_end(end, out);
                if self.finished {
                    return ReadCount::Closed;
                }
            }
            None => {}
        }
        let Some(t) = &mut self.toxics else {
            return ReadCount::WouldBlock;
        };
        let eof_passes =
            t.socket_eof && t.held.is_empty() && t.up.held() == 0 && t.up.eof_due(now) <= now;
        if t.local_eof || eof_passes {
            self.eof_received = true;
            self.read_hot = false;
            return ReadCount::Eof;
        }
        self.read_hot = socket_more;
        ReadCount::WouldBlock
    }

    /// One socket read (into `buf`, then the held buffer), if there is room
    /// and the socket may have data. True if it may have more.
    fn pull_upstream(&mut self, buf: &mut [u8], now: Instant) -> io::Result<bool> {
        let Connection {
            stream,
            fault,
            toxics,
            read_closed_seen,
            ..
        } = self;
        let Some(t) = toxics else {
            return Ok(false);
        };
        if t.socket_eof || t.local_eof || t.held.len() >= UPSTREAM_HOLD_LIMIT {
            return Ok(false);
        }
        let r = read_once(
            &mut Faulty {
                inner: stream,
                fault,
            },
            buf,
        );
        match r {
            Ok((0, _)) => {
                t.socket_eof = true;
                t.up.eof_due(now);
                Ok(false)
            }
            Ok((n, cap)) => {
                let passed = t.up.admit(n, now);
                t.held.extend(&buf[..passed]);
                Ok(n == cap || *read_closed_seen)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `write`/`writelines` with toxics: the admitted bytes join the write
    /// queue, and whatever is due leaves at once.
    pub(super) fn toxic_write(
        &mut self,
        chunks: &[&[u8]],
        out: &mut Vec<Event>,
    ) -> Result<(), ActorError> {
        let now = Instant::now();
        for chunk in chunks {
            let Some(t) = &mut self.toxics else { break };
            let passed = t.down.admit(chunk.len(), now);
            if passed > 0 {
                if let Some(ev) = self.queue.push(&chunk[..passed]) {
                    out.push(ev);
                }
            }
        }
        self.toxic_writable(out);
        Ok(())
    }

    /// `on_writable` with toxics (also run by `close` and `write_eof`):
    /// send what is due, carry out a due end, then a pending close or
    /// write_eof once everything has passed and any slow close is over.
    pub(super) fn toxic_writable(&mut self, out: &mut Vec<Event>) {
        let now = Instant::now();
        if self.toxic_tick(now, out) {
            return;
        }
        if self.file.is_some() && !self.flush_file(out) {
            return;
        }
        loop {
            let Some(t) = &mut self.toxics else { return };
            match t.down.front_due(now) {
                Some(Mark::Data(_)) => {
                    let allowed = t.down.due_bytes(now);
                    let Connection {
                        stream,
                        queue,
                        fault,
                        ..
                    } = self;
                    let flushed = queue.flush_upto(
                        &mut Faulty {
                            inner: stream,
                            fault,
                        },
                        allowed,
                    );
                    match flushed {
                        Ok(n) => {
                            t.down.consume(n);
                            if let Some(ev) = self.queue.maybe_resume() {
                                out.push(ev);
                            }
                            if n < allowed {
                                return; // the socket is full
                            }
                        }
                        Err(e) => {
                            self.finish(Some(CloseError::Io(e)), out);
                            return;
                        }
                    }
                }
                Some(Mark::End(end)) => {
                    t.down.pop_end();
                    self.toxic_end(end, out);
                    if self.finished {
                        return;
                    }
                }
                None => break,
            }
        }
        let Some(t) = &mut self.toxics else { return };
        let ending = self.closing || (self.eof_requested && !self.eof_written);
        if !self.queue.is_empty() || t.down.held() > 0 || !ending {
            return;
        }
        if t.down.eof_due(now) <= now {
            self.drained(out);
        }
    }

    /// asyncio `write_eof()` with toxics: the shutdown waits for the held
    /// bytes and any slow close (a deadline brings it).
    pub(super) fn toxic_write_eof(&mut self) -> Result<(), ActorError> {
        let now = Instant::now();
        let Some(t) = &mut self.toxics else {
            return Ok(());
        };
        let due = t.down.eof_due(now);
        if self.queue.is_empty() && self.file.is_none() && t.down.held() == 0 && due <= now {
            self.eof_written = true;
            self.stream.shutdown_write().map_err(ActorError::Io)?;
        }
        Ok(())
    }
}

fn reset_error() -> io::Error {
    io::Error::from_raw_os_error(libc::ECONNRESET)
}

/// The interest for a (read, write) pair.
pub(super) fn interest_of(read: bool, write: bool) -> Option<Interest> {
    match (read, write) {
        (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
        (true, false) => Some(Interest::READABLE),
        (false, true) => Some(Interest::WRITABLE),
        (false, false) => None,
    }
}
