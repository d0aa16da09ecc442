//! asyncio transport semantics of one connection: flow control, close,
//! abort, half-close, peer reset.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use actors::Actors;
use actors::{ActorError, CloseError, Command, Event, MioScheduler, ReadResult};
use common::{add_tcp, check_deadline, count_closed, drive, pattern, read_all};

/// Writes 64 KiB chunks until the queue holds data the kernel refused.
fn fill_until_queued(
    sched: &mut MioScheduler,
    id: actors::ConnId,
    out: &mut Vec<Event>,
    min_queued: usize,
) -> usize {
    let chunk = pattern(64 * 1024);
    let mut written = 0;
    let start = Instant::now();
    while sched.write_buffer_size(id).unwrap() < min_queued {
        check_deadline(start, "fill");
        sched.write(id, &chunk, out).unwrap();
        written += chunk.len();
    }
    written
}

#[test]
fn high_water_gives_one_pause_then_one_resume() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, peer) = add_tcp(&mut sched);
    let mut out = Vec::new();
    assert_eq!(sched.write_buffer_limits(id), Some((16 * 1024, 64 * 1024)));
    let mut written = fill_until_queued(&mut sched, id, &mut out, 64 * 1024 + 1);
    // More writes while paused must not pause again.
    for _ in 0..4 {
        sched.write(id, &pattern(64 * 1024), &mut out).unwrap();
        written += 64 * 1024;
    }
    let pauses = out
        .iter()
        .filter(|e| matches!(e, Event::PauseWriting))
        .count();
    assert_eq!(pauses, 1, "{out:?}");
    assert!(!out.iter().any(|e| matches!(e, Event::ResumeWriting)));

    let reader = std::thread::spawn(move || {
        let mut peer = peer;
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0;
        while n < written {
            n += peer.read(&mut buf).unwrap();
        }
        (n, peer)
    });
    let mut events: Vec<_> = out.drain(..).map(|e| (id, e)).collect();
    let mut got = Vec::new();
    drive(&mut sched, &mut events, &mut got, |s, _, _| {
        s.write_buffer_size(id) == Some(0)
    });
    let (n, _peer) = reader.join().unwrap();
    assert_eq!(n, written);
    let count = |f: fn(&Event) -> bool| events.iter().filter(|(_, e)| f(e)).count();
    assert_eq!(count(|e| matches!(e, Event::PauseWriting)), 1);
    assert_eq!(count(|e| matches!(e, Event::ResumeWriting)), 1);
    // Resume came after pause.
    let p = events
        .iter()
        .position(|(_, e)| matches!(e, Event::PauseWriting));
    let r = events
        .iter()
        .position(|(_, e)| matches!(e, Event::ResumeWriting));
    assert!(p < r);
    assert!(sched.is_alive(id));
}

#[test]
fn set_limits_can_pause_and_validates() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, _peer) = add_tcp(&mut sched);
    let mut out = Vec::new();
    let bad = Command::SetWriteBufferLimits {
        high: Some(1),
        low: Some(2),
    };
    match sched.command(id, bad, &mut out) {
        Err(ActorError::Limits(e)) => {
            assert_eq!(e.to_string(), "high (1) must be >= low (2) must be >= 0")
        }
        other => panic!("{other:?}"),
    }
    fill_until_queued(&mut sched, id, &mut out, 1);
    out.clear();
    let lim = Command::SetWriteBufferLimits {
        high: Some(0),
        low: None,
    };
    sched.command(id, lim, &mut out).unwrap();
    assert!(matches!(out[..], [Event::PauseWriting]), "{out:?}");
    assert_eq!(sched.write_buffer_limits(id), Some((0, 0)));
}

#[test]
fn close_flushes_pending_data_then_closed_none_and_peer_sees_eof() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, peer) = add_tcp(&mut sched);
    let mut out = Vec::new();
    let written = fill_until_queued(&mut sched, id, &mut out, 512 * 1024);
    sched.command(id, Command::Close, &mut out).unwrap();
    assert_eq!(count_closed(&out), 0, "must wait for the flush");
    assert!(sched.is_closing(id));
    assert!(!sched.is_reading(id));
    // Writes while closing are still accepted (asyncio appends them).
    sched.write(id, b"tail", &mut out).unwrap();
    let reader = std::thread::spawn(move || read_all(peer));
    let mut events: Vec<_> = out.drain(..).map(|e| (id, e)).collect();
    let mut got = Vec::new();
    drive(&mut sched, &mut events, &mut got, |_, ev, _| {
        ev.iter().any(|(_, e)| matches!(e, Event::Closed(_)))
    });
    let (data, err) = reader.join().unwrap();
    assert!(err.is_none());
    assert_eq!(data.len(), written + 4);
    assert_eq!(&data[data.len() - 4..], b"tail");
    let closed: Vec<_> = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Closed(_)))
        .collect();
    assert_eq!(closed.len(), 1);
    assert!(matches!(closed[0].1, Event::Closed(None)));
    assert!(!sched.is_alive(id));
    // Dead id: close ignored, write refused, no further events.
    out.clear();
    sched.command(id, Command::Close, &mut out).unwrap();
    sched.command(id, Command::Abort, &mut out).unwrap();
    assert!(matches!(
        sched.write(id, b"x", &mut out),
        Err(ActorError::Closed)
    ));
    assert!(out.is_empty());
}

#[test]
fn close_with_empty_queue_finishes_now() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, peer) = add_tcp(&mut sched);
    let mut out = Vec::new();
    sched.write(id, b"hi", &mut out).unwrap();
    sched.command(id, Command::Close, &mut out).unwrap();
    assert!(matches!(out[..], [Event::Closed(None)]), "{out:?}");
    let (data, err) = read_all(peer);
    assert_eq!(data, b"hi");
    assert!(err.is_none());
}

#[test]
fn abort_drops_pending_data() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, peer) = add_tcp(&mut sched);
    let mut out = Vec::new();
    let written = fill_until_queued(&mut sched, id, &mut out, 1024 * 1024);
    out.clear();
    sched.command(id, Command::Abort, &mut out).unwrap();
    assert!(matches!(out[..], [Event::Closed(None)]), "{out:?}");
    assert!(!sched.is_alive(id));
    let (data, _err) = read_all(peer);
    assert!(data.len() < written, "{} vs {written}", data.len());
}

#[test]
fn write_eof_half_close() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, mut peer) = add_tcp(&mut sched);
    let mut out = Vec::new();
    sched.write(id, b"hello", &mut out).unwrap();
    sched.command(id, Command::WriteEof, &mut out).unwrap();
    assert!(matches!(
        sched.write(id, b"more", &mut out),
        Err(ActorError::WriteAfterEof)
    ));
    assert_eq!(
        ActorError::WriteAfterEof.to_string(),
        "Cannot call write() after write_eof()"
    );
    // Repeated write_eof is ignored.
    sched.command(id, Command::WriteEof, &mut out).unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello");
    peer.write_all(b"back").unwrap();
    drop(peer);
    let mut events = Vec::new();
    let mut data = Vec::new();
    drive(&mut sched, &mut events, &mut data, |_, ev, _| {
        ev.iter().any(|(_, e)| matches!(e, Event::Eof))
    });
    assert_eq!(data[0].1, b"back");
    assert_eq!(count_closed(&out), 0);
    assert!(sched.is_alive(id), "EOF alone does not close");
    sched.command(id, Command::Close, &mut out).unwrap();
    assert!(matches!(out[..], [Event::Closed(None)]));
}

#[test]
fn write_eof_deferred_until_queue_drains() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, peer) = add_tcp(&mut sched);
    let mut out = Vec::new();
    let written = fill_until_queued(&mut sched, id, &mut out, 256 * 1024);
    sched.command(id, Command::WriteEof, &mut out).unwrap();
    let reader = std::thread::spawn(move || read_all(peer));
    let mut events = Vec::new();
    let mut got = Vec::new();
    drive(&mut sched, &mut events, &mut got, |s, _, _| {
        s.write_buffer_size(id) == Some(0)
    });
    // The reader only returns once the deferred shutdown happened.
    let (data, err) = reader.join().unwrap();
    assert!(err.is_none());
    assert_eq!(data.len(), written);
    assert!(sched.is_alive(id));
}

/// SO_LINGER {on, 0} makes close() send RST.
fn reset_on_close(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid fd owned by `s`; pointer/len describe a live `linger`.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

#[test]
fn peer_reset_gives_exactly_one_closed_with_error() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, peer) = add_tcp(&mut sched);
    reset_on_close(&peer);
    drop(peer);
    let mut events = Vec::new();
    let mut got = Vec::new();
    drive(&mut sched, &mut events, &mut got, |s, _, _| !s.is_alive(id));
    // Give the scheduler a few more turns: nothing more may appear.
    let start = Instant::now();
    let mut ready = Vec::new();
    while start.elapsed() < Duration::from_millis(100) {
        sched
            .turn(Some(Duration::from_millis(10)), &mut ready)
            .unwrap();
    }
    assert!(ready.is_empty(), "{ready:?}");
    let closed: Vec<_> = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Closed(_)))
        .collect();
    assert_eq!(closed.len(), 1, "{events:?}");
    match &closed[0].1 {
        Event::Closed(Some(CloseError::Io(e))) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}")
        }
        // The OS may report the reset as an EOF first; then the caller
        // closes cleanly.
        Event::Closed(None) => panic!("reset reported as clean close: {events:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn write_to_reset_peer_is_fatal_once() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, peer) = add_tcp(&mut sched);
    reset_on_close(&peer);
    drop(peer);
    std::thread::sleep(Duration::from_millis(20));
    let mut out = Vec::new();
    let start = Instant::now();
    while sched.is_alive(id) {
        check_deadline(start, "write to reset peer");
        let _ = sched.write(id, &pattern(1024), &mut out);
    }
    assert_eq!(count_closed(&out), 1);
    assert!(matches!(
        out.last(),
        Some(Event::Closed(Some(CloseError::Io(_))))
    ));
}

#[test]
fn pause_and_resume_reading() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, mut peer) = add_tcp(&mut sched);
    let mut out = Vec::new();
    sched.command(id, Command::PauseReading, &mut out).unwrap();
    assert!(!sched.is_reading(id));
    peer.write_all(b"abc").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(matches!(sched.read(id, &mut out), ReadResult::WouldBlock));
    let mut ready = Vec::new();
    sched
        .turn(Some(Duration::from_millis(50)), &mut ready)
        .unwrap();
    assert!(ready.is_empty(), "paused connection reported: {ready:?}");
    sched.command(id, Command::ResumeReading, &mut out).unwrap();
    let mut events = Vec::new();
    let mut got = Vec::new();
    drive(&mut sched, &mut events, &mut got, |_, _, g| !g.is_empty());
    assert_eq!(got[0].1, b"abc");
}

#[test]
fn small_read_buffer_is_re_reported_until_drained() {
    let mut sched = MioScheduler::new().unwrap();
    let (ours, mut peer) = common::tcp_pair();
    let conn =
        actors::Connection::with_read_buffer(actors::Stream::from_std_tcp(ours).unwrap(), 16);
    let id = sched.add_actor(conn).unwrap();
    let data = pattern(1000);
    peer.write_all(&data).unwrap();
    let mut got = Vec::new();
    let mut out = Vec::new();
    let mut ready = Vec::new();
    let start = Instant::now();
    // One read per readiness record, never looping: the scheduler must
    // keep reporting while data remains.
    while got.len() < data.len() {
        check_deadline(start, "small buffer");
        ready.clear();
        sched
            .turn(Some(Duration::from_millis(200)), &mut ready)
            .unwrap();
        for r in &ready {
            if let actors::Ready::Conn { readable: true, .. } = r {
                if let ReadResult::Data(d) = sched.read(id, &mut out) {
                    got.extend_from_slice(d);
                }
            }
        }
    }
    assert_eq!(got, data);
}

#[test]
fn read_at_most_cuts_each_read_and_loses_nothing() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, mut peer) = add_tcp(&mut sched);
    let data = pattern(10_000);
    peer.write_all(&data).unwrap();
    let mut got = Vec::new();
    let mut out = Vec::new();
    let start = Instant::now();
    while got.len() < data.len() {
        check_deadline(start, "read_at_most");
        match sched.read_at_most(id, 1000, &mut out) {
            ReadResult::Data(d) => {
                assert!(d.len() <= 1000, "a read of {} bytes", d.len());
                got.extend_from_slice(d);
            }
            ReadResult::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, data);
}

#[test]
fn read_into_caller_buffer() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, mut peer) = add_tcp(&mut sched);
    peer.write_all(b"buffered").unwrap();
    let mut buf = [0u8; 64];
    let mut out = Vec::new();
    let start = Instant::now();
    let n = loop {
        check_deadline(start, "read_into");
        match sched.read_into(id, &mut buf, &mut out) {
            actors::ReadCount::Data(n) => break n,
            actors::ReadCount::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(&buf[..n], b"buffered");
    drop(peer);
    let start = Instant::now();
    loop {
        check_deadline(start, "read_into eof");
        match sched.read_into(id, &mut buf, &mut out) {
            actors::ReadCount::Eof => break,
            actors::ReadCount::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn info_reports_addresses() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, peer) = add_tcp(&mut sched);
    let info = sched.info(id).unwrap();
    assert_eq!(info.kind, actors::StreamKind::Tcp);
    assert_eq!(
        info.peer,
        Some(actors::Addr::Inet(peer.local_addr().unwrap()))
    );
    assert_eq!(
        info.local,
        Some(actors::Addr::Inet(peer.peer_addr().unwrap()))
    );
    assert!(info.fd >= 0);
}

/// A close whose queue drains in the call that resumes the paused protocol
/// waits a turn, so that the protocol, told `ResumeWriting`, may still
/// write (asyncio's SSL layer sends its close_notify then); the connection
/// is reported writable again without an OS event and then ends.
#[test]
fn close_waits_for_the_resumed_protocol_to_write() {
    let mut sched = MioScheduler::new().unwrap();
    let (id, peer) = add_tcp(&mut sched);
    let mut out = Vec::new();
    let written = fill_until_queued(&mut sched, id, &mut out, 64 * 1024 + 1);
    assert!(out.iter().any(|e| matches!(e, Event::PauseWriting)));
    sched.command(id, Command::Close, &mut out).unwrap();
    out.clear();
    let reader = std::thread::spawn(move || read_all(peer));
    let start = Instant::now();
    let mut ready = Vec::new();
    let mut events = Vec::new();
    while !events.iter().any(|e| matches!(e, Event::Closed(_))) {
        check_deadline(start, "close after resume");
        ready.clear();
        sched
            .turn(Some(Duration::from_millis(50)), &mut ready)
            .unwrap();
        for r in &ready {
            if let actors::Ready::Conn { writable: true, .. } = r {
                sched.on_writable(id, &mut out);
            }
        }
        for e in out.drain(..) {
            if matches!(e, Event::ResumeWriting) {
                // The protocol's resume_writing() writes its last bytes.
                sched.write(id, b"TRAILER", &mut Vec::new()).unwrap();
            }
            events.push(e);
        }
    }
    let (got, err) = reader.join().unwrap();
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got.len(), written + b"TRAILER".len());
    assert!(got.ends_with(b"TRAILER"));
    let resumed = events
        .iter()
        .position(|e| matches!(e, Event::ResumeWriting));
    let closed = events.iter().position(|e| matches!(e, Event::Closed(None)));
    assert!(resumed.is_some() && resumed < closed, "{events:?}");
    assert!(!sched.is_alive(id));
}
