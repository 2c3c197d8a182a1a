//! A seeded, randomized model test of the reactor. One reactor owns both
//! ends of many connections (TCP and Unix-domain, accepted and connected,
//! some joined in threes by `pipe`) and a random interleaving of operations
//! runs on them: writes of 1 B .. 256 KiB, corked writes, files and pipes
//! sent, pause/resume, half-closes, closes with bytes queued, resets,
//! listeners closed while clients dial them, closes and connects in one
//! batch (slots reused), relays cut by closing one piped side, and a burst
//! of up to a thousand pairs whose one side leaves at once. Half the seeds
//! run with small limits (budgets, queue cap, slab). A model
//! of what each side must receive checks every event: each byte arrives
//! once, in order, at the connection its sender wrote to (every stream has
//! its own byte pattern); `End` only after the peer's FIN, with every byte
//! the peer wrote when nothing was dropped; a close with an error only when
//! the peer closed or reset; no event for a token after the turn that
//! closed it. At the end every socket is closed and every fd released.
//!
//! `MUXNET_MODEL_SEED=7` (or `7,12`) replays seeds; `MUXNET_MODEL_SEEDS=n`
//! runs n seeds from `MUXNET_MODEL_FIRST` (default 1);
//! `MUXNET_MODEL_OPS` sets the operations per seed, `MUXNET_MODEL_TRACE`
//! the trace lines printed. A failure names its
//! seed and backend and prints the last operations and events. Its own
//! test binary: it counts the process's fds.
#![cfg(unix)]

mod common;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::*;
use muxnet_core::{BackendKind, BindOptions, Config, Token};

static SERIAL: Mutex<()> = Mutex::new(());

backend_tests!(model);

/// Seeds a CI run checks per backend, and operations per seed.
const SEEDS: u64 = 4;
const OPS: usize = 300;
/// Connections open at once outside a burst.
const MAX_PAIRS: usize = 40;
/// A burst's pairs: below `FD_SETSIZE` for select, thousands of sockets
/// for the others (as the fd limit allows; see `model`).
fn burst_cap(kind: BackendKind) -> usize {
    let room = (nofile_limit().rlim_cur as usize).saturating_sub(400) / 2;
    room.min(if kind == BackendKind::Select { 300 } else { 1000 })
}
/// How long the end of a run may take to close everything.
const WIND_DOWN: Duration = Duration::from_secs(30);

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name}={value}: not a number")))
}

fn model(kind: BackendKind) {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    // Room for a burst's thousands of sockets where the soft limit is low
    // (macOS: 256).
    let limit = nofile_limit();
    if limit.rlim_cur < 4096 {
        set_nofile_soft(limit.rlim_max.min(4096));
    }
    let seeds: Vec<u64> = match std::env::var("MUXNET_MODEL_SEED") {
        Ok(list) => list.split(',').map(|s| s.trim().parse().unwrap_or_else(|_| panic!("MUXNET_MODEL_SEED={list}"))).collect(),
        Err(_) => {
            let first = env_u64("MUXNET_MODEL_FIRST").unwrap_or(1);
            (first..first + env_u64("MUXNET_MODEL_SEEDS").unwrap_or(SEEDS)).collect()
        }
    };
    let ops = env_u64("MUXNET_MODEL_OPS").map_or(OPS, |n| n as usize);
    for seed in seeds {
        TRACE.with(|t| t.borrow_mut().clear());
        if let Err(panic) = std::panic::catch_unwind(|| run(kind, seed, ops)) {
            TRACE.with(|t| {
                eprintln!("--- the last operations and events of seed {seed} on {}:", kind.name());
                for line in t.borrow().iter() {
                    eprintln!("  {line}");
                }
            });
            eprintln!("FAILED: MUXNET_MODEL_SEED={seed} MUXNET_MODEL_OPS={ops} ({} backend)", kind.name());
            std::panic::resume_unwind(panic);
        }
    }
}

thread_local! {
    /// How many trace lines a failure prints (`MUXNET_MODEL_TRACE`).
    static TRACE_LINES: usize = env_u64("MUXNET_MODEL_TRACE").map_or(300, |n| n as usize);
    /// The last operations and events, printed when a seed fails.
    static TRACE: RefCell<VecDeque<String>> = const { RefCell::new(VecDeque::new()) };
}

fn trace(line: String) {
    TRACE.with(|t| {
        let mut t = t.borrow_mut();
        if t.len() == TRACE_LINES.with(|n| *n) {
            t.pop_front();
        }
        t.push_back(line);
    });
}

/// xorshift64*: small, seeded, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())])
    }

    /// A write's size, 1 B .. 256 KiB, mostly small.
    fn size(&mut self) -> usize {
        let max = match self.below(100) {
            0..=54 => 512,
            55..=84 => 16 << 10,
            85..=94 => 64 << 10,
            _ => 256 << 10,
        };
        1 + self.below(max)
    }
}

/// How an endpoint stopped being open.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Gone {
    No,
    /// The owner closed it; `lost`: bytes or files were still queued.
    Closed {
        lost: bool,
    },
    /// The owner reset it (RST on TCP; a plain close on a Unix stream).
    Reset {
        lost: bool,
    },
    /// The reactor closed it (a `Close` event).
    Reported {
        error: bool,
    },
}

/// Where one connection's input goes: to the owner, or through a pipe.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// The owner reads and writes it.
    Owned,
    /// Joined by `pipe` in turn `at` to side `partner`: the owner hears no
    /// `Data` for it after that turn, and never writes or closes it.
    Piped { partner: usize, at: u64 },
}

/// Whose stream a stretch of a side's input is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Src {
    Side(usize),
    /// The side that accepts this pair's connector (not known yet when
    /// the stretch is planned).
    AcceptorOf(usize),
}

/// A stretch of a side's input: `src`'s stream from `from`, `len` bytes
/// (`None`: the last stretch, as long as `src` writes).
#[derive(Clone, Copy, Debug)]
struct Seg {
    src: Src,
    from: u64,
    len: Option<u64>,
}

/// One end of a connection, as the model sees it.
#[derive(Debug)]
struct Side {
    token: Token,
    /// The pair whose end this is: an accepted side learns it from the
    /// header its connector sends first.
    pair: Option<usize>,
    listener: usize,
    connector: bool,
    unix: bool,
    /// Bytes of this side's own stream the reactor took (header included).
    written: u64,
    /// Bytes received from the peer's stream (as the peer counts them).
    received: u64,
    header: Vec<u8>,
    connected: bool,
    ended: bool,
    shut: bool,
    /// Paused since the turn with this number.
    paused: Option<u64>,
    /// Lengths of the files queued by `send_file`, in order.
    files: VecDeque<u64>,
    role: Role,
    gone: Gone,
    /// What this side receives, when it is not simply its peer's stream:
    /// the far end of a relay receives through the two piped sides.
    inbound: Vec<Seg>,
    /// The piped sides its input passes through, if any.
    through: Option<[usize; 2]>,
    /// A piped side's partner saw `End`: the pipe passed the FIN on.
    relay_fin: bool,
    /// Piped once, its partner since closed by the owner: the owner reads
    /// it again, and may end or close it, but writes it no more.
    orphan: bool,
}

impl Side {
    fn new(token: Token, pair: Option<usize>, listener: usize, connector: bool, unix: bool) -> Side {
        Side {
            token,
            pair,
            listener,
            connector,
            unix,
            written: 0,
            received: 0,
            header: Vec::new(),
            connected: !connector,
            ended: false,
            shut: false,
            paused: None,
            files: VecDeque::new(),
            role: Role::Owned,
            gone: Gone::No,
            inbound: Vec::new(),
            through: None,
            relay_fin: false,
            orphan: false,
        }
    }

    /// Whether this side has sent (or will send, after its queue) a FIN.
    fn sent_fin(&self) -> bool {
        match self.gone {
            Gone::No => self.shut || self.relay_fin,
            Gone::Closed { .. } | Gone::Reported { .. } => true,
            // A Unix stream has no RST; a TCP reset sends a FIN only if
            // the side had ended first.
            Gone::Reset { .. } => self.shut || self.relay_fin || self.unix,
        }
    }

    /// Closed by the owner with bytes or files still queued.
    fn lost(&self) -> bool {
        matches!(self.gone, Gone::Closed { lost: true } | Gone::Reset { lost: true })
    }

    fn open(&self) -> bool {
        self.gone == Gone::No
    }

    /// A stream id: distinct for every direction of every pair of a seed.
    fn stream_id(&self, seed: u64) -> u64 {
        (seed << 24) ^ (self.pair.expect("a stream needs its pair") as u64 * 2 + !self.connector as u64)
    }
}

#[derive(Clone, Copy, Debug)]
struct Relayed {
    /// The accepted side piped to this pair's connector.
    mid: usize,
    far: usize,
    from: u64,
    len: Option<u64>,
}

/// A connector and, once its header arrived, the side that accepted it.
#[derive(Debug)]
struct Pair {
    connector: usize,
    acceptor: Option<usize>,
    /// A relay's upstream pair: its acceptor receives this connector's
    /// header, then (through the pipe) side `far`'s stream from `from`
    /// (`len` bytes once the pipe is cut).
    relays: Option<Relayed>,
}

#[derive(Debug)]
struct ListenerModel {
    token: Token,
    unix: Option<String>,
    addr: Option<SocketAddr>,
    open: bool,
}

const HEADER: u64 = 8;

/// A pipe sent by `send_file`, and the bytes still to be written into it.
struct Feed {
    writer: std::io::PipeWriter,
    rest: Vec<u8>,
}

struct Model {
    h: Harness,
    seed: u64,
    rng: Rng,
    sides: Vec<Side>,
    pairs: Vec<Pair>,
    listeners: Vec<ListenerModel>,
    /// Open connections by token.
    live: HashMap<Token, usize>,
    /// Every connection ever, by token.
    ever: HashMap<Token, usize>,
    /// Every listener ever opened, by token.
    listener_tokens: HashMap<Token, usize>,
    /// Sockets the owner closed while handling the current batch: the
    /// batch's later events for them are stale (a handler would drop them).
    closed_in_batch: HashSet<Token>,
    /// Sockets whose `Close` is still ahead in the batch being handled: a
    /// handler earlier in the batch may meet their end already (a write
    /// to their peer fails).
    closing_in_batch: HashSet<Token>,
    /// Sockets whose `End` is still ahead in the batch: a pipe passed
    /// that end on already.
    ending_in_batch: HashSet<Token>,
    /// Turns run so far.
    turns: u64,
    files_made: u64,
    /// Pipes being sent, and what is still to be written into them.
    feeds: Vec<Feed>,
    winding_down: bool,
}

impl Model {
    fn new(kind: BackendKind, seed: u64) -> Model {
        let mut rng = Rng::new(seed);
        // Half the seeds run with small limits, so budgets run out, slabs
        // fill, pipes hold and files yield turn after turn.
        let small = rng.chance(50);
        let config = if small {
            Config {
                read_budget: 1 + rng.below(16 << 10),
                accept_budget: 1 + rng.below(8),
                write_queue_cap: (1 << 20) + rng.below(4 << 20),
                pipe_high_water: 1 + rng.below(64 << 10),
                send_file_budget: 1 + rng.below(64 << 10),
                splice: rng.chance(50),
                ..Config::default()
            }
        } else {
            Config::default()
        };
        let slab = if small { 4096 + rng.below(64 << 10) } else { 1 << 20 };
        trace(format!("{config:?}, slab {slab}"));
        Model {
            h: Harness::with_config_and_slab(kind, config, slab),
            seed,
            rng,
            sides: Vec::new(),
            pairs: Vec::new(),
            listeners: Vec::new(),
            live: HashMap::new(),
            ever: HashMap::new(),
            listener_tokens: HashMap::new(),
            closed_in_batch: HashSet::new(),
            closing_in_batch: HashSet::new(),
            ending_in_batch: HashSet::new(),
            turns: 0,
            files_made: 0,
            feeds: Vec::new(),
            winding_down: false,
        }
    }

    fn fail(&self, what: String) -> ! {
        panic!("[{} seed {}] {what}", self.h.name(), self.seed)
    }

    // ---- the peer's stream ----

    /// Byte `i` of side `s`'s stream: a connector's starts with its pair's
    /// number (the header), then the side's own pattern.
    fn stream_byte(&self, s: usize, i: u64) -> u8 {
        let side = &self.sides[s];
        let pair = side.pair.expect("only sides with a pair write");
        if side.connector && i < HEADER {
            (pair as u64).to_le_bytes()[i as usize]
        } else {
            pattern_byte(side.stream_id(self.seed), i)
        }
    }

    fn stream_bytes(&self, s: usize, from: u64, len: usize) -> Vec<u8> {
        (from..from + len as u64).map(|i| self.stream_byte(s, i)).collect()
    }

    /// The side at the other end of `s`'s bytes: its pair's other side, or
    /// for a relay, the far end's.
    fn peer(&self, s: usize) -> Option<usize> {
        let pair = &self.pairs[self.sides[s].pair?];
        if self.sides[s].connector {
            pair.acceptor
        } else {
            Some(pair.connector)
        }
    }

    fn resolve(&self, src: Src) -> Option<usize> {
        match src {
            Src::Side(side) => Some(side),
            Src::AcceptorOf(pair) => self.pairs[pair].acceptor,
        }
    }

    /// Byte `k` of what `s` receives, or why there is none.
    fn expected(&self, s: usize, k: u64) -> Result<u8, String> {
        let side = &self.sides[s];
        if side.inbound.is_empty() {
            let p = self.peer(s).ok_or("its peer was never accepted")?;
            if k >= self.sides[p].written {
                return Err(format!("its peer #{p} wrote only {} bytes", self.sides[p].written));
            }
            return Ok(self.stream_byte(p, k));
        }
        let mut base = 0;
        for seg in &side.inbound {
            let src = self.resolve(seg.src).ok_or("the relay's far end was never accepted")?;
            let has = seg.len.unwrap_or(self.sides[src].written.saturating_sub(seg.from));
            if k < base + has {
                return Ok(self.stream_byte(src, seg.from + k - base));
            }
            base += has;
        }
        Err(format!("the relay carried only {base} bytes to it"))
    }

    /// Every byte `s` must receive before `End`, if that is known: the
    /// sender of its last stretch ended and dropped nothing, and no pipe
    /// on the way broke.
    fn exact_total(&self, s: usize) -> Option<u64> {
        let side = &self.sides[s];
        let broke = |m: usize| matches!(self.sides[m].gone, Gone::Reported { error: true });
        if side.through.is_some_and(|mids| mids.into_iter().any(broke)) {
            return None;
        }
        let (src, from, base) = match side.inbound.split_last() {
            None => (self.peer(s)?, 0, 0),
            Some((last, before)) if last.len.is_none() => {
                (self.resolve(last.src)?, last.from, before.iter().map(|seg| seg.len.unwrap()).sum())
            }
            Some(_) => {
                // A cut pipe: what passed it, then the FIN of the piped side
                // the owner took back (if it dropped nothing).
                let peer = &self.sides[self.peer(s)?];
                let total = side.inbound.iter().map(|seg| seg.len.unwrap()).sum();
                return ((peer.shut || peer.relay_fin) && !peer.lost()).then_some(total);
            }
        };
        let src = &self.sides[src];
        (src.shut && !src.lost()).then(|| base + src.written - from)
    }

    /// Whether the peer of `s` has gone in a way that may break `s`'s
    /// connection (an unknown peer, not yet accepted, counts).
    fn peer_broke(&self, s: usize) -> bool {
        match self.peer(s) {
            None => true,
            Some(p) => self.sides[p].gone != Gone::No || self.closing_in_batch.contains(&self.sides[p].token),
        }
    }

    // ---- listeners and connections ----

    fn open_listener(&mut self, unix: bool) {
        let n = self.listeners.len();
        let (token, path, addr) = if unix {
            let path = std::env::temp_dir()
                .join(format!("muxnet-model-{}-{}-{}-{n}.sock", std::process::id(), self.h.name(), self.seed))
                .to_str()
                .unwrap()
                .to_string();
            let _ = std::fs::remove_file(&path);
            let token = self.h.r.listen_unix(&path, 1024).unwrap_or_else(|e| self.fail(format!("listen_unix: {e}")));
            (token, Some(path), None)
        } else {
            let mut opts = BindOptions::new("127.0.0.1:0".parse().unwrap());
            opts.backlog = 1024;
            let token = self.h.r.listen(&opts, true).unwrap_or_else(|e| self.fail(format!("listen: {e}")));
            (token, None, Some(self.h.r.local_addr(token).unwrap()))
        };
        trace(format!("listen #{n} {token:?} unix={unix}"));
        self.listeners.push(ListenerModel { token, unix: path, addr, open: true });
        self.listener_tokens.insert(token, n);
    }

    fn open_listeners(&self) -> Vec<usize> {
        (0..self.listeners.len()).filter(|&l| self.listeners[l].open).collect()
    }

    /// Closes listener `l` and opens another of its kind.
    fn close_listener(&mut self, l: usize) {
        let token = self.listeners[l].token;
        trace(format!("close listener #{l} {token:?}"));
        self.h.r.close(token).unwrap_or_else(|e| self.fail(format!("closing listener #{l}: {e}")));
        self.listeners[l].open = false;
        self.closed_in_batch.insert(token);
        let unix = self.listeners[l].unix.is_some();
        self.open_listener(unix);
    }

    /// A new pair: a connect to listener `l`, its header written at once
    /// (queued while the connect is under way).
    fn connect(&mut self, l: usize) -> Option<usize> {
        let listener = &self.listeners[l];
        let result = match (&listener.unix, listener.addr) {
            (Some(path), _) => self.h.r.connect_unix(path),
            (None, Some(addr)) => self.h.r.connect(addr, None),
            (None, None) => unreachable!(),
        };
        let token = match result {
            Ok(token) => token,
            // A Unix listener's full backlog refuses at once.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) => self.fail(format!("connect to listener #{l}: {e}")),
        };
        if self.live.contains_key(&token) {
            self.fail(format!("connect returned {token:?}, the token of an open connection"));
        }
        let pair = self.pairs.len();
        let s = self.sides.len();
        self.sides.push(Side::new(token, Some(pair), l, true, listener.unix.is_some()));
        self.pairs.push(Pair { connector: s, acceptor: None, relays: None });
        self.live.insert(token, s);
        self.ever.insert(token, s);
        trace(format!("connect #{s} {token:?} pair {pair} to listener #{l}"));
        self.write(s, HEADER as usize, false);
        Some(s)
    }

    // ---- what the owner does ----

    fn write(&mut self, s: usize, len: usize, corked: bool) {
        let data = self.stream_bytes(s, self.sides[s].written, len);
        let token = self.sides[s].token;
        let result = if corked { self.h.r.write_corked(token, &data) } else { self.h.r.write(token, &data) };
        trace(format!("write{} #{s} {token:?} {len} at {}: {result:?}", if corked { "_corked" } else { "" }, self.sides[s].written));
        match result {
            Ok(_) => self.sides[s].written += len as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
            Err(e) => self.broken(s, e, "write"),
        }
    }

    /// A call on `s` failed with `e`: only a peer that went may cause it;
    /// the owner then closes `s`, as node:net destroys a socket.
    fn broken(&mut self, s: usize, e: io::Error, what: &str) {
        if !self.peer_broke(s) {
            self.fail(format!("{what} on #{s} {:?} failed with {e} while its peer is open", self.sides[s].token));
        }
        self.close(s, false);
    }

    fn send_file(&mut self, s: usize) {
        let len = self.rng.size();
        let data = self.stream_bytes(s, self.sides[s].written, len);
        let whole = if self.rng.chance(50) { None } else { Some(len as u64) };
        let (file, what) = if self.rng.chance(30) { (self.feeding_pipe(data), "pipe") } else { (self.temp_file(&data), "file") };
        let token = self.sides[s].token;
        let result = self.h.r.send_file(token, file, 0, whole);
        trace(format!("send_file ({what}) #{s} {token:?} {len} at {}: {result:?}", self.sides[s].written));
        match result {
            Ok(()) => {
                self.sides[s].written += len as u64;
                self.sides[s].files.push_back(len as u64);
            }
            Err(e) => self.broken(s, e, "send_file"),
        }
    }

    /// A pipe's read end, to be sent like a file: the turns feed it `data`
    /// a piece at a time (so the reactor finds it empty at times) and then
    /// close it.
    fn feeding_pipe(&mut self, data: Vec<u8>) -> std::fs::File {
        use std::os::fd::AsRawFd;
        let (reader, writer) = std::io::pipe().unwrap();
        // SAFETY: fcntl on the pipe's own open fd, which it keeps.
        let r = unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        assert_eq!(r, 0, "fcntl: {}", io::Error::last_os_error());
        self.feeds.push(Feed { writer, rest: data });
        std::fs::File::from(std::os::fd::OwnedFd::from(reader))
    }

    /// Feeds each pipe a piece; closes those fed whole (or whose reader,
    /// its connection closed, is gone).
    fn feed(&mut self) {
        self.feeds.retain_mut(|feed| {
            let piece = feed.rest.len().min(16 << 10);
            match feed.writer.write(&feed.rest[..piece]) {
                Ok(n) => drop(feed.rest.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
            !feed.rest.is_empty()
        });
    }

    /// An open file holding `data`, already unlinked.
    fn temp_file(&mut self, data: &[u8]) -> std::fs::File {
        self.files_made += 1;
        let path = std::env::temp_dir().join(format!("muxnet-model-file-{}-{}-{}", std::process::id(), self.h.name(), self.files_made));
        std::fs::File::create(&path).unwrap().write_all(data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    fn shutdown(&mut self, s: usize) {
        let token = self.sides[s].token;
        let result = self.h.r.shutdown(token);
        trace(format!("shutdown #{s} {token:?}: {result:?}"));
        match result {
            Ok(()) => self.sides[s].shut = true,
            Err(e) => self.broken(s, e, "shutdown"),
        }
    }

    fn pause(&mut self, s: usize, on: bool) {
        let token = self.sides[s].token;
        let result = if on { self.h.r.pause(token) } else { self.h.r.resume(token) };
        trace(format!("{} #{s} {token:?}: {result:?}", if on { "pause" } else { "resume" }));
        match result {
            Ok(()) => {}
            // This turn closed it: its Close comes later in the batch.
            Err(e) if e.kind() != io::ErrorKind::NotFound => return,
            Err(e) => self.fail(format!("pause({on}) of open #{s} {token:?}: {e}")),
        }
        self.sides[s].paused = on.then_some(self.turns);
    }

    /// Closes `s` (resets it if `reset`), dropping what it had queued.
    fn close(&mut self, s: usize, reset: bool) {
        let token = self.sides[s].token;
        let queued = self.h.r.queued(token).unwrap_or(0);
        let result = if reset { self.h.r.reset(token) } else { self.h.r.close(token) };
        trace(format!("{} #{s} {token:?} with {queued} queued: {result:?}", if reset { "reset" } else { "close" }));
        if let Err(e) = result {
            // Only a socket this turn closed may be gone already: its Close
            // is later in this batch.
            if e.kind() == io::ErrorKind::NotFound {
                self.fail(format!("closing open #{s} {token:?}: {e}"));
            }
        }
        // A pipe being sent counts no bytes in `queued` (its length is not
        // known): a file not reported sent may have been cut short too.
        let lost = queued > 0 || !self.sides[s].files.is_empty();
        self.sides[s].gone = if reset { Gone::Reset { lost } } else { Gone::Closed { lost } };
        self.live.remove(&token);
        self.closed_in_batch.insert(token);
    }

    /// Open sides the owner may act on: owned, and past their header.
    fn actionable(&self) -> Vec<usize> {
        let mut open: Vec<usize> =
            self.live.values().copied().filter(|&s| self.sides[s].pair.is_some() && self.sides[s].role == Role::Owned).collect();
        // HashMap order is not seeded: sort so a seed picks the same sides.
        open.sort_unstable();
        open
    }

    fn writable(&self) -> Vec<usize> {
        self.actionable().into_iter().filter(|&s| !self.sides[s].shut && !self.sides[s].orphan).collect()
    }

    /// One random operation.
    fn random_op(&mut self) {
        let roll = self.rng.below(100);
        match roll {
            0..=11 if self.live.len() < 2 * MAX_PAIRS => {
                let l = self.rng.pick(&self.open_listeners()).unwrap();
                self.connect(l);
            }
            12..=41 => {
                if let Some(s) = self.rng.pick(&self.writable()) {
                    let len = self.rng.size();
                    self.write(s, len, false);
                }
            }
            42..=49 => {
                // A fan-out: corked writes to a few sides.
                for _ in 0..1 + self.rng.below(4) {
                    if let Some(s) = self.rng.pick(&self.writable()) {
                        let len = self.rng.size();
                        self.write(s, len, true);
                    }
                }
            }
            50..=56 => {
                // Piped sides too: the owner's pause holds a relay.
                let mut open: Vec<usize> = self.live.values().copied().filter(|&s| self.sides[s].pair.is_some()).collect();
                open.sort_unstable();
                if let Some(s) = self.rng.pick(&open) {
                    let on = self.sides[s].paused.is_none();
                    self.pause(s, on);
                }
            }
            57..=62 => {
                let open: Vec<usize> = self.actionable().into_iter().filter(|&s| !self.sides[s].shut).collect();
                if let Some(s) = self.rng.pick(&open) {
                    self.shutdown(s);
                }
            }
            63..=68 => {
                if let Some(s) = self.rng.pick(&self.actionable()) {
                    self.close(s, false);
                }
            }
            69..=73 => {
                if let Some(s) = self.rng.pick(&self.actionable()) {
                    self.close(s, true);
                }
            }
            74..=75 => {
                let l = self.rng.pick(&self.open_listeners()).unwrap();
                self.close_listener(l);
            }
            76..=81 => {
                // Close one and connect another in the same batch: the
                // next turn may give the new one the freed slot.
                if let Some(s) = self.rng.pick(&self.actionable()) {
                    let reset = self.rng.chance(50);
                    self.close(s, reset);
                }
                let l = self.rng.pick(&self.open_listeners()).unwrap();
                self.connect(l);
            }
            82..=87 => {
                if let Some(s) = self.rng.pick(&self.writable()) {
                    self.send_file(s);
                }
            }
            88..=91 => self.relay(),
            92..=93 => {
                // Not a side whose partner is gone (closed both ways while
                // this side's FIN waits behind its queue): its relayed
                // count went with it.
                let mut piped: Vec<usize> = self
                    .live
                    .values()
                    .copied()
                    .filter(|&s| matches!(self.sides[s].role, Role::Piped { partner, .. } if self.sides[partner].gone == Gone::No))
                    .collect();
                piped.sort_unstable();
                if let Some(m) = self.rng.pick(&piped) {
                    let reset = self.rng.chance(30);
                    self.cut(m, reset);
                }
            }
            _ => {}
        }
    }

    /// Turns an accepted side into a relay: a new connection dials a
    /// listener and is piped to it, so its connector talks to the side
    /// that accepts the new one, through two piped sockets.
    fn relay(&mut self) {
        let candidates: Vec<usize> = self
            .actionable()
            .into_iter()
            .filter(|&a| {
                let side = &self.sides[a];
                let near = self.peer(a).map(|c| &self.sides[c]);
                !side.connector
                    && !side.orphan
                    && !side.shut
                    && !side.ended
                    && side.paused.is_none()
                    && side.inbound.is_empty()
                    && near.is_some_and(|c| c.open() && c.role == Role::Owned && c.inbound.is_empty())
            })
            .collect();
        let Some(a) = self.rng.pick(&candidates) else { return };
        let near = self.peer(a).unwrap();
        let l = self.rng.pick(&self.open_listeners()).unwrap();
        let Some(c) = self.connect(l) else { return };
        let result = self.h.r.pipe(self.sides[a].token, self.sides[c].token);
        trace(format!("pipe #{a} {:?} <-> #{c} {:?}: {result:?}", self.sides[a].token, self.sides[c].token));
        if let Err(e) = result {
            // Only if this turn closed `a` (its Close comes later in the batch).
            if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::InvalidInput {
                self.fail(format!("pipe: {e}"));
            }
            self.close(c, false);
            return;
        }
        let pair = self.sides[c].pair.unwrap();
        self.pairs[pair].relays = Some(Relayed { mid: a, far: near, from: self.sides[a].received, len: None });
        self.sides[a].role = Role::Piped { partner: c, at: self.turns };
        self.sides[c].role = Role::Piped { partner: a, at: self.turns };
        let written = self.sides[a].written;
        let side = &mut self.sides[near];
        side.inbound = vec![Seg { src: Src::Side(a), from: 0, len: Some(written) }, Seg { src: Src::AcceptorOf(pair), from: 0, len: None }];
        side.through = Some([a, c]);
    }

    /// The owner closes (or resets) piped side `m`: its partner is
    /// unjoined, and reports its input to the owner again from where the
    /// pipe left it; the relay's two ends receive what passed the pipe.
    fn cut(&mut self, m: usize, reset: bool) {
        let Role::Piped { partner: q, .. } = self.sides[m].role else { unreachable!() };
        let (mt, qt) = (self.sides[m].token, self.sides[q].token);
        if self.closing_in_batch.contains(&mt) || self.closing_in_batch.contains(&qt) {
            // This turn closed one of them (and so unjoined the other).
            return;
        }
        let (m_relayed, q_relayed) = (self.h.r.relayed(mt).unwrap(), self.h.r.relayed(qt).unwrap());
        // An end the batch reports later was passed on by the pipe already.
        if self.ending_in_batch.contains(&qt) {
            self.sides[m].relay_fin = true;
        }
        if self.ending_in_batch.contains(&mt) {
            self.sides[q].relay_fin = true;
        }
        // `a`: the accepted side a connector dialed; `c`: the connection
        // it was piped to, whose acceptor is the relay's far end.
        let (a, c, a_relayed, c_relayed) =
            if self.sides[m].connector { (q, m, q_relayed, m_relayed) } else { (m, q, m_relayed, q_relayed) };
        let near = self.peer(a).unwrap();
        let upstream = self.sides[c].pair.unwrap();
        let relayed = self.pairs[upstream].relays.as_mut().unwrap();
        // The near end's bytes that reached `c`: passed on by the owner
        // before the pipe took over, then by the pipe.
        let len = self.sides[a].received - relayed.from + a_relayed;
        relayed.len = Some(len);
        if let Some(far) = self.pairs[upstream].acceptor {
            self.sides[far].inbound[1].len = Some(len);
        }
        // What reached `a` from the far end.
        self.sides[near].inbound[1].len = Some(c_relayed);
        trace(format!("cut #{m}: #{a} relayed {a_relayed}, #{c} relayed {c_relayed}"));
        self.close(m, reset);
        let side = &mut self.sides[q];
        side.role = Role::Owned;
        side.orphan = true;
        if q == a {
            // Its input goes on in the near end's stream.
            side.received += a_relayed;
        } else {
            side.inbound = vec![Seg { src: Src::AcceptorOf(upstream), from: c_relayed, len: None }];
            side.received = 0;
        }
    }

    // ---- turns and events ----

    fn turn(&mut self, timeout: Duration) {
        self.feed();
        self.closed_in_batch.clear();
        self.turns += 1;
        let events = self.h.turn(timeout);
        self.closing_in_batch = events.iter().filter_map(|e| if let Ev::Close { conn, .. } = e { Some(*conn) } else { None }).collect();
        self.ending_in_batch = events.iter().filter_map(|e| if let Ev::End { conn, .. } = e { Some(*conn) } else { None }).collect();
        for e in events {
            self.on_event(e);
            if !self.winding_down && self.rng.chance(5) {
                // A handler acting mid-batch, on this or another socket.
                self.random_op();
            }
        }
    }

    /// The open side an event names, or `None` if the owner closed it
    /// earlier in this batch (a stale record, which a handler drops).
    fn side_of(&self, token: Token, e: &Ev) -> Option<usize> {
        if self.closed_in_batch.contains(&token) {
            return None;
        }
        match self.live.get(&token) {
            Some(&s) => Some(s),
            None => self.fail(format!("{e:?} for a token that names no open connection (turn {})", self.turns)),
        }
    }

    fn on_event(&mut self, e: Ev) {
        trace(format!("turn {}: {}", self.turns, short(&e)));
        match e {
            Ev::Accept { listener, conn } => self.on_accept(listener, conn),
            Ev::Connect { conn } => {
                let Some(s) = self.side_of(conn, &e) else { return };
                let side = &mut self.sides[s];
                if !side.connector || side.connected {
                    self.fail(format!("{e:?} for #{s}, which is not a connect under way"));
                }
                side.connected = true;
            }
            Ev::Data { conn, ref data } => {
                let Some(s) = self.side_of(conn, &e) else { return };
                self.on_data(s, data);
            }
            Ev::End { conn, .. } => {
                self.ending_in_batch.remove(&conn);
                let Some(s) = self.side_of(conn, &e) else {
                    // Closed by the owner later in the turn that read this
                    // end: if it was piped, the pipe passed the FIN on then.
                    if let Role::Piped { partner, .. } = self.sides[self.ever[&conn]].role {
                        self.sides[partner].relay_fin = true;
                    }
                    return;
                };
                self.on_end(s);
            }
            Ev::Drain { conn } => {
                self.side_of(conn, &e);
            }
            Ev::FileSent { conn, sent } => {
                let Some(s) = self.side_of(conn, &e) else { return };
                let want = self.sides[s].files.pop_front();
                if want != Some(sent) {
                    self.fail(format!("FileSent {sent} on #{s}, the model expects {want:?}"));
                }
            }
            Ev::Close { conn, ref error, .. } => {
                self.closing_in_batch.remove(&conn);
                let Some(s) = self.side_of(conn, &e) else { return };
                self.on_close(s, error.as_ref());
            }
            Ev::AcceptError { .. } | Ev::Message { .. } | Ev::ReceiveError { .. } => self.fail(format!("unexpected {e:?}")),
        }
    }

    fn on_accept(&mut self, listener: Token, conn: Token) {
        let Some(&l) = self.listener_tokens.get(&listener) else { self.fail(format!("Accept from unknown listener {listener:?}")) };
        if !self.listeners[l].open && !self.closed_in_batch.contains(&listener) {
            self.fail(format!("Accept of {conn:?} from listener #{l}, closed before this turn"));
        }
        if self.live.contains_key(&conn) {
            self.fail(format!("Accept of {conn:?}: the token of an open connection"));
        }
        let s = self.sides.len();
        self.sides.push(Side::new(conn, None, l, false, self.listeners[l].unix.is_some()));
        self.live.insert(conn, s);
        self.ever.insert(conn, s);
    }

    fn check_not_paused(&self, s: usize, what: &str) {
        if let Some(since) = self.sides[s].paused {
            if self.turns > since {
                self.fail(format!("{what} on #{s} {:?}, paused since turn {since} (now {})", self.sides[s].token, self.turns));
            }
        }
    }

    fn on_data(&mut self, s: usize, mut data: &[u8]) {
        self.check_not_paused(s, "Data");
        if let Role::Piped { at, .. } = self.sides[s].role {
            if self.turns > at {
                self.fail(format!("Data on #{s}, piped in turn {at} (now {})", self.turns));
            }
        }
        let side = &self.sides[s];
        if side.connector && !side.connected {
            self.fail(format!("Data on #{s} before its Connect"));
        }
        if side.ended {
            self.fail(format!("Data on #{s} after its End"));
        }
        if side.pair.is_none() {
            // The header: which pair this accepted side belongs to.
            let take = data.len().min(HEADER as usize - side.header.len());
            let side = &mut self.sides[s];
            side.header.extend_from_slice(&data[..take]);
            side.received += take as u64;
            data = &data[take..];
            if side.header.len() < HEADER as usize {
                return;
            }
            let pair = u64::from_le_bytes(side.header[..].try_into().unwrap()) as usize;
            let listener = side.listener;
            if pair >= self.pairs.len() {
                self.fail(format!("#{s} got the header of pair {pair}, which does not exist"));
            }
            if let Some(other) = self.pairs[pair].acceptor {
                self.fail(format!("#{s} got the header of pair {pair}, already carried by #{other}"));
            }
            let c = self.pairs[pair].connector;
            if self.sides[c].listener != listener {
                self.fail(format!(
                    "#{s} accepted on listener #{listener} got the header of #{c}, which dialed #{}",
                    self.sides[c].listener
                ));
            }
            self.pairs[pair].acceptor = Some(s);
            self.sides[s].pair = Some(pair);
            if let Some(Relayed { mid, far, from, len }) = self.pairs[pair].relays {
                // The connector's header, then the far end's stream through the pipe.
                let side = &mut self.sides[s];
                side.inbound = vec![Seg { src: Src::Side(c), from: 0, len: Some(HEADER) }, Seg { src: Src::Side(far), from, len }];
                side.through = Some([c, mid]);
            }
            trace(format!("#{s} is pair {pair}'s accepted side (connector #{c})"));
        }
        if data.is_empty() {
            return;
        }
        let from = self.sides[s].received;
        for (k, &byte) in data.iter().enumerate() {
            let at = from + k as u64;
            match self.expected(s, at) {
                Ok(want) if want == byte => {}
                Ok(_) => self.fail(format!(
                    "#{s} {:?}: byte {k} of a {}-byte chunk (input offset {at}) is not what its sender wrote there",
                    self.sides[s].token,
                    data.len()
                )),
                Err(why) => self.fail(format!("#{s} {:?} received byte {at}, but {why}", self.sides[s].token)),
            }
        }
        self.sides[s].received += data.len() as u64;
        if let Role::Piped { partner, .. } = self.sides[s].role {
            // Read before the pipe was made, in the pipe's own batch: the
            // owner passes it on, as a proxy would.
            let result = self.h.r.write(self.sides[partner].token, data);
            trace(format!("forward {} bytes #{s} -> #{partner}: {result:?}", data.len()));
        }
    }

    fn on_end(&mut self, s: usize) {
        self.check_not_paused(s, "End");
        if self.sides[s].ended {
            self.fail(format!("a second End on #{s}"));
        }
        self.sides[s].ended = true;
        if let Some(p) = self.peer(s) {
            let peer = &self.sides[p];
            if !peer.sent_fin() {
                self.fail(format!("End on #{s}, but its peer #{p} sent no FIN ({:?}, shut: {})", peer.gone, peer.shut));
            }
        }
        if let Role::Piped { partner, at } = self.sides[s].role {
            // The pipe passes the FIN on; an End read before the pipe was
            // made, the owner passes on.
            self.sides[partner].relay_fin = true;
            if at == self.turns {
                let result = self.h.r.shutdown(self.sides[partner].token);
                trace(format!("pass the end on #{s} -> #{partner}: {result:?}"));
            }
            return;
        }
        if let Some(total) = self.exact_total(s) {
            if self.sides[s].received != total {
                self.fail(format!("End on #{s} after {} bytes; its sender ended after {total}", self.sides[s].received));
            }
        }
        // Answer the FIN now and then (always while winding down).
        if !self.sides[s].shut && (self.winding_down || self.rng.chance(50)) {
            self.shutdown(s);
        }
    }

    fn on_close(&mut self, s: usize, error: Option<&io::Error>) {
        let side = &self.sides[s];
        match error {
            None => {
                if !(side.shut || side.relay_fin) || !side.ended {
                    self.fail(format!("orderly Close of #{s}, which has {}shut down and {}seen End", not(side.shut), not(side.ended)));
                }
                if !side.files.is_empty() {
                    self.fail(format!("orderly Close of #{s} with files unsent: {:?}", side.files));
                }
            }
            Some(e) => {
                let code = e.raw_os_error();
                if ![libc::ECONNRESET, libc::EPIPE, libc::ECONNREFUSED].map(Some).contains(&code) {
                    self.fail(format!("Close of #{s} with {e}"));
                }
                // A piped side also breaks with its partner's connection.
                let partner_broke = match self.sides[s].role {
                    Role::Piped { partner, .. } => self.sides[partner].gone != Gone::No || self.peer_broke(partner),
                    Role::Owned => false,
                };
                if !self.peer_broke(s) && !partner_broke {
                    self.fail(format!("Close of #{s} with {e}, but its peer #{:?} is open", self.peer(s)));
                }
            }
        }
        self.sides[s].gone = Gone::Reported { error: error.is_some() };
        self.live.remove(&self.sides[s].token);
    }

    // ---- bursts and the end ----

    /// `n` pairs connect, then one side of each leaves in one go (by
    /// reset, close or FIN): the next turn reports hundreds of endings.
    fn burst(&mut self, n: usize) {
        trace(format!("burst of {n} pairs"));
        let listeners = self.open_listeners();
        let mut fresh = Vec::new();
        for _ in 0..n {
            let l = self.rng.pick(&listeners).unwrap();
            if let Some(s) = self.connect(l) {
                fresh.push(s);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let unmet = |m: &Model| -> Vec<usize> {
            // (A paused connector may not see its listener's reset.)
            fresh
                .iter()
                .copied()
                .filter(|&c| m.sides[c].open() && m.sides[c].paused.is_none() && m.pairs[m.sides[c].pair.unwrap()].acceptor.is_none())
                .collect()
        };
        while !unmet(self).is_empty() {
            if Instant::now() > deadline {
                let left: Vec<String> = unmet(self).iter().map(|&c| format!("#{c} {:?}", self.sides[c])).collect();
                self.fail(format!("{} of a burst's pairs never met:\n{}", left.len(), left.join("\n")));
            }
            self.turn(Duration::from_millis(10));
        }
        for c in fresh {
            let Some(a) = self.pairs[self.sides[c].pair.unwrap()].acceptor else { continue };
            let s = if self.rng.chance(50) { c } else { a };
            if !self.sides[s].open() || self.sides[s].role != Role::Owned {
                continue;
            }
            match self.rng.below(3) {
                0 => self.close(s, true),
                1 => self.close(s, false),
                _ => {
                    if !self.sides[s].shut {
                        self.shutdown(s)
                    }
                }
            }
        }
    }

    /// Resumes and ends every connection, turns until all have closed,
    /// then closes the listeners.
    fn wind_down(&mut self) {
        trace("wind down".into());
        self.winding_down = true;
        self.closed_in_batch.clear();
        let mut open: Vec<usize> = self.live.values().copied().collect();
        open.sort_unstable();
        for s in open {
            if !self.sides[s].open() {
                continue;
            }
            if self.sides[s].paused.is_some() {
                self.pause(s, false);
            }
            if self.sides[s].role != Role::Owned {
                // A pipe ends when both its ends have.
                continue;
            }
            if !self.sides[s].shut {
                self.shutdown(s);
            }
        }
        let deadline = Instant::now() + WIND_DOWN;
        while !self.live.is_empty() {
            if Instant::now() > deadline {
                let mut left: Vec<String> = self.live.values().map(|&s| format!("#{s} {:?}", self.sides[s])).collect();
                left.sort();
                self.fail(format!("{} connections never closed:\n{}", left.len(), left.join("\n")));
            }
            self.turn(Duration::from_millis(10));
        }
        for l in self.open_listeners() {
            self.h.r.close(self.listeners[l].token).unwrap();
            self.listeners[l].open = false;
        }
    }
}

fn not(yes: bool) -> &'static str {
    if yes {
        ""
    } else {
        "not "
    }
}

/// An event for the trace, without its bytes.
fn short(e: &Ev) -> String {
    match e {
        Ev::Data { conn, data } => format!("Data {conn:?} {}", data.len()),
        other => format!("{other:?}"),
    }
}

fn run(kind: BackendKind, seed: u64, ops: usize) {
    let mut m = Model::new(kind, seed);
    let fds = open_fds();
    m.open_listener(false);
    m.open_listener(true);
    let burst_at = m.rng.below(ops.max(1));
    for op in 0..ops {
        if op == burst_at {
            let n = 1 + m.rng.below(burst_cap(kind));
            m.burst(n);
        }
        m.random_op();
        if m.rng.chance(60) {
            m.turn(Duration::ZERO);
        }
    }
    m.wind_down();
    assert_eq!(m.h.r.len(), 0, "[{} seed {seed}] sockets left in the reactor", kind.name());
    assert_eq!(open_fds(), fds, "[{} seed {seed}] fds left open", kind.name());
}
