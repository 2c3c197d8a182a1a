//! Files sent by the reactor: in order with the writes around them, at the
//! pace of a slow peer, short files reported short, a closed connection
//! taking its files with it; pipes, which the kernel's `sendfile` refuses,
//! sent by the read/write loop until their end or a length.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, Config};

backend_tests!(
    interleaved_with_writes,
    file_shorter_than_asked,
    slow_peer,
    fast_peer_many_turns,
    write_after_end_refused,
    pipe_until_eof,
    pipe_length_leaves_the_rest,
    pipe_offset_refused,
    empty_pipe_waited_for
);

/// A file of `len` pattern bytes in the temp dir, removed when dropped.
struct TempFile {
    path: std::path::PathBuf,
    data: Vec<u8>,
}

impl TempFile {
    fn new(tag: &str, kind: BackendKind, len: usize) -> TempFile {
        let path = std::env::temp_dir().join(format!("muxnet-send-file-{tag}-{}-{}", kind.name(), std::process::id()));
        let data = pattern(len as u64, len);
        File::create(&path).unwrap().write_all(&data).unwrap();
        TempFile { path, data }
    }

    fn open(&self) -> File {
        File::open(&self.path).unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The peer reads to EOF on a thread; the harness turns until it has, and
/// returns the bytes and the events seen.
fn drain_to_peer(h: &mut Harness, peer: std::net::TcpStream) -> (Vec<u8>, Vec<Ev>) {
    let mut reader = Peer::spawn(move || {
        let mut peer = peer;
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        got
    });
    let mut seen = Vec::new();
    h.until("the peer reading to EOF", |_, events| {
        seen.extend(events);
        reader.done()
    });
    (reader.join(), seen)
}

fn files_sent(events: &[Ev]) -> Vec<u64> {
    events.iter().filter_map(|e| if let Ev::FileSent { sent, .. } = e { Some(*sent) } else { None }).collect()
}

// Bytes written before a file go first, the file's range next, bytes
// written after it after; two files and three writes arrive in call order,
// even with the first write still queued against a peer that has not read.
fn interleaved_with_writes(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = small_buffer_client(addr);
    let conn = h.accept(1)[0];
    let f = TempFile::new("interleave", kind, 3 << 20);
    let (a, b, c) = (pattern(1, 12 << 20), pattern(2, 777), pattern(3, 5000));
    assert!(h.r.write(conn, &a).unwrap() > 0, "the first write queues (the peer has not read)");
    h.r.send_file(conn, f.open(), 100, Some(2 << 20)).unwrap();
    h.r.write(conn, &b).unwrap();
    h.r.send_file(conn, f.open(), 0, Some(1000)).unwrap();
    let queued = h.r.write(conn, &c).unwrap();
    assert!(queued >= (2 << 20) + 1000 + 777 + 5000, "queued {queued} counts the files and the writes behind them");
    h.r.shutdown(conn).unwrap();
    let (got, events) = drain_to_peer(&mut h, peer);
    let want = [&a[..], &f.data[100..100 + (2 << 20)], &b, &f.data[..1000], &c].concat();
    assert_same(&got, &want, "write, file, write, file, write");
    assert_eq!(files_sent(&events), vec![2 << 20, 1000]);
}

// A file that ends before `len` bytes is done at its end: the count says
// how much went, and what was written after it follows at once.
fn file_shorter_than_asked(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = client(addr);
    let conn = h.accept(1)[0];
    let f = TempFile::new("short", kind, 10_000);
    h.r.send_file(conn, f.open(), 9000, Some(1 << 20)).unwrap();
    h.r.write(conn, b"after").unwrap();
    h.r.send_file(conn, f.open(), 20_000, Some(10)).unwrap();
    h.r.shutdown(conn).unwrap();
    let (got, events) = drain_to_peer(&mut h, peer);
    assert_same(&got, &[&f.data[9000..], b"after"].concat(), "the file's last 1000 bytes, then the write");
    assert_eq!(files_sent(&events), vec![1000, 0]);
}

// A peer that reads slowly: the file goes at its pace (the reactor waits
// for writable, never holding more than the kernel's buffer), and all of
// it arrives.
fn slow_peer(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = small_buffer_client(addr);
    let conn = h.accept(1)[0];
    let f = TempFile::new("slow", kind, 8 << 20);
    h.r.send_file(conn, f.open(), 0, Some(8 << 20)).unwrap();
    h.r.shutdown(conn).unwrap();
    // Turns with the peer not reading: the file stays mostly unsent.
    for _ in 0..5 {
        h.turn(Duration::from_millis(5));
    }
    assert!(h.r.queued(conn).unwrap() > 4 << 20, "a peer that does not read holds the file back");
    let mut reader = Peer::spawn(move || {
        let mut peer = peer;
        let mut got = Vec::new();
        let mut buf = [0u8; 16 << 10];
        loop {
            match peer.read(&mut buf).unwrap() {
                0 => return got,
                n => got.extend_from_slice(&buf[..n]),
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    let mut events = Vec::new();
    h.until_within(Duration::from_secs(30), "the slow peer reading to EOF", |_, e| {
        events.extend(e);
        reader.done()
    });
    assert_same(&reader.join(), &f.data, "the whole file");
    assert_eq!(files_sent(&events), vec![8 << 20]);
}

// A peer that keeps up: a turn sends its budget of the file and the next
// turns go on by themselves (no readiness edge comes while the socket stays
// writable), until all of it is there.
fn fast_peer_many_turns(kind: BackendKind) {
    let mut h = Harness::with_config(kind, Config { send_file_budget: 16 << 10, ..Config::default() });
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = client(addr);
    let conn = h.accept(1)[0];
    let f = TempFile::new("fast", kind, 8 << 20);
    h.r.send_file(conn, f.open(), 0, Some(8 << 20)).unwrap();
    h.r.write(conn, b"end").unwrap();
    h.r.shutdown(conn).unwrap();
    let (got, events) = drain_to_peer(&mut h, peer);
    assert_same(&got, &[&f.data[..], b"end"].concat(), "the whole file, then the write");
    assert_eq!(files_sent(&events), vec![8 << 20]);
}

// After `shutdown`, a file is refused like a write.
fn write_after_end_refused(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let _peer = client(addr);
    let conn = h.accept(1)[0];
    let f = TempFile::new("ended", kind, 10);
    h.r.shutdown(conn).unwrap();
    let err = h.r.send_file(conn, f.open(), 0, Some(10)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
}

/// A pipe whose writer thread feeds `data` in pieces with pauses (so the
/// reactor finds it empty at times) and then closes it; the read end is
/// returned as a `File`, as an owner would hand it over.
fn feeding_pipe(data: Vec<u8>) -> (File, Peer<()>) {
    let (reader, mut writer) = std::io::pipe().unwrap();
    let feeder = Peer::spawn(move || {
        for piece in data.chunks(100_000) {
            writer.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    (File::from(std::os::fd::OwnedFd::from(reader)), feeder)
}

// A pipe has no size and no offsets, and `sendfile(2)` cannot read one
// (EINVAL): the read/write loop sends it until its writer closes it, in its
// place between the writes and the regular file around it, a budget's
// worth a turn, and waiting (not blocking the turn) while it is empty.
fn pipe_until_eof(kind: BackendKind) {
    let mut h = Harness::with_config(kind, Config { send_file_budget: 16 << 10, ..Config::default() });
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = small_buffer_client(addr);
    let conn = h.accept(1)[0];
    let f = TempFile::new("after-pipe", kind, 300_000);
    let piped = pattern(4, 3 << 20);
    let (pipe, feeder) = feeding_pipe(piped.clone());
    let (a, b, c) = (pattern(1, 4 << 20), pattern(2, 777), pattern(3, 5000));
    h.r.write(conn, &a).unwrap();
    h.r.send_file(conn, pipe, 0, None).unwrap();
    h.r.write(conn, &b).unwrap();
    h.r.send_file(conn, f.open(), 0, None).unwrap();
    h.r.write(conn, &c).unwrap();
    h.r.shutdown(conn).unwrap();
    let (got, events) = drain_to_peer(&mut h, peer);
    feeder.join();
    let want = [&a[..], &piped, &b, &f.data, &c].concat();
    assert_same(&got, &want, "write, pipe, write, file, write");
    assert_eq!(files_sent(&events), vec![piped.len() as u64, f.data.len() as u64]);
}

// A length bounds a pipe too: exactly that many bytes go, and the rest is
// still in the pipe for its owner (none read ahead and lost).
fn pipe_length_leaves_the_rest(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = client(addr);
    let conn = h.accept(1)[0];
    let piped = pattern(5, 500_000);
    let (pipe, feeder) = feeding_pipe(piped.clone());
    let mut own = pipe.try_clone().unwrap();
    h.r.send_file(conn, pipe, 0, Some(200_001)).unwrap();
    h.r.write(conn, b"after").unwrap();
    h.r.shutdown(conn).unwrap();
    let (got, events) = drain_to_peer(&mut h, peer);
    assert_same(&got, &[&piped[..200_001], b"after"].concat(), "the pipe's first bytes, then the write");
    assert_eq!(files_sent(&events), vec![200_001]);
    let mut rest = Vec::new();
    own.read_to_end(&mut rest).unwrap();
    feeder.join();
    assert_same(&rest, &piped[200_001..], "what the pipe still held");
}

// A pipe has no offsets: asking for one is ESPIPE, and nothing is queued.
fn pipe_offset_refused(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let _peer = client(addr);
    let conn = h.accept(1)[0];
    let (pipe, feeder) = feeding_pipe(Vec::new());
    let err = h.r.send_file(conn, pipe, 10, None).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ESPIPE), "{err}");
    assert_eq!(h.r.queued(conn).unwrap(), 0);
    feeder.join();
}

// A pipe with nothing in it yet is waited for, not asked again every turn:
// after the turn that found it empty no work is left over (the owner may
// sleep), and its writer's bytes wake the reactor and go out.
fn empty_pipe_waited_for(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = client(addr);
    let conn = h.accept(1)[0];
    let (reader, mut writer) = std::io::pipe().unwrap();
    h.r.send_file(conn, File::from(std::os::fd::OwnedFd::from(reader)), 0, None).unwrap();
    h.r.write(conn, b"after").unwrap();
    h.r.shutdown(conn).unwrap();
    for _ in 0..3 {
        let events = h.turn(Duration::from_millis(5));
        assert!(events.is_empty(), "nothing to report while the pipe is empty: {events:?}");
        assert!(!h.r.has_pending(), "an empty pipe leaves no work for the next turn");
    }
    let piped = pattern(6, 100_000);
    let data = piped.clone();
    // More than a pipe holds: written beside the turns.
    let feeder = Peer::spawn(move || writer.write_all(&data).unwrap());
    let (got, events) = drain_to_peer(&mut h, peer);
    feeder.join();
    assert_same(&got, &[&piped[..], b"after"].concat(), "the pipe's bytes, then the write");
    assert_eq!(files_sent(&events), vec![piped.len() as u64]);
}

/// Linux's `/proc` files: regular, of size 0, and refused by `sendfile(2)`
/// (EINVAL), yet `pread(2)` reads them.
#[cfg(target_os = "linux")]
mod proc_files {
    use super::*;

    backend_tests!(proc_file_sent_by_the_loop);

    // The read/write loop takes such a file over, at offsets like any
    // regular file (the loop Windows uses for every file), to its end when
    // no length is given (its size, 0, says nothing), in order with writes.
    fn proc_file_sent_by_the_loop(kind: BackendKind) {
        let path = "/proc/self/cmdline";
        let want_file = std::fs::read(path).unwrap();
        assert!(want_file.len() > 8, "a command line to send");
        let mut h = Harness::new(kind);
        let (_, addr) = h.listen("127.0.0.1:0");
        let peer = client(addr);
        let conn = h.accept(1)[0];
        h.r.write(conn, b"a").unwrap();
        h.r.send_file(conn, File::open(path).unwrap(), 0, None).unwrap();
        h.r.write(conn, b"b").unwrap();
        h.r.send_file(conn, File::open(path).unwrap(), 3, Some(5)).unwrap();
        h.r.shutdown(conn).unwrap();
        let (got, events) = drain_to_peer(&mut h, peer);
        assert_same(&got, &[b"a", &want_file[..], b"b", &want_file[3..8]].concat(), "write, the whole file, write, a range of it");
        assert_eq!(files_sent(&events), vec![want_file.len() as u64, 5]);
    }
}
