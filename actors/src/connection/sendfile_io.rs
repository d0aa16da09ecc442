//! A file segment (`loop.sendfile()`) in a connection's write stream: it
//! goes out with sendfile(2) behind the bytes queued before it, and the
//! bytes written meanwhile wait behind it (see sendfile.rs).

use std::os::fd::AsRawFd;

use super::Connection;
use crate::error::ActorError;
use crate::event::{CloseError, Event};
use crate::fault::Faulty;
use crate::sendfile::{copy_error, ends_connection, FileSegment, SendfileError};

impl Connection {
    /// asyncio `loop.sendfile()` on this connection: queues `segment`
    /// behind the bytes already queued (writes made meanwhile go behind
    /// it) and starts sending it now if nothing is ahead of it. Its end
    /// is reported as `Event::SendfileDone`, possibly in `out` already.
    pub fn sendfile(
        &mut self,
        mut segment: FileSegment,
        out: &mut Vec<Event>,
    ) -> Result<(), ActorError> {
        self.check_writable()?;
        if self.file.is_some() {
            return Err(ActorError::SendfileInProgress);
        }
        segment.ahead = self.queue.len();
        self.file = Some(Box::new(segment));
        if self.queue.is_empty() {
            self.on_writable(out);
        }
        Ok(())
    }

    /// Drops the pending file segment, if any (its caller gave up), and
    /// returns the bytes of it sent; they stay sent. No event.
    pub fn cancel_sendfile(&mut self, out: &mut Vec<Event>) -> Option<u64> {
        let segment = self.file.take()?;
        if self.queue.is_empty() && !self.finished {
            self.drained(out);
        }
        Some(segment.sent())
    }

    /// A file segment is pending.
    pub fn sendfile_pending(&self) -> bool {
        self.file.is_some()
    }

    /// Sends the bytes queued ahead of the file segment, then the file.
    /// True once the segment is over and the rest of the queue may go.
    pub(super) fn flush_file(&mut self, out: &mut Vec<Event>) -> bool {
        let Connection {
            stream,
            queue,
            fault,
            file,
            ..
        } = self;
        let Some(segment) = file.as_deref_mut() else {
            return true;
        };
        if segment.ahead > 0 {
            let flushed = queue.flush_upto(
                &mut Faulty {
                    inner: &mut *stream,
                    fault: &mut *fault,
                },
                segment.ahead,
            );
            match flushed {
                Ok(n) => segment.ahead -= n.min(segment.ahead),
                Err(e) => {
                    let done = segment.outcome(Some(SendfileError::Flush(copy_error(&e))));
                    self.file = None;
                    out.push(Event::SendfileDone(done));
                    self.finish(Some(CloseError::Io(e)), out);
                    return false;
                }
            }
            if let Some(ev) = queue.maybe_resume() {
                out.push(ev);
            }
            if segment.ahead > 0 {
                return false;
            }
        }
        let (done, broken) = match segment.send(stream.as_raw_fd(), fault) {
            Ok(false) => return false,
            Ok(true) => (segment.outcome(None), None),
            Err(e) if ends_connection(&e) => (
                segment.outcome(Some(SendfileError::Sendfile(copy_error(&e)))),
                Some(e),
            ),
            Err(e) => (segment.outcome(Some(SendfileError::Sendfile(e))), None),
        };
        self.file = None;
        out.push(Event::SendfileDone(done));
        if let Some(e) = broken {
            self.finish(Some(CloseError::Io(e)), out);
            return false;
        }
        true
    }
}
