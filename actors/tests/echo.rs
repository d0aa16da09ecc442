//! End-to-end echo through the scheduler: listener, accept, read, write,
//! flow control (pause reading while the peer is slow), close.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use actors::Actors;
use actors::{Command, ConnId, Event, Listener, MioScheduler, ReadResult, Ready};
use common::{check_deadline, pattern};

/// Echo server loop: accepts, echoes, pauses reading while the write side
/// is paused (a well-behaved protocol), closes on EOF. Returns when one
/// connection has closed. Returns all events seen.
fn serve_one(sched: &mut MioScheduler, lid: actors::ListenerId) -> Vec<(ConnId, Event)> {
    let start = Instant::now();
    let mut ready = Vec::new();
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let mut closed = false;
    while !closed {
        check_deadline(start, "echo server");
        ready.clear();
        match sched.turn(Some(Duration::from_millis(100)), &mut ready) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("turn: {e}"),
        }
        for r in ready.clone() {
            match r {
                Ready::Listener { id } => {
                    assert_eq!(id, lid);
                    while let Some((stream, _addr)) = sched.accept(id).unwrap() {
                        stream.set_nodelay(true).unwrap();
                        sched.add_connection(stream).unwrap();
                    }
                }
                Ready::Conn {
                    id,
                    readable,
                    writable,
                } => {
                    if writable {
                        sched.on_writable(id, &mut out);
                    }
                    // One read per readiness: exercises the re-report path.
                    if readable {
                        match sched.read(id, &mut out) {
                            ReadResult::Data(d) => {
                                // The borrow must end before "Python" runs.
                                let copy = d.to_vec();
                                sched.write(id, &copy, &mut out).unwrap();
                            }
                            ReadResult::Eof => {
                                out.push(Event::Eof);
                                sched.command(id, Command::Close, &mut out).unwrap();
                            }
                            ReadResult::WouldBlock | ReadResult::Closed => {}
                        }
                    }
                    for e in out.drain(..) {
                        match e {
                            Event::PauseWriting => sched
                                .command(id, Command::PauseReading, &mut Vec::new())
                                .unwrap(),
                            Event::ResumeWriting => sched
                                .command(id, Command::ResumeReading, &mut Vec::new())
                                .unwrap(),
                            Event::Closed(_) => closed = true,
                            _ => {}
                        }
                        seen.push((id, e));
                    }
                }
                _ => {}
            }
        }
    }
    seen
}

fn echo_tcp(size: usize) {
    let mut sched = MioScheduler::new().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let lid = sched
        .add_listener(Listener::from_std_tcp(l).unwrap())
        .unwrap();
    let data = pattern(size);
    let sent = data.clone();
    let client = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut r = s.try_clone().unwrap();
        let reader = std::thread::spawn(move || common::read_all(&mut r));
        s.write_all(&sent).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        reader.join().unwrap()
    });
    let seen = serve_one(&mut sched, lid);
    let (echoed, err) = client.join().unwrap();
    assert!(err.is_none(), "client error: {err:?}");
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "echo mismatch");
    let closed: Vec<_> = seen
        .iter()
        .filter(|(_, e)| matches!(e, Event::Closed(_)))
        .collect();
    assert_eq!(closed.len(), 1);
    assert!(matches!(closed[0].1, Event::Closed(None)));
    let pauses = seen
        .iter()
        .filter(|(_, e)| matches!(e, Event::PauseWriting))
        .count();
    let resumes = seen
        .iter()
        .filter(|(_, e)| matches!(e, Event::ResumeWriting))
        .count();
    assert!(
        pauses == resumes || pauses == resumes + 1,
        "{pauses} vs {resumes}"
    );
    assert_eq!(sched.connection_count(), 0);
}

#[test]
fn echo_one_byte_tcp() {
    echo_tcp(1);
}

#[test]
fn echo_16_mib_tcp() {
    echo_tcp(16 * 1024 * 1024);
}

#[test]
fn echo_unix_1_mib() {
    let dir = common::temp_dir();
    let path = dir.join("echo.sock");
    let mut sched = MioScheduler::new().unwrap();
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let lid = sched
        .add_listener(Listener::from_std_unix(l).unwrap())
        .unwrap();
    let addr = sched.listener_addr(lid).unwrap().unwrap();
    assert_eq!(addr, actors::Addr::Unix(Some(path.clone())));
    let data = pattern(1024 * 1024);
    let sent = data.clone();
    let p = path.clone();
    let client = std::thread::spawn(move || {
        let mut s = std::os::unix::net::UnixStream::connect(&p).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut r = s.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            r.read_to_end(&mut v).map(|_| v)
        });
        s.write_all(&sent).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        reader.join().unwrap()
    });
    serve_one(&mut sched, lid);
    let echoed = client.join().unwrap().unwrap();
    assert!(echoed == data);
    drop(sched.remove_listener(lid));
    let _ = std::fs::remove_dir_all(&dir);
}
