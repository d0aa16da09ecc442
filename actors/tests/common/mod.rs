//! Shared test helpers: socket pairs wired into a scheduler, bounded loops.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actors::Actors;
use actors::{ConnId, Event, MioScheduler, Ready, Stream, TokioScheduler};

pub const DEADLINE: Duration = Duration::from_secs(20);

/// Panics (fails the test) once `start + DEADLINE` has passed.
pub fn check_deadline(start: Instant, what: &str) {
    assert!(start.elapsed() < DEADLINE, "timed out: {what}");
}

/// A connected (scheduler-side std stream, peer) TCP pair over loopback.
pub fn tcp_pair() -> (std::net::TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (ours, _) = l.accept().unwrap();
    (ours, peer)
}

/// A fresh directory under the system temp dir.
pub fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "actors-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A connected Unix pair through a listener bound in a temp dir.
pub fn unix_pair() -> (UnixStream, UnixStream) {
    let dir = temp_dir();
    let path = dir.join("sock");
    let l = UnixListener::bind(&path).unwrap();
    let peer = UnixStream::connect(&path).unwrap();
    let (ours, _) = l.accept().unwrap();
    drop(l);
    let _ = std::fs::remove_dir_all(&dir);
    (ours, peer)
}

/// Adds the scheduler side of a TCP pair; returns id and the blocking peer.
pub fn add_tcp(sched: &mut MioScheduler) -> (ConnId, TcpStream) {
    let (ours, peer) = tcp_pair();
    let id = sched
        .add_connection(Stream::from_std_tcp(ours).unwrap())
        .unwrap();
    (id, peer)
}

pub fn count_closed(evs: &[Event]) -> usize {
    evs.iter().filter(|e| matches!(e, Event::Closed(_))).count()
}

/// Runs turns, calling `on_writable` for writable connections and reading
/// readable ones into `got` (per id), until `done` holds.
pub fn drive(
    sched: &mut MioScheduler,
    events: &mut Vec<(ConnId, Event)>,
    got: &mut Vec<(ConnId, Vec<u8>)>,
    mut done: impl FnMut(&MioScheduler, &[(ConnId, Event)], &[(ConnId, Vec<u8>)]) -> bool,
) {
    let start = Instant::now();
    let mut ready = Vec::new();
    let mut out = Vec::new();
    while !done(sched, events, got) {
        check_deadline(start, "drive");
        ready.clear();
        match sched.turn(Some(Duration::from_millis(50)), &mut ready) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("turn: {e}"),
        }
        for r in ready.iter().copied() {
            if let Ready::Conn {
                id,
                readable,
                writable,
            } = r
            {
                if writable {
                    sched.on_writable(id, &mut out);
                    events.extend(out.drain(..).map(|e| (id, e)));
                }
                if readable {
                    loop {
                        match sched.read(id, &mut out) {
                            actors::ReadResult::Data(d) => {
                                let d = d.to_vec();
                                match got.iter_mut().find(|(i, _)| *i == id) {
                                    Some((_, v)) => v.extend_from_slice(&d),
                                    None => got.push((id, d)),
                                }
                            }
                            actors::ReadResult::Eof => {
                                events.push((id, Event::Eof));
                                break;
                            }
                            _ => break,
                        }
                    }
                    events.extend(out.drain(..).map(|e| (id, e)));
                }
            }
        }
    }
}

/// Reads from a blocking peer until EOF or error; returns bytes read.
pub fn read_all(mut s: impl Read) -> (Vec<u8>, Option<std::io::Error>) {
    let mut v = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (v, None),
            Ok(n) => v.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (v, Some(e)),
        }
    }
}

pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// What the tests need of a scheduler beyond [`Actors`].
pub trait Sched: Actors + Sized {
    fn make() -> Self;
    fn turn_once(&mut self, out: &mut Vec<Ready>);
    fn adopt(&mut self, stream: Stream) -> ConnId;
}

impl Sched for MioScheduler {
    fn make() -> Self {
        MioScheduler::new().unwrap()
    }
    fn turn_once(&mut self, out: &mut Vec<Ready>) {
        match self.turn(Some(Duration::from_millis(50)), out) {
            Err(e) if e.kind() != std::io::ErrorKind::Interrupted => panic!("turn: {e}"),
            _ => {}
        }
    }
    fn adopt(&mut self, stream: Stream) -> ConnId {
        self.add_connection(stream).unwrap()
    }
}

impl Sched for TokioScheduler {
    fn make() -> Self {
        TokioScheduler::new().unwrap()
    }
    fn turn_once(&mut self, out: &mut Vec<Ready>) {
        self.turn(Some(Duration::from_millis(50)), out).unwrap();
    }
    fn adopt(&mut self, stream: Stream) -> ConnId {
        self.add_connection(stream).unwrap()
    }
}
