//! Shared by the test binaries: a harness that owns a reactor and its slab,
//! turns it until a condition holds (or panics at a deadline), and hands
//! back owned copies of the events; blocking std peers; test data.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use muxnet_core::{BackendKind, BindOptions, Config, Event, PipeOptions, Reactor, ReadSpace, Token};
use socket2::{Domain, Socket, Type};

/// How long any wait in a test may take before it counts as a failure.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// Read/write timeout of blocking std peers.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The turn timeout inside [`Harness::until`]: short, so deadlines are checked.
const TICK: Duration = Duration::from_millis(10);

/// Generates one `#[test]` per backend for each scenario function
/// `fn name(kind: BackendKind)`, named `mio::name`, `poll::name`, `select::name`
/// (`scenarios.rs` checks that these are all of [`BackendKind::ALL`]).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod mio {
            $(#[test] fn $name() { super::$name(muxnet_core::BackendKind::Mio) })*
        }
        mod poll {
            $(#[test] fn $name() { super::$name(muxnet_core::BackendKind::Poll) })*
        }
        mod select {
            $(#[test] fn $name() { super::$name(muxnet_core::BackendKind::Select) })*
        }
    };
}

/// An [`Event`] with its bytes copied out of the slab.
#[derive(Debug)]
pub enum Ev {
    Accept { listener: Token, conn: Token },
    AcceptError { listener: Token, error: io::Error },
    Connect { conn: Token },
    Data { conn: Token, data: Vec<u8> },
    End { conn: Token, hung_up: bool },
    Drain { conn: Token },
    FileSent { conn: Token, sent: u64 },
    Close { conn: Token, error: Option<io::Error>, sending: bool },
    Message { socket: Token, data: Vec<u8>, from: SocketAddr },
    ReceiveError { socket: Token, error: io::Error },
}

impl Ev {
    /// The socket the event is about.
    pub fn token(&self) -> Token {
        match *self {
            Ev::Accept { conn, .. } => conn,
            Ev::AcceptError { listener, .. } => listener,
            Ev::Connect { conn } | Ev::Data { conn, .. } | Ev::End { conn, .. } | Ev::Drain { conn } | Ev::Close { conn, .. } => conn,
            Ev::FileSent { conn, .. } => conn,
            Ev::Message { socket, .. } | Ev::ReceiveError { socket, .. } => socket,
        }
    }
}

pub struct Harness {
    pub r: Reactor,
    pub kind: BackendKind,
    slab: Vec<u8>,
    raw: Vec<Event>,
}

impl Harness {
    pub fn new(kind: BackendKind) -> Harness {
        Harness::with_config(kind, Config::default())
    }

    pub fn with_config(kind: BackendKind, config: Config) -> Harness {
        let r = Reactor::new(kind, config).unwrap_or_else(|e| panic!("[{}] Reactor::new: {e}", kind.name()));
        Harness { r, kind, slab: vec![0; 1 << 20], raw: Vec::new() }
    }

    /// A harness whose turns read into a slab of `len` bytes.
    pub fn with_slab(kind: BackendKind, len: usize) -> Harness {
        Harness::with_config_and_slab(kind, Config::default(), len)
    }

    pub fn with_config_and_slab(kind: BackendKind, config: Config, len: usize) -> Harness {
        Harness { slab: vec![0; len], ..Harness::with_config(kind, config) }
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// One turn; the slab is reused from the start each time.
    pub fn turn(&mut self, timeout: Duration) -> Vec<Ev> {
        self.raw.clear();
        let mut space = ReadSpace::new(&mut self.slab, 0);
        self.r.turn(&mut space, &mut self.raw, Some(timeout)).unwrap_or_else(|e| panic!("[{}] turn: {e}", self.kind.name()));
        let end = space.pos();
        let slab = &self.slab;
        self.raw
            .drain(..)
            .map(|e| match e {
                Event::Accept { listener, conn } => Ev::Accept { listener, conn },
                Event::AcceptError { listener, error } => Ev::AcceptError { listener, error },
                Event::Connect { conn } => Ev::Connect { conn },
                Event::Data { conn, offset, len } => {
                    assert!(len > 0 && offset + len <= end, "Data outside the filled slab: {offset}+{len} > {end}");
                    Ev::Data { conn, data: slab[offset..offset + len].to_vec() }
                }
                Event::End { conn, hung_up } => Ev::End { conn, hung_up },
                Event::Drain { conn } => Ev::Drain { conn },
                Event::FileSent { conn, sent } => Ev::FileSent { conn, sent },
                Event::Close { conn, error, sending } => Ev::Close { conn, error, sending },
                Event::Message { socket, offset, len, from } => {
                    assert!(offset + len <= end, "Message outside the filled slab: {offset}+{len} > {end}");
                    Ev::Message { socket, data: slab[offset..offset + len].to_vec(), from }
                }
                Event::ReceiveError { socket, error } => Ev::ReceiveError { socket, error },
            })
            .collect()
    }

    /// Turns until `step` (given each turn's events) returns true; panics
    /// naming `what` if that takes longer than [`DEADLINE`].
    pub fn until(&mut self, what: &str, step: impl FnMut(&mut Reactor, Vec<Ev>) -> bool) {
        self.until_within(DEADLINE, what, step)
    }

    pub fn until_within(&mut self, limit: Duration, what: &str, mut step: impl FnMut(&mut Reactor, Vec<Ev>) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            let events = self.turn(TICK);
            if step(&mut self.r, events) {
                return;
            }
            if Instant::now() > deadline {
                panic!("[{}] timed out after {limit:?} waiting for: {what}", self.kind.name());
            }
        }
    }

    /// Turns for `span`, `timeout` each, expecting no event; more than
    /// `most` turns means the reactor does not sleep (it spins).
    pub fn assert_sleeps(&mut self, span: Duration, timeout: Duration, most: u32, what: &str) {
        let start = Instant::now();
        let mut turns = 0;
        while start.elapsed() < span {
            let events = self.turn(timeout);
            assert!(events.is_empty(), "{what}: {events:?}");
            turns += 1;
        }
        assert!(turns <= most, "{turns} turns in {span:?} with a {timeout:?} timeout: {what}");
    }

    /// Every event of the turns in the next `span`.
    pub fn collect_for(&mut self, span: Duration) -> Vec<Ev> {
        let end = Instant::now() + span;
        let mut all = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            all.extend(self.turn(left.min(TICK)));
        }
        all
    }

    pub fn listen(&mut self, addr: &str) -> (Token, SocketAddr) {
        self.listen_with(&BindOptions::new(addr.parse().unwrap()))
    }

    pub fn listen_with(&mut self, opts: &BindOptions) -> (Token, SocketAddr) {
        let token = self.r.listen(opts, true).unwrap_or_else(|e| panic!("[{}] listen {}: {e}", self.name(), opts.addr));
        let addr = self.r.local_addr(token).unwrap();
        (token, addr)
    }

    /// Turns until `n` connections are accepted; returns them in order.
    pub fn accept(&mut self, n: usize) -> Vec<Token> {
        let mut conns = Vec::new();
        self.until(&format!("{n} accepts"), |_, events| {
            for e in events {
                match e {
                    Ev::Accept { conn, .. } => conns.push(conn),
                    other => panic!("unexpected event while accepting: {other:?}"),
                }
            }
            conns.len() >= n
        });
        assert_eq!(conns.len(), n, "more accepts than connections");
        conns
    }

    /// Turns until `conn` reports the peer's end; returns the bytes before
    /// it. Any other event fails the test.
    pub fn read_to_end(&mut self, conn: Token, what: &str) -> Vec<u8> {
        let (mut got, mut ended) = (Vec::new(), false);
        self.until(what, |_, events| {
            for e in events {
                match e {
                    Ev::Data { conn: c, data } if c == conn && !ended => got.extend(data),
                    Ev::End { conn: c, .. } if c == conn => ended = true,
                    other => panic!("unexpected {other:?} while reading {conn:?} to its end ({got:?} so far)"),
                }
            }
            ended
        });
        got
    }

    /// Turns until `conn` has received `n` bytes; panics on any other
    /// event for it.
    pub fn read_exact(&mut self, conn: Token, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        self.until(&format!("{n} bytes on {conn:?}"), |_, events| {
            for e in events {
                match e {
                    Ev::Data { conn: c, data } if c == conn => got.extend(data),
                    other => panic!("unexpected event while reading {conn:?}: {other:?}"),
                }
            }
            got.len() >= n
        });
        assert_eq!(got.len(), n, "more bytes than expected on {conn:?}");
        got
    }
}

/// A blocking std client with timeouts.
/// A harness listening on loopback, one peer connected and accepted.
pub fn accepted(kind: BackendKind) -> (Harness, TcpStream, Token) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let peer = client(addr);
    let conn = h.accept(1)[0];
    (h, peer, conn)
}

pub fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    set_timeouts(&s);
    s
}

pub fn set_timeouts(s: &TcpStream) {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
}

pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).unwrap_or_else(|e| panic!("peer reading {n} bytes: {e}"));
    buf
}

/// Asserts the peer sees end-of-stream next.
pub fn expect_eof(s: &mut TcpStream) {
    let mut byte = [0u8; 1];
    match s.read(&mut byte) {
        Ok(0) => {}
        Ok(_) => panic!("peer expected EOF, got data"),
        Err(e) => panic!("peer expected EOF, got {e}"),
    }
}

pub fn send(s: &mut TcpStream, data: &[u8]) {
    s.write_all(data).unwrap_or_else(|e| panic!("peer writing {} bytes: {e}", data.len()));
}

/// Deterministic bytes that differ per `seed` and do not repeat with any
/// power-of-two period, so a lost, duplicated or reordered chunk shows.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern_byte(seed, i)).collect()
}

pub fn pattern_byte(seed: u64, i: u64) -> u8 {
    let x = (i ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0x2545_F491_4F6C_DD1D);
    (x >> 29) as u8 ^ (i % 251) as u8
}

/// Where this process's open fds are listed: `/proc` on Linux, `/dev/fd`
/// on macOS and the BSDs.
fn fd_dir() -> &'static str {
    if std::path::Path::new("/proc/self/fd").exists() {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    }
}

/// Open fds (without the one listing them).
pub fn open_fds() -> usize {
    std::fs::read_dir(fd_dir()).unwrap().count() - 1
}

/// A peer on its own thread; a panic there is re-raised in the test.
pub struct Peer<T> {
    handle: Option<std::thread::JoinHandle<T>>,
    result: Option<T>,
}

impl<T: Send + 'static> Peer<T> {
    pub fn spawn(f: impl FnOnce() -> T + Send + 'static) -> Peer<T> {
        Peer { handle: Some(std::thread::spawn(f)), result: None }
    }

    /// Whether the thread has finished (re-raising its panic).
    pub fn done(&mut self) -> bool {
        if self.handle.as_ref().is_some_and(|h| h.is_finished()) {
            self.finish();
        }
        self.handle.is_none()
    }

    fn finish(&mut self) {
        match self.handle.take().unwrap().join() {
            Ok(v) => self.result = Some(v),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Waits for the thread (its own I/O timeouts bound this).
    pub fn join(mut self) -> T {
        if self.handle.is_some() {
            self.finish();
        }
        self.result.take().unwrap()
    }
}

/// The highest open fd.
pub fn highest_fd() -> i32 {
    std::fs::read_dir(fd_dir()).unwrap().filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).max().unwrap()
}

/// `RLIMIT_NOFILE` as it is now.
pub fn nofile_limit() -> libc::rlimit {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit to the pointer it is given.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(r, 0, "getrlimit: {}", io::Error::last_os_error());
    lim
}

/// Sets the soft `RLIMIT_NOFILE` (the hard limit is kept).
pub fn set_nofile_soft(soft: libc::rlim_t) {
    try_set_nofile_soft(soft).unwrap_or_else(|e| panic!("setrlimit({soft}): {e}"));
}

/// Sets the soft `RLIMIT_NOFILE` if the system lets it (macOS refuses
/// values past `kern.maxfilesperproc`, an unlimited hard limit's too).
pub fn try_set_nofile_soft(soft: libc::rlim_t) -> io::Result<()> {
    let lim = libc::rlimit { rlim_cur: soft, rlim_max: nofile_limit().rlim_max };
    // SAFETY: setrlimit only reads the rlimit it is given.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A std client whose socket takes little before the kernel pushes back,
/// so writes toward it queue in the reactor.
pub fn small_buffer_client(addr: SocketAddr) -> TcpStream {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(32 << 10).unwrap();
    s.connect(&addr.into()).unwrap();
    let s: TcpStream = s.into();
    set_timeouts(&s);
    s
}

/// The accepted connection whose peer is `peer`.
pub fn conn_for(h: &mut Harness, conns: &[Token], peer: &TcpStream) -> Token {
    let want = peer.local_addr().unwrap();
    *conns.iter().find(|&&c| h.r.peer_addr(c).unwrap() == want).expect("no accepted connection for this peer")
}

/// Asserts two byte strings are equal, naming the first difference
/// instead of dumping megabytes.
pub fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        panic!("{what}: got {} bytes, want {}; first difference at byte {at}", got.len(), want.len());
    }
}

/// Reads `n` bytes on `conn` and writes them back.
pub fn echo(h: &mut Harness, conn: Token, n: usize) -> Vec<u8> {
    let data = h.read_exact(conn, n);
    h.r.write(conn, &data).unwrap();
    data
}

/// Turns until `conn` closes; returns the events seen for it, the last
/// being the `Close`. Other sockets must stay quiet.
pub fn until_closed(h: &mut Harness, conn: Token) -> Vec<Ev> {
    let mut seen = Vec::new();
    h.until(&format!("Close of {conn:?}"), |_, events| {
        for e in events {
            assert_eq!(e.token(), conn, "unexpected event for another socket: {e:?}");
            seen.push(e);
        }
        matches!(seen.last(), Some(Ev::Close { .. }))
    });
    seen
}

/// A std client `a_peer` connected to the reactor (`a`), and the reactor
/// connected (`b`) to a std server whose accepted side is `b_peer`; `a` and
/// `b` piped.
pub fn piped_pair(h: &mut Harness) -> (TcpStream, Token, TcpStream, Token) {
    joined_pair(h, |r, a, b| r.pipe(a, b))
}

/// [`piped_pair`], joined with `options`.
pub fn piped_pair_with(h: &mut Harness, options: PipeOptions) -> (TcpStream, Token, TcpStream, Token) {
    joined_pair(h, |r, a, b| r.pipe_with(a, b, options))
}

fn joined_pair(h: &mut Harness, join: impl FnOnce(&mut Reactor, Token, Token) -> io::Result<()>) -> (TcpStream, Token, TcpStream, Token) {
    let (_, addr) = h.listen("127.0.0.1:0");
    let a_peer = client(addr);
    let a = h.accept(1)[0];
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = h.r.connect(upstream.local_addr().unwrap(), None).unwrap();
    join(&mut h.r, a, b).unwrap();
    let (b_peer, _) = upstream.accept().unwrap();
    set_timeouts(&b_peer);
    (a_peer, a, b_peer, b)
}
