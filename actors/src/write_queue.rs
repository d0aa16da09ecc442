//! Pending outgoing bytes plus asyncio-style write flow control.
//!
//! Independent of mio: flushing works on any `std::io::Write`, so a threaded
//! scheduler can reuse it unchanged.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use crate::error::LimitsError;
use crate::event::Event;

/// asyncio's default high-water mark.
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// Chunks at most this big are appended to the previous chunk instead of
/// becoming a chunk of their own: many tiny writes would otherwise cost one
/// allocation and one iovec each.
const COALESCE_MAX: usize = 4 * 1024;
/// A coalesced chunk stops growing at this size.
const COALESCE_CHUNK_CAP: usize = 64 * 1024;
/// iovecs handed to one `writev`; well under IOV_MAX (1024 on Linux).
const MAX_IOVECS: usize = 64;

/// FIFO of byte chunks awaiting the socket, with its pause/resume state.
#[derive(Debug)]
pub struct WriteQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of `chunks[0]` already written (partial write).
    head_off: usize,
    size: usize,
    high: usize,
    low: usize,
    /// `PauseWriting` was emitted and `ResumeWriting` not yet.
    paused: bool,
}

impl Default for WriteQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WriteQueue {
    pub fn new() -> Self {
        WriteQueue {
            chunks: VecDeque::new(),
            head_off: 0,
            size: 0,
            high: DEFAULT_HIGH_WATER,
            low: DEFAULT_HIGH_WATER / 4,
            paused: false,
        }
    }

    /// Total pending bytes (asyncio `get_write_buffer_size`).
    pub fn len(&self) -> usize {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// `(low, high)`, in the order asyncio's `get_write_buffer_limits` uses.
    pub fn limits(&self) -> (usize, usize) {
        (self.low, self.high)
    }

    /// Whether the protocol is currently told to pause writing.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// asyncio `_set_write_buffer_limits`. Does not emit events; call
    /// [`WriteQueue::maybe_pause`] afterwards as asyncio does.
    pub fn set_limits(
        &mut self,
        high: Option<usize>,
        low: Option<usize>,
    ) -> Result<(), LimitsError> {
        let high = match (high, low) {
            (Some(h), _) => h,
            (None, Some(l)) => l.saturating_mul(4),
            (None, None) => DEFAULT_HIGH_WATER,
        };
        let low = low.unwrap_or(high / 4);
        if high < low {
            return Err(LimitsError { high, low });
        }
        self.high = high;
        self.low = low;
        Ok(())
    }

    /// Appends a copy of `data`; returns `PauseWriting` if this crossed the
    /// high-water mark.
    pub fn push(&mut self, data: &[u8]) -> Option<Event> {
        if data.is_empty() {
            return None;
        }
        if !self.try_coalesce(data) {
            self.chunks.push_back(data.to_vec());
        }
        self.size += data.len();
        self.maybe_pause()
    }

    /// Appends an owned chunk without copying (unless it is small enough to
    /// coalesce).
    pub fn push_owned(&mut self, data: Vec<u8>) -> Option<Event> {
        if data.is_empty() {
            return None;
        }
        let n = data.len();
        if !self.try_coalesce(&data) {
            self.chunks.push_back(data);
        }
        self.size += n;
        self.maybe_pause()
    }

    fn try_coalesce(&mut self, data: &[u8]) -> bool {
        if data.len() > COALESCE_MAX {
            return false;
        }
        match self.chunks.back_mut() {
            Some(last) if last.len() + data.len() <= COALESCE_CHUNK_CAP => {
                last.extend_from_slice(data);
                true
            }
            _ => false,
        }
    }

    /// Drops everything (abort). Flow-control state is left as is: the
    /// actor is ending, and asyncio does not resume a protocol on abort.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.head_off = 0;
        self.size = 0;
    }

    /// Emits `PauseWriting` once when the size is above the high mark.
    pub fn maybe_pause(&mut self) -> Option<Event> {
        if !self.paused && self.size > self.high {
            self.paused = true;
            Some(Event::PauseWriting)
        } else {
            None
        }
    }

    /// Emits `ResumeWriting` once when a paused queue drained to the low mark.
    pub fn maybe_resume(&mut self) -> Option<Event> {
        if self.paused && self.size <= self.low {
            self.paused = false;
            Some(Event::ResumeWriting)
        } else {
            None
        }
    }

    /// Marks `n` leading bytes as written.
    pub fn consume(&mut self, mut n: usize) {
        n = n.min(self.size);
        self.size -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.len() - self.head_off;
            if n < left {
                self.head_off += n;
                return;
            }
            n -= left;
            self.head_off = 0;
            self.chunks.pop_front();
        }
        if self.size == 0 {
            // Partial-write bookkeeping must not outlive the data.
            self.chunks.clear();
            self.head_off = 0;
        }
    }

    /// Writes queued data with vectored writes until the queue is empty or
    /// the writer would block. Returns the bytes written; `Err` only for a
    /// real (fatal) error. `Interrupted` is retried.
    ///
    /// A short write also stops the loop: the socket buffer is full, so
    /// another attempt would only cost a syscall returning `WouldBlock`;
    /// the kernel signals writability again once space frees up.
    #[inline]
    pub fn flush_to<W: Write + ?Sized>(&mut self, w: &mut W) -> io::Result<usize> {
        self.flush_upto(w, usize::MAX)
    }

    /// [`WriteQueue::flush_to`] for the first `limit` queued bytes only
    /// (those ahead of a file segment).
    #[inline]
    pub fn flush_upto<W: Write + ?Sized>(&mut self, w: &mut W, limit: usize) -> io::Result<usize> {
        let mut total = 0;
        while self.size > 0 && total < limit {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            let mut asked = 0;
            let budget = limit - total;
            for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
                let part = if i == 0 {
                    &chunk[self.head_off..]
                } else {
                    &chunk[..]
                };
                let part = &part[..part.len().min(budget - asked)];
                slices[i] = IoSlice::new(part);
                asked += part.len();
                count += 1;
                if asked == budget {
                    break;
                }
            }
            match w.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.consume(n);
                    total += n;
                    if n < asked {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }
}
