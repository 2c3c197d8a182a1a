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
use muxnet_core::{BackendKind, BindOptions, FdLimitError};

/// Asserts `e` is the select backend's refusal of an fd past FD_SETSIZE.
fn assert_fd_limit(e: &io::Error, what: &str) {
    let inner =
        e.get_ref().and_then(|i| i.downcast_ref::<FdLimitError>()).unwrap_or_else(|| panic!("{what}: want an FdLimitError, got {e:?}"));
    assert!(inner.fd as usize >= FD_SETSIZE, "{what}: {inner:?}");
    assert_eq!(inner.limit, FD_SETSIZE, "{what}");
    assert!(e.to_string().contains("FD_SETSIZE"), "{what}: the message should name the limit: {e}");
}

#[test]
fn select_refuses_fds_past_fd_setsize() {
    let want = FD_SETSIZE as libc::rlim_t + 256;
    if nofile_limit().rlim_cur < want {
        assert!(nofile_limit().rlim_max >= want, "the hard RLIMIT_NOFILE is too low for this test");
        set_nofile_soft(want);
    }

    // Made while fds are low: reactors, and a select listener.
    let mut select = Harness::new(BackendKind::Select);
    let (listener, addr) = select.listen("127.0.0.1:0");
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
    assert_eq!(select.r.len(), 1, "a refused socket takes no token");

    // An accepted connection would land there too: reported, and dropped.
    let mut peer = client(addr);
    assert!(peer.as_raw_fd() as usize >= FD_SETSIZE);
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
    match std::io::Read::read(&mut peer, &mut [0u8; 1]) {
        Ok(0) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        other => panic!("a rejected client should see its connection end, got {other:?}"),
    }
    assert_eq!(select.r.len(), 1);

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
