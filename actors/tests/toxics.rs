//! Toxics on both schedulers, over real loopback TCP: a held chunk comes
//! out no earlier than its release time (a deadline the scheduler's own
//! turn waits for, with no other event), a limit cuts at the exact byte,
//! a removed plan lets go of what it held, the byte counters count.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::{ConnId, Direction, Event, ReadResult, Ready, Stream, Toxic, ToxicKind, ToxicPlan};
use actors::{MioScheduler, TokioScheduler};
use common::{check_deadline, read_all, tcp_pair, Sched};

fn plan(kind: ToxicKind, direction: Direction) -> Arc<ToxicPlan> {
    Arc::new(ToxicPlan::new(
        1,
        vec![Toxic {
            kind,
            direction,
            toxicity: 1.0,
        }],
        None,
    ))
}

/// Turns until the connection yields data; returns it with the time.
fn read_some<S: Sched>(sched: &mut S, id: ConnId) -> (Vec<u8>, Instant) {
    let start = Instant::now();
    let mut ready = Vec::new();
    let mut out = Vec::new();
    loop {
        check_deadline(start, "read_some");
        ready.clear();
        sched.turn_once(&mut ready);
        for r in &ready {
            if let Ready::Conn {
                id: rid,
                readable,
                writable,
            } = *r
            {
                if rid != id {
                    continue;
                }
                if writable {
                    sched.on_writable(id, &mut out);
                }
                if readable {
                    if let ReadResult::Data(d) = sched.read(id, &mut out) {
                        return (d.to_vec(), Instant::now());
                    }
                }
            }
        }
    }
}

fn latency_holds_until_the_deadline<S: Sched>() {
    let mut sched = S::make();
    let (ours, mut peer) = tcp_pair();
    let id = sched.adopt(Stream::from_std_tcp(ours).unwrap());
    let delay = Duration::from_millis(60);
    let mut out = Vec::new();
    let latency = ToxicKind::Latency {
        delay,
        jitter: Duration::ZERO,
    };
    assert!(sched.add_toxic_plans(id, &[plan(latency, Direction::Upstream)], &mut out));
    let sent = Instant::now();
    peer.write_all(b"held").unwrap();
    let (data, at) = read_some(&mut sched, id);
    assert_eq!(data, b"held");
    assert!(at - sent >= delay, "released after {:?}", at - sent);
    assert_eq!(sched.io_counter(id).unwrap().get(), (4, 0));
}

#[test]
fn latency_holds_until_the_deadline_mio() {
    latency_holds_until_the_deadline::<MioScheduler>();
}

#[test]
fn latency_holds_until_the_deadline_tokio() {
    latency_holds_until_the_deadline::<TokioScheduler>();
}

fn limit_cuts_at_the_exact_byte<S: Sched>() {
    let mut sched = S::make();
    let (ours, mut peer) = tcp_pair();
    let id = sched.adopt(Stream::from_std_tcp(ours).unwrap());
    let mut out: Vec<Event> = Vec::new();
    let limit = plan(ToxicKind::LimitData { bytes: 10 }, Direction::Downstream);
    assert!(sched.add_toxic_plans(id, &[limit], &mut out));
    sched.write(id, &[7u8; 100], &mut out).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(read_all(&mut peer).0, vec![7u8; 10]);
    let counter = sched.io_counter(id).unwrap();
    assert_eq!(counter.get().1, 10);
    // The local side reads EOF, as through a proxy that closed.
    let start = Instant::now();
    loop {
        check_deadline(start, "local eof");
        match sched.read(id, &mut out) {
            ReadResult::Eof => break,
            _ => {
                let mut ready = Vec::new();
                sched.turn_once(&mut ready);
            }
        }
    }
}

#[test]
fn limit_cuts_at_the_exact_byte_mio() {
    limit_cuts_at_the_exact_byte::<MioScheduler>();
}

#[test]
fn limit_cuts_at_the_exact_byte_tokio() {
    limit_cuts_at_the_exact_byte::<TokioScheduler>();
}

fn removal_releases_at_once<S: Sched>() {
    let mut sched = S::make();
    let (ours, mut peer) = tcp_pair();
    let id = sched.adopt(Stream::from_std_tcp(ours).unwrap());
    let mut out = Vec::new();
    let long = plan(
        ToxicKind::Latency {
            delay: Duration::from_secs(30),
            jitter: Duration::ZERO,
        },
        Direction::Upstream,
    );
    assert!(sched.add_toxic_plans(id, &[Arc::clone(&long)], &mut out));
    peer.write_all(b"later").unwrap();
    let mut ready = Vec::new();
    for _ in 0..3 {
        ready.clear();
        sched.turn_once(&mut ready);
        if ready.iter().any(|r| matches!(r, Ready::Conn { .. })) {
            assert!(matches!(sched.read(id, &mut out), ReadResult::WouldBlock));
        }
    }
    long.remove();
    let start = Instant::now();
    let (data, _) = {
        // Removal is seen by the next call into the actor.
        match sched.read(id, &mut out) {
            ReadResult::Data(d) => (d.to_vec(), Instant::now()),
            _ => read_some(&mut sched, id),
        }
    };
    assert_eq!(data, b"later");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn removal_releases_at_once_mio() {
    removal_releases_at_once::<MioScheduler>();
}

#[test]
fn removal_releases_at_once_tokio() {
    removal_releases_at_once::<TokioScheduler>();
}
