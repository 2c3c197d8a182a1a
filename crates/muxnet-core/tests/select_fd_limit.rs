//! select(2) cannot hold fds at or above FD_SETSIZE: the select backend
//! must refuse them with an `FdLimitError` instead of writing past its
//! `fd_set`, and keep working for fds below. Its own binary (and a single
//! test), since it fills the process's fd table.

mod common;

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use common::*;
use libc::FD_SETSIZE;
use muxnet_core::{BackendKind, BindOptions, FdLimitError, Token};

/// Asserts `e` is the select backend's refusal of an fd past FD_SETSIZE.
fn assert_fd_limit(e: &io::Error, what: &str) {
    let inner =
        e.get_ref().and_then(|i| i.downcast_ref::<FdLimitError>()).unwrap_or_else(|| panic!("{what}: want an FdLimitError, got {e:?}"));
    assert!(inner.fd as usize >= FD_SETSIZE, "{what}: {inner:?}");
    assert_eq!(inner.limit, FD_SETSIZE, "{what}");
    assert!(e.to_string().contains("FD_SETSIZE"), "{what}: the message should name the limit: {e}");
}

/// Turns until one connection comes in, past the reports of others kept meanwhile.
fn accept_past_limit(h: &mut Harness) -> Token {
    let mut conns = Vec::new();
    h.until("a kept connection let in", |_, events| {
        for e in events {
            match e {
                Ev::Accept { conn, .. } => conns.push(conn),
                Ev::AcceptError { error, .. } => assert_fd_limit(&error, "accept"),
                other => panic!("unexpected {other:?}"),
            }
        }
        !conns.is_empty()
    });
    assert_eq!(conns.len(), 1, "one fd of room, one connection in");
    conns[0]
}

#[test]
fn select_refuses_fds_past_fd_setsize() {
    let want = FD_SETSIZE as libc::rlim_t + 256;
    if nofile_limit().rlim_cur < want {
        assert!(nofile_limit().rlim_max >= want, "the hard RLIMIT_NOFILE is too low for this test");
        set_nofile_soft(want);
    }

    // Made while fds are low: reactors, a select listener and one connection of it.
    let mut select = Harness::new(BackendKind::Select);
    let (listener, addr) = select.listen("127.0.0.1:0");
    let _low_peer = client(addr);
    let low = select.accept(1)[0];
    let mut others: Vec<Harness> = [BackendKind::Mio, BackendKind::Poll].into_iter().map(Harness::new).collect();

    // Take every fd up to past FD_SETSIZE: fds are handed out lowest
    // first, so every new socket now lands above it.
    let mut fillers = Vec::new();
    while fillers.last().is_none_or(|f: &File| (f.as_raw_fd() as usize) < FD_SETSIZE + 8) {
        fillers.push(File::open("/dev/null").unwrap());
    }

    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    assert_fd_limit(&select.r.listen(&BindOptions::new(any), true).unwrap_err(), "listen");
    assert_fd_limit(&select.r.connect(addr, None).unwrap_err(), "connect");
    assert_fd_limit(&select.r.udp_bind(&BindOptions::new(any)).unwrap_err(), "udp_bind");
    assert_eq!(select.r.len(), 2, "a refused socket takes no token");

    // Accepted connections land there too: each is reported and kept, the listener paused,
    // until a close makes room below the limit; the others wait in the backlog. (Until
    // 2026-12-05 each was dropped, its peer, whose bytes the kernel had taken, met a reset, and
    // the listener accepted on: a burst lost a third of its connections.)
    let mut peers = [client(addr), client(addr)];
    for (i, peer) in peers.iter_mut().enumerate() {
        assert!(peer.as_raw_fd() as usize >= FD_SETSIZE);
        send(peer, format!("kept {i}").as_bytes());
    }
    let mut errors = Vec::new();
    select.until("AcceptError for an fd past FD_SETSIZE", |_, events| {
        for e in events {
            match e {
                Ev::AcceptError { listener: l, error } if l == listener => errors.push(error),
                other => panic!("unexpected {other:?}"),
            }
        }
        !errors.is_empty()
    });
    assert_fd_limit(&errors[0], "accept");
    assert_eq!(select.r.len(), 2);
    // Still open for their peers: no end, no reset, while they wait.
    for peer in &mut peers {
        peer.set_read_timeout(Some(std::time::Duration::from_millis(100))).unwrap();
        let waiting = std::io::Read::read(peer, &mut [0u8; 1]).unwrap_err();
        assert!(matches!(waiting.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut), "{waiting:?}");
        peer.set_read_timeout(None).unwrap();
    }
    // Asked again with no room yet (the owner's retry): reported again, still kept. (The first
    // version of the keeping kept it silently: no retry came after, and room made outside the
    // reactor was never found.)
    select.r.resume_accept(listener).unwrap();
    let mut again = Vec::new();
    select.until("the kept connection reported again", |_, events| {
        for e in events {
            match e {
                Ev::AcceptError { error, .. } => again.push(error),
                other => panic!("unexpected {other:?}"),
            }
        }
        !again.is_empty()
    });
    assert_fd_limit(&again[0], "accept, again");
    // Room made outside the reactor (a file of the process closed), then the owner's retry.
    let freed = fillers.remove(0);
    assert!((freed.as_raw_fd() as usize) < FD_SETSIZE);
    drop(freed);
    select.r.resume_accept(listener).unwrap();
    let outside = accept_past_limit(&mut select);
    assert_eq!(select.read_exact(outside, 6), b"kept 0");
    // A connection of the reactor closes: its fd is room, and the other kept one comes in on it
    // (met past the limit meanwhile: reported, kept too).
    select.r.close(low).unwrap();
    let inside = accept_past_limit(&mut select);
    assert_eq!(select.read_exact(inside, 6), b"kept 1");
    for (conn, peer) in [outside, inside].into_iter().zip(&mut peers) {
        select.r.write(conn, b"in").unwrap();
        assert_eq!(read_n(peer, 2), b"in");
    }

    // The other backends have no such limit.
    for h in &mut others {
        let (_, addr) = h.listen("127.0.0.1:0");
        let mut peer = client(addr);
        let conn = h.accept(1)[0];
        send(&mut peer, b"high fd");
        assert_eq!(h.read_exact(conn, 7), b"high fd", "[{}]", h.name());
    }

    // With low fds free again, select works, the old listener included.
    drop(fillers);
    let (_, addr2) = select.listen("127.0.0.1:0");
    for addr in [addr, addr2] {
        let mut peer = client(addr);
        let conn = select.accept(1)[0];
        send(&mut peer, b"low fd");
        assert_eq!(select.read_exact(conn, 6), b"low fd");
        select.r.write(conn, b"ok").unwrap();
        assert_eq!(read_n(&mut peer, 2), b"ok");
        select.r.close(conn).unwrap();
    }
}
