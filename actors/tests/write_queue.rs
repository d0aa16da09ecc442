//! WriteQueue: limits validation, flow-control thresholds, flushing.

use std::io::{self, IoSlice, Write};

use actors::{Event, WriteQueue};

#[test]
fn limits_follow_asyncio_defaults_and_validation() {
    let mut q = WriteQueue::new();
    assert_eq!(q.limits(), (16384, 65536));
    q.set_limits(Some(1000), None).unwrap();
    assert_eq!(q.limits(), (250, 1000));
    q.set_limits(None, Some(100)).unwrap();
    assert_eq!(q.limits(), (100, 400));
    q.set_limits(None, None).unwrap();
    assert_eq!(q.limits(), (16384, 65536));
    q.set_limits(Some(0), Some(0)).unwrap();
    assert_eq!(q.limits(), (0, 0));
    let e = q.set_limits(Some(10), Some(11)).unwrap_err();
    assert_eq!(e.to_string(), "high (10) must be >= low (11) must be >= 0");
    // A rejected call leaves the old limits.
    assert_eq!(q.limits(), (0, 0));
    assert!(q.set_limits(None, Some(usize::MAX)).is_ok());
}

#[test]
fn pause_once_above_high_resume_at_low() {
    let mut q = WriteQueue::new();
    q.set_limits(Some(100), Some(40)).unwrap();
    assert!(q.push(&[0; 100]).is_none(), "== high is not above high");
    assert!(matches!(q.push(&[0; 1]), Some(Event::PauseWriting)));
    assert!(q.push(&[0; 50]).is_none(), "pause is emitted once");
    assert!(q.is_paused());
    q.consume(100);
    assert_eq!(q.len(), 51);
    assert!(q.maybe_resume().is_none());
    q.consume(11);
    assert!(matches!(q.maybe_resume(), Some(Event::ResumeWriting)));
    assert!(q.maybe_resume().is_none());
    assert!(!q.is_paused());
    q.consume(1000);
    assert!(q.is_empty());
}

/// Accepts at most `cap` bytes per call, then WouldBlock after `budget`.
struct Trickle {
    got: Vec<u8>,
    cap: usize,
    budget: usize,
    calls: usize,
}

impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.calls += 1;
        if self.budget == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if self.calls.is_multiple_of(3) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(self.cap - n).min(self.budget - n);
            self.got.extend_from_slice(&b[..take]);
            n += take;
            if take < b.len() {
                break;
            }
        }
        self.budget -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn flush_handles_partial_writes_and_would_block() {
    let mut q = WriteQueue::new();
    let mut want = Vec::new();
    for i in 0..200u32 {
        // Mix of small (coalesced) and large (own chunk) pieces.
        let piece: Vec<u8> = (0..(i as usize * 97 % 9000))
            .map(|j| (i as usize + j) as u8)
            .collect();
        want.extend_from_slice(&piece);
        if i % 2 == 0 {
            q.push(&piece);
        } else {
            q.push_owned(piece);
        }
    }
    assert_eq!(q.len(), want.len());
    let mut w = Trickle {
        got: Vec::new(),
        cap: 10_000,
        budget: 100_000,
        calls: 0,
    };
    let mut total = 0;
    let mut rounds = 0;
    while !q.is_empty() {
        rounds += 1;
        assert!(rounds < 100_000);
        total += q.flush_to(&mut w).unwrap();
        w.budget = 100_000;
    }
    assert_eq!(total, want.len());
    assert!(w.got == want);
}

#[test]
fn flush_reports_fatal_errors_and_write_zero() {
    struct Broken(io::ErrorKind);
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut q = WriteQueue::new();
    q.push(b"abc");
    let e = q
        .flush_to(&mut Broken(io::ErrorKind::BrokenPipe))
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(q.len(), 3);
    struct Zero;
    impl Write for Zero {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Ok(0)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    assert_eq!(
        q.flush_to(&mut Zero).unwrap_err().kind(),
        io::ErrorKind::WriteZero
    );
    q.clear();
    assert!(q.is_empty());
    assert_eq!(q.flush_to(&mut Zero).unwrap(), 0);
}
