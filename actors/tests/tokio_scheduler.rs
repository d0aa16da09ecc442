//! The tokio scheduler keeps the mio scheduler's contract: data flows both
//! ways, a panicking actor ends alone with exactly one Closed, close_all
//! ends everyone once, the waker wakes `turn`, fd watchers are
//! level-triggered. Real loopback sockets, every loop under a deadline.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use actors::Actors;
use actors::{CloseError, ConnId, Event, FaultPlan, ReadResult, Ready, Stream, TokioScheduler};

const DEADLINE: Duration = Duration::from_secs(20);

fn add_tcp(sched: &mut TokioScheduler) -> (ConnId, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (ours, _) = l.accept().unwrap();
    let id = sched
        .add_connection(Stream::from_std_tcp(ours).unwrap())
        .unwrap();
    (id, peer)
}

/// Turns until `done`, reading readable connections into `got` and
/// collecting events; writable ones are flushed.
fn drive(
    sched: &mut TokioScheduler,
    events: &mut Vec<(ConnId, Event)>,
    got: &mut Vec<(ConnId, Vec<u8>)>,
    mut done: impl FnMut(&TokioScheduler, &[(ConnId, Event)], &[(ConnId, Vec<u8>)]) -> bool,
) {
    let start = Instant::now();
    let mut ready = Vec::new();
    let mut out = Vec::new();
    while !done(sched, events, got) {
        assert!(start.elapsed() < DEADLINE, "timed out");
        ready.clear();
        sched
            .turn(Some(Duration::from_millis(50)), &mut ready)
            .unwrap();
        for r in ready.iter().copied() {
            let Ready::Conn {
                id,
                readable,
                writable,
            } = r
            else {
                continue;
            };
            if writable {
                sched.on_writable(id, &mut out);
            }
            if readable {
                match sched.read(id, &mut out) {
                    ReadResult::Data(d) => {
                        let d = d.to_vec();
                        match got.iter_mut().find(|(i, _)| *i == id) {
                            Some((_, v)) => v.extend_from_slice(&d),
                            None => got.push((id, d)),
                        }
                    }
                    ReadResult::Eof => events.push((id, Event::Eof)),
                    _ => {}
                }
            }
            events.extend(out.drain(..).map(|e| (id, e)));
        }
    }
}

/// The supervisor's rule for a panicking actor: exactly one `Closed`, with
/// the panic as its error.
fn assert_closed_once_by_panic(events: &[(ConnId, Event)], id: ConnId) {
    let closed: Vec<_> = events
        .iter()
        .filter(|(i, e)| *i == id && matches!(e, Event::Closed(_)))
        .collect();
    assert_eq!(closed.len(), 1);
    assert!(matches!(
        closed[0].1,
        Event::Closed(Some(CloseError::Panic(_)))
    ));
}

#[test]
fn bytes_flow_both_ways() {
    let mut sched = TokioScheduler::new().unwrap();
    let (id, mut peer) = add_tcp(&mut sched);
    let payload: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    let expected = payload.clone();
    let writer = std::thread::spawn(move || {
        peer.write_all(&payload).unwrap();
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        peer.read_to_end(&mut back).unwrap();
        back
    });
    let (mut events, mut got) = (Vec::new(), Vec::new());
    drive(&mut sched, &mut events, &mut got, |_, ev, _| {
        ev.iter().any(|(_, e)| matches!(e, Event::Eof))
    });
    assert_eq!(got[0].1, expected);
    let mut out = Vec::new();
    sched.write(id, b"thanks", &mut out).unwrap();
    sched.command(id, actors::Command::Close, &mut out).unwrap();
    drive(&mut sched, &mut events, &mut got, |s, _, _| !s.is_alive(id));
    // The peer reads until the socket is closed; a few turns let it.
    let mut ready = Vec::new();
    for _ in 0..3 {
        sched
            .turn(Some(Duration::from_millis(10)), &mut ready)
            .unwrap();
    }
    assert_eq!(writer.join().unwrap(), b"thanks");
}

#[test]
fn panic_is_contained_and_close_all_ends_everyone_once() {
    let mut sched = TokioScheduler::new().unwrap();
    let (bad, mut bad_peer) = add_tcp(&mut sched);
    let (good, mut good_peer) = add_tcp(&mut sched);
    let (_third, _third_peer) = add_tcp(&mut sched);
    let plan = FaultPlan {
        panic_on_read: Some(1),
        ..Default::default()
    };
    assert!(sched.set_fault(bad, plan));
    bad_peer.write_all(b"boom").unwrap();
    good_peer.write_all(b"fine").unwrap();
    let (mut events, mut got) = (Vec::new(), Vec::new());
    drive(&mut sched, &mut events, &mut got, |s, _, g| {
        !s.is_alive(bad) && g.iter().any(|(i, _)| *i == good)
    });
    assert_closed_once_by_panic(&events, bad);
    assert!(sched.is_alive(good));
    let mut ended = Vec::new();
    sched.close_all(&mut ended);
    assert_eq!(ended.len(), 2);
    assert!(ended.iter().all(|(_, e)| matches!(e, Event::Closed(None))));
    assert_eq!(sched.connection_count(), 0);
}

#[test]
fn a_panicking_watch_ends_its_connection_alone() {
    let mut sched = TokioScheduler::new().unwrap();
    let (bad, _bad_peer) = add_tcp(&mut sched);
    let (good, mut good_peer) = add_tcp(&mut sched);
    assert!(sched.inject_watch_panic(bad));
    let (mut events, mut got) = (Vec::new(), Vec::new());
    drive(&mut sched, &mut events, &mut got, |s, _, _| {
        !s.is_alive(bad)
    });
    assert_closed_once_by_panic(&events, bad);
    // The other connection still carries data.
    good_peer.write_all(b"still here").unwrap();
    drive(&mut sched, &mut events, &mut got, |_, _, g| {
        g.iter().any(|(i, d)| *i == good && d == b"still here")
    });
    assert!(sched.is_alive(good));
}

#[test]
fn waker_wakes_a_blocked_turn() {
    let mut sched = TokioScheduler::new().unwrap();
    let waker = sched.waker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        waker.wake().unwrap();
    });
    let start = Instant::now();
    let mut ready = Vec::new();
    while !ready.contains(&Ready::Woken) {
        assert!(start.elapsed() < DEADLINE);
        sched.turn(None, &mut ready).unwrap();
    }
    t.join().unwrap();
}

/// A loop's whole run inside its driver: turns are steps of one future
/// (begin, poll until ready, end). Data sent by the peer is reported;
/// inside that run, another scheduler's `turn` still works (it cannot
/// enter its runtime there, so it runs on a thread), and a scheduler
/// dropped there does not panic.
#[test]
fn turns_driven_from_inside_the_runtime() {
    let mut sched = TokioScheduler::new().unwrap();
    let (id, mut peer) = add_tcp(&mut sched);
    peer.write_all(b"ping").unwrap();
    let driver = sched.driver();
    assert!(!actors::Driver::is_driving());
    let start = Instant::now();
    let mut ready = Vec::new();
    let mut begun = false;
    let mut nested_woken = false;
    driver.block_on(|cx| loop {
        assert!(actors::Driver::is_driving());
        assert!(start.elapsed() < DEADLINE, "timed out");
        if !begun {
            sched.begin_turn(None, &mut ready).unwrap();
            begun = true;
        }
        if sched.poll_turn(cx).is_pending() {
            return std::task::Poll::Pending;
        }
        sched.end_turn(&mut ready);
        begun = false;
        if !nested_woken {
            let mut other = TokioScheduler::new().unwrap();
            other.waker().wake().unwrap();
            let mut out = Vec::new();
            other.turn(None, &mut out).unwrap();
            assert_eq!(out, vec![Ready::Woken]);
            drop(other);
            nested_woken = true;
        }
        if ready
            .iter()
            .any(|r| matches!(r, Ready::Conn { id: c, readable: true, .. } if *c == id))
        {
            return std::task::Poll::Ready(());
        }
    });
    assert!(!actors::Driver::is_driving());
    assert!(nested_woken);
    let mut out = Vec::new();
    match sched.read(id, &mut out) {
        ReadResult::Data(d) => assert_eq!(d, b"ping"),
        _ => panic!("no data"),
    }
}

/// Turns with `timeout` until one ends with nothing to report, however
/// early a kept deadline makes them end; returns the time it took.
fn timed_turns(sched: &mut TokioScheduler, timeout: Duration) -> Duration {
    let start = Instant::now();
    let mut ready = Vec::new();
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        sched.turn(Some(left), &mut ready).unwrap();
        assert!(ready.is_empty(), "{ready:?}");
        if start.elapsed() >= timeout {
            return start.elapsed();
        }
        assert!(start.elapsed() < DEADLINE);
    }
}

#[test]
fn a_timed_turn_ends_at_its_timeout_whatever_came_before() {
    let mut sched = TokioScheduler::new().unwrap();
    let mut ready = Vec::new();
    // Alone.
    let took = timed_turns(&mut sched, Duration::from_millis(30));
    assert!(took < Duration::from_secs(2), "{took:?}");
    // After a turn that waited for a later deadline and was woken first:
    // the earlier deadline is armed anew.
    let waker = sched.waker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        waker.wake().unwrap();
    });
    let start = Instant::now();
    while !ready.contains(&Ready::Woken) {
        assert!(start.elapsed() < DEADLINE);
        sched
            .turn(Some(Duration::from_secs(10)), &mut ready)
            .unwrap();
    }
    t.join().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    let took = timed_turns(&mut sched, Duration::from_millis(30));
    assert!(took < Duration::from_secs(2), "{took:?}");
    // After an earlier deadline that was kept (a turn woken before it):
    // the turns that follow end by the later one.
    let took = timed_turns(&mut sched, Duration::from_millis(80));
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn fd_watchers_are_level_triggered() {
    let mut sched = TokioScheduler::new().unwrap();
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    use std::os::fd::AsRawFd;
    sched.watch_fd(a.as_raw_fd(), true, false).unwrap();
    b.write_all(b"x").unwrap();
    // Not drained: reported on every turn.
    let mut seen = 0;
    let start = Instant::now();
    while seen < 3 {
        assert!(start.elapsed() < DEADLINE);
        let mut ready = Vec::new();
        sched
            .turn(Some(Duration::from_millis(20)), &mut ready)
            .unwrap();
        seen += ready
            .iter()
            .filter(|r| matches!(r, Ready::Fd { .. }))
            .count();
    }
    assert!(sched.unwatch_fd(a.as_raw_fd()));
    let file = std::fs::File::open("/proc/self/stat").unwrap();
    let err = sched.watch_fd(file.as_raw_fd(), true, false).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
}

#[test]
fn a_closed_connection_sends_its_fin_without_another_turn() {
    let mut sched = TokioScheduler::new().unwrap();
    let (id, mut peer) = add_tcp(&mut sched);
    let mut out = Vec::new();
    sched.command(id, actors::Command::Close, &mut out).unwrap();
    assert!(!sched.is_alive(id));
    // No turn in between: a busy loop may not make one for a while, and
    // the peer must not wait for it to see the end.
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(peer.read(&mut buf).unwrap(), 0);
}

#[test]
fn a_connection_keeps_what_came_while_its_connect_was_watched() {
    // A client socket: its connect is waited on as a raw fd watched for
    // writing, then it becomes a connection. The connection takes over the
    // registration the connect used; data the peer sent in between, seen
    // by the reactor before the connection existed, must still be read.
    use std::os::fd::AsRawFd;
    let mut sched = TokioScheduler::new().unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ours.set_nonblocking(true).unwrap();
    let fd = ours.as_raw_fd();
    let (mut peer, _) = l.accept().unwrap();
    sched.watch_fd(fd, false, true).unwrap();
    let start = Instant::now();
    let mut ready = Vec::new();
    while !ready
        .iter()
        .any(|r| matches!(r, Ready::Fd { fd: f, writable: true, .. } if *f == fd))
    {
        assert!(start.elapsed() < DEADLINE, "timed out");
        sched
            .turn(Some(Duration::from_millis(50)), &mut ready)
            .unwrap();
    }
    assert!(sched.unwatch_fd(fd));
    peer.write_all(b"early").unwrap();
    // Turns while nothing watches the fd: the reactor takes in the edge.
    for _ in 0..3 {
        sched
            .turn(Some(Duration::from_millis(20)), &mut ready)
            .unwrap();
    }
    let id = sched
        .add_connection(Stream::from_std_tcp(ours).unwrap())
        .unwrap();
    let (mut events, mut got) = (Vec::new(), Vec::new());
    drive(&mut sched, &mut events, &mut got, |_, _, g| {
        g.iter().any(|(i, d)| *i == id && d == b"early")
    });
    // And the connection goes on both ways.
    let mut out = Vec::new();
    sched.write(id, b"reply", &mut out).unwrap();
    let mut buf = [0u8; 5];
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"reply");
    peer.write_all(b"later").unwrap();
    drive(&mut sched, &mut events, &mut got, |_, _, g| {
        g.iter().any(|(i, d)| *i == id && d.ends_with(b"later"))
    });
}
