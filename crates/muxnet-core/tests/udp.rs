//! UDP: datagrams with their boundaries and senders, connected sockets.

mod common;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, BindOptions, Membership, MulticastInterface, SocketBuffer, Token};

backend_tests!(udp_round_trip, udp_connected, udp_ttl, udp_broadcast_and_buffers, udp_multicast, udp_bind_after_failure);

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
//      datagrams arrive, and an ICMP error from a dead peer is one
//      `ReceiveError` (ECONNREFUSED), after which the socket still works.
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
    let mut errors = Vec::new();
    h.until("the ICMP error", |_, events| {
        errors.extend(events);
        !errors.is_empty()
    });
    errors.extend(h.collect_for(Duration::from_millis(100)));
    assert!(
        matches!(errors.as_slice(), [Ev::ReceiveError { socket, error }] if *socket == sock && error.kind() == io::ErrorKind::ConnectionRefused),
        "one receive error: {errors:?}"
    );
    h.r.udp_connect(sock, a.local_addr().unwrap()).unwrap();
    a.send_to(b"again", saddr).unwrap();
    let mut got = Vec::new();
    h.until("a datagram after the ICMP error", |_, events| {
        got.extend(events);
        !got.is_empty()
    });
    assert!(matches!(got.as_slice(), [Ev::Message { data, .. }] if data == b"again"), "{got:?}");
}

fn udp_on(h: &mut Harness, addr: &str) -> (Token, SocketAddr) {
    let sock = h.r.udp_bind(&BindOptions::new(addr.parse().unwrap())).unwrap();
    let local = h.r.local_addr(sock).unwrap();
    (sock, local)
}

fn closed_token(h: &mut Harness) -> Token {
    let (sock, _) = udp_on(h, "127.0.0.1:0");
    h.r.close(sock).unwrap();
    sock
}

/// The TTL (IPv6: hop limit) `peer`'s next datagram arrived with, read
/// from the `IP_TTL`/`IPV6_HOPLIMIT` control message it asked for.
#[cfg(target_os = "linux")]
fn received_ttl(peer: &UdpSocket) -> i32 {
    use std::os::fd::AsRawFd;
    let v6 = peer.local_addr().unwrap().is_ipv6();
    let (level, ask, kind) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, libc::IPV6_HOPLIMIT)
    } else {
        (libc::IPPROTO_IP, libc::IP_RECVTTL, libc::IP_TTL)
    };
    let on: libc::c_int = 1;
    let mut data = [0u8; 64];
    let mut control = [0u64; 16];
    // SAFETY: every pointer is to a live local of the size given; the
    // control messages are walked with the kernel's own macros within
    // `msg_controllen`.
    unsafe {
        let fd = peer.as_raw_fd();
        assert_eq!(libc::setsockopt(fd, level, ask, (&raw const on).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t), 0);
        let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        assert!(libc::recvmsg(fd, &raw mut msg, 0) >= 0, "recvmsg: {}", io::Error::last_os_error());
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == level && (*cmsg).cmsg_type == kind {
                return std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    panic!("no TTL control message")
}

// 10c. The unicast TTL reaches the wire on IPv4 and IPv6; outside 1..=255
//      it is refused before the token is looked at, as libuv does; the
//      multicast TTL takes 0..=255.
fn udp_ttl(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let closed = closed_token(&mut h);
    for bad in [0, 256, -1] {
        assert_eq!(h.r.set_ttl(closed, bad).unwrap_err().kind(), io::ErrorKind::InvalidInput, "ttl {bad}");
    }
    assert_eq!(h.r.set_ttl(closed, 64).unwrap_err().kind(), io::ErrorKind::NotFound);
    for bad in [256, -1] {
        assert_eq!(h.r.set_multicast_ttl(closed, bad).unwrap_err().kind(), io::ErrorKind::InvalidInput, "multicast ttl {bad}");
    }
    assert_eq!(h.r.set_multicast_ttl(closed, 0).unwrap_err().kind(), io::ErrorKind::NotFound);
    for ip in ["127.0.0.1:0", "[::1]:0"] {
        let (sock, _) = udp_on(&mut h, ip);
        let peer = UdpSocket::bind(ip).unwrap();
        peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        for ttl in [7, 255, 1] {
            h.r.set_ttl(sock, ttl).unwrap();
            h.r.send_to(sock, b"ttl", peer.local_addr().unwrap()).unwrap();
            #[cfg(target_os = "linux")]
            assert_eq!(received_ttl(&peer), ttl, "the TTL on {ip}");
        }
        for ttl in [0, 255] {
            h.r.set_multicast_ttl(sock, ttl).unwrap();
        }
        h.r.close(sock).unwrap();
    }
}

// 10d. `SO_BROADCAST` decides whether a broadcast send is refused; the
//      buffer sizes read back as the kernel keeps them (Linux: doubled).
fn udp_broadcast_and_buffers(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (sock, _) = udp_on(&mut h, "0.0.0.0:0");
    let broadcast: SocketAddr = "255.255.255.255:9".parse().unwrap();
    let refused = |r: io::Result<usize>| matches!(r, Err(e) if e.kind() == io::ErrorKind::PermissionDenied);
    assert!(refused(h.r.send_to(sock, b"b", broadcast)), "broadcast is off by default");
    h.r.set_broadcast(sock, true).unwrap();
    assert!(!refused(h.r.send_to(sock, b"b", broadcast)), "broadcast on");
    h.r.set_broadcast(sock, false).unwrap();
    assert!(refused(h.r.send_to(sock, b"b", broadcast)), "broadcast off again");

    for which in [SocketBuffer::Receive, SocketBuffer::Send] {
        h.r.set_buffer_size(sock, which, 8192).unwrap();
        let size = h.r.buffer_size(sock, which).unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(size, 16384, "{which:?}");
        } else {
            assert!(size >= 8192, "{which:?}: {size}");
        }
        h.r.set_buffer_size(sock, which, 20000).unwrap();
        assert_ne!(h.r.buffer_size(sock, which).unwrap(), size, "{which:?} resized");
    }
    let closed = closed_token(&mut h);
    assert_eq!(h.r.buffer_size(closed, SocketBuffer::Receive).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(h.r.set_broadcast(closed, true).unwrap_err().kind(), io::ErrorKind::NotFound);
    h.r.close(sock).unwrap();
}

/// Whether `sock` hears one datagram `from` sends to `group` within 200 ms.
fn hears(h: &mut Harness, sock: Token, from: Token, group: SocketAddr) -> bool {
    h.r.send_to(from, b"to the group", group).unwrap();
    let events = h.collect_for(Duration::from_millis(200));
    events.iter().any(|e| matches!(e, Ev::Message { socket, data, .. } if *socket == sock && data == b"to the group"))
}

// 10e. Multicast over the loopback interface: a member hears the group
//      (any source, or one source only), and no more once it has left; a
//      group is left once; an IPv6 group is joined and left by index.
fn udp_multicast(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (member, local) = udp_on(&mut h, "0.0.0.0:0");
    let (sender, _) = udp_on(&mut h, "127.0.0.1:0");
    let lo = MulticastInterface::V4(Ipv4Addr::LOCALHOST);
    h.r.set_multicast_interface(sender, lo).unwrap();
    h.r.set_multicast_loop(sender, true).unwrap();

    // Linux delivers a group's datagrams to every socket bound to the
    // any-address once one socket joined: groups of their own for this
    // process and backend keep concurrent tests apart.
    let [pid_hi, pid_lo] = (std::process::id() as u16).to_be_bytes();
    let backend = BackendKind::ALL.iter().position(|&k| k == kind).unwrap() as u8;
    let any = Membership { group: IpAddr::V4(Ipv4Addr::new(239, pid_hi, pid_lo, backend)), source: None, interface: lo };
    let ssm_group = IpAddr::V4(Ipv4Addr::new(232, pid_hi, pid_lo, backend));
    let ssm = Membership { group: ssm_group, source: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), interface: lo };
    for m in [any, ssm] {
        let group = SocketAddr::new(m.group, local.port());
        assert!(!hears(&mut h, member, sender, group), "{m:?}: not a member yet");
        h.r.set_membership(member, &m, true).unwrap();
        assert!(hears(&mut h, member, sender, group), "{m:?}: a member");
        h.r.set_membership(member, &m, false).unwrap();
        assert!(!hears(&mut h, member, sender, group), "{m:?}: left");
        assert!(h.r.set_membership(member, &m, false).is_err(), "{m:?}: left twice");
    }
    let mixed = Membership { source: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)), ..ssm };
    assert_eq!(h.r.set_membership(member, &mixed, true).unwrap_err().kind(), io::ErrorKind::InvalidInput);

    let (six, _) = udp_on(&mut h, "[::]:0");
    for source in [None, Some(IpAddr::V6(Ipv6Addr::LOCALHOST))] {
        let group = if source.is_some() { "ff35::1:114" } else { "ff02::114" };
        let m = Membership { group: IpAddr::V6(group.parse().unwrap()), source, interface: MulticastInterface::V6(1) };
        h.r.set_membership(six, &m, true).unwrap();
        h.r.set_membership(six, &m, false).unwrap();
        assert!(h.r.set_membership(six, &m, false).is_err(), "{m:?}: left twice");
    }
    h.r.set_multicast_interface(six, MulticastInterface::V6(1)).unwrap();
    h.r.set_multicast_loop(six, false).unwrap();
    let closed = closed_token(&mut h);
    assert_eq!(h.r.set_membership(closed, &any, true).unwrap_err().kind(), io::ErrorKind::NotFound);
}

// 10f. A socket made unbound (libuv's before a handle's first bind) stays
//      when its bind fails: options set, its address the any-address and
//      port 0; a second bind binds it and it receives. Bound, it binds no
//      more (EINVAL), and takes no address of the other family, nor
//      `ipv6_only` for IPv4 (`InvalidInput`).
fn udp_bind_after_failure(kind: BackendKind) {
    let mut h = Harness::new(kind);
    for (ip, any) in [("127.0.0.1:0", "0.0.0.0:0"), ("[::1]:0", "[::]:0")] {
        let (holder, taken) = udp_on(&mut h, ip);
        let sock = h.r.udp_socket(taken.is_ipv6()).unwrap();
        let mut opts = BindOptions::new(taken);
        opts.reuse_addr = false;
        assert_eq!(h.r.udp_bind_socket(sock, &opts).unwrap_err().kind(), io::ErrorKind::AddrInUse, "{ip}");
        assert_eq!(h.r.local_addr(sock).unwrap(), any.parse().unwrap());
        h.r.set_ttl(sock, 9).unwrap();
        h.r.set_broadcast(sock, true).unwrap();
        opts.addr = ip.parse().unwrap();
        opts.ipv6_only = taken.is_ipv6();
        h.r.udp_bind_socket(sock, &opts).unwrap();
        let addr = h.r.local_addr(sock).unwrap();
        assert_ne!(addr.port(), 0);
        h.r.send_to(holder, b"bound at last", addr).unwrap();
        h.until(&format!("the datagram on {ip}"), |_, events| {
            events.iter().any(|e| matches!(e, Ev::Message { socket, data, .. } if *socket == sock && data == b"bound at last"))
        });
        assert_eq!(h.r.udp_bind_socket(sock, &opts).unwrap_err().raw_os_error(), Some(libc::EINVAL), "bound already");
        h.r.close(sock).unwrap();
        h.r.close(holder).unwrap();
    }
    let four = h.r.udp_socket(false).unwrap();
    let mut v6only = BindOptions::new("127.0.0.1:0".parse().unwrap());
    v6only.ipv6_only = true;
    assert_eq!(h.r.udp_bind_socket(four, &v6only).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    let other_family = BindOptions::new("[::1]:0".parse().unwrap());
    assert_eq!(h.r.udp_bind_socket(four, &other_family).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(h.r.local_addr(four).unwrap(), "0.0.0.0:0".parse().unwrap(), "still unbound");
    h.r.close(four).unwrap();
}
