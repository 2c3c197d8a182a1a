//! Echo: many clients, megabytes toward a slow peer, fair reads between connections.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, Config, Token};
use socket2::{Domain, Socket, Type};

backend_tests!(echo_round_trip, large_transfer_drains, fair_reads);

/// The per-backend modules (`backend_tests!`) must cover every backend there is.
#[test]
fn every_backend_is_tested() {
    use BackendKind::*;
    assert_eq!(BackendKind::ALL, &[Mio, Poll, Select]);
}

// 1. Fifty std clients, twenty rounds of messages of varied size each, all
//    echoed and checked byte for byte; then an orderly close from each side.
fn echo_round_trip(kind: BackendKind) {
    const CLIENTS: usize = 50;
    const ROUNDS: usize = 20;
    fn message(client: usize, round: usize) -> Vec<u8> {
        pattern((client * 1000 + round) as u64, 1 + (client * 37 + round * 1009) % 3000)
    }
    let mut h = Harness::new(kind);
    let (server, addr) = h.listen("127.0.0.1:0");
    let mut peer = Peer::spawn(move || {
        let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| client(addr)).collect();
        for round in 0..ROUNDS {
            for (i, s) in clients.iter_mut().enumerate() {
                send(s, &message(i, round));
            }
            for (i, s) in clients.iter_mut().enumerate() {
                let want = message(i, round);
                assert_same(&read_n(s, want.len()), &want, &format!("echo to client {i} in round {round}"));
            }
        }
        for s in &mut clients {
            s.shutdown(Shutdown::Write).unwrap();
        }
        for s in &mut clients {
            expect_eof(s);
        }
    });
    let total: usize = (0..CLIENTS).flat_map(|c| (0..ROUNDS).map(move |r| message(c, r).len())).sum();
    let (mut accepted, mut ended, mut closed) = (HashSet::new(), HashSet::new(), HashSet::new());
    let mut received = 0;
    h.until("50 clients echoed and closed", |r, events| {
        for e in events {
            match e {
                Ev::Accept { listener, conn } => {
                    assert_eq!(listener, server);
                    assert!(accepted.insert(conn), "{conn:?} accepted twice");
                }
                Ev::Data { conn, data } => {
                    assert!(accepted.contains(&conn) && !ended.contains(&conn), "Data for {conn:?} outside its life");
                    received += data.len();
                    r.write(conn, &data).unwrap();
                }
                Ev::Drain { conn } => assert!(accepted.contains(&conn)),
                Ev::End { conn, .. } => {
                    assert!(ended.insert(conn), "{conn:?} ended twice");
                    r.shutdown(conn).unwrap();
                }
                Ev::Close { conn, error, .. } => {
                    assert!(error.is_none(), "{conn:?} closed with {error:?}");
                    assert!(ended.contains(&conn), "{conn:?} closed before its End");
                    assert!(closed.insert(conn), "{conn:?} closed twice");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // Checked each turn so a failing peer fails the test at once.
        peer.done() && closed.len() == CLIENTS
    });
    assert_eq!(accepted.len(), CLIENTS);
    assert_eq!(received, total);
    assert_eq!(h.r.len(), 1, "only the listener is left");
}

// 4. 9 MiB toward a slow peer: the writes queue, `Drain` follows once the
//    kernel took it all, the FIN goes out after the last byte, and the
//    peer gets every byte in order.
fn large_transfer_drains(kind: BackendKind) {
    const FIRST: usize = 8 << 20;
    const SECOND: usize = 1 << 20;
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = small_buffer_client(addr);
    let conn = h.accept(1)[0];
    let data = pattern(4, FIRST + SECOND);

    let queued = h.r.write(conn, &data[..FIRST]).unwrap();
    assert!(queued > 0 && queued <= FIRST, "8 MiB to a peer not reading must queue, got {queued}");
    assert_eq!(h.r.queued(conn).unwrap(), queued);
    let total = h.r.write(conn, &data[FIRST..]).unwrap();
    assert_eq!(total, queued + SECOND, "behind a queue, a write is queued whole");
    h.r.shutdown(conn).unwrap();
    assert_eq!(h.r.queued(conn).unwrap(), total, "shutdown keeps the queue");

    let mut reader = Peer::spawn(move || {
        let mut peer = peer;
        thread::sleep(Duration::from_millis(100));
        let mut got = Vec::with_capacity(FIRST + SECOND);
        let mut buf = vec![0; 64 << 10];
        loop {
            match peer.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("peer read after {} bytes: {e}", got.len()),
            }
            if got.len() % (1 << 20) < 64 << 10 {
                thread::sleep(Duration::from_millis(2));
            }
        }
    });
    let mut seen = Vec::new();
    h.until("Drain, the peer reading to EOF and closing", |r, events| {
        for e in events {
            assert_eq!(e.token(), conn, "unexpected {e:?}");
            if let Ev::Drain { .. } = e {
                assert_eq!(r.queued(conn).unwrap(), 0);
            }
            seen.push(e);
        }
        reader.done() && matches!(seen.last(), Some(Ev::Close { .. }))
    });
    assert!(matches!(seen.as_slice(), [Ev::Drain { .. }, Ev::End { .. }, Ev::Close { error: None, .. }]), "{seen:?}");
    assert_same(&reader.join(), &data, "bytes at the peer");
}

// 9. One connection with megabytes waiting does not starve another: every
//    turn that has input for both reads both, and none reads more than
//    `read_budget` from a connection.
fn fair_reads(kind: BackendKind) {
    const BUDGET: usize = 16 << 10;
    const FLOOD: usize = 8 << 20;
    let mut h = Harness::with_config(kind, Config { read_budget: BUDGET, ..Config::default() });
    let (_, addr) = h.listen("127.0.0.1:0");
    let flooder = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    flooder.set_send_buffer_size(4 << 20).unwrap();
    flooder.connect(&addr.into()).unwrap();
    let mut flooder: TcpStream = flooder.into();
    let mut quiet = client(addr);
    let conns = h.accept(2);
    let (ca, cb) = (conn_for(&mut h, &conns, &flooder), conn_for(&mut h, &conns, &quiet));

    // Fill every buffer between the flooder and the reactor before the
    // reactor reads any of it.
    flooder.set_nonblocking(true).unwrap();
    let flood = pattern(9, FLOOD);
    let mut buffered = 0;
    while buffered < FLOOD {
        match flooder.write(&flood[buffered..]) {
            Ok(n) => buffered += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("flooder: {e}"),
        }
    }
    assert!(buffered >= 1 << 20, "only {buffered} bytes buffered");

    let mut got_a = Vec::with_capacity(buffered);
    let mut pings = 0;
    let mut turns_with_ping = 0;
    let mut ping_due = true;
    h.until("the flood read through, with pings in between", |_, events| {
        let mut per_turn: HashMap<Token, usize> = HashMap::new();
        let mut ping_now = false;
        for e in events {
            match e {
                Ev::Data { conn, data } if conn == ca => {
                    *per_turn.entry(conn).or_default() += data.len();
                    got_a.extend(data);
                }
                Ev::Data { conn, data } if conn == cb => {
                    *per_turn.entry(conn).or_default() += data.len();
                    assert_eq!(data, b"ping");
                    ping_now = true;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        for (c, n) in &per_turn {
            assert!(*n <= BUDGET, "{c:?} read {n} bytes in one turn, budget {BUDGET}");
        }
        if ping_now {
            pings += 1;
            // The flood is far from read through: it must have had its turn too.
            assert!(per_turn.contains_key(&ca), "the ping's turn read nothing of the flood");
            turns_with_ping += 1;
            ping_due = true;
        }
        // Ping twice: after the first turn and half way through the flood.
        if ping_due && pings < 2 && (pings == 0 || got_a.len() >= buffered / 2) && buffered - got_a.len() > 256 << 10 {
            send(&mut quiet, b"ping");
            // Let loopback deliver it before the next turn.
            thread::sleep(Duration::from_millis(10));
            ping_due = false;
        }
        got_a.len() >= buffered
    });
    assert_eq!(pings, 2);
    assert_eq!(turns_with_ping, 2);
    assert_same(&got_a, &flood[..buffered], "flood bytes");
}
