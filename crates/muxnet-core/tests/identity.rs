//! A token names one socket for its life and never another: calls with the
//! token of a closed socket fail (with the close's own error until the
//! next turn, `NotFound` after), even when a new socket took its slot in
//! the same turn, and nothing reaches the new socket.

mod common;

use std::io::{self, ErrorKind, Read};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, Reactor, Token};
use socket2::SockRef;

backend_tests!(close_frees_token, reset_and_accept_in_one_turn);

/// Every call a caller can make with a token fails, each with `why`.
fn assert_stale(r: &mut Reactor, stale: Token, why: impl Fn(&io::Error) -> bool) {
    let results = [
        r.write(stale, b"leak").map(drop),
        r.write_corked(stale, b"leak").map(drop),
        r.shutdown(stale),
        r.pause(stale),
        r.resume(stale),
        r.set_no_delay(stale, true),
        r.peer_addr(stale).map(drop),
        r.reset(stale),
        r.close(stale),
    ];
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Err(e) if why(&e) => {}
            other => panic!("call {i} with a stale token: {other:?}"),
        }
    }
}

/// The peer has received nothing (it would block).
fn assert_silent(peer: &mut TcpStream) {
    peer.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 16];
    match peer.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a stale token reached another peer: {other:?}"),
    }
}

// `close` frees the slot at once and reports nothing; the next socket
// reuses the slot under a new token, out of reach of the old one.
fn close_frees_token(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    h.r.close(conn).unwrap();
    assert_eq!(h.r.len(), 1);
    expect_eof(&mut peer);
    assert!(h.collect_for(Duration::from_millis(50)).is_empty(), "close reports no event");

    let mut again = client(addr);
    let next = h.accept(1)[0];
    assert_eq!(next.index(), conn.index(), "the slot is reused");
    assert_ne!(next, conn, "under a new token");
    assert_stale(&mut h.r, conn, |e| e.kind() == ErrorKind::NotFound);
    assert_silent(&mut again);
    assert_eq!(h.r.len(), 2);
}

// A peer resets X and a stranger Y connects; in the turn that reports X's
// close, Y is accepted into X's slot. A write meant for X (a handler that
// ran before X's close was delivered) must not reach Y.
fn reset_and_accept_in_one_turn(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let x_peer = client(addr);
    let x = h.accept(1)[0];
    SockRef::from(&x_peer).set_linger(Some(Duration::ZERO)).unwrap();
    drop(x_peer);
    let mut y_peer = client(addr);
    // Both are waiting in the kernel now; the listener sorts first, so the
    // accept comes before the close only if the slot were reused at once.
    std::thread::sleep(Duration::from_millis(20));
    let (mut closed, mut y) = (false, None);
    h.until("X's close and Y's accept", |_, events| {
        for e in events {
            match e {
                Ev::Close { conn, .. } if conn == x => closed = true,
                Ev::Accept { conn, .. } => y = Some(conn),
                other => panic!("unexpected {other:?}"),
            }
        }
        closed && y.is_some()
    });
    let y = y.unwrap();
    assert_ne!(y, x);
    // Until the next turn, a handler still holding X learns why it closed.
    assert_stale(&mut h.r, x, |e| e.raw_os_error() == Some(libc::ECONNRESET));
    assert_silent(&mut y_peer);
    h.turn(Duration::ZERO);
    assert_stale(&mut h.r, x, |e| e.kind() == ErrorKind::NotFound);
    h.r.write(y, b"for y").unwrap();
    assert_eq!(read_n(&mut y_peer, 5), b"for y");
}
