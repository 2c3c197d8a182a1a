//! Accepting with no fd left (EMFILE): reported once, the listener pauses
//! instead of spinning on the connection it cannot take, and accepting
//! resumes when an fd frees up. Its own binary, since it lowers the
//! process's fd limit; the tests here take turns.

mod common;

use std::fs::File;
use std::io::Write;
use std::net::TcpStream;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, Token};

static SERIAL: Mutex<()> = Mutex::new(());

backend_tests!(accept_emfile_pauses_listener, a_sent_file_frees_an_fd_for_accept);

/// Restores the fd limit it found, even when the test fails.
struct RestoreLimit(libc::rlim_t);

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        set_nofile_soft(self.0);
    }
}

/// Lowers the fd limit to a little above the fds open now and opens
/// `/dev/null` until none is left; the files returned hold the table full.
fn fill_fd_table() -> Vec<File> {
    set_nofile_soft(highest_fd() as libc::rlim_t + 16);
    let mut fillers = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => fillers.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return fillers,
            Err(e) => panic!("filling the fd table: {e}"),
        }
        assert!(fillers.len() < 10_000, "the lowered limit does not bite");
    }
}

/// Turns until an `AcceptError`; returns the connections accepted before it.
fn accept_until_error(h: &mut Harness, listener: Token) -> Vec<Token> {
    let mut accepted = Vec::new();
    let mut error = None;
    h.until("accepts, then an AcceptError", |_, events| {
        for e in events {
            match e {
                Ev::Accept { listener: l, conn } if l == listener && error.is_none() => accepted.push(conn),
                Ev::AcceptError { listener: l, error: e } if l == listener && error.is_none() => error = Some(e),
                other => panic!("unexpected {other:?}"),
            }
        }
        error.is_some()
    });
    let error = error.unwrap();
    assert_eq!(error.raw_os_error(), Some(libc::EMFILE), "{error}");
    accepted
}

fn accept_emfile_pauses_listener(kind: BackendKind) {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let mut h = Harness::new(kind);
    let (server, addr) = h.listen("127.0.0.1:0");
    // The clients need fds too: connect them all first.
    let mut clients: Vec<TcpStream> = (0..3).map(|_| client(addr)).collect();

    let _restore = RestoreLimit(nofile_limit().rlim_cur);
    let mut fillers = fill_fd_table();
    // Room for exactly one accept.
    fillers.pop();

    let first = accept_until_error(&mut h, server);
    assert_eq!(first.len(), 1);

    // The pending clients are still there, but the listener must not be
    // reported ready again and again while no fd is free.
    h.assert_sleeps(Duration::from_millis(300), Duration::from_millis(50), 10, "the paused listener spins");

    // Closing a socket frees an fd and resumes accepting on its own.
    h.r.close(first[0]).unwrap();
    let second = accept_until_error(&mut h, server);
    assert_eq!(second.len(), 1, "the freed fd takes one more client");

    // Plenty of fds again; resume_accept takes the last client.
    drop(fillers);
    h.r.resume_accept(server).unwrap();
    let third = h.accept(1)[0];
    assert_eq!(h.r.len(), 3);

    // The connections accepted along the way work.
    for conn in [second[0], third] {
        let peer = h.r.peer_addr(conn).unwrap();
        let s = clients.iter_mut().find(|c| c.local_addr().unwrap() == peer).unwrap();
        send(s, b"hi");
        assert_eq!(h.read_exact(conn, 2), b"hi");
    }
}

/// A file in the temp dir, removed when dropped.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// The fd a sent file held is closed once it is sent: like a closed socket,
// that is room for the accept that failed with EMFILE, and the paused
// listener takes its pending client with no socket closing.
fn a_sent_file_frees_an_fd_for_accept(kind: BackendKind) {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    const LEN: usize = 4 << 20;
    let temp = TempFile(std::env::temp_dir().join(format!("muxnet-emfile-{}-{}", kind.name(), std::process::id())));
    File::create(&temp.0).unwrap().write_all(&pattern(5, LEN)).unwrap();
    let mut h = Harness::new(kind);
    let (server, addr) = h.listen("127.0.0.1:0");
    // A reader slower than the file: it stays queued until the peer reads.
    let reader = small_buffer_client(addr);
    let conn = h.accept(1)[0];
    h.r.send_file(conn, File::open(&temp.0).unwrap(), 0, None).unwrap();
    let _pending = client(addr);

    let _restore = RestoreLimit(nofile_limit().rlim_cur);
    let fillers = fill_fd_table();
    assert!(accept_until_error(&mut h, server).is_empty(), "[{}] no fd was free", h.name());

    let peer = Peer::spawn(move || read_n(&mut { reader }, LEN));
    let (mut sent, mut accepted) = (false, false);
    h.until("the file sent, then the pending client accepted", |_, events| {
        for e in events {
            match e {
                Ev::FileSent { conn: c, sent: n } if c == conn => sent = n == LEN as u64,
                Ev::Accept { listener, .. } if listener == server => accepted = true,
                // With no fd left, accept fails before it looks at the backlog.
                Ev::AcceptError { listener, error } if listener == server && accepted => {
                    assert_eq!(error.raw_os_error(), Some(libc::EMFILE), "{error}")
                }
                // The reader leaves once it has the file.
                Ev::End { conn: c, .. } if c == conn => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        sent && accepted
    });
    assert_same(&peer.join(), &pattern(5, LEN), "the file");
    drop(fillers);
}
