//! Listeners: ports in use, SO_REUSEPORT, IPv6 and IPV6_V6ONLY.

mod common;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};

use common::*;
use muxnet_core::{BackendKind, BindOptions, Token};

backend_tests!(listen_addr_in_use, listen_reuse_port, ipv6_listen_and_connect, ipv6_only);

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
    // As libuv: only where the kernel spreads the connections; elsewhere ENOTSUP.
    if !cfg!(any(target_os = "linux", target_os = "android", target_os = "dragonfly", target_os = "freebsd")) {
        let err = h.r.listen(&opts, true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        return;
    }
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
