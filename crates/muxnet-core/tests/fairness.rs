//! A turn that runs out of slab (or read budget) carries the sockets it
//! could not serve, and they go first in the next turn: busy connections
//! that always have input cannot keep a quiet one (or each other) waiting.
//! And a turn accepts one connection per listener, as libuv does: a flood
//! of new connections cannot fill a batch with their first requests (on
//! poll and select, one after a slow batch: more while batches are quick).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, SLOW_BATCH};

backend_tests!(carried_sockets_go_first, one_accept_a_turn, accepts_grow_while_batches_are_quick);

const BUSY: usize = 6;
const CHUNK: usize = 8 << 10;

/// A peer that writes until told to stop (or the connection breaks).
fn flood(mut s: TcpStream, stop: Arc<AtomicBool>) -> Peer<()> {
    Peer::spawn(move || {
        let chunk = [7u8; CHUNK];
        while !stop.load(Ordering::Relaxed) && s.write_all(&chunk).is_ok() {}
    })
}

fn carried_sockets_go_first(kind: BackendKind) {
    // Room for about two chunks a turn: every turn carries most sockets.
    let mut h = Harness::with_slab(kind, 2 * CHUNK + 1024);
    let (_, addr) = h.listen("127.0.0.1:0");
    let stop = Arc::new(AtomicBool::new(false));
    let busy_peers: Vec<TcpStream> = (0..BUSY).map(|_| client(addr)).collect();
    // The quiet one comes last: the highest slot, last in any order by slot.
    let mut quiet_peer = client(addr);
    let mut accepted = h.accept(BUSY + 1);
    let quiet = accepted.pop().unwrap();
    let busy = accepted;
    let floods: Vec<Peer<()>> = busy_peers.iter().map(|s| flood(s.try_clone().unwrap(), stop.clone())).collect();
    // Every busy connection is read, turn after turn, though each always
    // has more input than a turn takes.
    let mut served = [false; BUSY];
    h.until("a read on every busy connection", |_, events| {
        for e in events {
            if let Ev::Data { conn, .. } = e {
                served[busy.iter().position(|&b| b == conn).expect("only busy connections have input")] = true;
            }
        }
        served.iter().all(|&s| s)
    });
    // Then the quiet one speaks, from the last slot: in slot order it would
    // come after every busy socket, every turn.
    quiet_peer.write_all(b"hello").unwrap();
    let mut quiet_turn = None;
    for turn in 0..200 {
        if h.turn(Duration::from_millis(10)).iter().any(|e| matches!(e, Ev::Data { conn, .. } if *conn == quiet)) {
            quiet_turn = Some(turn);
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for conn in busy.iter().copied().chain([quiet]) {
        h.r.close(conn).unwrap();
    }
    drop(busy_peers);
    for peer in floods {
        peer.join();
    }
    // Round-robin: it waits at most a round of the others (two reads a
    // turn, so about half as many turns as sockets).
    let turn = quiet_turn.unwrap_or_else(|| panic!("[{}] the quiet connection was never read in 200 turns", h.name()));
    assert!(turn <= BUSY + 1, "[{}] the quiet connection waited {turn} turns", h.name());
}

/// Ten peers connected and each waiting with a request, an owner slow to
/// handle each batch (a costly request): one accept a turn (with 256 a
/// turn, 100 hostile clients' ~3 ms requests made ~750 ms batches, and a
/// keep-alive client waited behind each), on every backend, and every one
/// is accepted in the end.
fn one_accept_a_turn(kind: BackendKind) {
    const PEERS: usize = 10;
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let _peers: Vec<TcpStream> = (0..PEERS)
        .map(|_| {
            let mut s = client(addr);
            s.write_all(b"request").unwrap();
            s
        })
        .collect();
    let mut accepted = 0;
    for _ in 0..200 {
        let accepts = h.turn(Duration::from_millis(10)).iter().filter(|e| matches!(e, Ev::Accept { .. })).count();
        assert!(accepts <= 1, "{accepts} accepts in one turn");
        accepted += accepts;
        if accepted == PEERS {
            return;
        }
        // The batch's handling: slow.
        std::thread::sleep(SLOW_BATCH * 2);
    }
    panic!("{accepted} of {PEERS} accepted in 200 turns");
}

/// A burst of 200 connections and an owner quick with each batch: on a
/// backend whose every wait scans all sockets, more accepts a turn (a turn
/// each cost a scan of every socket per connection: 4-5.6 s for a burst of
/// 2 000 beside 8 000 idle on poll); epoll and kqueue still take one a turn.
/// A slow batch brings it back to one.
fn accepts_grow_while_batches_are_quick(kind: BackendKind) {
    const PEERS: usize = 200;
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let scans = h.r.backend().waits_scan_every_socket();
    let peers: Vec<TcpStream> = (0..PEERS).map(|_| client(addr)).collect();
    let (mut accepted, mut turns, mut most) = (0, 0, 0);
    while accepted < PEERS && turns < 1000 {
        let accepts = h.turn(Duration::from_millis(10)).iter().filter(|e| matches!(e, Ev::Accept { .. })).count();
        (accepted, turns, most) = (accepted + accepts, turns + 1, most.max(accepts));
    }
    assert_eq!(accepted, PEERS, "in {turns} turns");
    if scans {
        assert!(turns < PEERS / 4, "{turns} turns for {PEERS} accepts");
    } else {
        assert_eq!(most, 1);
    }
    // Ten more, and slow batches from now on: one a turn after the first slow one.
    let _more: Vec<TcpStream> = (0..10).map(|_| client(addr)).collect();
    std::thread::sleep(SLOW_BATCH * 2);
    let mut late = 0;
    while late < 10 && turns < 2000 {
        let accepts = h.turn(Duration::from_millis(10)).iter().filter(|e| matches!(e, Ev::Accept { .. })).count();
        assert!(accepts <= 1, "{accepts} accepts in a turn after a slow batch");
        late += accepts;
        turns += 1;
        std::thread::sleep(SLOW_BATCH * 2);
    }
    assert_eq!(late, 10);
    drop(peers);
}
