//! Peers that misbehave. (Thousands of peers leaving at once: `churn.rs`.)

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::time::Duration;

use common::*;
use muxnet_core::BackendKind;
use socket2::SockRef;

backend_tests!(data_fin_then_rst, urgent_byte_inside_a_message);

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
            Ev::Close { conn: c, error } if c == conn => Some(error),
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
