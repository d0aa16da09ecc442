//! Scheduler-level polling: waker, raw fd watchers, EINTR-free basics.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use actors::{MioScheduler, Ready};

#[test]
fn waker_from_another_thread_ends_turn() {
    let mut sched = MioScheduler::new().unwrap();
    let waker = sched.waker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        waker.wake().unwrap();
        waker.wake().unwrap();
    });
    let start = Instant::now();
    let mut ready = Vec::new();
    while ready.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10));
        sched
            .turn(Some(Duration::from_secs(10)), &mut ready)
            .unwrap();
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(ready, vec![Ready::Woken]);
    t.join().unwrap();
}

#[test]
fn turn_times_out_empty() {
    let mut sched = MioScheduler::new().unwrap();
    let mut ready = Vec::new();
    let start = Instant::now();
    sched
        .turn(Some(Duration::from_millis(30)), &mut ready)
        .unwrap();
    assert!(ready.is_empty());
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn fd_watchers_are_level_triggered() {
    let mut sched = MioScheduler::new().unwrap();
    let (mut a, mut b) = UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    let fd = b.as_raw_fd();
    sched.watch_fd(fd, true, false).unwrap();
    assert_eq!(sched.fd_interest(fd), Some((true, false)));
    a.write_all(b"0123456789").unwrap();
    let mut ready = Vec::new();
    // Not consuming the data: it must be reported on every turn.
    for _ in 0..3 {
        ready.clear();
        sched
            .turn(Some(Duration::from_secs(5)), &mut ready)
            .unwrap();
        assert_eq!(
            ready,
            vec![Ready::Fd {
                fd,
                readable: true,
                writable: false
            }]
        );
    }
    let mut buf = [0u8; 16];
    assert_eq!(b.read(&mut buf).unwrap(), 10);
    ready.clear();
    sched
        .turn(Some(Duration::from_millis(30)), &mut ready)
        .unwrap();
    assert!(ready.is_empty(), "{ready:?}");
    // Add the write direction: one registration, both reported.
    sched.watch_fd(fd, true, true).unwrap();
    a.write_all(b"x").unwrap();
    ready.clear();
    sched
        .turn(Some(Duration::from_secs(5)), &mut ready)
        .unwrap();
    assert_eq!(
        ready,
        vec![Ready::Fd {
            fd,
            readable: true,
            writable: true
        }]
    );
    // Only write now.
    sched.watch_fd(fd, false, true).unwrap();
    ready.clear();
    sched
        .turn(Some(Duration::from_secs(5)), &mut ready)
        .unwrap();
    assert_eq!(
        ready,
        vec![Ready::Fd {
            fd,
            readable: false,
            writable: true
        }]
    );
    // Unwatching via (false, false).
    sched.watch_fd(fd, false, false).unwrap();
    assert_eq!(sched.fd_interest(fd), None);
    assert!(!sched.unwatch_fd(fd));
    ready.clear();
    sched
        .turn(Some(Duration::from_millis(30)), &mut ready)
        .unwrap();
    assert!(ready.is_empty());
}

#[test]
fn watch_regular_file_fails_cleanly() {
    let mut sched = MioScheduler::new().unwrap();
    let dir = std::env::temp_dir().join(format!("actors-poller-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = std::fs::File::create(dir.join("f")).unwrap();
    let err = sched.watch_fd(f.as_raw_fd(), true, false).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    assert_eq!(sched.fd_interest(f.as_raw_fd()), None);
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Turns until something is reported (5 s at most).
fn turn_until_ready<S: Turn>(sched: &mut S, ready: &mut Vec<Ready>) {
    let start = Instant::now();
    ready.clear();
    while ready.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(5), "nothing reported");
        sched.turn_for(Duration::from_secs(5), ready);
    }
}

/// The two schedulers' `turn`, for the tests below.
trait Turn {
    fn turn_for(&mut self, timeout: Duration, ready: &mut Vec<Ready>);
}

impl Turn for MioScheduler {
    fn turn_for(&mut self, timeout: Duration, ready: &mut Vec<Ready>) {
        self.turn(Some(timeout), ready).unwrap();
    }
}

impl Turn for actors::TokioScheduler {
    fn turn_for(&mut self, timeout: Duration, ready: &mut Vec<Ready>) {
        self.turn(Some(timeout), ready).unwrap();
    }
}

/// Instantiates a scheduler test macro for both schedulers.
macro_rules! on_both {
    ($test:ident, $mio:ident, $tokio:ident) => {
        $test!($mio, MioScheduler::new().unwrap());
        $test!($tokio, actors::TokioScheduler::new().unwrap());
    };
}

/// A paused listener is not reported; resumed, what queued meanwhile is,
/// and so is a connection that comes after it was drained.
macro_rules! paused_listener_test {
    ($name:ident, $sched:expr) => {
        #[test]
        fn $name() {
            let mut sched = $sched;
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let lid = sched
                .add_listener(actors::Listener::from_std_tcp(l).unwrap())
                .unwrap();
            sched.pause_listener(lid).unwrap();
            let _c1 = std::net::TcpStream::connect(addr).unwrap();
            let _c2 = std::net::TcpStream::connect(addr).unwrap();
            let mut ready = Vec::new();
            sched
                .turn(Some(Duration::from_millis(50)), &mut ready)
                .unwrap();
            assert!(ready.is_empty());
            sched.resume_listener(lid).unwrap();
            sched
                .turn(Some(Duration::from_secs(5)), &mut ready)
                .unwrap();
            assert_eq!(ready, vec![Ready::Listener { id: lid }]);
            // Accept just one: the listener must be reported again.
            assert!(sched.accept(lid).unwrap().is_some());
            ready.clear();
            sched
                .turn(Some(Duration::from_secs(5)), &mut ready)
                .unwrap();
            assert_eq!(ready, vec![Ready::Listener { id: lid }]);
            assert!(sched.accept(lid).unwrap().is_some());
            assert!(sched.accept(lid).unwrap().is_none());
            ready.clear();
            sched
                .turn(Some(Duration::from_millis(30)), &mut ready)
                .unwrap();
            assert!(ready.is_empty());
            // Drained: the next connection is an edge, and reported.
            let _c3 = std::net::TcpStream::connect(addr).unwrap();
            turn_until_ready(&mut sched, &mut ready);
            assert_eq!(ready, vec![Ready::Listener { id: lid }]);
            assert!(sched.accept(lid).unwrap().is_some());
            assert!(sched.remove_listener(lid).is_some());
            assert!(sched.accept(lid).is_err());
        }
    };
}

on_both!(
    paused_listener_test,
    mio_paused_listener_is_not_reported,
    tokio_paused_listener_is_not_reported
);

/// What a `sock_recv` that waits round after round on one socket does: a
/// read that would block, a watch that tells the scheduler the fd still
/// names the file it named (so the kept registration is watched again
/// with no system call), and what the peer sends next is reported.
macro_rules! same_file_rewatch_test {
    ($name:ident, $sched:expr) => {
        #[test]
        fn $name() {
            let mut sched = $sched;
            let (mut a, mut b) = UnixStream::pair().unwrap();
            b.set_nonblocking(true).unwrap();
            let fd = b.as_raw_fd();
            let mut buf = [0u8; 16];
            let mut ready = Vec::new();
            for round in 0..5u8 {
                assert!(b.read(&mut buf).is_err(), "nothing to read yet");
                sched.watch_fd_idle(fd, true, false, round > 0).unwrap();
                a.write_all(&[round]).unwrap();
                let start = Instant::now();
                ready.clear();
                while ready.is_empty() {
                    assert!(start.elapsed() < Duration::from_secs(5), "round {round}");
                    sched
                        .turn(Some(Duration::from_secs(5)), &mut ready)
                        .unwrap();
                }
                assert_eq!(
                    ready,
                    vec![Ready::Fd {
                        fd,
                        readable: true,
                        writable: false
                    }]
                );
                assert_eq!(b.read(&mut buf).unwrap(), 1);
                assert_eq!(buf[0], round);
                assert!(sched.unwatch_fd(fd));
            }
        }
    };
}

on_both!(
    same_file_rewatch_test,
    mio_same_file_rewatch_sees_new_data,
    tokio_same_file_rewatch_sees_new_data
);

/// Many fds watched, a few ready: each turn reports exactly the ready
/// ones, however many others wait.
macro_rules! one_ready_among_many_test {
    ($name:ident, $sched:expr) => {
        #[test]
        fn $name() {
            let mut sched = $sched;
            let pairs: Vec<(UnixStream, UnixStream)> =
                (0..200).map(|_| UnixStream::pair().unwrap()).collect();
            for (_, b) in &pairs {
                b.set_nonblocking(true).unwrap();
                sched.watch_fd(b.as_raw_fd(), true, false).unwrap();
            }
            let mut ready = Vec::new();
            let mut buf = [0u8; 16];
            for i in [137usize, 3, 199, 0] {
                (&pairs[i].0).write_all(b"x").unwrap();
                turn_until_ready(&mut sched, &mut ready);
                assert_eq!(
                    ready,
                    vec![Ready::Fd {
                        fd: pairs[i].1.as_raw_fd(),
                        readable: true,
                        writable: false
                    }]
                );
                assert_eq!((&pairs[i].1).read(&mut buf).unwrap(), 1);
            }
            // Two at once: both, in one turn or two.
            (&pairs[5].0).write_all(b"x").unwrap();
            (&pairs[150].0).write_all(b"x").unwrap();
            let mut seen = Vec::new();
            while seen.len() < 2 {
                turn_until_ready(&mut sched, &mut ready);
                seen.extend(ready.drain(..));
            }
            seen.sort_by_key(|r| match r {
                Ready::Fd { fd, .. } => *fd,
                _ => -1,
            });
            let mut want = vec![pairs[5].1.as_raw_fd(), pairs[150].1.as_raw_fd()];
            want.sort();
            let want: Vec<Ready> = want
                .into_iter()
                .map(|fd| Ready::Fd {
                    fd,
                    readable: true,
                    writable: false,
                })
                .collect();
            assert_eq!(seen, want);
        }
    };
}

on_both!(
    one_ready_among_many_test,
    mio_reports_one_ready_fd_among_many,
    tokio_reports_one_ready_fd_among_many
);

/// Data that came while an fd was not watched (a turn ran meanwhile, so
/// the scheduler saw the edge) is reported when it is watched again; and
/// once read, a watch that says so reports nothing stale.
macro_rules! edge_while_unwatched_test {
    ($name:ident, $sched:expr) => {
        #[test]
        fn $name() {
            let mut sched = $sched;
            let (mut a, mut b) = UnixStream::pair().unwrap();
            b.set_nonblocking(true).unwrap();
            let fd = b.as_raw_fd();
            let mut buf = [0u8; 16];
            let mut ready = Vec::new();
            let only_readable = vec![Ready::Fd {
                fd,
                readable: true,
                writable: false,
            }];
            sched.watch_fd(fd, true, false).unwrap();
            ready.clear();
            sched.turn_for(Duration::from_millis(20), &mut ready);
            assert!(ready.is_empty(), "{ready:?}");
            assert!(sched.unwatch_fd(fd));
            a.write_all(b"1").unwrap();
            ready.clear();
            sched.turn_for(Duration::from_millis(20), &mut ready);
            assert!(ready.is_empty(), "unwatched: {ready:?}");
            // Watched again: the data waiting is reported.
            sched.watch_fd(fd, true, false).unwrap();
            turn_until_ready(&mut sched, &mut ready);
            assert_eq!(ready, only_readable);
            assert_eq!(b.read(&mut buf).unwrap(), 1);
            assert!(sched.unwatch_fd(fd));
            // An edge while unwatched, read before the watch: stale.
            a.write_all(b"2").unwrap();
            ready.clear();
            sched.turn_for(Duration::from_millis(20), &mut ready);
            assert_eq!(b.read(&mut buf).unwrap(), 1);
            assert!(b.read(&mut buf).is_err());
            sched.watch_fd_idle(fd, true, false, true).unwrap();
            ready.clear();
            sched.turn_for(Duration::from_millis(20), &mut ready);
            assert!(ready.is_empty(), "stale: {ready:?}");
            // And the next data is reported.
            a.write_all(b"3").unwrap();
            turn_until_ready(&mut sched, &mut ready);
            assert_eq!(ready, only_readable);
            assert_eq!(b.read(&mut buf).unwrap(), 1);
            assert_eq!(buf[0], b'3');
        }
    };
}

on_both!(
    edge_while_unwatched_test,
    mio_sees_an_edge_that_came_unwatched,
    tokio_sees_an_edge_that_came_unwatched
);
