//! Unix-domain sockets (IPC): a listener on a path, std clients and
//! reactor connects, data both ways, the socket file removed on close, and
//! Linux's abstract names.
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use muxnet_core::{Address, BackendKind};

backend_tests!(unix_echo_and_cleanup, unix_connect_refused, unix_path_with_a_nul_is_refused);

/// A socket path unique to this test and backend, in the temp dir.
fn socket_path(name: &str, kind: BackendKind) -> PathBuf {
    std::env::temp_dir().join(format!("muxnet-{}-{name}-{}.sock", std::process::id(), kind.name()))
}

fn unix_echo_and_cleanup(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let path = socket_path("echo", kind);
    let _ = std::fs::remove_file(&path);
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
    let _ = std::fs::remove_file(&path);
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
    let _ = std::fs::remove_file(&path);
    let cut = format!("{}\0tail", path.to_str().unwrap());
    let err = h.r.listen_unix(&cut, 16).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    assert!(!path.exists(), "[{}] a socket file was left at {path:?}", h.name());
    let listener = h.r.listen_unix(path.to_str().unwrap(), 16).unwrap();
    let err = h.r.connect_unix(&cut).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "[{}] {err}", h.name());
    h.r.close(listener).unwrap();
}
