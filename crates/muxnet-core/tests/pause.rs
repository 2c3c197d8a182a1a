//! Pause and resume: nothing while paused, everything (and the FIN) after;
//! the same for a UDP socket, and for a listener held by the application.

mod common;

use std::net::{Shutdown, UdpSocket};
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, BindOptions, Config, LEAN_READ};

backend_tests!(pause_resume, pause_resume_datagrams, hold_accept, lean_reads);

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
    let got = h.read_to_end(conn, "data and End after resume");
    assert_eq!(got, b"late");
}

// A paused UDP socket reports nothing: the datagrams wait in the kernel's
// receive buffer and come, in order, on resume, with nothing new to prompt it.
fn pause_resume_datagrams(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let sock = h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let addr = h.r.local_addr(sock).unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    h.r.pause(sock).unwrap();
    for d in [&b"one"[..], b"two", b"three"] {
        peer.send_to(d, addr).unwrap();
    }
    let quiet = h.collect_for(Duration::from_millis(150));
    assert!(quiet.is_empty(), "paused, yet: {quiet:?}");
    h.r.resume(sock).unwrap();
    let mut got = Vec::new();
    h.until("the datagrams sent while paused", |_, events| {
        for e in events {
            match e {
                Ev::Message { socket, data, .. } if socket == sock => got.push(data),
                other => panic!("unexpected {other:?}"),
            }
        }
        got.len() >= 3
    });
    assert_eq!(got, [&b"one"[..], b"two", b"three"]);
    // Resuming what is not paused changes nothing; a listener cannot pause.
    h.r.resume(sock).unwrap();
    let (server, _) = h.listen("127.0.0.1:0");
    assert_eq!(h.r.pause(server).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    h.r.close(sock).unwrap();
}

// A held listener accepts nothing (the clients wait in the backlog); let go,
// it takes them all with no new connection to prompt it. A hold is not an
// `EMFILE` pause: closing a socket does not end it.
fn hold_accept(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (server, addr) = h.listen("127.0.0.1:0");
    let _first = client(addr);
    let first = h.accept(1)[0];
    h.r.hold_accept(server, true).unwrap();
    let _waiting: Vec<_> = (0..2).map(|_| client(addr)).collect();
    h.r.close(first).unwrap();
    let quiet = h.collect_for(Duration::from_millis(150));
    assert!(quiet.is_empty(), "held, yet: {quiet:?}");
    h.r.hold_accept(server, false).unwrap();
    assert_eq!(h.accept(2).len(), 2);
    assert!(h.r.hold_accept(first, true).is_err(), "a closed token is no listener");
}

// A lean connection reads at most `LEAN_READ` a turn, whatever waits in the
// kernel, so an owner that stops after any read holds one read past its
// stop; set back, a turn reads up to the budget again. Every byte in order.
fn lean_reads(kind: BackendKind) {
    const BUDGET: usize = 256 << 10;
    const SENT: usize = 4 << 20;
    let mut h = Harness::with_config(kind, Config { read_budget: BUDGET, ..Config::default() });
    let (_, addr) = h.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    h.r.set_lean_reads(conn, true).unwrap();
    let writer = Peer::spawn(move || send(&mut peer, &pattern(11, SENT)));
    let mut got = Vec::new();
    // The most read in one turn until `got` holds `until` bytes.
    let mut most_until = |h: &mut Harness, until: usize, what: &str| {
        let mut most = 0;
        h.until(what, |_, events| {
            let mut turn = 0;
            for e in events {
                if let Ev::Data { data, .. } = e {
                    turn += data.len();
                    got.extend(data);
                }
            }
            most = most.max(turn);
            got.len() >= until
        });
        most
    };
    let lean = most_until(&mut h, 1 << 20, "a MiB read lean");
    assert!(lean <= LEAN_READ, "{lean} bytes read in one lean turn");
    h.r.set_lean_reads(conn, false).unwrap();
    let full = most_until(&mut h, SENT, "the rest read with the full budget");
    assert!(full > LEAN_READ, "no turn read more than {LEAN_READ} with the full budget");
    writer.join();
    assert_same(&got, &pattern(11, SENT), "bytes read");
}
