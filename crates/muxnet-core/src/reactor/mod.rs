//! The reactor: a table of sockets over one [`Backend`], and the turn of
//! the loop that does all ready I/O and reports it as a batch of [`Event`]s.
//!
//! A turn never calls back into its owner: events are collected into a
//! `Vec` and the owner acts on them afterwards (writes, closes), so no
//! borrow of the reactor is held while user code runs.

mod datagram;
mod handoff;
#[cfg(unix)]
mod inherit;
mod listener;
mod pipe;
mod stream;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stream::Failure;

use crate::backend::{Backend, BackendKind, Interest, Readiness, Token};
use crate::connection::Connection;
use crate::socket::{os_errno, Address, Socket, Stream};
use crate::stats::Stats;
use crate::token::Table;

pub use handoff::discard_detached;
pub use pipe::PipeOptions;
pub use stream::LEAN_READ;

/// How often a pipe being sent that the backend cannot watch is asked for
/// more while it stays empty: its bytes wait at most this long.
const SOURCE_RETRY: Duration = Duration::from_millis(10);

/// Limits that keep one busy or hostile peer from starving or bloating
/// the others.
#[derive(Clone, Debug)]
pub struct Config {
    /// Bytes read (or relayed, see [`Reactor::pipe`]) from one connection
    /// in one turn before moving on. Under load a connection's whole
    /// pipelined window waits in the kernel: reading it in 64 KiB pieces
    /// took about twice the CPU per byte of 256 KiB (100 connections each
    /// with 16 messages of 16 KiB in flight: more, smaller reads and writes
    /// for the same bytes), with no gain in fairness to show for it.
    pub read_budget: usize,
    /// Connections accepted from one listener in one turn. 1, as libuv
    /// (since 1.45) accepts one a loop iteration: a connection accepted is
    /// read the next turn, so the budget is how many new connections' first
    /// requests one batch of events may hold. With 256, a flood of peers
    /// whose requests cost ~3 ms of handler each (100 clients each sending
    /// one and resetting, a node:http server) made batches of 256 requests,
    /// ~750 ms, and a keep-alive client got 2–3 answers in 3 s against
    /// node:net's 470–510 (event-loop delay p50 750 ms against 12 ms). The
    /// cost: a turn per accepted connection (the listener is carried, and
    /// the next turn's accept finds the backlog empty) — ~7 % more server
    /// CPU per connection in a connect/echo/close churn of 50 clients.
    pub accept_budget: usize,
    /// On a backend whose every wait scans all its sockets (`poll`,
    /// `select`; see [`Backend::waits_scan_every_socket`]) a turn per
    /// accepted connection costs a scan of every socket per connection: with
    /// 8 000 idle connections on `poll`, a burst of 2 000 took 4.1–5.6 s to
    /// accept at one a turn (0.1–0.24 s at 256; node:net 0.1–0.2 s), and a
    /// steady 1 500 connects a second overflowed the backlog. There the
    /// budget adapts, up to this: it doubles after each turn that used it
    /// all and whose batch of events the owner handled in under
    /// [`SLOW_BATCH`] (or under a scan, if that takes longer: a batch
    /// cheaper than the scan every turn pays at most doubles a turn; with
    /// 4 000 idle pairs in the proxy a scan took 3.4 ms and the proxy's few
    /// accepts a turn overflowed its backlog at 2 000 connects a second),
    /// and is back to `accept_budget` after a slower batch. A flood of
    /// costly connections is so paced one a turn once batches pass that
    /// mark; as new connections' first requests come in the batch after
    /// their accept, the batches may grow to about four times it first
    /// (four scans, beside thousands of idle sockets).
    pub scan_accept_budget: usize,
    /// Datagrams received on one socket in one turn (in batches of up to
    /// 64 on Linux): one batch. The owner's handlers run over a turn's
    /// datagrams before anything else of its loop, so a flood on handlers
    /// costing 1 ms each held Node's timers 256 ms at 256 (libuv reads 32 a
    /// socket a wake).
    pub datagram_budget: usize,
    /// Bytes a connection may have queued before more writes are refused
    /// with `ENOBUFS` (see [`Reactor::write`]); the caller should then
    /// drop the connection.
    pub write_queue_cap: usize,
    /// Bytes queued toward one side of a pipe before the other side stops
    /// reading (see [`Reactor::pipe`]); it also stops before a relayed
    /// write could pass `write_queue_cap`.
    pub pipe_high_water: usize,
    /// File bytes sent to one connection in one turn (see
    /// [`Reactor::send_file`]) before the other sockets get theirs: a fast
    /// peer would otherwise hold the reactor for the whole file.
    pub send_file_budget: usize,
    /// Linux: what [`Reactor::pipe`] joins relays bulk input with
    /// `splice(2)` through a kernel pipe per direction (no copy through user
    /// space; [`Reactor::pipe_with`] chooses per pair); small chunks are
    /// still copied. Ignored elsewhere. Off by default: it
    /// saves the relaying process CPU, but the pages it passes on stay
    /// referenced until the far end reads them, so senders on the same host
    /// cannot reuse theirs (measured on loopback: 16 KiB echo through the
    /// proxy, ~1.5 µs less for the proxy and ~3 µs more for its peers a
    /// message, 20 % less throughput). A splice has no
    /// `MSG_NOSIGNAL`: one into a socket the peer reset in the meantime
    /// raises `SIGPIPE`, which Node and Rust's own `main` ignore; a host
    /// that keeps the default action (which ends the process) must ignore
    /// it too, or turn this off.
    pub splice: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            read_budget: 256 * 1024,
            accept_budget: 1,
            scan_accept_budget: 256,
            datagram_budget: 64,
            write_queue_cap: 16 * 1024 * 1024,
            pipe_high_water: 256 * 1024,
            send_file_budget: 4 << 20,
            splice: false,
        }
    }
}

/// Something that happened in a turn. Data lives in the caller's
/// [`ReadSpace`] at `offset..offset + len`.
#[derive(Debug)]
pub enum Event {
    /// `listener` accepted the connection `conn`.
    Accept {
        listener: Token,
        conn: Token,
    },
    /// Accepting failed; `EMFILE`/`ENFILE` pause the listener until a
    /// socket closes (or a file sent by [`Reactor::send_file`] is closed)
    /// or [`Reactor::resume_accept`] is called.
    AcceptError {
        listener: Token,
        error: io::Error,
    },
    /// An outgoing connection completed.
    Connect {
        conn: Token,
    },
    Data {
        conn: Token,
        offset: usize,
        len: usize,
    },
    /// The peer sent FIN; the connection may still write. `hung_up`: both
    /// directions were shut by then (see [`Readiness::hung_up`]; or our
    /// FIN had gone out), where libuv before 1.52 reports the end in the
    /// read of the bytes before it, not a loop turn later.
    End {
        conn: Token,
        hung_up: bool,
    },
    /// The write queue drained after a write had to be queued.
    Drain {
        conn: Token,
    },
    /// The oldest file queued by [`Reactor::send_file`] is sent: `sent`
    /// bytes (fewer than asked if the file ended early).
    FileSent {
        conn: Token,
        sent: u64,
    },
    /// The socket is closed and its token names nothing any more; `error`
    /// says why, if not an orderly close. `sending`: sending queued bytes
    /// met the error (node:net's `write EPIPE`), not reading or connecting.
    Close {
        conn: Token,
        error: Option<io::Error>,
        sending: bool,
    },
    Message {
        socket: Token,
        offset: usize,
        len: usize,
        from: SocketAddr,
    },
    /// Receiving on a UDP socket failed; the socket stays open. Linux
    /// reports an ICMP error this way on a connected socket only (port
    /// unreachable: `ECONNREFUSED`).
    ReceiveError {
        socket: Token,
        error: io::Error,
    },
}

/// The buffer reads land in: a slab the caller owns, filled from `pos` on.
pub struct ReadSpace<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> ReadSpace<'a> {
    pub fn new(buf: &'a mut [u8], pos: usize) -> ReadSpace<'a> {
        ReadSpace { buf, pos }
    }

    /// Bytes used so far: where the next read will land.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn free(&self) -> usize {
        self.buf.len() - self.pos
    }
}

#[derive(Debug)]
enum Kind {
    /// `accept_paused`: by `EMFILE`/`ENFILE`, until an fd frees up;
    /// `held`: by the application ([`Reactor::hold_accept`]), until it lets go.
    /// `shared`: other processes accept from it too (see [`Shared`]).
    Listener {
        no_delay: bool,
        accept_paused: bool,
        held: bool,
        shared: Shared,
    },
    Stream(Connection),
    /// `paused`: not read from ([`Reactor::pause`]); datagrams wait in the
    /// kernel's receive buffer, and what overflows it is dropped there.
    /// `connected`: it may have a peer (`udp_connect`, or so inherited),
    /// whose ICMP errors a receive reports.
    Datagram {
        paused: bool,
        shared: Shared,
        connected: bool,
    },
}

/// Whether other processes take from the same socket (a cluster's workers
/// share one the primary bound). A shared socket yields one connection or
/// datagram per turn: what the application has not been handed yet stays
/// in the kernel, for another process to take if this one closes the
/// socket meanwhile — as libuv, which hands each over as it takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shared {
    No,
    Yes,
}

#[derive(Debug)]
struct Entry {
    socket: Socket,
    kind: Kind,
    /// What the backend currently watches for (`None`: not registered).
    registered: Option<Interest>,
}

impl Entry {
    fn interest(&self) -> Option<Interest> {
        match &self.kind {
            Kind::Listener { accept_paused, held, .. } => Interest::new(!accept_paused && !held, false),
            Kind::Stream(c) => Interest::new(c.wants_read(), c.wants_write()).or(c.wants_errors().then_some(Interest::ERRORS)),
            Kind::Datagram { paused, .. } => Interest::new(!paused, false),
        }
    }
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such socket")
}

/// Why `token` names nothing: how this turn closed it, or `NotFound`.
fn gone(closed_in_turn: &HashMap<Token, Closed>, token: Token) -> io::Error {
    match closed_in_turn.get(&token) {
        Some(Closed { code: Some(code), .. }) => io::Error::from_raw_os_error(*code),
        Some(Closed { kind, .. }) => io::Error::from(*kind),
        None => not_found(),
    }
}

/// A socket a turn closed: why, and what its owner may still ask about it
/// until the next turn.
#[derive(Debug)]
struct Closed {
    kind: io::ErrorKind,
    code: Option<i32>,
    /// Closed in order (both ways ended), not by an error.
    orderly: bool,
    /// Bytes it had relayed to a pipe partner.
    relayed: u64,
}

/// A single-threaded socket reactor.
///
/// ```
/// use muxnet_core::{Reactor, BackendKind, BindOptions, Event, ReadSpace};
/// let mut reactor = Reactor::new(BackendKind::Mio, Default::default()).unwrap();
/// let server = reactor.listen(&BindOptions::new("127.0.0.1:0".parse().unwrap()), true).unwrap();
/// let addr = reactor.local_addr(server).unwrap();
/// let client = reactor.connect(addr, None).unwrap();
/// reactor.write(client, b"hi").unwrap();
/// let (mut slab, mut events, mut got) = (vec![0u8; 1 << 16], Vec::new(), Vec::new());
/// while got.is_empty() {
///     events.clear();
///     reactor.turn(&mut ReadSpace::new(&mut slab, 0), &mut events, None).unwrap();
///     for e in &events {
///         if let Event::Data { offset, len, .. } = e { got.extend_from_slice(&slab[*offset..offset + len]); }
///     }
/// }
/// assert_eq!(got, b"hi");
/// ```
///
/// Every socket is named by a [`Token`] whose slot generation changes
/// with each reuse: once a socket is closed, every call with its token
/// fails with `NotFound`, even after another socket has taken its slot
/// (until that slot has been reused 2^21 times, when its generation
/// wraps).
pub struct Reactor {
    backend: Box<dyn Backend>,
    entries: Table<Entry>,
    readiness: Vec<Readiness>,
    /// The turn's non-listener readiness, dispatched after the listeners.
    later: Vec<Readiness>,
    /// Scratch for `merge_repeats`, kept between turns.
    ranked: Vec<(usize, Readiness)>,
    /// Sockets that may still have input and were not read this turn (the
    /// slab ran out before them, or nothing raises a new edge for them):
    /// first in the next turn.
    carry: Vec<Token>,
    /// Sockets read this turn until their budget or the slab ran out: last
    /// in the next turn, after the ones that waited.
    carry_after: Vec<Token>,
    /// Connections with corked bytes to flush (entries may be stale).
    corked: Vec<Token>,
    /// Connections accepted and not registered with the backend yet: that
    /// waits until the owner has handled the turn's events (see
    /// `register_accepted`; entries may be stale).
    unregistered: Vec<Token>,
    /// Connections to flush next turn whatever the backend says: a file
    /// queued on a socket that is writable already, or one whose turn's
    /// budget ran out (entries may be stale).
    flush_soon: Vec<Token>,
    /// Connections sending a pipe that is empty and that the backend cannot
    /// watch (`select`: an fd past `FD_SETSIZE`): asked again every turn,
    /// and a turn comes at least every [`SOURCE_RETRY`] meanwhile (not at
    /// once: a pipe idle for minutes would spin a core).
    poll_sources: Vec<Token>,
    /// Listeners paused by `EMFILE`/`ENFILE`, resumed when an fd is freed.
    paused_listeners: HashSet<Token>,
    /// A connection a listener accepted on an fd the backend cannot watch
    /// (`select`: at or past `FD_SETSIZE`), kept, the listener paused as for
    /// `EMFILE`, until a close makes room below the limit. (Dropped, its peer
    /// would meet a reset for bytes the kernel had taken from it.)
    unwatchable: HashMap<Token, Stream>,
    /// Sockets this turn closed, and why: until the owner has seen the
    /// turn's events, a call with such a token (a handler earlier in the
    /// batch writing to it) fails with the close's own error, not
    /// `NotFound`. Cleared when the next turn starts.
    /// (A map: a mass disconnect closes thousands in one turn, and each
    /// may be asked about.)
    closed_in_turn: HashMap<Token, Closed>,
    /// Counts changes to the backend's interest set.
    interest_changes: u64,
    /// Where piped bytes pass through (see `pipe.rs`), kept between turns.
    relay_buf: Vec<u8>,
    /// Connections joined by `pipe` now (both sides of each pair).
    joined: usize,
    /// Empty kernel pipes kept for the joined connections' next splice.
    #[cfg(target_os = "linux")]
    spare_pipes: crate::splice::SparePipes,
    /// Where datagrams are received in batches (see `datagram.rs`).
    inbox: datagram::Inbox,
    /// Datagrams queued to be sent together (see `datagram.rs`).
    outbox: datagram::Outbox,
    /// What has happened so far (the gauges of [`Stats`] are filled in by
    /// [`Reactor::stats`]).
    counters: Stats,
    config: Config,
    /// Connections a listener accepts this turn at most: `accept_budget`, or
    /// adapted on a backend whose waits scan every socket (see
    /// `Config::scan_accept_budget`).
    accept_allowance: usize,
    /// A listener used its whole allowance in the last turn.
    accepts_capped: bool,
    /// When the last turn handed its events over: the owner's batch is
    /// timed from here to `events_handled` (only on a backend whose waits
    /// scan every socket).
    turn_ended: Option<Instant>,
    /// How long the last waits that did not block took (on a backend whose
    /// waits scan every socket): the cost of a scan, paid every turn. The
    /// least of them counts: a wait the thread was preempted in says nothing
    /// of the scan, and a slow batch must not pass for quick because of it.
    scans: [Duration; 4],
    scan_at: usize,
}

/// A batch of events its owner took this long or longer to handle says the
/// loop is busy: accepting more at a time would make the next one longer.
pub const SLOW_BATCH: Duration = Duration::from_millis(1);

impl Reactor {
    pub fn new(kind: BackendKind, config: Config) -> io::Result<Reactor> {
        Ok(Reactor::with_backend(kind.create()?, config))
    }

    pub fn with_backend(backend: Box<dyn Backend>, config: Config) -> Reactor {
        Reactor {
            backend,
            entries: Table::new(),
            readiness: Vec::new(),
            later: Vec::new(),
            ranked: Vec::new(),
            carry: Vec::new(),
            carry_after: Vec::new(),
            corked: Vec::new(),
            unregistered: Vec::new(),
            flush_soon: Vec::new(),
            poll_sources: Vec::new(),
            paused_listeners: HashSet::new(),
            unwatchable: HashMap::new(),
            closed_in_turn: HashMap::new(),
            interest_changes: 0,
            relay_buf: Vec::new(),
            joined: 0,
            #[cfg(target_os = "linux")]
            spare_pipes: Default::default(),
            inbox: datagram::Inbox::default(),
            outbox: datagram::Outbox::default(),
            counters: Stats::default(),
            accept_allowance: config.accept_budget.max(1),
            accepts_capped: false,
            turn_ended: None,
            scans: [Duration::ZERO; 4],
            scan_at: 0,
            config,
        }
    }

    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// See [`Blockable::ready_now`](crate::backend::Blockable::ready_now);
    /// a failed look says ready: the turn finds out what is wrong.
    pub fn ready_now(&mut self) -> bool {
        self.backend.ready_now().unwrap_or(true)
    }

    /// How many sockets are open.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }

    /// A socket this turn stopped serving before it was drained: if it
    /// was read already (`served`), others go first next turn.
    pub(super) fn carry_over(&mut self, token: Token, served: bool) {
        if served {
            self.carry_after.push(token);
        } else {
            self.carry.push(token);
        }
    }

    /// `fd` is one of this reactor's own — a socket it serves (or one
    /// detached and not yet adopted, by any reactor), a file or kernel pipe
    /// a connection sends through, a spare pipe, its backend's — which a
    /// caller handed that number as "a socket given by fd" must refuse, as
    /// libuv refuses an fd it watches: taking a copy and closing the number
    /// would pull it from under this reactor (and the next socket made
    /// would get the number, and another connection's bytes).
    #[cfg(unix)]
    pub fn holds_fd(&self, fd: std::os::fd::RawFd) -> bool {
        use std::os::fd::AsRawFd;
        #[cfg(target_os = "linux")]
        if self.spare_pipes.holds_fd(fd) {
            return true;
        }
        self.backend.holds_fd(fd)
            || handoff::parked_holds_fd(fd)
            || self.entries.values().any(|e| e.socket.sock_ref().as_raw_fd() == fd || matches!(&e.kind, Kind::Stream(c) if c.holds_fd(fd)))
    }

    /// The owner has handled every event reported so far: the slots of the
    /// sockets closed since may be taken again — now, not at the next turn
    /// only (an owner that opens and closes sockets with no turn between,
    /// on an idle reactor, made a new slot for each).
    pub fn events_handled(&mut self) {
        self.entries.release_held();
        self.register_accepted();
        if let Some(ended) = self.turn_ended.take() {
            self.adapt_accepts(ended.elapsed());
        }
    }

    /// On a backend whose waits scan every socket: more accepts a turn
    /// while the owner's batches stay quick, one again after a slow one
    /// (see `Config::scan_accept_budget`).
    fn adapt_accepts(&mut self, batch: Duration) {
        let capped = std::mem::take(&mut self.accepts_capped);
        let scan = self.scans.iter().min().copied().unwrap_or_default();
        if batch >= SLOW_BATCH.max(scan) {
            self.accept_allowance = self.config.accept_budget.max(1);
        } else if capped {
            self.accept_allowance = (self.accept_allowance * 2).min(self.config.scan_accept_budget.max(self.config.accept_budget));
        }
    }

    /// Registers the connections accepted since the owner last handled a
    /// batch, as libuv adds a new connection to epoll at its next poll: its
    /// first bytes (already waiting, mostly) are reported after whatever
    /// arrived on older connections while the owner ran its handlers, not
    /// ahead of it. Registered in the turn that accepted them, a flood of
    /// new connections went first in the next turn, each time, and a
    /// keep-alive connection's request waited behind one costly request a
    /// turn (measured: 300–380 against node:net's 470–510 answers in 3 s
    /// beside 100 hostile clients, `accept_budget` 1 both). A failure is
    /// the connection's, reported next turn.
    fn register_accepted(&mut self) {
        if self.unregistered.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.unregistered);
        for token in pending.drain(..) {
            match self.sync_interest(token) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    if let Ok((_, conn)) = self.stream(token) {
                        conn.set_failed(error);
                    }
                    self.carry.push(token);
                }
            }
        }
        self.unregistered = pending;
    }

    /// Work is left over from the last turn: the next should not sleep.
    pub fn has_pending(&self) -> bool {
        !self.carry.is_empty() || !self.carry_after.is_empty() || !self.flush_soon.is_empty()
    }

    /// The longest the next wait may sleep with nothing ready (`None`: no
    /// limit): a pipe that cannot be watched is asked again after it.
    pub fn wait_limit(&self) -> Option<Duration> {
        (!self.poll_sources.is_empty()).then_some(SOURCE_RETRY)
    }

    /// Grows whenever the backend's interest set changes: a waiter blocked
    /// on a snapshot of it (see [`crate::BlockingWait`]) must be re-armed.
    pub fn interest_changes(&self) -> u64 {
        self.interest_changes
    }

    fn entry(&mut self, token: Token) -> io::Result<&mut Entry> {
        match self.entries.get_mut(token) {
            Some(entry) => Ok(entry),
            None => Err(gone(&self.closed_in_turn, token)),
        }
    }

    /// [`Reactor::insert`] for an accepted connection, registered once the
    /// owner has handled the turn's events (see `register_accepted`).
    fn insert_unregistered(&mut self, socket: Socket, kind: Kind) -> Token {
        let token = self.entries.insert(Entry { socket, kind, registered: None });
        self.unregistered.push(token);
        token
    }

    fn insert(&mut self, socket: Socket, kind: Kind) -> io::Result<Token> {
        let token = self.entries.next_token();
        let mut entry = Entry { socket, kind, registered: None };
        if let Some(interest) = entry.interest() {
            self.backend.register(&mut entry.socket, token, interest)?;
            entry.registered = Some(interest);
            self.interest_changes += 1;
        }
        Ok(self.entries.insert(entry))
    }

    /// Stops reading a connection or a UDP socket: the kernel buffer fills
    /// (a connection's peer is slowed down; datagrams beyond it are dropped).
    pub fn pause(&mut self, token: Token) -> io::Result<()> {
        *self.paused_flag(token)? = true;
        self.park_held(token);
        self.sync_interest(token)
    }

    pub fn resume(&mut self, token: Token) -> io::Result<()> {
        let paused = self.paused_flag(token)?;
        if !*paused {
            return Ok(());
        }
        *paused = false;
        self.sync_interest(token)?;
        // Input that arrived while paused raises no new edge.
        self.carry.push(token);
        self.backend.waker().wake()
    }

    fn paused_flag(&mut self, token: Token) -> io::Result<&mut bool> {
        match &mut self.entry(token)?.kind {
            Kind::Stream(conn) => Ok(&mut conn.paused),
            Kind::Datagram { paused, .. } => Ok(paused),
            Kind::Listener { .. } => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a connection or a UDP socket")),
        }
    }

    /// Brings the backend's interest in line with the socket's state.
    fn sync_interest(&mut self, token: Token) -> io::Result<()> {
        let backend = &mut self.backend;
        let entry = self.entries.get_mut(token).ok_or_else(not_found)?;
        let want = entry.interest();
        if want == entry.registered {
            return Ok(());
        }
        match (entry.registered, want) {
            (None, Some(i)) => backend.register(&mut entry.socket, token, i)?,
            (Some(_), Some(i)) => backend.reregister(&mut entry.socket, token, i)?,
            (Some(_), None) => backend.deregister(&mut entry.socket)?,
            (None, None) => {}
        }
        entry.registered = want;
        self.interest_changes += 1;
        Ok(())
    }

    /// Closes the socket now, dropping anything queued. The token names
    /// nothing from now on; no `Close` event follows.
    pub fn close(&mut self, token: Token) -> io::Result<()> {
        // Before its file is closed with the entry, a watched pipe is unwatched.
        self.unwatch_source(token);
        if let Some(partner) = self.unjoin(token) {
            self.unlink(partner);
        }
        let mut entry = self.entries.remove(token).ok_or_else(|| gone(&self.closed_in_turn, token))?;
        #[cfg(target_os = "linux")]
        if let Kind::Stream(conn) = &mut entry.kind {
            if let Some(pipe) = conn.take_empty_pipe() {
                self.spare_pipes.give(pipe, self.joined);
            }
        }
        if entry.registered.is_some() {
            // The fd is closed next anyway; a failure here changes nothing.
            let _ = self.backend.deregister(&mut entry.socket);
            self.interest_changes += 1;
        }
        drop(entry);
        self.drop_parked(token);
        self.paused_listeners.remove(&token);
        self.unwatchable.remove(&token);
        self.resume_paused_listeners();
        Ok(())
    }

    /// Closes every socket (the owner is shutting down).
    pub fn close_all(&mut self) {
        for token in self.entries.tokens() {
            let _ = self.close(token);
        }
    }

    pub fn local_addr(&mut self, token: Token) -> io::Result<SocketAddr> {
        self.entry(token)?.socket.local_addr()
    }

    /// The peer, as accepted or as given to `connect`.
    pub fn peer_addr(&mut self, token: Token) -> io::Result<SocketAddr> {
        match &mut self.entry(token)?.socket {
            Socket::Stream(s) => s.peer_addr(),
            Socket::Datagram(s) => s.peer_addr(),
            Socket::Listener(_) => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// The local address, IP or Unix-domain path.
    pub fn local_address(&mut self, token: Token) -> io::Result<Address> {
        self.entry(token)?.socket.local_address()
    }

    /// One turn of the loop: waits at most `timeout` for readiness, does
    /// every ready accept, connect, read and flush, and appends what
    /// happened to `events`.
    pub fn turn(&mut self, space: &mut ReadSpace<'_>, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        if !self.closed_in_turn.is_empty() {
            self.closed_in_turn.clear();
        }
        // The owner has handled the last turn's events.
        self.events_handled();
        self.uncork();
        let timeout = if self.has_pending() {
            Some(Duration::ZERO)
        } else {
            match (timeout, self.wait_limit()) {
                (Some(t), Some(limit)) => Some(t.min(limit)),
                (t, limit) => t.or(limit),
            }
        };
        let mut ready = std::mem::take(&mut self.readiness);
        ready.clear();
        self.counters.waits += 1;
        // Only a wait that cannot block times the scan alone.
        let scan_started = (self.backend.waits_scan_every_socket() && timeout == Some(Duration::ZERO)).then(Instant::now);
        self.backend.wait(&mut ready, timeout)?;
        if let Some(started) = scan_started {
            self.scans[self.scan_at] = started.elapsed();
            self.scan_at = (self.scan_at + 1) % self.scans.len();
        }
        // Fairness when a turn cannot serve everyone: what waited goes
        // first, then the backend's fresh readiness, then what this turn
        // already read and cut short. In slot order instead, busy sockets in
        // low slots would fill the slab turn after turn while a socket in a
        // high slot waits (the tail latency of many 16 KiB echoes).
        let fresh = ready.len();
        let carried = |token| Readiness { token, readable: true, writable: false, error: false, hup: true, ended: false, hung_up: false };
        ready.extend(self.carry.drain(..).map(carried));
        let waited = ready.len() - fresh;
        ready.rotate_right(waited);
        ready.extend(self.carry_after.drain(..).map(carried));
        ready.extend(self.flush_soon.drain(..).chain(self.poll_sources.drain(..)).map(|token| Readiness {
            token,
            readable: false,
            writable: true,
            error: false,
            hup: false,
            ended: false,
            hung_up: false,
        }));
        // One dispatch per socket per turn, in its first place, so none
        // reads past its budget: a carried socket is reported again by
        // level-triggered backends (and may get a new edge), and mio's
        // stash (Windows) can repeat a token.
        merge_repeats(&mut ready, &mut self.ranked);
        let before = events.len();
        // Listeners first: a connection is accepted (and its owner told)
        // before the turn reports what its peer did next, whichever slots
        // the two sockets happen to hold.
        let mut later = std::mem::take(&mut self.later);
        later.clear();
        for r in ready.iter().copied() {
            if self.is_listener(r.token) {
                self.dispatch(r, space, events);
            } else {
                later.push(r);
            }
        }
        for r in later.iter().copied() {
            self.dispatch(r, space, events);
        }
        self.later = later;
        self.readiness = ready;
        self.counters.turn(events.len() - before);
        if self.backend.waits_scan_every_socket() {
            self.turn_ended = Some(Instant::now());
        }
        Ok(())
    }

    /// The counters, and the sockets as they are now: one pass over the
    /// table (O(sockets)), meant for a scrape every few seconds.
    pub fn stats(&self) -> Stats {
        let mut stats = self.counters.clone();
        #[cfg(target_os = "linux")]
        {
            stats.kernel_pipes = self.spare_pipes.made;
        }
        for entry in self.entries.values() {
            match &entry.kind {
                Kind::Listener { accept_paused, held, .. } => {
                    stats.listeners += 1;
                    stats.paused_listeners += (*accept_paused || *held) as u64;
                }
                Kind::Datagram { .. } => stats.datagram_sockets += 1,
                Kind::Stream(c) => {
                    stats.connections += 1;
                    stats.connecting += c.connecting as u64;
                    stats.half_closed += (c.read_closed || c.ending || c.write_closed) as u64;
                    stats.piped += c.pipe().is_some() as u64;
                    stats.queued_bytes += c.buffered() as u64;
                }
            }
        }
        stats
    }

    fn is_listener(&self, token: Token) -> bool {
        matches!(self.entries.get(token), Some(Entry { kind: Kind::Listener { .. }, .. }))
    }

    /// A readiness whose socket was closed meanwhile names nothing: its
    /// token is stale, whoever holds the slot now.
    fn dispatch(&mut self, r: Readiness, space: &mut ReadSpace<'_>, events: &mut Vec<Event>) {
        let Some(entry) = self.entries.get(r.token) else { return };
        match entry.kind {
            Kind::Listener { no_delay, held: false, shared, .. } => self.accept(r.token, no_delay, shared, events),
            // A readiness reported before the hold (or a carried one) waits for `hold_accept(false)`.
            Kind::Listener { held: true, .. } => {}
            Kind::Datagram { paused: false, shared, connected } => self.receive(r.token, shared, connected, space, events),
            // A carried readiness waits for `resume`.
            Kind::Datagram { paused: true, .. } => {}
            Kind::Stream(_) => {
                if let Err(Failure { error, sending }) = self.stream_ready(r, space, events) {
                    self.close_reported(r.token, Some(error), sending, events);
                }
            }
        }
    }

    /// Closes a socket the turn found done (`error: None`) or broken
    /// (`sending`: by a send), and reports it.
    pub(super) fn close_reported(&mut self, token: Token, error: Option<io::Error>, sending: bool, events: &mut Vec<Event>) {
        if let Some(e) = &error {
            // A broken side of a pipe breaks the other: reset, reported too.
            self.reset_partner(token, e, events);
        }
        let relayed = self.stream(token).map_or(0, |(_, c)| c.relayed());
        if self.close(token).is_ok() {
            // After an orderly close, a write is a write after end.
            let why = error.as_ref().map_or((io::ErrorKind::BrokenPipe, Some(os_errno::EPIPE)), |e| (e.kind(), e.raw_os_error()));
            self.closed_in_turn.insert(token, Closed { kind: why.0, code: why.1, orderly: error.is_none(), relayed });
            events.push(Event::Close { conn: token, error, sending });
        }
    }

    /// Bytes read from `token` and passed to its pipe partner, over its
    /// life (until the next turn, also for a socket this turn closed).
    pub fn relayed(&mut self, token: Token) -> io::Result<u64> {
        match self.stream(token) {
            Ok((_, conn)) => Ok(conn.relayed()),
            Err(e) => self.closed_in_turn.get(&token).map(|c| c.relayed).ok_or(e),
        }
    }
}

/// Merges the repeats of a socket's readiness into its first place, keeping
/// the order of the rest (carried sockets first, then the backend's order).
fn merge_repeats(ready: &mut Vec<Readiness>, ranked: &mut Vec<(usize, Readiness)>) {
    if ready.len() < 2 {
        return;
    }
    ranked.clear();
    ranked.extend(ready.drain(..).enumerate());
    ranked.sort_unstable_by_key(|&(pos, r)| (r.token.index(), r.token.generation(), pos));
    ranked.dedup_by(|(_, later), (_, kept)| {
        if later.token != kept.token {
            return false;
        }
        kept.readable |= later.readable;
        kept.writable |= later.writable;
        kept.error |= later.error;
        kept.hup |= later.hup;
        kept.ended |= later.ended;
        kept.hung_up |= later.hung_up;
        true
    });
    ranked.sort_unstable_by_key(|&(pos, _)| pos);
    ready.extend(ranked.iter().map(|&(_, r)| r));
}
