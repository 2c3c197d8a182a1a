//! Corked writes: one send per connection per batch, failures reported by the next turn, no spinning afterwards.

mod common;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use muxnet_core::{BackendKind, Token};
use socket2::SockRef;

backend_tests!(corked_fan_out, corked_write_to_a_reset_peer, corked_then_paused_sleeps, corked_then_ended_drains);

// 7b. Corked writes to many connections wait for `uncork` (or the next
//     turn), then arrive whole and in order, a direct write flushing what
//     was corked before it, a FIN after them.
fn corked_fan_out(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peers: Vec<TcpStream> = (0..3).map(|_| client(addr)).collect();
    let accepted = h.accept(3);
    let conns: Vec<Token> = peers.iter().map(|p| conn_for(&mut h, &accepted, p)).collect();
    let lines: Vec<Vec<u8>> = (0..20).map(|i| format!("line {i}\n").into_bytes()).collect();
    for line in &lines {
        for &c in &conns {
            assert_eq!(h.r.write_corked(c, line).unwrap(), 0, "nothing was refused yet");
        }
    }
    let all = lines.concat();
    assert_eq!(h.r.queued(conns[0]).unwrap(), all.len());
    peers[0].set_nonblocking(true).unwrap();
    assert_eq!(peers[0].read(&mut [0u8; 16]).unwrap_err().kind(), ErrorKind::WouldBlock, "corked bytes went out early");
    peers[0].set_nonblocking(false).unwrap();
    h.r.uncork();
    for (i, p) in peers.iter_mut().enumerate() {
        assert_same(&read_n(p, all.len()), &all, &format!("peer {i}"));
    }
    assert_eq!(h.r.queued(conns[0]).unwrap(), 0);

    // A direct write sends what was corked first.
    h.r.write_corked(conns[0], b"a").unwrap();
    assert_eq!(h.r.write(conns[0], b"b").unwrap(), 0);
    assert_eq!(read_n(&mut peers[0], 2), b"ab");
    // A FIN asked for after corked bytes follows them.
    h.r.write_corked(conns[1], b"bye").unwrap();
    h.r.shutdown(conns[1]).unwrap();
    h.r.uncork();
    assert_eq!(read_n(&mut peers[1], 3), b"bye");
    expect_eof(&mut peers[1]);
    // Corked outside a turn, nobody uncorks: the next turn does, at once.
    h.r.write_corked(conns[2], b"soon").unwrap();
    let start = Instant::now();
    h.turn(Duration::from_secs(5));
    assert!(start.elapsed() < Duration::from_secs(2), "the turn slept on corked bytes");
    assert_eq!(read_n(&mut peers[2], 4), b"soon");

    // A peer that does not read: what its kernel buffer refused shows
    // once a send was tried, and is sent when it reads again.
    let mut sluggish = small_buffer_client(addr);
    let conn = h.accept(1)[0];
    let big = pattern(7, 4 << 20);
    assert_eq!(h.r.write_corked(conn, &big).unwrap(), 0);
    h.r.uncork();
    let held = h.r.write_corked(conn, b"!").unwrap();
    assert!(held > 0 && held == h.r.queued(conn).unwrap(), "held back {held}");
    // Told that bytes wait (even by an empty write), the caller hears Drain.
    assert_eq!(h.r.write(conn, b"").unwrap(), held);
    let mut reader = Peer::spawn(move || read_n(&mut sluggish, (4 << 20) + 1));
    let mut drained = false;
    h.until("the sluggish peer to read it all, and Drain", |_, events| {
        drained |= events.iter().any(|e| matches!(e, Ev::Drain { conn: c } if *c == conn));
        drained && reader.done()
    });
    let mut want = big;
    want.push(b'!');
    assert_same(&reader.join(), &want, "to the sluggish peer");
}

// 7c. A corked write to a peer that reset: `uncork` cannot report it, the
//     next turn closes that connection with the error; others carry on.
fn corked_write_to_a_reset_peer(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let (a, mut b) = (client(addr), client(addr));
    let conns = h.accept(2);
    let (ca, cb) = (conn_for(&mut h, &conns, &a), conn_for(&mut h, &conns, &b));
    SockRef::from(&a).set_linger(Some(Duration::ZERO)).unwrap();
    drop(a);
    thread::sleep(Duration::from_millis(20));
    h.r.write_corked(ca, b"into the void").unwrap();
    h.r.write_corked(cb, b"still here").unwrap();
    h.r.uncork();
    assert_eq!(read_n(&mut b, 10), b"still here");
    let seen = until_closed(&mut h, ca);
    match seen.as_slice() {
        [Ev::Close { error: Some(e), .. }] => {
            assert!(matches!(e.raw_os_error(), Some(libc::ECONNRESET) | Some(libc::EPIPE)), "{e}")
        }
        other => panic!("want one Close with the error, got {other:?}"),
    }
    assert_eq!(h.r.len(), 2);
}

// 7d. Corked bytes are not "waiting for writable": a pause or resume while
//     they wait must not leave writable interest behind once they are sent
//     (level-triggered poll/select would then spin). Sent by `uncork` or by
//     a direct write, the reactor sleeps afterwards.
fn corked_then_paused_sleeps(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    let (span, timeout) = (Duration::from_millis(200), Duration::from_millis(20));
    h.r.write_corked(conn, b"one").unwrap();
    h.r.pause(conn).unwrap();
    h.r.uncork();
    assert_eq!(read_n(&mut peer, 3), b"one");
    h.assert_sleeps(span, timeout, 15, "the reactor spins after uncork");

    h.r.write_corked(conn, b"two").unwrap();
    h.r.resume(conn).unwrap();
    h.r.pause(conn).unwrap();
    assert_eq!(h.r.write(conn, b"!").unwrap(), 0);
    assert_eq!(read_n(&mut peer, 4), b"two!");
    h.assert_sleeps(span, timeout, 15, "the reactor spins after a direct write");
}

// 7e. An end asked for while only corked bytes wait: whoever waits for the
//     FIN hears `Drain` once the bytes and the FIN are out (as after a
//     queued write), though `uncork`, not a turn's flush, sent them; the
//     peer, still open, gets the bytes, then EOF.
fn corked_then_ended_drains(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    h.r.write_corked(conn, b"bye").unwrap();
    h.r.shutdown(conn).unwrap();
    assert_eq!(h.r.queued(conn).unwrap(), 3, "corked, not sent yet");
    let mut seen = Vec::new();
    h.until("Drain after the corked bytes and the FIN", |_, events| {
        seen.extend(events);
        !seen.is_empty()
    });
    assert!(matches!(seen.as_slice(), [Ev::Drain { conn: c }] if *c == conn), "want one Drain, got {seen:?}");
    assert_eq!(read_n(&mut peer, 3), b"bye");
    expect_eof(&mut peer);
    assert_eq!(h.r.queued(conn).unwrap(), 0);
}
