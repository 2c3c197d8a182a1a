//! UDP: datagrams with their boundaries and senders, connected sockets.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, BindOptions};

backend_tests!(udp_round_trip, udp_connected);

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
