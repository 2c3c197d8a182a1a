//! Unix-domain sockets (IPC): a listener on a path, std clients and
//! reactor connects, data both ways, the socket file removed on close, and
//! Linux's abstract names.
#![cfg(unix)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use muxnet_core::{Address, BackendKind};

backend_tests!(
    unix_echo_and_cleanup,
    unix_connect_refused,
    unix_path_with_a_nul_is_refused,
    unix_reads_past_a_message_carrying_fds,
    unix_pipe_relays_past_a_message_carrying_fds
);

/// A socket path unique to this test and backend, in the temp dir, with
/// no file left there by an earlier run.
fn socket_path(name: &str, kind: BackendKind) -> PathBuf {
    let path = std::env::temp_dir().join(format!("muxnet-{}-{name}-{}.sock", std::process::id(), kind.name()));
    let _ = std::fs::remove_file(&path);
    path
}

fn unix_echo_and_cleanup(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let path = socket_path("echo", kind);
    let listener = h.r.listen_unix(path.to_str().unwrap(), 16).unwrap();
    assert_eq!(h.r.local_address(listener).unwrap(), Address::Path(Some(path.to_str().unwrap().into())));
    assert!(h.r.local_addr(listener).is_err(), "a Unix-domain socket has no IP address");

    // A std client; the reactor echoes.
    let mut peer = UnixStream::connect(&path).unwrap();
    peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let conn = h.accept(1)[0];
    peer.write_all(b"over ipc").unwrap();
    let got = h.read_exact(conn, 8);
    h.r.write(conn, &got).unwrap();
    let mut back = [0u8; 8];
    peer.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"over ipc");
    // Stream options are no-ops on a pipe, as in node:net.
    h.r.set_no_delay(conn, true).unwrap();

    // A reactor connect to the same listener.
    let client = h.r.connect_unix(path.to_str().unwrap()).unwrap();
    h.r.write(client, b"queued before connect").unwrap();
    let (mut connected, mut accepted, mut got) = (false, None, Vec::new());
    h.until("connect, accept and the queued bytes", |_, events| {
        for e in events {
            match e {
                Ev::Connect { conn } if conn == client => connected = true,
                Ev::Drain { conn } if conn == client => {}
                Ev::Accept { conn, .. } => accepted = Some(conn),
                Ev::Data { conn, data } if Some(conn) == accepted => got.extend(data),
                other => panic!("unexpected {other:?}"),
            }
        }
        connected && got.len() == 21
    });
    assert_eq!(got, b"queued before connect");

    // Close everything: the socket file goes with the listener.
    drop(peer);
    h.r.close(client).unwrap();
    h.r.close(accepted.unwrap()).unwrap();
    // A Unix-domain stream has no RST: an abortive close just closes it.
    h.r.reset(conn).unwrap();
    assert!(h.r.peer_addr(conn).is_err());
    assert!(path.exists());
    h.r.close(listener).unwrap();
    assert!(!path.exists(), "the socket file is removed when the listener closes");
    assert!(h.collect_for(Duration::from_millis(20)).iter().all(|e| !matches!(e, Ev::Close { error: Some(_), .. })));

    // Linux: an abstract name has no file and reads back with its NUL.
    #[cfg(target_os = "linux")]
    {
        let name = format!("\0muxnet-abstract-{}-{}", std::process::id(), kind.name());
        let abstract_listener = h.r.listen_unix(&name, 16).unwrap();
        assert_eq!(h.r.local_address(abstract_listener).unwrap(), Address::Path(Some(name.clone())));
        let client = h.r.connect_unix(&name).unwrap();
        let mut open = false;
        h.until("the abstract connect", |_, events| {
            open |= events.iter().any(|e| matches!(e, Ev::Connect { conn } if *conn == client));
            open
        });
    }
}

fn unix_connect_refused(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let path = socket_path("nobody", kind);
    // No such file: the connect fails at once.
    let err = h.r.connect_unix(path.to_str().unwrap()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    // A path in use: EADDRINUSE, and the other listener's file stays.
    let first = h.r.listen_unix(path.to_str().unwrap(), 16).unwrap();
    let err = h.r.listen_unix(path.to_str().unwrap(), 16).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
    assert!(path.exists());
    h.r.close(first).unwrap();
    assert!(!path.exists());
}

/// A NUL inside a path: the kernel would take what comes before it, a
/// file the close could not remove, or another listener than the one
/// named. Refused, no file made, no connection to that other listener.
fn unix_path_with_a_nul_is_refused(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let path = socket_path("nul", kind);
    let cut = format!("{}\0tail", path.to_str().unwrap());
    let err = h.r.listen_unix(&cut, 16).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    assert!(!path.exists(), "[{}] a socket file was left at {path:?}", h.name());
    let listener = h.r.listen_unix(path.to_str().unwrap(), 16).unwrap();
    let err = h.r.connect_unix(&cut).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "[{}] {err}", h.name());
    h.r.close(listener).unwrap();
}

/// Sends `data` with an fd attached (`SCM_RIGHTS`), as a process handing
/// over a socket does; the reading side's plain `read` drops the fd.
fn send_with_fd(peer: &UnixStream, data: &[u8]) {
    let passed = std::fs::File::open("/dev/null").unwrap();
    let fd = passed.as_raw_fd();
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: an all-zero msghdr is valid; every pointer set in it (the
    // iovec, the control buffer) outlives the sendmsg call, and the cmsg
    // written fits the buffer sized by CMSG_SPACE for one int.
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut libc::c_int, fd);
        libc::sendmsg(peer.as_raw_fd(), &msg, 0)
    };
    assert_eq!(sent, data.len() as isize, "sendmsg: {}", std::io::Error::last_os_error());
}

/// 100 bytes with an fd attached, then 100 plain ones; returns all 200.
fn fd_message_then_bytes(peer: &mut UnixStream) -> Vec<u8> {
    send_with_fd(peer, &[b'a'; 100]);
    peer.write_all(&[b'b'; 100]).unwrap();
    [[b'a'; 100], [b'b'; 100]].concat()
}

/// Linux ends a Unix stream read at a message that carries fds, bytes
/// queued behind it: a read shorter than asked for is no proof the socket
/// is empty there. Taken for one, the bytes behind waited (edge-triggered
/// mio: no new edge comes) until the peer wrote again or left.
fn unix_reads_past_a_message_carrying_fds(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let path = socket_path("fds", kind);
    let listener = h.r.listen_unix(path.to_str().unwrap(), 16).unwrap();
    let mut peer = UnixStream::connect(&path).unwrap();
    let conn = h.accept(1)[0];
    let sent = fd_message_then_bytes(&mut peer);
    // The peer stays, silent: the reactor must find the rest by itself.
    let got = h.read_exact(conn, sent.len());
    assert_eq!(got, sent, "[{}]", h.name());
    drop(peer);
    h.r.close(conn).unwrap();
    h.r.close(listener).unwrap();
}

/// The same for a joined pair: the relay reads past the message too.
fn unix_pipe_relays_past_a_message_carrying_fds(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let path = socket_path("pipe-fds", kind);
    let listener = h.r.listen_unix(path.to_str().unwrap(), 16).unwrap();
    let mut from = UnixStream::connect(&path).unwrap();
    let mut to = UnixStream::connect(&path).unwrap();
    let conns = h.accept(2);
    h.r.pipe(conns[0], conns[1]).unwrap();
    // The join settled (its registrations made) before anything is sent.
    assert!(h.collect_for(Duration::from_millis(20)).is_empty());
    let sent = fd_message_then_bytes(&mut from);
    to.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    h.until("the bytes relayed", |_, events| {
        assert!(events.is_empty(), "unexpected {events:?}");
        let mut buf = [0u8; 512];
        match to.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => assert_eq!(e.kind(), ErrorKind::WouldBlock, "{e}"),
        }
        got.len() >= sent.len()
    });
    assert_eq!(got, sent, "[{}]", h.name());
    drop((from, to));
    h.r.close(listener).unwrap();
}
