//! The supervisor: a panicking or failing actor ends with exactly one
//! `Closed`, the others keep working; shutdown closes everyone once.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use actors::Actors;
use actors::{ActorError, CloseError, Command, Event, FaultPlan, MioScheduler};
use common::{add_tcp, count_closed, drive};

fn closed_of(events: &[(actors::ConnId, Event)], id: actors::ConnId) -> Vec<&Event> {
    events
        .iter()
        .filter(|(i, e)| *i == id && matches!(e, Event::Closed(_)))
        .map(|(_, e)| e)
        .collect()
}

#[test]
fn panic_on_read_is_contained() {
    let mut sched = MioScheduler::new().unwrap();
    let (bad, mut bad_peer) = add_tcp(&mut sched);
    let (good, mut good_peer) = add_tcp(&mut sched);
    assert!(sched.set_fault(
        bad,
        FaultPlan {
            panic_on_read: Some(1),
            ..Default::default()
        }
    ));
    bad_peer.write_all(b"boom").unwrap();
    good_peer.write_all(b"fine").unwrap();
    let mut events = Vec::new();
    let mut got = Vec::new();
    drive(&mut sched, &mut events, &mut got, |s, _, g| {
        !s.is_alive(bad) && g.iter().any(|(i, _)| *i == good)
    });
    let closed = closed_of(&events, bad);
    assert_eq!(closed.len(), 1);
    match closed[0] {
        Event::Closed(Some(CloseError::Panic(msg))) => {
            assert!(msg.contains("injected fault"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    // The panicking actor's socket was closed: its peer sees EOF, or a
    // reset because "boom" was never read.
    bad_peer
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 8];
    match bad_peer.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    // Dead id: refused or ignored, never a second Closed.
    let mut out = Vec::new();
    assert!(matches!(
        sched.write(bad, b"x", &mut out),
        Err(ActorError::Closed)
    ));
    sched.command(bad, Command::Close, &mut out).unwrap();
    sched.on_writable(bad, &mut out);
    assert!(out.is_empty());
    // The other connection still works both ways.
    assert_eq!(got.iter().find(|(i, _)| *i == good).unwrap().1, b"fine");
    sched.write(good, b"pong", &mut out).unwrap();
    let mut buf = [0u8; 4];
    good_peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
    assert!(closed_of(&events, good).is_empty());
}

#[test]
fn panic_on_write_and_injected_errno() {
    let mut sched = MioScheduler::new().unwrap();
    let (a, _pa) = add_tcp(&mut sched);
    let (b, _pb) = add_tcp(&mut sched);
    sched.set_fault(
        a,
        FaultPlan {
            panic_on_write: Some(2),
            ..Default::default()
        },
    );
    sched.set_fault(
        b,
        FaultPlan {
            fail_next_write: Some(libc::EPIPE),
            ..Default::default()
        },
    );
    let mut out = Vec::new();
    sched.write(a, b"1", &mut out).unwrap();
    assert!(out.is_empty());
    // The panic surfaces as a Closed, not as an error to the writer.
    assert!(matches!(
        sched.write(a, b"2", &mut out),
        Err(ActorError::Closed)
    ));
    assert_eq!(count_closed(&out), 1);
    assert!(matches!(out[0], Event::Closed(Some(CloseError::Panic(_)))));
    out.clear();
    sched.write(b, b"x", &mut out).unwrap();
    assert_eq!(count_closed(&out), 1);
    match &out[0] {
        Event::Closed(Some(CloseError::Io(e))) => assert_eq!(e.raw_os_error(), Some(libc::EPIPE)),
        other => panic!("{other:?}"),
    }
    assert_eq!(sched.connection_count(), 0);
}

#[test]
fn injected_read_error_closes_with_io_error() {
    let mut sched = MioScheduler::new().unwrap();
    let (a, mut pa) = add_tcp(&mut sched);
    sched.set_fault(
        a,
        FaultPlan {
            fail_next_read: Some(libc::ECONNRESET),
            ..Default::default()
        },
    );
    pa.write_all(b"x").unwrap();
    let mut events = Vec::new();
    let mut got = Vec::new();
    drive(&mut sched, &mut events, &mut got, |s, _, _| !s.is_alive(a));
    let closed = closed_of(&events, a);
    assert_eq!(closed.len(), 1);
    assert!(
        matches!(closed[0], Event::Closed(Some(CloseError::Io(e))) if e.kind() == std::io::ErrorKind::ConnectionReset)
    );
}

#[test]
fn close_all_closes_each_live_connection_once() {
    let mut sched = MioScheduler::new().unwrap();
    let (a, _pa) = add_tcp(&mut sched);
    let (b, _pb) = add_tcp(&mut sched);
    let (c, _pc) = add_tcp(&mut sched);
    let (d, _pd) = add_tcp(&mut sched);
    let mut out = Vec::new();
    // `d` is already dead; `b` has queued data; `c` is closing.
    sched.command(d, Command::Abort, &mut out).unwrap();
    let chunk = common::pattern(64 * 1024);
    while sched.write_buffer_size(b).unwrap() == 0 {
        sched.write(b, &chunk, &mut out).unwrap();
    }
    sched.command(c, Command::Close, &mut Vec::new()).unwrap();
    // `c` had nothing queued, so it is already closed too.
    assert!(!sched.is_alive(c));
    let mut all = Vec::new();
    sched.close_all(&mut all);
    let mut ids: Vec<_> = all.iter().map(|(i, _)| *i).collect();
    ids.sort_by_key(|i| format!("{i:?}"));
    let mut want = vec![a, b];
    want.sort_by_key(|i| format!("{i:?}"));
    assert_eq!(ids, want);
    assert!(all.iter().all(|(_, e)| matches!(e, Event::Closed(None))));
    assert_eq!(sched.connection_count(), 0);
    let mut again = Vec::new();
    sched.close_all(&mut again);
    assert!(again.is_empty());
}

#[test]
fn stale_id_never_reaches_new_actor_in_same_slot() {
    let mut sched = MioScheduler::new().unwrap();
    let (a, _pa) = add_tcp(&mut sched);
    let mut out = Vec::new();
    sched.command(a, Command::Abort, &mut out).unwrap();
    let (b, _pb) = add_tcp(&mut sched);
    assert_ne!(a, b);
    assert!(matches!(
        sched.write(a, b"x", &mut out),
        Err(ActorError::Closed)
    ));
    assert!(sched.is_alive(b));
}
