//! No fd outlives its owner. Alone in its own test binary (own process),
//! because other tests running in parallel threads would skew the count.

mod common;

use std::io::Write;
use std::time::Duration;

use actors::Actors;
use actors::{Command, FaultPlan, Listener, MioScheduler};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn no_fd_leak_across_all_endings() {
    let before = open_fds();
    {
        let mut sched = MioScheduler::new().unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let lid = sched
            .add_listener(Listener::from_std_tcp(l).unwrap())
            .unwrap();
        let mut peers = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..5 {
            peers.push(std::net::TcpStream::connect(addr).unwrap());
        }
        let mut ready = Vec::new();
        let start = std::time::Instant::now();
        while ids.len() < 5 {
            common::check_deadline(start, "accept");
            sched
                .turn(Some(Duration::from_millis(50)), &mut ready)
                .unwrap();
            while let Some((s, _)) = sched.accept(lid).unwrap() {
                ids.push(sched.add_connection(s).unwrap());
            }
        }
        let mut out = Vec::new();
        // Clean close, abort, panic, injected error, and shutdown.
        sched.command(ids[0], Command::Close, &mut out).unwrap();
        sched.command(ids[1], Command::Abort, &mut out).unwrap();
        sched.set_fault(
            ids[2],
            FaultPlan {
                panic_on_write: Some(1),
                ..Default::default()
            },
        );
        let _ = sched.write(ids[2], b"x", &mut out);
        sched.set_fault(
            ids[3],
            FaultPlan {
                fail_next_write: Some(libc::EPIPE),
                ..Default::default()
            },
        );
        sched.write(ids[3], b"x", &mut out).unwrap();
        peers[4].write_all(b"still alive").unwrap();
        let mut all = Vec::new();
        sched.close_all(&mut all);
        assert_eq!(all.len(), 1);
        assert_eq!(common::count_closed(&out), 4);
        // An fd the scheduler already owns cannot also be watched.
        let lfd = sched.listener_fd(lid).unwrap();
        assert!(sched.watch_fd(lfd, true, false).is_err());
        let (x, _y) = std::os::unix::net::UnixStream::pair().unwrap();
        use std::os::fd::AsRawFd;
        sched.watch_fd(x.as_raw_fd(), true, true).unwrap();
        assert!(sched.unwatch_fd(x.as_raw_fd()));
        drop(sched.remove_listener(lid));
        drop(peers);
    }
    assert_eq!(open_fds(), before);
}
