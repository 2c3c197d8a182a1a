//! The write queue's cap: ENOBUFS before a byte goes out, one oversized write taken whole;
//! a turn's bytes of the queue: a peer reading as fast as it is written to holds no thread;
//! a Drain asked for the next turn.

mod common;

use std::io::Read;
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, Config, WRITE_TURN};
use socket2::SockRef;

backend_tests!(write_queue_cap, oversized_write_to_empty_queue, a_turn_of_bytes_at_a_time, drain_next_turn, write_once);

// 5. A peer that never reads: writes queue up to `write_queue_cap`, then
//    fail with ENOBUFS without queueing anything; what was accepted still
//    arrives whole once the peer reads.
fn write_queue_cap(kind: BackendKind) {
    const CAP: usize = 256 << 10;
    const CHUNK: usize = 16 << 10;
    let mut h = Harness::with_config(kind, Config { write_queue_cap: CAP, ..Config::default() });
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = small_buffer_client(addr);
    let conn = h.accept(1)[0];
    let mut sent = Vec::new();
    let mut max_queued = 0;
    for i in 0u64.. {
        assert!(i < 10_000, "a peer that never reads must hit the cap");
        let chunk = pattern(i, CHUNK);
        let before = h.r.queued(conn).unwrap();
        match h.r.write(conn, &chunk) {
            Ok(q) => {
                assert!(q <= CAP, "queued {q} past the cap");
                assert_eq!(q, h.r.queued(conn).unwrap());
                max_queued = max_queued.max(q);
                sent.extend_from_slice(&chunk);
            }
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOBUFS), "{e}");
                assert_eq!(h.r.queued(conn).unwrap(), before, "a refused write queues nothing");
                break;
            }
        }
        assert!(h.turn(Duration::ZERO).is_empty());
    }
    assert!(max_queued > CAP - CHUNK, "the queue filled up to the cap ({max_queued})");

    h.r.shutdown(conn).unwrap();
    let len = sent.len();
    let mut reader = Peer::spawn(move || {
        let mut peer = peer;
        let got = read_n(&mut peer, len);
        expect_eof(&mut peer);
        got
    });
    let mut seen = Vec::new();
    h.until("Drain, the peer reading to EOF and closing", |_, events| {
        for e in events {
            assert_eq!(e.token(), conn, "unexpected {e:?}");
            seen.push(e);
        }
        reader.done() && matches!(seen.last(), Some(Ev::Close { .. }))
    });
    assert!(matches!(seen.as_slice(), [Ev::Drain { .. }, Ev::End { .. }, Ev::Close { error: None, .. }]), "{seen:?}");
    assert_same(&reader.join(), &sent, "bytes at the peer");
}

// 5b. One write larger than the cap is taken whole when nothing is queued
//     (the queue passes the cap by that write at most); the next write while
//     it is queued is refused and none of it reaches the peer.
fn oversized_write_to_empty_queue(kind: BackendKind) {
    const CAP: usize = 64 << 10;
    let mut h = Harness::with_config(kind, Config { write_queue_cap: CAP, ..Config::default() });
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = small_buffer_client(addr);
    let conn = h.accept(1)[0];
    let big = pattern(5, 4 << 20);
    let queued = h.r.write(conn, &big).unwrap();
    assert!(queued > CAP && queued <= big.len(), "queued {queued}");
    let err = h.r.write(conn, b"REFUSED").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOBUFS), "{err}");
    assert_eq!(h.r.queued(conn).unwrap(), queued);
    h.r.shutdown(conn).unwrap();
    let mut reader = Peer::spawn(move || {
        let mut peer = peer;
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        got
    });
    h.until("the peer reading to EOF", |_, _| reader.done());
    let got = reader.join();
    assert_same(&got, &big, "the one oversized write, and nothing of the refused one");
}

// 5c. A queue flushed to a peer reading as fast as it is written to (found
//     by a hunt, 2026-12-07: a 1 GiB queue to such a peer held the thread
//     for seconds, every other socket and timer waiting): each turn writes
//     at most `WRITE_TURN` bytes of it, the rest goes on turn after turn, and
//     all of it arrives in order.
fn a_turn_of_bytes_at_a_time(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = client(addr);
    let conn = h.accept(1)[0];
    let big = pattern(9, 64 << 20);
    let len = big.len();
    // Nobody reads yet: most of it queues.
    let mut left = h.r.write(conn, &big).unwrap();
    assert!(left > 32 << 20, "the kernel took {} bytes of a peer reading nothing", len - left);
    let reader = Peer::spawn(move || {
        let mut peer = peer;
        read_n(&mut peer, len)
    });
    let mut turns = 0;
    while left > 0 {
        turns += 1;
        assert!(turns < 100_000, "{left} bytes still queued");
        h.turn(Duration::from_millis(100));
        let now = h.r.queued(conn).unwrap();
        assert!(left - now <= WRITE_TURN, "a turn wrote {} bytes of the queue", left - now);
        left = now;
    }
    assert_same(&reader.join(), &big, "bytes at the peer");
}

// 5d. A Drain asked for the next turn with nothing queued (where the drop-in
//     writes the next piece of a large write, as libuv writes on a writable
//     event): it comes in that turn, once. A peer's reset before that turn is
//     met by the turn's read first (ECONNRESET, not a send's error), and no
//     Drain comes.
fn drain_next_turn(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    assert_eq!(h.r.write(conn, b"piece").unwrap(), 0);
    h.r.drain_next_turn(conn).unwrap();
    let seen = h.turn(Duration::from_millis(100));
    assert!(matches!(seen.as_slice(), [Ev::Drain { conn: c }] if *c == conn), "[{}] want one Drain, got {seen:?}", h.name());
    assert_eq!(read_n(&mut peer, 5), b"piece");
    assert!(h.collect_for(Duration::from_millis(50)).is_empty(), "[{}] a second Drain", h.name());
    h.r.drain_next_turn(conn).unwrap();
    SockRef::from(&peer).set_linger(Some(Duration::ZERO)).unwrap();
    drop(peer);
    let mut seen = Vec::new();
    h.until("the close", |_, events| {
        seen.extend(events);
        seen.iter().any(|e| matches!(e, Ev::Close { .. }))
    });
    match seen.as_slice() {
        [Ev::Close { conn: c, error: Some(e), sending: false }] if *c == conn => {
            assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET), "[{}]", h.name())
        }
        other => panic!("[{}] want the read's ECONNRESET alone, got {other:?}", h.name()),
    }
}

// 5e. One write(2) and nothing queued (the drop-in's first step of a large
//     write, as libuv's uv_write makes one writev of it all in the call): the
//     kernel takes some, the rest is the caller's; behind queued bytes it
//     writes nothing; after the FIN it is refused as a write is.
fn write_once(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = client(addr);
    let conn = h.accept(1)[0];
    let big = pattern(5, 64 << 20);
    let taken = h.r.write_once(conn, &big).unwrap();
    assert!(taken > 0 && taken < big.len(), "[{}] one write(2) of a peer reading nothing took {taken}", h.name());
    assert_eq!(h.r.queued(conn).unwrap(), 0, "[{}] write_once queued bytes", h.name());
    // The rest through the queue: write_once behind it writes nothing.
    let queued = h.r.write(conn, &big[taken..taken + 4096]).unwrap();
    assert_eq!(queued, 4096, "[{}] the kernel took bytes it had refused", h.name());
    assert_eq!(h.r.write_once(conn, &big[taken + 4096..]).unwrap(), 0, "[{}] wrote past the queue", h.name());
    let want = big[..taken + 4096].to_vec();
    let reader = Peer::spawn(move || {
        let mut peer = peer;
        read_n(&mut peer, want.len())
    });
    h.until("the queue out", |r, _| r.queued(conn).unwrap() == 0);
    assert_same(&reader.join(), &big[..taken + 4096], "bytes at the peer");
    h.r.shutdown(conn).unwrap();
    let err = h.r.write_once(conn, b"after the FIN").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "[{}] {err}", h.name());
}
