//! The connection actor's state machine: one socket, its read buffer, its
//! write queue, and the asyncio transport rules around them.
//!
//! A `Connection` never calls anyone: results come back as return values
//! and events are pushed into the caller's `out` vector. It emits its own
//! `Closed` for every ending except a panic (the supervisor's job).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use mio::Interest;

use crate::addr::Addr;
use crate::error::ActorError;
use crate::event::{CloseError, Event};
use crate::fault::{FaultPlan, FaultState, Faulty};
use crate::sendfile::{FileSegment, SendfileError};
use crate::stream::Stream;
use crate::toxics::Toxics;
use crate::write_queue::WriteQueue;

mod sendfile_io;
mod toxic_io;

/// The read buffer of a scheduler: one for all its connections (a read's
/// bytes are copied out before the next read), so an idle connection
/// costs no buffer at all.
pub const DEFAULT_READ_BUFFER: usize = 256 * 1024;
/// Most iovecs one immediate `writelines` hands to `writev`.
const MAX_IOVECS: usize = 64;

/// One read, with the data lent from the connection's buffer.
#[derive(Debug)]
pub enum ReadResult<'a> {
    /// Bytes received; the borrow must end before the caller runs Python.
    Data(&'a [u8]),
    /// The peer shut down its side. Reading stops; the caller decides
    /// whether to close (asyncio: unless `eof_received()` returns true).
    Eof,
    /// Nothing to read now (or reading is paused/closing/after EOF).
    WouldBlock,
    /// The connection is gone: either this read failed and `Closed(Some)`
    /// was pushed to `out`, or it had already been closed.
    Closed,
}

/// One read into a caller buffer (BufferedProtocol); like [`ReadResult`]
/// but with a byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadCount {
    /// Bytes placed at the start of the caller's buffer. `Data(0)` only for
    /// an empty caller buffer (no syscall is made).
    Data(usize),
    Eof,
    WouldBlock,
    Closed,
}

/// Socket and addresses, for `get_extra_info`.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub fd: RawFd,
    pub kind: crate::stream::StreamKind,
    pub peer: Option<Addr>,
    pub local: Option<Addr>,
}

/// State machine of one connection.
#[derive(Debug)]
pub struct Connection {
    stream: Stream,
    /// Most bytes one read takes (the scheduler's buffer may be larger).
    read_limit: usize,
    queue: WriteQueue,
    /// A file being sent (sendfile), after the first `ahead` queued bytes
    /// and before the rest.
    file: Option<Box<FileSegment>>,
    /// Not paused by the protocol.
    reading: bool,
    eof_received: bool,
    /// `write_eof()` was called.
    eof_requested: bool,
    eof_written: bool,
    closing: bool,
    /// The queue drained while closing, in the same call that emitted
    /// `ResumeWriting`: the close waits one turn for the protocol, which
    /// asyncio lets write again from resume_writing() (SSL's close_notify).
    close_after_resume: bool,
    /// `Closed` has been emitted; nothing happens any more.
    finished: bool,
    /// Reads may still find data: the last read neither hit WouldBlock nor
    /// came back short. mio is edge-triggered, so without this a caller
    /// that reads once per readiness could stall.
    read_hot: bool,
    /// The poller reported the peer's FIN/HUP. A short read then does not
    /// mean "drained": the EOF is still to be read and will not raise a
    /// new edge.
    read_closed_seen: bool,
    fault: FaultState,
    /// Fault injection (toxics/): `None` on every connection without a
    /// plan, which then pays one branch per socket call.
    toxics: Option<Box<Toxics>>,
}

impl Connection {
    pub fn new(stream: Stream) -> Self {
        Self::with_read_buffer(stream, DEFAULT_READ_BUFFER)
    }

    /// Reads take at most `size` bytes at a time (clamped to at least 1).
    pub fn with_read_buffer(stream: Stream, size: usize) -> Self {
        Connection {
            stream,
            read_limit: size.max(1),
            queue: WriteQueue::new(),
            file: None,
            reading: true,
            eof_received: false,
            eof_requested: false,
            eof_written: false,
            closing: false,
            close_after_resume: false,
            finished: false,
            read_hot: false,
            read_closed_seen: false,
            fault: FaultState::default(),
            toxics: None,
        }
    }

    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    pub(crate) fn stream_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }

    pub fn info(&self) -> ConnInfo {
        ConnInfo {
            fd: self.stream.as_raw_fd(),
            kind: self.stream.kind(),
            peer: self.stream.peer_addr().ok(),
            local: self.stream.local_addr().ok(),
        }
    }

    pub fn set_fault(&mut self, plan: FaultPlan) {
        self.fault.install(plan);
    }

    /// `Closed` was emitted.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// asyncio `is_closing()`.
    pub fn is_closing(&self) -> bool {
        self.closing || self.finished
    }

    /// asyncio `is_reading()`.
    pub fn is_reading(&self) -> bool {
        self.reading && !self.closing && !self.finished
    }

    fn wants_read(&self) -> bool {
        self.is_reading() && !self.eof_received
    }

    /// Whether a readiness report is due even without a new OS event.
    pub fn read_pending(&self) -> bool {
        self.read_hot && self.wants_read()
    }

    /// Whether a close waits only for a writable report (see
    /// `close_after_resume`): the scheduler reports it without an OS event.
    pub fn close_pending(&self) -> bool {
        self.close_after_resume && self.queue.is_empty() && self.file.is_none() && !self.finished
    }

    /// Records that the poller saw the read side closed (FIN, HUP, error).
    pub(crate) fn note_read_closed(&mut self) {
        self.read_closed_seen = true;
    }

    /// The readiness this connection needs now; `None` means it should not
    /// be registered at all.
    pub fn interest(&self) -> Option<Interest> {
        let read = self.wants_read();
        let write = !self.finished && (!self.queue.is_empty() || self.file.is_some());
        if self.toxics.is_some() {
            let (read, write) = self.toxic_interest(read, write);
            return toxic_io::interest_of(read, write);
        }
        toxic_io::interest_of(read, write)
    }

    pub fn write_buffer_size(&self) -> usize {
        self.queue.len()
    }

    /// `(low, high)` like asyncio's `get_write_buffer_limits()`.
    pub fn write_buffer_limits(&self) -> (usize, usize) {
        self.queue.limits()
    }

    /// One read into the scheduler's buffer `buf`, returning the count
    /// (the scheduler lends the bytes afterwards).
    pub(crate) fn read_count(&mut self, buf: &mut [u8], out: &mut Vec<Event>) -> ReadCount {
        let limit = self.read_limit.min(buf.len());
        self.read_into(&mut buf[..limit], out)
    }

    /// One read into `buf` (BufferedProtocol's `get_buffer()` memory).
    pub fn read_into(&mut self, buf: &mut [u8], out: &mut Vec<Event>) -> ReadCount {
        if self.toxics.is_some() {
            return self.toxic_read(buf, out);
        }
        if let Some(early) = self.read_gate() {
            return early;
        }
        if buf.is_empty() {
            return ReadCount::Data(0);
        }
        let Connection { stream, fault, .. } = self;
        let r = read_once(
            &mut Faulty {
                inner: stream,
                fault,
            },
            buf,
        );
        self.after_read(r, out)
    }

    /// Answers without a syscall when no read may happen.
    fn read_gate(&self) -> Option<ReadCount> {
        if self.finished {
            Some(ReadCount::Closed)
        } else if !self.wants_read() {
            Some(ReadCount::WouldBlock)
        } else {
            None
        }
    }

    fn after_read(&mut self, r: io::Result<(usize, usize)>, out: &mut Vec<Event>) -> ReadCount {
        match r {
            Ok((0, _)) => {
                self.eof_received = true;
                self.read_hot = false;
                ReadCount::Eof
            }
            Ok((n, cap)) => {
                // A short read drained the socket buffer (Linux stream
                // sockets copy until the queue is empty) and data arriving
                // later raises a fresh edge — unless a FIN was already
                // seen: that EOF is still unread and raises no new edge.
                self.read_hot = n == cap || self.read_closed_seen;
                ReadCount::Data(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.read_hot = false;
                ReadCount::WouldBlock
            }
            Err(e) => {
                self.finish(Some(CloseError::Io(e)), out);
                ReadCount::Closed
            }
        }
    }

    /// asyncio `write()`: try the socket at once when nothing is queued,
    /// queue (a copy of) whatever is left. A fatal socket error ends the
    /// actor (`Closed(Some)` in `out`) and still returns `Ok`.
    pub fn write(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), ActorError> {
        self.writelines(&[data], out)
    }

    /// asyncio `writelines()`: like `write` with the chunks concatenated,
    /// but sent with one `writev` instead of being joined first.
    pub fn writelines(&mut self, chunks: &[&[u8]], out: &mut Vec<Event>) -> Result<(), ActorError> {
        self.check_writable()?;
        if self.toxics.is_some() {
            return self.toxic_write(chunks, out);
        }
        let mut skip = 0; // bytes of `chunks` already sent
        if self.queue.is_empty() && self.file.is_none() {
            match self.write_now(chunks) {
                Ok(n) => skip = n,
                Err(e) => {
                    self.finish(Some(CloseError::Io(e)), out);
                    return Ok(());
                }
            }
        }
        for chunk in chunks {
            if skip >= chunk.len() {
                skip -= chunk.len();
                continue;
            }
            if let Some(ev) = self.queue.push(&chunk[skip..]) {
                out.push(ev);
            }
            skip = 0;
        }
        Ok(())
    }

    /// Queues an owned buffer (the `Command::Write` path) without copying
    /// when it has to wait.
    pub fn write_owned(&mut self, data: Vec<u8>, out: &mut Vec<Event>) -> Result<(), ActorError> {
        self.check_writable()?;
        if self.toxics.is_some() {
            return self.toxic_write(&[&data], out);
        }
        let mut sent = 0;
        if self.queue.is_empty() && self.file.is_none() {
            match self.write_now(&[&data]) {
                Ok(n) => sent = n,
                Err(e) => {
                    self.finish(Some(CloseError::Io(e)), out);
                    return Ok(());
                }
            }
        }
        let ev = if sent == 0 {
            self.queue.push_owned(data)
        } else {
            self.queue.push(&data[sent.min(data.len())..])
        };
        if let Some(ev) = ev {
            out.push(ev);
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<(), ActorError> {
        if self.finished {
            Err(ActorError::Closed)
        } else if self.eof_requested {
            Err(ActorError::WriteAfterEof)
        } else {
            Ok(())
        }
    }

    /// Sends as much of `chunks` as the socket takes right now, with a
    /// single write/writev. `Ok(n)` is the byte count sent (0 on WouldBlock).
    fn write_now(&mut self, chunks: &[&[u8]]) -> io::Result<usize> {
        let mut dst = Faulty {
            inner: &mut self.stream,
            fault: &mut self.fault,
        };
        // One chunk (every `write()`): a plain send, no iovec array to fill.
        if let [chunk] = chunks {
            if chunk.is_empty() {
                return Ok(0);
            }
            return send_once(|| dst.write(chunk));
        }
        let mut slices = [io::IoSlice::new(&[]); MAX_IOVECS];
        let mut count = 0;
        for c in chunks.iter().filter(|c| !c.is_empty()).take(MAX_IOVECS) {
            slices[count] = io::IoSlice::new(c);
            count += 1;
        }
        match count {
            0 => Ok(0),
            1 => send_once(|| dst.write(&slices[0])),
            _ => send_once(|| dst.write_vectored(&slices[..count])),
        }
    }

    /// The socket is writable: flush, then resume the protocol / do the
    /// deferred shutdown / finish a pending close, in asyncio's order.
    pub fn on_writable(&mut self, out: &mut Vec<Event>) {
        if self.finished {
            return;
        }
        if self.toxics.is_some() {
            return self.toxic_writable(out);
        }
        if self.file.is_some() && !self.flush_file(out) {
            return;
        }
        if !self.queue.is_empty() {
            let Connection {
                stream,
                queue,
                fault,
                ..
            } = self;
            if let Err(e) = queue.flush_to(&mut Faulty {
                inner: stream,
                fault,
            }) {
                self.finish(Some(CloseError::Io(e)), out);
                return;
            }
            if let Some(ev) = self.queue.maybe_resume() {
                out.push(ev);
            }
        }
        if self.queue.is_empty() {
            self.drained(out);
        }
    }

    /// Everything is sent: a pending close or write_eof goes ahead.
    fn drained(&mut self, out: &mut Vec<Event>) {
        // As asyncio's transports do, a paused protocol hears
        // resume_writing() before the close goes ahead, and may still write.
        let resuming = out.iter().any(|e| matches!(e, Event::ResumeWriting));
        self.close_after_resume = self.closing && resuming;
        if self.close_after_resume {
            return;
        }
        if self.closing {
            self.finish(None, out);
        } else if self.eof_requested && !self.eof_written {
            self.eof_written = true;
            // asyncio lets this error escape from the writer callback;
            // here it is fatal for the connection, never silent.
            if let Err(e) = self.stream.shutdown_write() {
                self.finish(Some(CloseError::Io(e)), out);
            }
        }
    }

    /// asyncio `write_eof()`: shut down the write side now if nothing is
    /// queued, else once the queue drains. Ignored when closing or repeated.
    pub fn write_eof(&mut self) -> Result<(), ActorError> {
        if self.is_closing() || self.eof_requested {
            return Ok(());
        }
        self.eof_requested = true;
        if self.toxics.is_some() {
            return self.toxic_write_eof();
        }
        if self.queue.is_empty() && self.file.is_none() {
            self.eof_written = true;
            self.stream.shutdown_write().map_err(ActorError::Io)?;
        }
        Ok(())
    }

    /// asyncio `can_write_eof()`: always true for stream sockets.
    pub fn can_write_eof(&self) -> bool {
        true
    }

    /// asyncio `pause_reading()`; ignored unless reading.
    pub fn pause_reading(&mut self) {
        if self.is_reading() {
            self.reading = false;
        }
    }

    /// asyncio `resume_reading()`; ignored when closing or not paused.
    pub fn resume_reading(&mut self) {
        if self.is_closing() || self.reading {
            return;
        }
        self.reading = true;
        // Data may have arrived while paused without raising a new edge.
        self.read_hot = true;
    }

    /// asyncio `close()`: stop reading; finish now if nothing is queued,
    /// else after the queue has been flushed. Ignored when already closing.
    pub fn close(&mut self, out: &mut Vec<Event>) {
        if self.is_closing() {
            return;
        }
        self.closing = true;
        if self.toxics.is_some() {
            return self.toxic_writable(out);
        }
        if self.queue.is_empty() && self.file.is_none() {
            self.finish(None, out);
        }
    }

    /// asyncio `abort()`: drop queued data and finish now.
    pub fn abort(&mut self, out: &mut Vec<Event>) {
        self.closing = true;
        self.finish(None, out);
    }

    /// asyncio `set_write_buffer_limits(high, low)`; may pause the protocol.
    pub fn set_write_buffer_limits(
        &mut self,
        high: Option<usize>,
        low: Option<usize>,
        out: &mut Vec<Event>,
    ) -> Result<(), ActorError> {
        if self.finished {
            return Err(ActorError::Closed);
        }
        self.queue.set_limits(high, low)?;
        if let Some(ev) = self.queue.maybe_pause() {
            out.push(ev);
        }
        Ok(())
    }

    /// Ends the actor: the only place that emits `Closed`, and only once.
    pub(crate) fn finish(&mut self, err: Option<CloseError>, out: &mut Vec<Event>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.closing = true;
        self.read_hot = false;
        self.queue.clear();
        if let Some(segment) = self.file.take() {
            out.push(Event::SendfileDone(
                segment.outcome(Some(SendfileError::Closed)),
            ));
        }
        out.push(Event::Closed(err));
    }
}

/// One send (retried on EINTR): bytes sent, 0 if the socket is full.
fn send_once(mut send: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match send() {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        }
    }
}

fn read_once<R: Read>(src: &mut R, buf: &mut [u8]) -> io::Result<(usize, usize)> {
    loop {
        match src.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(|n| (n, buf.len())),
        }
    }
}
