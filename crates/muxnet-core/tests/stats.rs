//! The reactor's counters and gauges follow what really happened.

mod common;

use std::net::Shutdown;

use common::*;
use muxnet_core::BackendKind;

backend_tests!(stats_count_what_happened);

fn stats_count_what_happened(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let before = h.r.stats();
    assert_eq!((before.turns, before.listeners, before.connections), (0, 0, 0));
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peers = [client(addr), client(addr)];
    let conns = h.accept(2);
    for (peer, &conn) in peers.iter_mut().zip(&conns) {
        send(peer, b"0123456789");
        echo(&mut h, conn, 10);
        assert_eq!(read_n(peer, 10), b"0123456789");
    }
    let s = h.r.stats();
    assert_eq!(s.accepts, 2);
    assert_eq!((s.listeners, s.connections, s.connecting, s.half_closed), (1, 2, 0, 0));
    assert_eq!(s.reads.bytes, 20, "{s:?}");
    assert!(s.reads.calls >= 2, "{s:?}");
    assert_eq!(s.writes.bytes, 20, "{s:?}");
    assert_eq!(s.writes.calls, 2, "{s:?}");
    assert!(s.turns >= 3 && s.waits == s.turns, "{s:?}");
    assert_eq!(s.events_per_turn.iter().sum::<u64>(), s.turns);
    assert_eq!(s.events, 2 + 2, "two accepts, two reads: {s:?}");

    // A half-closed connection, and one gone.
    peers[0].shutdown(Shutdown::Write).unwrap();
    h.until("the end", |_, events| events.iter().any(|e| matches!(e, Ev::End { .. })));
    h.r.close(conns[1]).unwrap();
    let s = h.r.stats();
    assert_eq!((s.connections, s.half_closed), (1, 1), "{s:?}");
    assert_eq!(s.reads.calls, h.r.stats().reads.calls, "stats() itself counts nothing");
}
