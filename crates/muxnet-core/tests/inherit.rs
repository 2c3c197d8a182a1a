//! Sockets handed over by another owner (Node's cluster primary): a bound
//! listener that is not listening yet, a listening one with a connection
//! already in its backlog, an accepted connection with bytes and a FIN
//! already waiting, a bound UDP socket. Each keeps working after the giver
//! closes its own copy; a descriptor of the wrong kind is refused and
//! leaves nothing open. And the other way: a duplicate of a connection
//! (what Node's IPC hands to another process) outlives the reactor's close
//! of its own, with no FIN. A connect can leave from a socket bound before
//! it (Node's `net.BoundSocket`). The tests here take turns: one counts the
//! process's fds.

#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{Mutex, MutexGuard, PoisonError};

use common::*;
use muxnet_core::{BackendKind, BindOptions, Token};
use socket2::{Domain, Socket, Type};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

backend_tests!(
    inherited_listener,
    inherited_stream,
    inherited_datagram,
    shared_sockets_yield_one_per_turn,
    own_sockets_yield_all_in_a_turn,
    inherit_refuses_wrong_kinds,
    duplicated_for_another_owner,
    duplicated_listener_is_shared,
    connects_from_a_bound_socket,
    inherited_sockets_keep_their_nodelay
);

fn inherited_listener(kind: BackendKind) {
    let _serial = serial();
    let mut h = Harness::new(kind);
    // Bound, not listening: what the cluster primary shares (SCHED_NONE).
    let bound = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    bound.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    let addr = bound.local_addr().unwrap().as_socket().unwrap();
    let listener = h.r.inherit_listener(bound.as_raw_fd(), 16, true, true).unwrap();
    drop(bound);
    assert_eq!(h.r.local_addr(listener).unwrap(), addr);
    let mut peer = client(addr);
    let conn = h.accept(1)[0];
    send(&mut peer, b"hello");
    assert_eq!(h.read_exact(conn, 5), b"hello");

    // Already listening, a connection waiting in the backlog: no edge announces it.
    let std = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std.local_addr().unwrap();
    let _early = client(addr);
    let listener = h.r.inherit_listener(std.as_raw_fd(), 16, true, true).unwrap();
    drop(std);
    assert_eq!(h.r.local_addr(listener).unwrap(), addr);
    h.accept(1);
}

fn inherited_stream(kind: BackendKind) {
    let _serial = serial();
    let mut h = Harness::new(kind);
    let std = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut peer = client(std.local_addr().unwrap());
    let (given, _) = std.accept().unwrap();
    // Bytes and the FIN arrive before the adoption.
    send(&mut peer, b"early");
    peer.shutdown(Shutdown::Write).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let conn = h.r.inherit_stream(given.as_raw_fd(), true).unwrap();
    drop(given);
    assert_eq!(h.read_to_end(conn, "the early bytes and FIN"), b"early");
    assert_eq!(h.r.write(conn, b"reply").unwrap(), 0);
    h.r.shutdown(conn).unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"reply", "the giver's close did not end the connection");
}

fn inherited_datagram(kind: BackendKind) {
    let _serial = serial();
    let mut h = Harness::new(kind);
    let given = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = given.local_addr().unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.send_to(b"queued", addr).unwrap();
    let sock = h.r.inherit_datagram(given.as_raw_fd(), true).unwrap();
    drop(given);
    let mut got = None;
    h.until("the queued datagram", |_, events| {
        for e in events {
            if let Ev::Message { socket, data, from } = e {
                assert_eq!(socket, sock);
                got = Some((data, from));
            }
        }
        got.is_some()
    });
    assert_eq!(got.unwrap(), (b"queued".to_vec(), peer.local_addr().unwrap()));
}

/// What a shared socket's holder was not handed yet stays in the kernel for
/// the other holders (here the std copies) once it closes its copy.
fn shared_sockets_yield_one_per_turn(kind: BackendKind) {
    let _serial = serial();
    let mut h = Harness::new(kind);
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in [b"one", b"two", b"six"] {
        peer.send_to(d, other.local_addr().unwrap()).unwrap();
    }
    let sock = h.r.inherit_datagram(other.as_raw_fd(), true).unwrap();
    let mut got = Vec::new();
    h.until("a datagram", |_, events| {
        assert!(events.len() <= 1, "one datagram per turn: {events:?}");
        got.extend(events);
        !got.is_empty()
    });
    assert!(matches!(&got[..], [Ev::Message { socket, data, .. }] if *socket == sock && data == b"one"), "{got:?}");
    h.r.close(sock).unwrap();
    let mut buf = [0u8; 8];
    other.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    for want in [b"two", b"six"] {
        let n = other.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], want, "left in the kernel for the other holder");
    }

    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = other.local_addr().unwrap();
    let clients: Vec<TcpStream> = (0..3).map(|_| client(addr)).collect();
    let listener = h.r.inherit_listener(other.as_raw_fd(), 16, false, true).unwrap();
    one_accept_then_backlog(&mut h, listener, &other, 2);
    drop(clients);
}

/// A shared listener yields one connection per turn; closed here after the
/// first, the other `left` wait in the backlog for `holder`.
fn one_accept_then_backlog(h: &mut Harness, listener: Token, holder: &TcpListener, left: usize) {
    let mut accepted = 0;
    h.until("a connection", |_, events| {
        assert!(events.len() <= 1, "one connection per turn: {events:?}");
        accepted += events.iter().filter(|e| matches!(e, Ev::Accept { .. })).count();
        accepted == 1
    });
    h.r.close(listener).unwrap();
    holder.set_nonblocking(false).unwrap();
    // A regression fails here rather than hanging (SO_RCVTIMEO bounds accept).
    socket2::SockRef::from(holder).set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    for _ in 0..left {
        holder.accept().expect("left in the backlog for the other holder");
    }
}

/// A socket that is this process's alone (a service manager's fd, taken
/// whole): everything waiting comes in one turn, as for a socket it made
/// (up to the budget: the accept budget is 1 by default, as libuv's).
fn own_sockets_yield_all_in_a_turn(kind: BackendKind) {
    let _serial = serial();
    let mut h = Harness::with_config(kind, muxnet_core::Config { accept_budget: 16, ..Default::default() });
    let given = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in [b"one", b"two", b"six"] {
        peer.send_to(d, given.local_addr().unwrap()).unwrap();
    }
    let sock = h.r.inherit_datagram(given.as_raw_fd(), false).unwrap();
    drop(given);
    let events = h.turn(IO_TIMEOUT);
    let got: Vec<&[u8]> = events
        .iter()
        .filter_map(|e| if let Ev::Message { socket, data, .. } = e { (*socket == sock).then_some(&data[..]) } else { None })
        .collect();
    assert_eq!(got, [b"one", b"two", b"six"], "[{}] {events:?}", h.name());

    let given = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = given.local_addr().unwrap();
    let clients: Vec<TcpStream> = (0..3).map(|_| client(addr)).collect();
    let listener = h.r.inherit_listener(given.as_raw_fd(), 16, false, false).unwrap();
    drop(given);
    let events = h.turn(IO_TIMEOUT);
    assert_eq!(events.iter().filter(|e| matches!(e, Ev::Accept { .. })).count(), 3, "[{}] {events:?}", h.name());
    h.r.close(listener).unwrap();
    drop(clients);
}

fn inherit_refuses_wrong_kinds(kind: BackendKind) {
    let _serial = serial();
    let mut h = Harness::new(kind);
    let before = open_fds();
    let file = std::fs::File::open("/proc/self/stat").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let std = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = TcpStream::connect(std.local_addr().unwrap()).unwrap();
    let kind_of = |e: std::io::Error| e.raw_os_error();
    assert_eq!(h.r.inherit_stream(file.as_raw_fd(), false).map_err(kind_of).unwrap_err(), Some(libc::ENOTSOCK));
    assert_eq!(h.r.inherit_stream(udp.as_raw_fd(), false).map_err(kind_of).unwrap_err(), Some(libc::EINVAL));
    assert_eq!(h.r.inherit_listener(udp.as_raw_fd(), 16, false, true).map_err(kind_of).unwrap_err(), Some(libc::EINVAL));
    assert_eq!(h.r.inherit_datagram(tcp.as_raw_fd(), true).map_err(kind_of).unwrap_err(), Some(libc::EINVAL));
    assert_eq!(h.r.inherit_stream(-1, false).map_err(kind_of).unwrap_err(), Some(libc::EBADF));
    assert_eq!(h.r.inherit_stream(100_000, false).map_err(kind_of).unwrap_err(), Some(libc::EBADF));
    drop((file, udp, std, tcp));
    assert_eq!(open_fds(), before, "every refused copy was closed");
}

fn duplicated_for_another_owner(kind: BackendKind) {
    let _serial = serial();
    let mut h = Harness::new(kind);
    let std = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut peer = client(std.local_addr().unwrap());
    let (given, _) = std.accept().unwrap();
    let conn = h.r.inherit_stream(given.as_raw_fd(), true).unwrap();
    drop(given);
    let copy: TcpStream = h.r.duplicate(conn).unwrap().into();
    // The reactor lets go of its own (as a sender does once the child has its copy): no FIN reaches the peer.
    h.r.close(conn).unwrap();
    assert!(h.r.duplicate(conn).is_err(), "a closed token has nothing to duplicate");
    send(&mut peer, b"to the new owner");
    let mut copy_reader = copy.try_clone().unwrap();
    let mut got = [0u8; 16];
    copy_reader.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"to the new owner");
    (&copy).write_all(b"from the new owner").unwrap();
    drop(copy);
    drop(copy_reader);
    let mut back = Vec::new();
    peer.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"from the new owner", "the connection ended when the reactor closed its copy");
}

/// A listener of the reactor's own, duplicated for another owner, yields one
/// connection per turn from then on: closed here, the rest wait in the
/// backlog for the copy (not accepted ahead, to be reset at the close).
fn duplicated_listener_is_shared(kind: BackendKind) {
    let _serial = serial();
    let mut h = Harness::new(kind);
    let listener = h.r.listen(&BindOptions::new("127.0.0.1:0".parse().unwrap()), false).unwrap();
    let addr = h.r.local_addr(listener).unwrap();
    let copy: TcpListener = h.r.duplicate(listener).unwrap().into();
    let clients: Vec<TcpStream> = (0..3).map(|_| client(addr)).collect();
    one_accept_then_backlog(&mut h, listener, &copy, 2);
    drop(clients);
}

/// Node's `net.BoundSocket` adopted by a client: the connection leaves from
/// the address bound before it (TCP, and a Unix-domain source path), the
/// giver's copy closed at once; a peer of another family is refused.
fn connects_from_a_bound_socket(kind: BackendKind) {
    use muxnet_core::Peer;
    let _serial = serial();
    let mut h = Harness::new(kind);
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let bound = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    bound.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    let source = bound.local_addr().unwrap().as_socket().unwrap();
    let conn = h.r.inherit_connect(bound.as_raw_fd(), Peer::Ip(server.local_addr().unwrap())).unwrap();
    drop(bound);
    h.until("the connect", |_, events| events.iter().any(|e| matches!(e, Ev::Connect { conn: c } if *c == conn)));
    let (mut peer, from) = server.accept().unwrap();
    assert_eq!(from, source, "the connection left from the bound address");
    assert_eq!(h.r.write(conn, b"from the bound socket").unwrap(), 0);
    assert_eq!(read_n(&mut peer, 21), b"from the bound socket");
    send(&mut peer, b"back");
    assert_eq!(h.read_exact(conn, 4), b"back");

    let v4 = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    v4.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    let refused = h.r.inherit_connect(v4.as_raw_fd(), Peer::Ip("[::1]:1".parse().unwrap())).unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EAFNOSUPPORT));

    let dir = std::env::temp_dir().join(format!("muxnet-bound-{}-{}", std::process::id(), h.name()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let (dst, src) = (dir.join("dst"), dir.join("src"));
    let unix = std::os::unix::net::UnixListener::bind(&dst).unwrap();
    let bound = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
    bound.bind(&socket2::SockAddr::unix(&src).unwrap()).unwrap();
    let conn = h.r.inherit_connect(bound.as_raw_fd(), Peer::Path(dst.to_str().unwrap())).unwrap();
    drop(bound);
    h.until("the Unix-domain connect", |_, events| events.iter().any(|e| matches!(e, Ev::Connect { conn: c } if *c == conn)));
    let (mut peer, from) = unix.accept().unwrap();
    assert_eq!(from.as_pathname(), Some(src.as_path()), "the connection left from the bound path");
    assert_eq!(h.r.write(conn, b"over the path").unwrap(), 0);
    let mut got = [0u8; 13];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"over the path");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `no_delay` turns `TCP_NODELAY` on and never off, as libuv: a connection
/// inherited with it on keeps it (a systemd socket's `NoDelay=yes`), and so
/// do the connections an inherited listener with it on accepts (Linux
/// passes it from the listener). Until 2026-12-05 both were forced off.
fn inherited_sockets_keep_their_nodelay(kind: BackendKind) {
    let _serial = serial();
    let mut h = Harness::new(kind);
    let nodelay = |h: &mut Harness, conn: Token| -> bool {
        let copy: TcpStream = h.r.duplicate(conn).unwrap().into();
        copy.nodelay().unwrap()
    };
    let std = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std.local_addr().unwrap();
    for (given_on, no_delay) in [(true, false), (false, false), (false, true)] {
        let _peer = client(addr);
        let (given, _) = std.accept().unwrap();
        given.set_nodelay(given_on).unwrap();
        let conn = h.r.inherit_stream(given.as_raw_fd(), no_delay).unwrap();
        drop(given);
        assert_eq!(nodelay(&mut h, conn), given_on || no_delay, "inherited with TCP_NODELAY {given_on}, no_delay {no_delay}");
        h.r.close(conn).unwrap();
    }
    for (given_on, no_delay) in [(true, false), (false, false), (false, true)] {
        let bound = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        bound.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        bound.listen(16).unwrap();
        bound.set_tcp_nodelay(given_on).unwrap();
        let addr = bound.local_addr().unwrap().as_socket().unwrap();
        let listener = h.r.inherit_listener(bound.as_raw_fd(), 16, no_delay, false).unwrap();
        drop(bound);
        let _peer = client(addr);
        let conn = h.accept(1)[0];
        assert_eq!(
            nodelay(&mut h, conn),
            given_on || no_delay,
            "accepted from a listener with TCP_NODELAY {given_on}, no_delay {no_delay}"
        );
        h.r.close(conn).unwrap();
        h.r.close(listener).unwrap();
    }
}
