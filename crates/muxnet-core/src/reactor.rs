//! The reactor: a table of sockets over one [`Backend`], and the turn of
//! the loop that does all ready I/O and reports it as a batch of [`Event`]s.
//!
//! A turn never calls back into its owner: events are collected into a
//! `Vec` and the owner acts on them afterwards (writes, closes), so no
//! borrow of the reactor is held while user code runs.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Duration;

use crate::backend::{Backend, BackendKind, Interest, Readiness, Token};
use crate::connection::{write_now, Connection};
use crate::socket::{self, BindOptions, Socket};

/// Limits that keep one busy or hostile peer from starving or bloating
/// the others.
#[derive(Clone, Debug)]
pub struct Config {
    /// Bytes read from one connection in one turn before moving on.
    pub read_budget: usize,
    /// Connections accepted from one listener in one turn.
    pub accept_budget: usize,
    /// Datagrams received on one socket in one turn.
    pub datagram_budget: usize,
    /// Bytes a connection may have queued before more writes are refused
    /// with `ENOBUFS` (see [`Reactor::write`]); the caller should then
    /// drop the connection.
    pub write_queue_cap: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config { read_budget: 64 * 1024, accept_budget: 256, datagram_budget: 256, write_queue_cap: 16 * 1024 * 1024 }
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
    /// socket closes or [`Reactor::resume_accept`] is called.
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
    /// The peer sent FIN; the connection may still write.
    End {
        conn: Token,
    },
    /// The write queue drained after a write had to be queued.
    Drain {
        conn: Token,
    },
    /// The socket is closed and its token free; `error` says why, if not
    /// an orderly close.
    Close {
        conn: Token,
        error: Option<io::Error>,
    },
    Message {
        socket: Token,
        offset: usize,
        len: usize,
        from: SocketAddr,
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

/// Below this much free slab a read is put off to the next turn.
const MIN_READ: usize = 2048;
/// The largest datagram; a receive needs this much room.
const MAX_DATAGRAM: usize = 65536;

#[derive(Debug)]
enum Kind {
    Listener { no_delay: bool, accept_paused: bool },
    Stream(Box<Connection>),
    Datagram,
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
            Kind::Listener { accept_paused, .. } => Interest::new(!accept_paused, false),
            Kind::Stream(c) => Interest::new(c.wants_read(), c.wants_write()),
            Kind::Datagram => Some(Interest::READABLE),
        }
    }
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such socket")
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == libc::EMFILE || code == libc::ENFILE)
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
pub struct Reactor {
    backend: Box<dyn Backend>,
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    open: usize,
    readiness: Vec<Readiness>,
    /// Sockets that may still have input after their budget ran out.
    carry: Vec<Token>,
    /// Connections with corked bytes to flush (entries may be stale).
    corked: Vec<Token>,
    /// Counts changes to the backend's interest set.
    interest_changes: u64,
    config: Config,
}

impl Reactor {
    pub fn new(kind: BackendKind, config: Config) -> io::Result<Reactor> {
        Ok(Reactor::with_backend(kind.create()?, config))
    }

    pub fn with_backend(backend: Box<dyn Backend>, config: Config) -> Reactor {
        Reactor {
            backend,
            entries: Vec::new(),
            free: Vec::new(),
            open: 0,
            readiness: Vec::new(),
            carry: Vec::new(),
            corked: Vec::new(),
            interest_changes: 0,
            config,
        }
    }

    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// How many sockets are open.
    pub fn len(&self) -> usize {
        self.open
    }

    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Work is left over from the last turn: the next should not sleep.
    pub fn has_pending(&self) -> bool {
        !self.carry.is_empty()
    }

    /// Grows whenever the backend's interest set changes: a waiter blocked
    /// on a snapshot of it (see [`crate::BlockingWait`]) must be re-armed.
    pub fn interest_changes(&self) -> u64 {
        self.interest_changes
    }

    fn entry(&mut self, token: Token) -> io::Result<&mut Entry> {
        self.entries.get_mut(token.0).and_then(Option::as_mut).ok_or_else(not_found)
    }

    fn stream(&mut self, token: Token) -> io::Result<(&mut mio::net::TcpStream, &mut Connection)> {
        match self.entry(token)? {
            Entry { socket: Socket::Stream(s), kind: Kind::Stream(c), .. } => Ok((s, c)),
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a TCP connection")),
        }
    }

    fn insert(&mut self, socket: Socket, kind: Kind) -> io::Result<Token> {
        let index = self.free.pop().unwrap_or(self.entries.len());
        let token = Token(index);
        let mut entry = Entry { socket, kind, registered: None };
        if let Some(interest) = entry.interest() {
            if let Err(e) = self.backend.register(&mut entry.socket, token, interest) {
                if index < self.entries.len() {
                    self.free.push(index);
                }
                return Err(e);
            }
            entry.registered = Some(interest);
            self.interest_changes += 1;
        }
        if index == self.entries.len() {
            self.entries.push(Some(entry));
        } else {
            self.entries[index] = Some(entry);
        }
        self.open += 1;
        Ok(token)
    }

    /// Brings the backend's interest in line with the socket's state.
    fn sync_interest(&mut self, token: Token) -> io::Result<()> {
        let backend = &mut self.backend;
        let entry = self.entries.get_mut(token.0).and_then(Option::as_mut).ok_or_else(not_found)?;
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

    /// Closes the socket now, dropping anything queued. The token is free
    /// for reuse when this returns; no `Close` event follows.
    pub fn close(&mut self, token: Token) -> io::Result<()> {
        let mut entry = self.entries.get_mut(token.0).and_then(Option::take).ok_or_else(not_found)?;
        if entry.registered.is_some() {
            // The fd is closed next anyway; a failure here changes nothing.
            let _ = self.backend.deregister(&mut entry.socket);
            self.interest_changes += 1;
        }
        drop(entry);
        self.free.push(token.0);
        self.open -= 1;
        self.resume_paused_listeners();
        Ok(())
    }

    /// Closes every socket (the owner is shutting down).
    pub fn close_all(&mut self) {
        for index in 0..self.entries.len() {
            let _ = self.close(Token(index));
        }
    }

    /// Closes a TCP connection abortively: queued bytes are dropped and the
    /// peer gets RST (its reads fail with `ECONNRESET`). No `Close` event.
    pub fn reset(&mut self, token: Token) -> io::Result<()> {
        socket::set_linger_zero(self.stream(token)?.0)?;
        self.close(token)
    }

    /// A closed fd is room for an accept that failed with `EMFILE`.
    fn resume_paused_listeners(&mut self) {
        let paused: Vec<Token> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, Some(Entry { kind: Kind::Listener { accept_paused: true, .. }, .. })))
            .map(|(i, _)| Token(i))
            .collect();
        for token in paused {
            let _ = self.resume_accept(token);
        }
    }

    /// Binds and listens; accepted connections get `TCP_NODELAY` if `no_delay`.
    pub fn listen(&mut self, opts: &BindOptions, no_delay: bool) -> io::Result<Token> {
        let listener = socket::tcp_listen(opts)?;
        self.insert(Socket::Listener(listener), Kind::Listener { no_delay, accept_paused: false })
    }

    /// Starts accepting again on a listener paused by `EMFILE`/`ENFILE`.
    pub fn resume_accept(&mut self, token: Token) -> io::Result<()> {
        if let Kind::Listener { accept_paused, .. } = &mut self.entry(token)?.kind {
            if *accept_paused {
                *accept_paused = false;
                self.sync_interest(token)?;
                self.carry.push(token);
            }
        }
        Ok(())
    }

    /// Starts a non-blocking connect; `Event::Connect` or `Event::Close`
    /// (with `ECONNREFUSED`, …) reports how it ended.
    pub fn connect(&mut self, addr: SocketAddr, local: Option<SocketAddr>) -> io::Result<Token> {
        let stream = socket::tcp_connect(addr, local)?;
        let conn = Connection { connecting: true, peer: Some(addr), ..Default::default() };
        self.insert(Socket::Stream(stream), Kind::Stream(Box::new(conn)))
    }

    pub fn udp_bind(&mut self, opts: &BindOptions) -> io::Result<Token> {
        let socket = socket::udp_bind(opts)?;
        self.insert(Socket::Datagram(socket), Kind::Datagram)
    }

    fn datagram(&mut self, token: Token) -> io::Result<&mut mio::net::UdpSocket> {
        match &mut self.entry(token)?.socket {
            Socket::Datagram(s) => Ok(s),
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a UDP socket")),
        }
    }

    /// Sends one datagram now; a full send buffer is `WouldBlock`.
    pub fn send_to(&mut self, token: Token, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.datagram(token)?.send_to(data, to)
    }

    /// Sends on a connected UDP socket.
    pub fn send(&mut self, token: Token, data: &[u8]) -> io::Result<usize> {
        self.datagram(token)?.send(data)
    }

    /// Fixes the peer of a UDP socket: `send` goes there and only its
    /// datagrams are received.
    pub fn udp_connect(&mut self, token: Token, to: SocketAddr) -> io::Result<()> {
        self.datagram(token)?.connect(to)
    }

    /// Undoes [`Reactor::udp_connect`].
    #[cfg(unix)]
    pub fn udp_disconnect(&mut self, token: Token) -> io::Result<()> {
        socket::udp_disconnect(self.datagram(token)?)
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

    /// Bytes waiting in the connection's write queue.
    pub fn queued(&mut self, token: Token) -> io::Result<usize> {
        Ok(self.stream(token)?.1.queue.len())
    }

    /// Writes now what the kernel takes and queues the rest; returns the
    /// queued total (0: all sent). A write to a connection that already has
    /// bytes queued fails with `ENOBUFS`, writing nothing, if the queue
    /// could pass `write_queue_cap`; one write to an empty queue is always
    /// taken, however large, so the queue stays below the cap plus one
    /// write (memory the caller already held).
    pub fn write(&mut self, token: Token, data: &[u8]) -> io::Result<usize> {
        let (stream, conn) = self.writable_stream(token, data.len())?;
        // Nothing watches for writable until a queue meets a full buffer.
        let mut unwatched = conn.queue.is_empty();
        if std::mem::take(&mut conn.corked) {
            // Corked bytes go first, and now: this write is not corked.
            conn.queue.flush(stream)?;
            unwatched = true;
        }
        let direct = if conn.queue.is_empty() && !conn.connecting { write_now(stream, data)? } else { 0 };
        let rest = &data[direct..];
        if !rest.is_empty() {
            conn.queue.push(rest);
        }
        let queued = conn.queue.len();
        // A caller told that bytes wait is told when they are gone.
        conn.want_drain |= queued > 0;
        if unwatched && queued > 0 {
            self.sync_interest(token)?;
        }
        Ok(queued)
    }

    /// Queues `data` without trying to send it; every corked connection is
    /// flushed by [`Reactor::uncork`] (or the next turn), with one send for
    /// all that was corked. A fan-out of many small messages in one batch
    /// costs a syscall per connection, not per message. Returns the bytes
    /// held back by the kernel: the queue's length once a send met a full
    /// buffer, 0 while it is only corked (nothing was refused yet, however
    /// much one batch corked). The cap applies as for [`Reactor::write`].
    pub fn write_corked(&mut self, token: Token, data: &[u8]) -> io::Result<usize> {
        let (_, conn) = self.writable_stream(token, data.len())?;
        // A queue already waiting for the kernel (or a connect) is flushed
        // when the socket turns writable, as for any write.
        let newly_corked = conn.queue.is_empty() && !conn.connecting;
        conn.corked |= newly_corked;
        conn.queue.push(data);
        let held_back = if conn.corked { 0 } else { conn.queue.len() };
        if newly_corked {
            self.corked.push(token);
            if self.corked.len() == 1 {
                // A fan-out from outside a turn (a timer) still goes out soon.
                self.backend.waker().wake()?;
            }
        }
        Ok(held_back)
    }

    /// Sends what was corked. What the kernel refuses waits for writable;
    /// a failure is reported by the next turn, as a `Close` with the error.
    pub fn uncork(&mut self) {
        let mut corked = std::mem::take(&mut self.corked);
        for token in corked.drain(..) {
            let Ok((stream, conn)) = self.stream(token) else { continue };
            if !std::mem::take(&mut conn.corked) {
                continue;
            }
            let flushed = conn.flush(stream);
            let (finished, refused) = (conn.finished(), !conn.queue.is_empty());
            // What the kernel refused waits for writable, as for any write.
            match flushed.and_then(|()| if refused { self.sync_interest(token) } else { Ok(()) }) {
                Err(error) => {
                    if let Ok((_, conn)) = self.stream(token) {
                        conn.failed = Some(error);
                    }
                    self.carry.push(token);
                }
                Ok(()) if finished => self.carry.push(token),
                Ok(()) => {}
            }
        }
        // Keep the allocation for the next batch.
        self.corked = corked;
    }

    /// The connection, if it may still be written and `len` more bytes fit:
    /// with bytes already queued, a write that could pass the cap fails
    /// with `ENOBUFS` before any byte goes out (what the kernel took
    /// cannot be taken back, and the caller is told nothing was written).
    fn writable_stream(&mut self, token: Token, len: usize) -> io::Result<(&mut mio::net::TcpStream, &mut Connection)> {
        let cap = self.config.write_queue_cap;
        let (stream, conn) = self.stream(token)?;
        if conn.ending || conn.write_closed {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "write after end"));
        }
        if !conn.queue.is_empty() && conn.queue.len() + len > cap {
            return Err(io::Error::from_raw_os_error(libc::ENOBUFS));
        }
        Ok((stream, conn))
    }

    /// Half-closes: FIN goes out after the queued bytes. The socket closes
    /// (an `Event::Close`) once the peer's FIN has come too.
    pub fn shutdown(&mut self, token: Token) -> io::Result<()> {
        let (stream, conn) = self.stream(token)?;
        conn.ending = true;
        if conn.queue.is_empty() && !conn.connecting && !conn.write_closed {
            stream.shutdown(std::net::Shutdown::Write)?;
            conn.write_closed = true;
            if conn.finished() {
                // Both sides done; report the close in the next turn.
                self.carry.push(token);
                self.backend.waker().wake()?;
            }
        }
        Ok(())
    }

    /// Stops reading: the kernel buffer fills and the peer is slowed down.
    pub fn pause(&mut self, token: Token) -> io::Result<()> {
        self.stream(token)?.1.paused = true;
        self.sync_interest(token)
    }

    pub fn resume(&mut self, token: Token) -> io::Result<()> {
        let conn = self.stream(token)?.1;
        if !conn.paused {
            return Ok(());
        }
        conn.paused = false;
        self.sync_interest(token)?;
        // Input that arrived while paused raises no new edge.
        self.carry.push(token);
        self.backend.waker().wake()
    }

    pub fn set_no_delay(&mut self, token: Token, on: bool) -> io::Result<()> {
        socket::set_stream_options(self.stream(token)?.0, Some(on), None)
    }

    /// `None` turns keep-alive off; `Some(idle)` probes after `idle`.
    pub fn set_keep_alive(&mut self, token: Token, idle: Option<Duration>) -> io::Result<()> {
        socket::set_stream_options(self.stream(token)?.0, None, Some(idle))
    }

    /// One turn of the loop: waits at most `timeout` for readiness, does
    /// every ready accept, connect, read and flush, and appends what
    /// happened to `events`.
    pub fn turn(&mut self, space: &mut ReadSpace<'_>, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        self.uncork();
        let timeout = if self.carry.is_empty() { timeout } else { Some(Duration::ZERO) };
        let mut ready = std::mem::take(&mut self.readiness);
        ready.clear();
        self.backend.wait(&mut ready, timeout)?;
        ready.extend(self.carry.drain(..).map(|token| Readiness { token, readable: true, writable: false, error: false, hup: true }));
        // One dispatch per socket per turn, so none reads past its budget:
        // a carried socket is reported again by level-triggered backends
        // (and may get a new edge), and mio's stash can repeat a token.
        ready.sort_unstable_by_key(|r| r.token);
        ready.dedup_by(|later, kept| {
            if later.token != kept.token {
                return false;
            }
            kept.readable |= later.readable;
            kept.writable |= later.writable;
            kept.error |= later.error;
            kept.hup |= later.hup;
            true
        });
        for r in ready.iter().copied() {
            self.dispatch(r, space, events);
        }
        self.readiness = ready;
        Ok(())
    }

    fn dispatch(&mut self, r: Readiness, space: &mut ReadSpace<'_>, events: &mut Vec<Event>) {
        let Some(entry) = self.entries.get_mut(r.token.0).and_then(Option::as_mut) else { return };
        match entry.kind {
            Kind::Listener { no_delay, .. } => self.accept(r.token, no_delay, events),
            Kind::Datagram => self.receive(r.token, space, events),
            Kind::Stream(_) => {
                if let Err(error) = self.stream_ready(r, space, events) {
                    self.fail(r.token, error, events);
                }
            }
        }
    }

    fn fail(&mut self, token: Token, error: io::Error, events: &mut Vec<Event>) {
        if self.close(token).is_ok() {
            events.push(Event::Close { conn: token, error: Some(error) });
        }
    }

    fn accept(&mut self, token: Token, no_delay: bool, events: &mut Vec<Event>) {
        for _ in 0..self.config.accept_budget {
            let Ok(Entry { socket: Socket::Listener(listener), .. }) = self.entry(token) else { return };
            match listener.accept() {
                Ok((stream, peer)) => {
                    // Accepted sockets inherit nothing useful; a failure
                    // here only costs latency.
                    let _ = stream.set_nodelay(no_delay);
                    let conn = Connection { peer: Some(peer), ..Default::default() };
                    match self.insert(Socket::Stream(stream), Kind::Stream(Box::new(conn))) {
                        Ok(conn) => events.push(Event::Accept { listener: token, conn }),
                        Err(error) => events.push(Event::AcceptError { listener: token, error }),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The peer gave up before we got to it: nothing to report.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(error) => {
                    if is_fd_exhaustion(&error) {
                        // Level-triggered backends would report the same
                        // pending connection forever: stop listening for
                        // it until an fd is free.
                        if let Ok(Entry { kind: Kind::Listener { accept_paused, .. }, .. }) = self.entry(token) {
                            *accept_paused = true;
                        }
                        let _ = self.sync_interest(token);
                    }
                    events.push(Event::AcceptError { listener: token, error });
                    return;
                }
            }
        }
        self.carry.push(token);
    }

    fn receive(&mut self, token: Token, space: &mut ReadSpace<'_>, events: &mut Vec<Event>) {
        for _ in 0..self.config.datagram_budget {
            if space.free() < MAX_DATAGRAM {
                self.carry.push(token);
                return;
            }
            let Ok(socket) = self.datagram(token) else { return };
            let pos = space.pos;
            match socket.recv_from(&mut space.buf[pos..pos + MAX_DATAGRAM]) {
                Ok((len, from)) => {
                    space.pos += len;
                    events.push(Event::Message { socket: token, offset: pos, len, from });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ICMP errors (port unreachable) surface here on Linux;
                // they say nothing about the next datagram.
                Err(_) => {}
            }
        }
        self.carry.push(token);
    }

    fn stream_ready(&mut self, r: Readiness, space: &mut ReadSpace<'_>, events: &mut Vec<Event>) -> io::Result<()> {
        let token = r.token;
        if let Some(error) = self.stream(token)?.1.failed.take() {
            return Err(error);
        }
        let entry = self.entry(token)?;
        if r.error || matches!(&entry.kind, Kind::Stream(c) if c.connecting && (r.writable || r.readable)) {
            if let Some(error) = entry.socket.take_error()? {
                return Err(error);
            }
        }
        let (stream, conn) = self.stream(token)?;
        if conn.connecting {
            if !r.writable && !r.readable {
                return Ok(());
            }
            match stream.peer_addr() {
                Ok(peer) => conn.peer = Some(peer),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return Err(e),
            }
            conn.connecting = false;
            events.push(Event::Connect { conn: token });
            self.sync_interest(token)?;
            self.flush(token, events)?;
        } else {
            if r.writable {
                self.flush(token, events)?;
            }
            if r.readable {
                self.read(token, r.hup, space, events)?;
            }
        }
        let (_, conn) = self.stream(token)?;
        if conn.finished() {
            self.close(token)?;
            events.push(Event::Close { conn: token, error: None });
        }
        Ok(())
    }

    /// Sends queued bytes; sends the FIN `shutdown` asked for once empty.
    fn flush(&mut self, token: Token, events: &mut Vec<Event>) -> io::Result<()> {
        let (stream, conn) = self.stream(token)?;
        if conn.queue.is_empty() && !conn.want_drain && !conn.ending {
            return Ok(());
        }
        conn.flush(stream)?;
        if !conn.queue.is_empty() {
            return Ok(());
        }
        if std::mem::take(&mut conn.want_drain) {
            events.push(Event::Drain { conn: token });
        }
        self.sync_interest(token)
    }

    fn read(&mut self, token: Token, hup: bool, space: &mut ReadSpace<'_>, events: &mut Vec<Event>) -> io::Result<()> {
        let mut budget = self.config.read_budget;
        let (stream, conn) = self.stream(token)?;
        while conn.wants_read() {
            if budget == 0 || space.free() < MIN_READ {
                self.carry.push(token);
                return Ok(());
            }
            let want = budget.min(space.free());
            let pos = space.pos;
            match stream.read(&mut space.buf[pos..pos + want]) {
                Ok(0) => {
                    conn.read_closed = true;
                    events.push(Event::End { conn: token });
                    return self.sync_interest(token);
                }
                Ok(n) => {
                    space.pos += n;
                    budget -= n;
                    events.push(Event::Data { conn: token, offset: pos, len: n });
                    // A short read drained the socket: the next byte to
                    // arrive raises a new edge, so skip the WouldBlock read
                    // (unless a FIN is known to be waiting behind it).
                    if n < want && !hup {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
