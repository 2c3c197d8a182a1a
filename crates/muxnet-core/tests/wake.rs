//! Waking an owner: a thread blocked until work arrives, the pollable fd, an idle reactor that sleeps.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use muxnet_core::{BackendKind, BindOptions};

backend_tests!(blocking_wait_and_waker, ready_now_takes_nothing, blocking_wait_takes_nothing, idle_reactor_sleeps);

// 14. Another thread can block until the reactor has work (input, or a
//     wake-up); a zero-timeout turn then collects it. mio also offers an
//     fd that polls readable while events are pending.
fn blocking_wait_and_waker(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    // The accept's events handled: the connection is registered (a blocking
    // wait watches only what the backend has).
    h.r.events_handled();

    let block_on = |h: &Harness| {
        let mut waiter = h.r.backend().blocking_wait();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let start = Instant::now();
            let r = waiter.block(Some(Duration::from_secs(5)));
            let _ = tx.send((r.map_err(|e| e.to_string()), start.elapsed()));
        });
        rx
    };
    let returned = |rx: &mpsc::Receiver<(Result<(), String>, Duration)>, what: &str| {
        let (r, took) = rx.recv_timeout(Duration::from_secs(3)).unwrap_or_else(|_| panic!("block did not return after {what}"));
        r.unwrap();
        assert!(took < Duration::from_secs(2), "block returned only after {took:?}");
    };

    // Input.
    let rx = block_on(&h);
    thread::sleep(Duration::from_millis(100));
    assert!(rx.try_recv().is_err(), "block returned with nothing to report");
    send(&mut peer, b"wake by data");
    returned(&rx, "data arrived");
    let events = h.turn(Duration::ZERO);
    assert!(
        matches!(events.as_slice(), [Ev::Data { conn: c, data }] if *c == conn && data == b"wake by data"),
        "a zero-timeout turn after block must deliver the data: {events:?}"
    );

    // A wake-up.
    let rx = block_on(&h);
    thread::sleep(Duration::from_millis(100));
    assert!(rx.try_recv().is_err(), "block returned with nothing to report");
    h.r.backend().waker().wake().unwrap();
    returned(&rx, "wake()");
    assert!(h.turn(Duration::ZERO).is_empty());

    // mio's pollable fd.
    let fd = h.r.backend().as_pollable().map(|p| p.pollable_handle());
    if kind != BackendKind::Mio {
        assert_eq!(fd, None);
        return;
    }
    let fd = fd.expect("mio has a pollable fd");
    let readable = |ms| {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, and its count.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
        n == 1 && pfd.revents & libc::POLLIN != 0
    };
    assert!(!readable(0), "nothing pending yet");
    send(&mut peer, b"via the fd");
    assert!(readable(2000), "the fd did not poll readable with data pending");
    let events = h.turn(Duration::ZERO);
    assert!(matches!(events.as_slice(), [Ev::Data { data, .. }] if data == b"via the fd"), "{events:?}");
    assert!(!readable(0), "still readable after the turn collected everything");
}

// A look at the sockets (for a loop that will not sleep while a waiter
// may not have run) neither waits nor takes what it sees: the input is the
// turn's, a wake-up a blocked waiter's.
fn ready_now_takes_nothing(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    h.r.events_handled();
    assert!(!h.r.ready_now(), "ready with nothing to report");
    send(&mut peer, b"looked at");
    let until = Instant::now() + Duration::from_secs(2);
    while !h.r.ready_now() {
        assert!(Instant::now() < until, "the input never looked ready");
        thread::sleep(Duration::from_millis(1));
    }
    assert!(h.r.ready_now(), "a look took the readiness");
    let events = h.turn(Duration::ZERO);
    assert!(matches!(events.as_slice(), [Ev::Data { conn: c, data }] if *c == conn && data == b"looked at"), "{events:?}");
    assert!(!h.r.ready_now(), "ready once the turn collected everything");

    h.r.backend().waker().wake().unwrap();
    h.r.ready_now();
    let mut waiter = h.r.backend().blocking_wait();
    let start = Instant::now();
    waiter.block(Some(Duration::from_secs(2))).unwrap();
    assert!(start.elapsed() < Duration::from_secs(1), "a look took the wake-up: the waiter blocked {:?}", start.elapsed());
}

// Nor does a blocking wait: a waiter that has seen input, but not yet told
// (the OS ran something else), must leave it to a look. mio's took it into
// a stash: a loop spinning on `setImmediate` heard an echoed byte 1 030
// turns late on a loaded machine (a CI run).
fn blocking_wait_takes_nothing(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    h.r.events_handled();
    send(&mut peer, b"seen by the waiter");
    h.r.backend().blocking_wait().block(Some(Duration::from_secs(2))).unwrap();
    assert!(h.r.ready_now(), "the waiter took the input: a look sees nothing");
    let events = h.turn(Duration::ZERO);
    assert!(matches!(events.as_slice(), [Ev::Data { conn: c, data }] if *c == conn && data == b"seen by the waiter"), "{events:?}");
}

// An idle reactor (listener, open connection, UDP socket) sleeps for its
// timeout instead of spinning.
fn idle_reactor_sleeps(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    send(&mut peer, b"x");
    echo(&mut h, conn, 1);
    read_n(&mut peer, 1);

    h.assert_sleeps(Duration::from_millis(200), Duration::from_millis(20), 15, "the reactor spins");
    assert!(!h.r.has_pending());
}
