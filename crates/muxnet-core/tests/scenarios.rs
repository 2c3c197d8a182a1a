//! The reactor's behaviour over real loopback sockets, one shared set of
//! scenarios run against every backend (`mio::…`, `poll::…`, `select::…`).
//! Process-wide experiments (fd limits, fd counting) live in their own
//! test binaries.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use muxnet_core::{BackendKind, BindOptions, Config, Token};
use socket2::{Domain, SockRef, Socket, Type};

backend_tests!(
    echo_round_trip,
    connect_both_ways,
    connect_refused,
    listen_addr_in_use,
    listen_reuse_port,
    ipv6_listen_and_connect,
    ipv6_only,
    large_transfer_drains,
    write_queue_cap,
    oversized_write_to_empty_queue,
    corked_fan_out,
    corked_write_to_a_reset_peer,
    corked_then_paused_sleeps,
    half_close_local_first,
    half_close_peer_first,
    peer_reset,
    pause_resume,
    fair_reads,
    udp_round_trip,
    udp_connected,
    blocking_wait_and_waker,
    idle_reactor_sleeps,
);

/// The per-backend modules must cover every backend there is.
#[test]
fn every_backend_is_tested() {
    use BackendKind::*;
    assert_eq!(BackendKind::ALL, &[Mio, Poll, Select]);
}

/// A std client whose socket takes little before the kernel pushes back,
/// so writes toward it queue in the reactor.
fn small_buffer_client(addr: SocketAddr) -> TcpStream {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(32 << 10).unwrap();
    s.connect(&addr.into()).unwrap();
    let s: TcpStream = s.into();
    set_timeouts(&s);
    s
}

/// The accepted connection whose peer is `peer`.
fn conn_for(h: &mut Harness, conns: &[Token], peer: &TcpStream) -> Token {
    let want = peer.local_addr().unwrap();
    *conns.iter().find(|&&c| h.r.peer_addr(c).unwrap() == want).expect("no accepted connection for this peer")
}

/// Asserts two byte strings are equal, naming the first difference
/// instead of dumping megabytes.
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        panic!("{what}: got {} bytes, want {}; first difference at byte {at}", got.len(), want.len());
    }
}

/// Reads `n` bytes on `conn` and writes them back.
fn echo(h: &mut Harness, conn: Token, n: usize) -> Vec<u8> {
    let data = h.read_exact(conn, n);
    h.r.write(conn, &data).unwrap();
    data
}

/// Turns until `conn` closes; returns the events seen for it, the last
/// being the `Close`. Other sockets must stay quiet.
fn until_closed(h: &mut Harness, conn: Token) -> Vec<Ev> {
    let mut seen = Vec::new();
    h.until(&format!("Close of {conn:?}"), |_, events| {
        for e in events {
            assert_eq!(e.token(), conn, "unexpected event for another socket: {e:?}");
            seen.push(e);
        }
        matches!(seen.last(), Some(Ev::Close { .. }))
    });
    seen
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
                Ev::End { conn } => {
                    assert!(ended.insert(conn), "{conn:?} ended twice");
                    r.shutdown(conn).unwrap();
                }
                Ev::Close { conn, error } => {
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
    assert!(matches!(seen.as_slice(), [Ev::End { conn: c }] if *c == conn), "{seen:?}");
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

// 3. Binding a port in use fails with EADDRINUSE and leaves no socket behind.
fn listen_addr_in_use(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let err = h.r.listen(&BindOptions::new(addr), true).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");

    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let err = h.r.listen(&BindOptions::new(held.local_addr().unwrap()), true).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");

    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = h.r.udp_bind(&BindOptions::new(held.local_addr().unwrap())).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
    assert_eq!(h.r.len(), 1);
}

// 3b. SO_REUSEPORT: two listeners on one port share the connections; once
//     one closes, the other takes them all.
fn listen_reuse_port(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let mut opts = BindOptions::new("127.0.0.1:0".parse().unwrap());
    opts.reuse_port = true;
    let (a, addr) = h.listen_with(&opts);
    opts.addr = addr;
    let (b, addr_b) = h.listen_with(&opts);
    assert_eq!(addr, addr_b);
    opts.reuse_port = false;
    let err = h.r.listen(&opts, true).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "without SO_REUSEPORT: {err}");

    let accept_all = |h: &mut Harness, n: usize| {
        let clients: Vec<TcpStream> = (0..n).map(|_| client(addr)).collect();
        let mut by: HashMap<Token, usize> = HashMap::new();
        h.until(&format!("{n} accepts over both listeners"), |_, events| {
            for e in events {
                match e {
                    Ev::Accept { listener, .. } => *by.entry(listener).or_default() += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
            by.values().sum::<usize>() == n
        });
        (clients, by)
    };
    let (_clients, by) = accept_all(&mut h, 32);
    assert!(by.keys().all(|l| *l == a || *l == b));

    h.r.close(a).unwrap();
    let (_more, by) = accept_all(&mut h, 8);
    assert_eq!(by.get(&b), Some(&8), "all new connections go to the listener left: {by:?}");
}

// 3c. IPv6: a std client to a reactor listener on ::1, and a reactor
//     connect to it, data both ways.
fn ipv6_listen_and_connect(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("[::1]:0");
    assert!(addr.is_ipv6());

    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    assert_eq!(h.r.peer_addr(conn).unwrap(), peer.local_addr().unwrap());
    send(&mut peer, b"over ipv6");
    echo(&mut h, conn, 9);
    assert_eq!(read_n(&mut peer, 9), b"over ipv6");

    let out = h.r.connect(addr, None).unwrap();
    let mut inbound = None;
    let mut connected = false;
    h.until("reactor connect over ::1", |_, events| {
        for e in events {
            match e {
                Ev::Connect { conn } if conn == out => connected = true,
                Ev::Accept { conn, .. } => inbound = Some(conn),
                other => panic!("unexpected {other:?}"),
            }
        }
        connected && inbound.is_some()
    });
    let inbound = inbound.unwrap();
    h.r.write(out, b"ping6").unwrap();
    assert_eq!(h.read_exact(inbound, 5), b"ping6");
    h.r.write(inbound, b"pong6").unwrap();
    assert_eq!(h.read_exact(out, 5), b"pong6");
}

// 3d. IPV6_V6ONLY off: a [::] listener takes IPv4 clients too (as mapped
//     addresses) and holds the IPv4 port; on: IPv4 is left alone.
fn ipv6_only(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let mut opts = BindOptions::new("[::]:0".parse().unwrap());
    opts.ipv6_only = false;
    let (_, dual) = h.listen_with(&opts);
    let v4: SocketAddr = ([127, 0, 0, 1], dual.port()).into();
    let _peer = client(v4);
    let conn = h.accept(1)[0];
    let SocketAddr::V6(from) = h.r.peer_addr(conn).unwrap() else { panic!("a dual-stack socket reports IPv6 peers") };
    assert_eq!(from.ip().to_ipv4_mapped(), Some([127, 0, 0, 1].into()));
    let err = TcpListener::bind(v4).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "the dual-stack listener holds the IPv4 port");

    opts.ipv6_only = true;
    let (_, v6) = h.listen_with(&opts);
    let v4: SocketAddr = ([127, 0, 0, 1], v6.port()).into();
    let err = TcpStream::connect(v4).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "an IPv6-only listener takes no IPv4 clients");
    let _peer6 = client(([0, 0, 0, 0, 0, 0, 0, 1], v6.port()).into());
    h.accept(1);
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

// 6. We half-close first: the peer sees EOF and can still send; its close
//    then ends and closes the connection cleanly.
fn half_close_local_first(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    h.r.shutdown(conn).unwrap();
    expect_eof(&mut peer);
    let err = h.r.write(conn, b"too late").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);

    send(&mut peer, b"after your FIN");
    assert_eq!(h.read_exact(conn, 14), b"after your FIN");
    drop(peer);
    let seen = until_closed(&mut h, conn);
    assert!(matches!(seen.as_slice(), [Ev::End { .. }, Ev::Close { error: None, .. }]), "{seen:?}");
    assert_eq!(h.r.len(), 1);
}

// 6b. The peer half-closes first: End, no Close; we can still write; our
//     shutdown then closes.
fn half_close_peer_first(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    send(&mut peer, b"last words");
    peer.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    let mut ended = false;
    h.until("data then End", |_, events| {
        for e in events {
            match e {
                Ev::Data { conn: c, data } if c == conn && !ended => got.extend(data),
                Ev::End { conn: c } if c == conn => ended = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        ended
    });
    assert_eq!(got, b"last words");
    let quiet = h.collect_for(Duration::from_millis(100));
    assert!(quiet.is_empty(), "a half-open connection stays open: {quiet:?}");

    assert_eq!(h.r.write(conn, b"reply after your FIN").unwrap(), 0);
    assert_eq!(read_n(&mut peer, 20), b"reply after your FIN");
    h.r.shutdown(conn).unwrap();
    let seen = until_closed(&mut h, conn);
    assert!(matches!(seen.as_slice(), [Ev::Close { error: None, .. }]), "{seen:?}");
    expect_eof(&mut peer);
    assert_eq!(h.r.len(), 1);
}

// 7. A peer that resets: that connection closes with ECONNRESET, a
//    neighbour keeps echoing; a write to a reset peer fails.
fn peer_reset(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let (mut a, mut b) = (client(addr), client(addr));
    let conns = h.accept(2);
    let (ca, cb) = (conn_for(&mut h, &conns, &a), conn_for(&mut h, &conns, &b));

    for (s, c) in [(&mut a, ca), (&mut b, cb)] {
        send(s, b"hello");
        echo(&mut h, c, 5);
        assert_eq!(read_n(s, 5), b"hello");
    }
    SockRef::from(&a).set_linger(Some(Duration::ZERO)).unwrap();
    drop(a);
    let seen = until_closed(&mut h, ca);
    match seen.as_slice() {
        [Ev::Close { error: Some(e), .. }] => assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET), "{e}"),
        other => panic!("want one Close with ECONNRESET, got {other:?}"),
    }
    assert_eq!(h.r.len(), 2);

    send(&mut b, b"still here");
    echo(&mut h, cb, 10);
    assert_eq!(read_n(&mut b, 10), b"still here");

    // Reset again, but the reactor writes before it has looked.
    SockRef::from(&b).set_linger(Some(Duration::ZERO)).unwrap();
    drop(b);
    thread::sleep(Duration::from_millis(20));
    let err = h.r.write(cb, b"into the void").unwrap_err();
    assert!(matches!(err.raw_os_error(), Some(libc::ECONNRESET) | Some(libc::EPIPE)), "{err}");
    h.r.close(cb).unwrap();
    assert!(h.collect_for(Duration::from_millis(50)).is_empty());
    assert_eq!(h.r.len(), 1);
}

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

// 8. A paused connection reports nothing; on resume, what arrived meanwhile
//    (and a FIN behind it) is delivered, with no new input to prompt it.
fn pause_resume(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    send(&mut peer, b"one");
    assert_eq!(h.read_exact(conn, 3), b"one");

    h.r.pause(conn).unwrap();
    send(&mut peer, b"two");
    send(&mut peer, b"three");
    let quiet = h.collect_for(Duration::from_millis(150));
    assert!(quiet.is_empty(), "paused, yet: {quiet:?}");
    h.r.resume(conn).unwrap();
    assert_eq!(h.read_exact(conn, 8), b"twothree");

    // Paused with writes queued: the queue still drains, nothing is read.
    let small = small_buffer_client(addr);
    let queued_conn = h.accept(1)[0];
    let out = pattern(8, 4 << 20);
    assert!(h.r.write(queued_conn, &out).unwrap() > 0);
    h.r.pause(queued_conn).unwrap();
    let mut reader = Peer::spawn(move || {
        let mut small = small;
        send(&mut small, b"unread");
        let got = read_n(&mut small, 4 << 20);
        (small, got)
    });
    let mut drained = false;
    h.until("the queue drained while paused", |_, events| {
        for e in events {
            match e {
                Ev::Drain { conn: c } if c == queued_conn => drained = true,
                other => panic!("paused, yet: {other:?}"),
            }
        }
        drained && reader.done()
    });
    let (small, got) = reader.join();
    assert_same(&got, &out, "bytes written while paused");
    h.r.resume(queued_conn).unwrap();
    assert_eq!(h.read_exact(queued_conn, 6), b"unread");
    h.r.close(queued_conn).unwrap();
    drop(small);

    h.r.pause(conn).unwrap();
    send(&mut peer, b"late");
    peer.shutdown(Shutdown::Write).unwrap();
    let quiet = h.collect_for(Duration::from_millis(150));
    assert!(quiet.is_empty(), "paused, yet: {quiet:?}");
    h.r.resume(conn).unwrap();
    let mut got = Vec::new();
    let mut ended = false;
    h.until("data and End after resume", |_, events| {
        for e in events {
            match e {
                Ev::Data { conn: c, data } if c == conn && !ended => got.extend(data),
                Ev::End { conn: c } if c == conn => ended = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        ended
    });
    assert_eq!(got, b"late");
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

// 10. UDP: datagrams in and out with their boundaries and senders, over
//     IPv4 and IPv6.
fn udp_round_trip(kind: BackendKind) {
    let mut h = Harness::new(kind);
    for ip in ["127.0.0.1:0", "[::1]:0"] {
        let sock = h.r.udp_bind(&BindOptions::new(ip.parse().unwrap())).unwrap();
        let saddr = h.r.local_addr(sock).unwrap();
        let peer = UdpSocket::bind(ip).unwrap();
        peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let paddr = peer.local_addr().unwrap();

        let sizes = [1, 100, 1500, 9000, 60000, 0, 7];
        for (i, &n) in sizes.iter().enumerate() {
            peer.send_to(&pattern(i as u64, n), saddr).unwrap();
        }
        let mut got = Vec::new();
        h.until(&format!("{} datagrams on {ip}", sizes.len()), |_, events| {
            for e in events {
                match e {
                    Ev::Message { socket, data, from } => {
                        assert_eq!((socket, from), (sock, paddr));
                        got.push(data);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            got.len() >= sizes.len()
        });
        assert_eq!(got.len(), sizes.len());
        for (i, (d, &n)) in got.iter().zip(&sizes).enumerate() {
            assert_same(d, &pattern(i as u64, n), &format!("datagram {i} on {ip}"));
        }

        assert_eq!(h.r.send_to(sock, b"pong", paddr).unwrap(), 4);
        let mut buf = [0u8; 16];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"pong"[..], saddr));
        h.r.close(sock).unwrap();
    }
}

// 10b. A connected UDP socket: `send` goes to its peer, only its peer's
//      datagrams arrive, and an ICMP error from a dead peer is no event.
fn udp_connected(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let sock = h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let saddr = h.r.local_addr(sock).unwrap();
    let (a, b) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
    a.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    h.r.udp_connect(sock, a.local_addr().unwrap()).unwrap();
    assert_eq!(h.r.peer_addr(sock).unwrap(), a.local_addr().unwrap());

    assert_eq!(h.r.send(sock, b"to a").unwrap(), 4);
    let mut buf = [0u8; 16];
    let (n, from) = a.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"to a"[..], saddr));

    b.send_to(b"from b", saddr).unwrap();
    a.send_to(b"from a", saddr).unwrap();
    let mut got = Vec::new();
    h.until("the connected peer's datagram", |_, events| {
        for e in events {
            match e {
                Ev::Message { data, from, .. } => got.push((data, from)),
                other => panic!("unexpected {other:?}"),
            }
        }
        !got.is_empty()
    });
    assert_eq!(got, vec![(b"from a".to_vec(), a.local_addr().unwrap())], "only the connected peer is heard");

    let dead = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    h.r.udp_connect(sock, dead).unwrap();
    h.r.send(sock, b"anyone?").unwrap();
    let quiet = h.collect_for(Duration::from_millis(100));
    assert!(quiet.is_empty(), "an ICMP error is not an event: {quiet:?}");
    h.r.udp_connect(sock, a.local_addr().unwrap()).unwrap();
    a.send_to(b"again", saddr).unwrap();
    let mut got = Vec::new();
    h.until("a datagram after the ICMP error", |_, events| {
        got.extend(events);
        !got.is_empty()
    });
    assert!(matches!(got.as_slice(), [Ev::Message { data, .. }] if data == b"again"), "{got:?}");
}

// 14. Another thread can block until the reactor has work (input, or a
//     wake-up); a zero-timeout turn then collects it. mio also offers an
//     fd that polls readable while events are pending.
fn blocking_wait_and_waker(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];

    let block_on = |h: &Harness| {
        let mut waiter = h.r.backend().blocking_wait();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let start = Instant::now();
            let r = waiter.block(Some(Duration::from_secs(5)));
            let _ = tx.send((r.map_err(|e| e.to_string()), start.elapsed()));
        });
        rx
    };
    let returned = |rx: &mpsc::Receiver<(Result<(), String>, Duration)>, what: &str| {
        let (r, took) = rx.recv_timeout(Duration::from_secs(3)).unwrap_or_else(|_| panic!("block did not return after {what}"));
        r.unwrap();
        assert!(took < Duration::from_secs(2), "block returned only after {took:?}");
    };

    // Input.
    let rx = block_on(&h);
    thread::sleep(Duration::from_millis(100));
    assert!(rx.try_recv().is_err(), "block returned with nothing to report");
    send(&mut peer, b"wake by data");
    returned(&rx, "data arrived");
    let events = h.turn(Duration::ZERO);
    assert!(
        matches!(events.as_slice(), [Ev::Data { conn: c, data }] if *c == conn && data == b"wake by data"),
        "a zero-timeout turn after block must deliver the data: {events:?}"
    );

    // A wake-up.
    let rx = block_on(&h);
    thread::sleep(Duration::from_millis(100));
    assert!(rx.try_recv().is_err(), "block returned with nothing to report");
    h.r.backend().waker().wake().unwrap();
    returned(&rx, "wake()");
    assert!(h.turn(Duration::ZERO).is_empty());

    // mio's pollable fd.
    let fd = h.r.backend().as_pollable().map(|p| p.pollable_handle());
    if kind != BackendKind::Mio {
        assert_eq!(fd, None);
        return;
    }
    let fd = fd.expect("mio has a pollable fd");
    let readable = |ms| {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, and its count.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
        n == 1 && pfd.revents & libc::POLLIN != 0
    };
    assert!(!readable(0), "nothing pending yet");
    send(&mut peer, b"via the fd");
    assert!(readable(2000), "the fd did not poll readable with data pending");
    let events = h.turn(Duration::ZERO);
    assert!(matches!(events.as_slice(), [Ev::Data { data, .. }] if data == b"via the fd"), "{events:?}");
    assert!(!readable(0), "still readable after the turn collected everything");
}

// An idle reactor (listener, open connection, UDP socket) sleeps for its
// timeout instead of spinning.
fn idle_reactor_sleeps(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    send(&mut peer, b"x");
    echo(&mut h, conn, 1);
    read_n(&mut peer, 1);

    h.assert_sleeps(Duration::from_millis(200), Duration::from_millis(20), 15, "the reactor spins");
    assert!(!h.r.has_pending());
}
