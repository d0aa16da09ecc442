//! File segments (loop.sendfile) on both schedulers, over real loopback TCP
//! and Unix sockets: the file goes out whole and in order between the
//! bytes written before and after it, counts and offsets hold, one
//! `SendfileDone` per segment (before `Closed` when the connection ends
//! with one pending), a broken socket ends the connection, a file error
//! does not, cancel keeps what was sent, close waits for the file.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::time::Instant;

use actors::{
    ActorError, CloseError, Command, ConnId, Event, FaultPlan, FileSegment, MioScheduler,
    ReadResult, Ready, SendfileError, SendfileOutcome, Stream, TokioScheduler,
};
use common::{check_deadline, pattern, read_all, tcp_pair, temp_dir, unix_pair, Sched};

/// The peer side of a connection: a blocking socket of either family.
enum Peer {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Peer {
    fn reader(self) -> Box<dyn Read + Send> {
        match self {
            Peer::Tcp(s) => Box::new(s),
            Peer::Unix(s) => Box::new(s),
        }
    }
}

fn connect<S: Sched>(sched: &mut S, unix: bool) -> (ConnId, Peer) {
    if unix {
        let (ours, peer) = unix_pair();
        let id = sched.adopt(Stream::from_std_unix(ours).unwrap());
        (id, Peer::Unix(peer))
    } else {
        let (ours, peer) = tcp_pair();
        let id = sched.adopt(Stream::from_std_tcp(ours).unwrap());
        (id, Peer::Tcp(peer))
    }
}

/// A temporary file holding `data`, and a descriptor of it for a segment.
fn file_with(data: &[u8]) -> (File, OwnedFd) {
    let path = temp_dir().join("file");
    let mut f = File::create(&path).unwrap();
    f.write_all(data).unwrap();
    let f = File::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let fd = OwnedFd::from(f.try_clone().unwrap());
    (f, fd)
}

/// Turns until `done`, flushing writable connections and draining
/// readable ones (their data is dropped: the peers here only read).
fn drive<S: Sched>(
    sched: &mut S,
    events: &mut Vec<Event>,
    mut done: impl FnMut(&S, &[Event]) -> bool,
) {
    let start = Instant::now();
    let mut ready = Vec::new();
    while !done(sched, events) {
        check_deadline(start, "drive");
        ready.clear();
        sched.turn_once(&mut ready);
        for r in ready.iter().copied() {
            if let Ready::Conn {
                id,
                readable,
                writable,
            } = r
            {
                if writable {
                    sched.on_writable(id, events);
                }
                if readable {
                    while let ReadResult::Data(_) = sched.read(id, events) {}
                }
            }
        }
    }
}

fn outcomes(events: &[Event]) -> Vec<&SendfileOutcome> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SendfileDone(o) => Some(o),
            _ => None,
        })
        .collect()
}

fn finished(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::SendfileDone(_)))
}

/// Writes until the queue holds bytes the kernel refused (the peer does
/// not read yet); returns what was written.
fn fill<S: Sched>(sched: &mut S, id: ConnId, events: &mut Vec<Event>) -> Vec<u8> {
    let mut written = Vec::new();
    let start = Instant::now();
    let mut i = 0u8;
    while sched.write_buffer_size(id).unwrap() == 0 {
        check_deadline(start, "fill");
        let chunk = vec![i; 64 * 1024];
        i = i.wrapping_add(1);
        sched.write(id, &chunk, events).unwrap();
        written.extend_from_slice(&chunk);
    }
    written
}

/// Bytes queued before the segment go first, bytes written while it is
/// pending go after it; the peer sees prefix + file range + suffix.
fn between_writes<S: Sched>(unix: bool) {
    let mut sched = S::make();
    let (id, peer) = connect(&mut sched, unix);
    let data = pattern(8 << 20);
    let (_file, fd) = file_with(&data);
    let mut events = Vec::new();
    let prefix = fill(&mut sched, id, &mut events);
    let ahead = sched.write_buffer_size(id).unwrap();
    sched
        .sendfile(id, FileSegment::new(fd, 100, None), &mut events)
        .unwrap();
    assert!(!finished(&events), "queued bytes must go first");
    let suffix = b"suffix".repeat(1000);
    sched.write(id, &suffix, &mut events).unwrap();
    // The file is not counted as buffered: asyncio's buffer is empty
    // while its sendfile runs.
    assert_eq!(sched.write_buffer_size(id), Some(ahead + suffix.len()));
    let reader = std::thread::spawn(move || read_all(peer.reader()));
    drive(&mut sched, &mut events, |s, ev| {
        finished(ev) && s.write_buffer_size(id) == Some(0)
    });
    sched.command(id, Command::WriteEof, &mut events).unwrap();
    let (got, err) = reader.join().unwrap();
    assert!(err.is_none(), "{err:?}");
    let done = outcomes(&events);
    assert_eq!(done.len(), 1);
    assert_eq!(
        (done[0].sent, done[0].started),
        ((data.len() - 100) as u64, true)
    );
    assert!(done[0].error.is_none());
    let expected = [&prefix[..], &data[100..], &suffix[..]].concat();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "bytes differ");
    assert!(sched.is_alive(id));
}

/// Sends `count` bytes from `offset` of a small file on an idle
/// connection; returns the outcome and what the peer got.
fn send_range<S: Sched>(offset: u64, count: Option<u64>) -> (u64, bool, Vec<u8>) {
    let mut sched = S::make();
    let (id, peer) = connect(&mut sched, false);
    let data = pattern(100_000);
    let (_file, fd) = file_with(&data);
    let mut events = Vec::new();
    sched
        .sendfile(id, FileSegment::new(fd, offset, count), &mut events)
        .unwrap();
    let reader = std::thread::spawn(move || read_all(peer.reader()));
    drive(&mut sched, &mut events, |_, ev| finished(ev));
    sched.command(id, Command::Close, &mut events).unwrap();
    let (got, _) = reader.join().unwrap();
    let done = outcomes(&events);
    assert_eq!(done.len(), 1);
    assert!(done[0].error.is_none());
    (done[0].sent, done[0].started, got)
}

fn counts_and_offsets<S: Sched>() {
    let data = pattern(100_000);
    for (offset, count) in [
        (0, None),
        (10, Some(1)),
        (500, Some(20_000)),
        (99_000, Some(5000)),
        (0, Some(1 << 40)),
        (100_000, None),
        (200_000, Some(7)),
    ] {
        let (sent, started, got) = send_range::<S>(offset, count);
        let start = (offset as usize).min(data.len());
        let end = count.map_or(data.len(), |c| (start + c as usize).min(data.len()));
        assert_eq!(sent as usize, end - start, "{offset} {count:?}");
        assert!(started);
        assert!(got == data[start..end], "{offset} {count:?}");
    }
}

/// The peer goes away mid-file: the segment fails with the socket's
/// error, then the connection ends with it (the file's report first).
fn peer_gone_mid_file<S: Sched>(unix: bool) {
    let mut sched = S::make();
    let (id, peer) = connect(&mut sched, unix);
    let data = pattern(16 << 20);
    let (_file, fd) = file_with(&data);
    let mut events = Vec::new();
    let reader = std::thread::spawn(move || {
        let mut peer = peer.reader();
        let mut buf = vec![0u8; 4096];
        peer.read_exact(&mut buf).unwrap();
        // Dropped with unread data: a reset for TCP.
    });
    sched
        .sendfile(id, FileSegment::new(fd, 0, None), &mut events)
        .unwrap();
    reader.join().unwrap();
    drive(&mut sched, &mut events, |_, ev| {
        ev.iter().any(|e| matches!(e, Event::Closed(_)))
    });
    let at = |f: fn(&Event) -> bool| events.iter().position(f).unwrap();
    assert!(at(|e| matches!(e, Event::SendfileDone(_))) < at(|e| matches!(e, Event::Closed(_))));
    let done = outcomes(&events);
    assert_eq!(done.len(), 1);
    assert!(done[0].sent >= 4096 && done[0].sent < data.len() as u64);
    let Some(SendfileError::Sendfile(e)) = &done[0].error else {
        panic!("{:?}", done[0]);
    };
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "{e}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Closed(Some(CloseError::Io(_))))));
    assert!(!sched.is_alive(id));
}

/// sendfile(2) cannot read a pipe: the segment fails at once with
/// nothing sent, and the connection goes on (so the caller can fall back).
fn file_error_keeps_connection<S: Sched>() {
    let mut sched = S::make();
    let (id, peer) = connect(&mut sched, false);
    let (r, w) = std::io::pipe().unwrap();
    drop(w);
    let mut events = Vec::new();
    sched
        .sendfile(
            id,
            FileSegment::new(OwnedFd::from(r), 0, Some(10)),
            &mut events,
        )
        .unwrap();
    let done = outcomes(&events);
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].sent, done[0].started), (0, true));
    assert!(matches!(done[0].error, Some(SendfileError::Sendfile(_))));
    sched.write(id, b"still here", &mut events).unwrap();
    sched.command(id, Command::Close, &mut events).unwrap();
    let (got, _) = read_all(peer.reader());
    assert_eq!(got, b"still here");
}

/// A fault at the socket call fails the segment like a real error: one
/// that is the connection's ends it, another leaves it open.
fn injected_errors<S: Sched>() {
    for (errno, ends) in [(libc::EIO, false), (libc::ECONNRESET, true)] {
        let mut sched = S::make();
        let (id, _peer) = connect(&mut sched, false);
        let (_file, fd) = file_with(&pattern(1000));
        sched.set_fault(
            id,
            FaultPlan {
                fail_next_write: Some(errno),
                ..FaultPlan::default()
            },
        );
        let mut events = Vec::new();
        sched
            .sendfile(id, FileSegment::new(fd, 0, None), &mut events)
            .unwrap();
        let done = outcomes(&events);
        assert_eq!(done.len(), 1);
        let Some(SendfileError::Sendfile(e)) = &done[0].error else {
            panic!("{:?}", done[0]);
        };
        assert_eq!(e.raw_os_error(), Some(errno));
        assert_eq!(sched.is_alive(id), !ends, "errno {errno}");
    }
}

/// Cancel: the segment stops, what was sent stays, writes follow it; a
/// close held back by the segment then completes.
fn cancel_then_close<S: Sched>(unix: bool) {
    let mut sched = S::make();
    let (id, peer) = connect(&mut sched, unix);
    let data = pattern(16 << 20);
    let (_file, fd) = file_with(&data);
    let mut events = Vec::new();
    sched
        .sendfile(id, FileSegment::new(fd, 0, None), &mut events)
        .unwrap();
    assert!(!finished(&events), "the peer does not read yet");
    sched.command(id, Command::Close, &mut events).unwrap();
    assert!(sched.is_alive(id), "close waits for the file");
    let sent = sched.cancel_sendfile(id, &mut events).unwrap();
    assert!(sent > 0 && sent < data.len() as u64);
    assert!(!finished(&events), "a cancelled segment has no report");
    assert!(matches!(events.last(), Some(Event::Closed(None))));
    assert_eq!(sched.cancel_sendfile(id, &mut events), None);
    let (got, _) = read_all(peer.reader());
    assert_eq!(got.len() as u64, sent);
    assert!(got == data[..got.len()]);
}

/// close() with a segment pending sends the whole file, then ends.
fn close_waits_for_the_file<S: Sched>() {
    let mut sched = S::make();
    let (id, peer) = connect(&mut sched, false);
    let data = pattern(8 << 20);
    let (_file, fd) = file_with(&data);
    let mut events = Vec::new();
    sched
        .sendfile(id, FileSegment::new(fd, 0, None), &mut events)
        .unwrap();
    sched.command(id, Command::Close, &mut events).unwrap();
    let reader = std::thread::spawn(move || read_all(peer.reader()));
    drive(&mut sched, &mut events, |_, ev| {
        ev.iter().any(|e| matches!(e, Event::Closed(_)))
    });
    let (got, _) = reader.join().unwrap();
    assert!(got == data);
    let done = outcomes(&events);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].sent, data.len() as u64);
    assert!(matches!(events.last(), Some(Event::Closed(None))));
}

/// abort() (and close_all) with a segment pending: it is reported cut
/// short, before the one Closed.
fn abort_reports_closed<S: Sched>() {
    let mut sched = S::make();
    let (id, _peer) = connect(&mut sched, false);
    let (_file, fd) = file_with(&pattern(16 << 20));
    let mut events = Vec::new();
    let _queued = fill(&mut sched, id, &mut events);
    sched
        .sendfile(id, FileSegment::new(fd, 0, None), &mut events)
        .unwrap();
    sched.command(id, Command::Abort, &mut events).unwrap();
    let tail: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::SendfileDone(_) | Event::Closed(_)))
        .collect();
    assert!(matches!(
        tail[..],
        [
            Event::SendfileDone(SendfileOutcome {
                sent: 0,
                started: false,
                error: Some(SendfileError::Closed)
            }),
            Event::Closed(None)
        ]
    ));
}

/// One segment at a time, none after write_eof or on a dead connection.
fn refusals<S: Sched>() {
    let mut sched = S::make();
    let (id, _peer) = connect(&mut sched, false);
    let data = pattern(16 << 20);
    let (_file, fd) = file_with(&data);
    let (_file2, fd2) = file_with(&data);
    let mut events = Vec::new();
    sched
        .sendfile(id, FileSegment::new(fd, 0, None), &mut events)
        .unwrap();
    assert!(matches!(
        sched.sendfile(id, FileSegment::new(fd2, 0, None), &mut events),
        Err(ActorError::SendfileInProgress)
    ));
    sched.cancel_sendfile(id, &mut events).unwrap();
    sched.command(id, Command::WriteEof, &mut events).unwrap();
    let (_file3, fd3) = file_with(b"x");
    assert!(matches!(
        sched.sendfile(id, FileSegment::new(fd3, 0, None), &mut events),
        Err(ActorError::WriteAfterEof)
    ));
    sched.command(id, Command::Abort, &mut events).unwrap();
    let (_file4, fd4) = file_with(b"x");
    assert!(matches!(
        sched.sendfile(id, FileSegment::new(fd4, 0, None), &mut events),
        Err(ActorError::Closed)
    ));
}

macro_rules! on_both {
    ($($name:ident $(($arg:expr))?),* $(,)?) => {
        mod on_mio {
            use super::*;
            $(#[test] fn $name() { super::$name::<MioScheduler>($($arg)?) })*
        }
        mod on_tokio {
            use super::*;
            $(#[test] fn $name() { super::$name::<TokioScheduler>($($arg)?) })*
        }
    };
}

mod tcp {
    use super::*;
    on_both!(
        between_writes(false),
        peer_gone_mid_file(false),
        cancel_then_close(false),
    );
}

mod unix {
    use super::*;
    on_both!(
        between_writes(true),
        peer_gone_mid_file(true),
        cancel_then_close(true),
    );
}

on_both!(
    counts_and_offsets,
    file_error_keeps_connection,
    injected_errors,
    close_waits_for_the_file,
    abort_reports_closed,
    refusals,
);
