//! Connections joined in the reactor: bytes relayed both ways with no
//! `Data` for the owner, backpressure that bounds the queue, half-close
//! passed through as a FIN, a reset passed through as a reset.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, Config, Token};
use socket2::SockRef;

backend_tests!(
    pipe_relays_both_ways,
    pipe_relays_a_short_read_without_a_wasted_read,
    pipe_backpressure_bounds_the_queue,
    pipe_passes_half_close_and_reset,
    pipe_refuses_bad_pairs
);

/// A std client `a_peer` connected to the reactor (`a`), and the reactor
/// connected (`b`) to a std server whose accepted side is `b_peer`; `a` and
/// `b` piped.
fn piped_pair(h: &mut Harness) -> (TcpStream, Token, TcpStream, Token) {
    let (_, addr) = h.listen("127.0.0.1:0");
    let a_peer = client(addr);
    let a = h.accept(1)[0];
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = h.r.connect(upstream.local_addr().unwrap(), None).unwrap();
    h.r.pipe(a, b).unwrap();
    let (b_peer, _) = upstream.accept().unwrap();
    set_timeouts(&b_peer);
    (a_peer, a, b_peer, b)
}

/// Turns until `until` holds, failing on any `Data` (a pipe reports none).
fn turn_without_data(h: &mut Harness, what: &str, mut until: impl FnMut() -> bool) {
    h.until(what, |_, events| {
        for e in events {
            assert!(!matches!(e, Ev::Data { .. }), "a piped connection reported data: {e:?}");
        }
        until()
    });
}

fn pipe_relays_both_ways(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (a_peer, a, b_peer, b) = piped_pair(&mut h);
    let (up, down) = (pattern(1, 3 << 20), pattern(2, 2 << 20));
    // Each peer writes and reads on its own thread; the reactor relays. The
    // threads hand their sockets back: none closes before the counts are read.
    let writer = |mut s: TcpStream, data: Vec<u8>| {
        Peer::spawn(move || {
            s.write_all(&data).unwrap();
            s
        })
    };
    let reader = |mut s: TcpStream, n: usize| Peer::spawn(move || (read_n(&mut s, n), s));
    let to_b = writer(a_peer.try_clone().unwrap(), up.clone());
    let to_a = writer(b_peer.try_clone().unwrap(), down.clone());
    let mut at_b = reader(b_peer, up.len());
    let mut at_a = reader(a_peer, down.len());
    turn_without_data(&mut h, "8 MiB relayed", || at_a.done() && at_b.done());
    let _open = (to_b.join(), to_a.join());
    let ((got_b, _b), (got_a, _a)) = (at_b.join(), at_a.join());
    assert!(got_b == up, "[{}] bytes toward b differ", h.name());
    assert!(got_a == down, "[{}] bytes toward a differ", h.name());
    assert_eq!(h.r.relayed(a).unwrap(), up.len() as u64, "bytes relayed from a");
    assert_eq!(h.r.relayed(b).unwrap(), down.len() as u64, "bytes relayed from b");
}

/// Request/response traffic, one 64-byte message at a time: each relay is
/// one read (short: the socket is drained) and one write. Reading again to
/// meet `WouldBlock` would double the reads; a few spurious wake-ups may
/// still find nothing.
fn pipe_relays_a_short_read_without_a_wasted_read(kind: BackendKind) {
    const ROUNDS: usize = 100;
    let mut h = Harness::new(kind);
    let (a_peer, _, b_peer, _) = piped_pair(&mut h);
    let before = h.r.stats();
    let mut client = Peer::spawn(move || {
        let mut s = a_peer;
        for i in 0..ROUNDS {
            s.write_all(&pattern(i as u64, 64)).unwrap();
            assert_eq!(read_n(&mut s, 64), pattern(!(i as u64), 64), "reply {i}");
        }
        s
    });
    let mut server = Peer::spawn(move || {
        let mut s = b_peer;
        for i in 0..ROUNDS {
            assert_eq!(read_n(&mut s, 64), pattern(i as u64, 64), "request {i}");
            s.write_all(&pattern(!(i as u64), 64)).unwrap();
        }
        s
    });
    turn_without_data(&mut h, "100 round trips", || client.done() && server.done());
    let _open = (client.join(), server.join());
    let s = h.r.stats();
    let (reads, empty) = (s.reads.calls - before.reads.calls, s.empty_reads - before.empty_reads);
    assert_eq!(s.relayed - before.relayed, (2 * ROUNDS * 64) as u64, "[{}]", h.name());
    assert_eq!(reads, (2 * ROUNDS) as u64, "[{}] one read per relayed message", h.name());
    assert!(empty < (ROUNDS / 4) as u64, "[{}] {empty} reads found nothing in {} relays", h.name(), 2 * ROUNDS);
}

fn pipe_backpressure_bounds_the_queue(kind: BackendKind) {
    let config = Config { pipe_high_water: 64 << 10, ..Config::default() };
    let mut h = Harness::with_config(kind, config);
    let (a_peer, _, b_peer, b) = piped_pair(&mut h);
    let data = pattern(3, 16 << 20);
    let mut sending = Peer::spawn({
        let (mut s, data) = (a_peer.try_clone().unwrap(), data.clone());
        move || s.write_all(&data).unwrap()
    });
    // b's peer reads nothing: the relay must stop reading a, not queue 16 MiB.
    let mut most = 0;
    for _ in 0..50 {
        turn_without_data(&mut h, "a turn", || true);
        most = most.max(h.r.queued(b).unwrap());
    }
    assert!(!sending.done(), "[{}] the sender finished: nothing held it back", h.name());
    assert!(most <= (64 << 10) + (64 << 10), "[{}] queued {most} bytes toward a peer that reads nothing", h.name());
    let mut receiving = Peer::spawn(move || read_n(&mut { b_peer }, 16 << 20));
    turn_without_data(&mut h, "16 MiB relayed once b reads", || receiving.done());
    sending.join();
    assert!(receiving.join() == data, "[{}] bytes differ", h.name());
    drop(a_peer);
}

fn pipe_passes_half_close_and_reset(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (mut a_peer, a, mut b_peer, b) = piped_pair(&mut h);
    // a's peer half-closes: b's peer sees the bytes, then EOF; it can still answer.
    send(&mut a_peer, b"last words");
    a_peer.shutdown(Shutdown::Write).unwrap();
    let mut ended = false;
    h.until("a's end", |_, events| {
        ended |= events.iter().any(|e| matches!(e, Ev::End { conn } if *conn == a));
        ended
    });
    let mut got = Vec::new();
    b_peer.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last words");
    send(&mut b_peer, b"reply");
    let mut reply = [0u8; 5];
    let mut reader = Peer::spawn(move || {
        a_peer.read_exact(&mut reply).unwrap();
        expect_eof(&mut a_peer);
        reply
    });
    drop(b_peer);
    let mut closes = Vec::new();
    h.until("the reply, then both closed in order", |_, events| {
        for e in events {
            match e {
                Ev::Close { conn, error } => closes.push((conn, error.is_none())),
                Ev::End { conn } => assert_eq!(conn, b),
                other => panic!("unexpected {other:?}"),
            }
        }
        reader.done() && closes.len() == 2
    });
    assert_eq!(&reader.join(), b"reply");
    assert!(closes.iter().all(|&(conn, orderly)| (conn == a || conn == b) && orderly), "{closes:?}");

    // A reset on one side resets the other, and both are reported.
    let (a_peer, a, mut b_peer, b) = piped_pair(&mut h);
    SockRef::from(&a_peer).set_linger(Some(Duration::ZERO)).unwrap();
    drop(a_peer);
    let mut errors = Vec::new();
    h.until("both closed with the reset", |_, events| {
        for e in events {
            if let Ev::Close { conn, error } = e {
                assert!(conn == a || conn == b);
                errors.push(error.and_then(|e| e.raw_os_error()));
            }
        }
        errors.len() == 2
    });
    assert_eq!(errors, vec![Some(libc::ECONNRESET); 2]);
    let mut byte = [0u8; 1];
    match b_peer.read(&mut byte) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "[{}] {e}", h.name()),
        Ok(n) => panic!("[{}] b's peer read {n} bytes instead of a reset", h.name()),
    }
}

fn pipe_refuses_bad_pairs(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (listener, addr) = h.listen("127.0.0.1:0");
    let _peers = (client(addr), client(addr), client(addr));
    let c = h.accept(3);
    let invalid = |e: std::io::Error| assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    invalid(h.r.pipe(c[0], c[0]).unwrap_err());
    invalid(h.r.pipe(c[0], listener).unwrap_err());
    h.r.pipe(c[0], c[1]).unwrap();
    invalid(h.r.pipe(c[1], c[2]).unwrap_err());
    // Closing one side unjoins the other: it reports its input again.
    h.r.close(c[0]).unwrap();
    h.r.pipe(c[1], c[2]).unwrap();
}
