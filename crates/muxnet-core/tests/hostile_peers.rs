//! Peers that misbehave. (Thousands of peers leaving at once: `churn.rs`.)

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::time::Duration;

use common::*;
use muxnet_core::BackendKind;
use socket2::SockRef;

backend_tests!(data_fin_then_rst, urgent_byte_inside_a_message, fin_then_rst_with_bytes_queued, rst_with_bytes_queued);

// The peer writes "hello", sends FIN, then resets. epoll reports
// IN|ERR|HUP|RDHUP at once; the bytes and the end must still be delivered
// before anything else, and ending our side then closes without error.
fn data_fin_then_rst(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    send(&mut peer, b"hello");
    peer.shutdown(Shutdown::Write).unwrap();
    SockRef::from(&peer).set_linger(Some(Duration::ZERO)).unwrap();
    drop(peer);
    std::thread::sleep(Duration::from_millis(50));

    // The data, then the end: any other event (a close with EPIPE) fails.
    let got = h.read_to_end(conn, "hello and the end");
    assert_eq!(got, b"hello");
    h.r.shutdown(conn).unwrap();
    let mut closed = None;
    h.until("the close", |_, events| {
        closed = events.into_iter().find_map(|e| match e {
            Ev::Close { conn: c, error, .. } if c == conn => Some(error),
            _ => None,
        });
        closed.is_some()
    });
    assert!(closed.unwrap().is_none(), "ending a socket the peer reset after its FIN is an orderly close");
    assert_eq!(h.r.len(), 1);
}

// The peer sends a message with a TCP urgent byte inside it, then waits
// for an answer. A read stops short at the urgent mark; the bytes behind
// it are already in the socket, so an edge-triggered poller raises no new
// edge for them: the turn must read on past that short read.
fn urgent_byte_inside_a_message(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    peer.write_all(b"before the mark").unwrap();
    SockRef::from(&peer).send_out_of_band(b"!").unwrap();
    peer.write_all(b", after it").unwrap();
    let want = b"before the mark, after it";
    assert_eq!(h.read_exact(conn, want.len()), want, "[{}] in-band bytes around the urgent byte", h.name());
}

/// A connection and its peer, which reads nothing: bytes are written to
/// it until the reactor queues some.
fn queued_conn(kind: BackendKind) -> (Harness, std::net::TcpStream, muxnet_core::Token) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = client(addr);
    let conn = h.accept(1)[0];
    let chunk = pattern(5, 1 << 20);
    while h.r.queued(conn).unwrap() == 0 {
        h.r.write(conn, &chunk).unwrap();
    }
    (h, peer, conn)
}

/// Turns until `conn` is reported closed: its error's errno and `sending`.
fn close_of(h: &mut Harness, conn: muxnet_core::Token) -> (Option<i32>, bool) {
    let mut closed = None;
    h.until("the close", |_, events| {
        for e in events {
            match e {
                Ev::Close { conn: c, error, sending } if c == conn => closed = Some((error.and_then(|e| e.raw_os_error()), sending)),
                Ev::End { conn: c, .. } if c == conn => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        closed.is_some()
    });
    closed.unwrap()
}

// Bytes are queued for a peer that reads none; it sends FIN (read as the
// end), then resets. Only the send meets the reset: the close says so
// (node:net's `write EPIPE`, not a read error).
fn fin_then_rst_with_bytes_queued(kind: BackendKind) {
    let (mut h, peer, conn) = queued_conn(kind);
    peer.shutdown(Shutdown::Write).unwrap();
    h.until("the end", |_, events| events.iter().any(|e| matches!(e, Ev::End { conn: c, .. } if *c == conn)));
    SockRef::from(&peer).set_linger(Some(Duration::ZERO)).unwrap();
    drop(peer);
    let (errno, sending) = close_of(&mut h, conn);
    assert!(errno.is_some(), "[{}] a reset with bytes queued is an error", h.name());
    assert!(sending, "[{}] the send met it ({errno:?})", h.name());
}

// Bytes are queued for a peer that resets without a FIN: reading meets the
// reset first (node:net's `read ECONNRESET`).
fn rst_with_bytes_queued(kind: BackendKind) {
    let (mut h, peer, conn) = queued_conn(kind);
    SockRef::from(&peer).set_linger(Some(Duration::ZERO)).unwrap();
    drop(peer);
    let (errno, sending) = close_of(&mut h, conn);
    assert_eq!(errno, Some(libc::ECONNRESET), "[{}]", h.name());
    assert!(!sending, "[{}] reading met it", h.name());
}
