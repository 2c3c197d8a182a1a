//! Outgoing connections: bytes queued before the connect completes, refusals.

mod common;

use std::net::TcpListener;

use common::*;
use muxnet_core::BackendKind;

backend_tests!(connect_both_ways, connect_refused);

// 2. A reactor-side connect: bytes written before it completes are queued
//    and flushed on `Connect`; then data both ways and an orderly close.
fn connect_both_ways(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let conn = h.r.connect(addr, None).unwrap();
    assert_eq!(h.r.write(conn, b"early bytes").unwrap(), 11, "a write while connecting is queued whole");

    let mut seen = Vec::new();
    h.until("Connect and Drain", |_, events| {
        seen.extend(events);
        seen.iter().any(|e| matches!(e, Ev::Drain { .. }))
    });
    assert!(
        matches!(seen.as_slice(), [Ev::Connect { conn: a }, Ev::Drain { conn: b }] if *a == conn && *b == conn),
        "want Connect then Drain, got {seen:?}"
    );
    assert_eq!(h.r.queued(conn).unwrap(), 0);

    let (mut peer, from) = listener.accept().unwrap();
    set_timeouts(&peer);
    assert_eq!(from, h.r.local_addr(conn).unwrap());
    assert_eq!(h.r.peer_addr(conn).unwrap(), addr);
    assert_eq!(read_n(&mut peer, 11), b"early bytes");

    assert_eq!(h.r.write(conn, b"from the reactor").unwrap(), 0, "a small write goes out at once");
    assert_eq!(read_n(&mut peer, 16), b"from the reactor");
    send(&mut peer, b"from the peer");
    assert_eq!(h.read_exact(conn, 13), b"from the peer");

    drop(peer);
    let mut seen = Vec::new();
    h.until("End", |_, events| {
        seen.extend(events);
        !seen.is_empty()
    });
    assert!(matches!(seen.as_slice(), [Ev::End { conn: c, .. }] if *c == conn), "{seen:?}");
    h.r.shutdown(conn).unwrap();
    let seen = until_closed(&mut h, conn);
    assert!(matches!(seen.as_slice(), [Ev::Close { error: None, .. }]), "{seen:?}");
}

// 2b. Connecting to a port nobody listens on closes with ECONNREFUSED,
//     over IPv4 and IPv6, with or without bytes queued.
fn connect_refused(kind: BackendKind) {
    let mut h = Harness::new(kind);
    for ip in ["127.0.0.1:0", "[::1]:0"] {
        let addr = TcpListener::bind(ip).unwrap().local_addr().unwrap();
        for queue_first in [false, true] {
            let conn = h.r.connect(addr, None).unwrap_or_else(|e| panic!("connect {addr} must start, not fail at once: {e}"));
            if queue_first {
                h.r.write(conn, b"never sent").unwrap();
            }
            let seen = until_closed(&mut h, conn);
            match seen.as_slice() {
                [Ev::Close { error: Some(e), .. }] => assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED), "{addr}: {e}"),
                other => panic!("{addr}: want one Close with ECONNREFUSED, got {other:?}"),
            }
            assert_eq!(h.r.len(), 0);
        }
    }
}
