//! TCP connections: connecting, reading into the slab, writing now or
//! queueing, corking, half-closing, backpressure.

use std::io::{self, Read};
use std::net::SocketAddr;

use super::{Entry, Event, Kind, Reactor, ReadSpace};
use crate::backend::{Readiness, Token};
use crate::connection::{write_now, Connection, FileSend, Flushed};
use crate::socket::{self, KeepAlive, Socket, Stream};
use crate::stats::IoCount;

/// Below this much free slab a read is put off to the next turn.
const MIN_READ: usize = 2048;
/// A lean connection's read a turn: libuv's read size.
pub const LEAN_READ: usize = 64 * 1024;

/// How a read pass ended.
#[derive(PartialEq, Eq)]
pub(super) enum ReadEnd {
    /// The kernel has nothing more now (or reading is paused or over).
    Drained,
    /// The budget or the slab ran out first: the socket is carried.
    Carried,
}

/// Whether a read of `n` of the `want` bytes asked for emptied the socket,
/// so the `WouldBlock` read that would prove it can be skipped: the next
/// byte to arrive raises a new edge (epoll, kqueue) or a new level (poll,
/// select) — unless a FIN is known to wait behind it (`hup`). Not on
/// Windows: mio re-arms its IOCP poll only when a call returns WouldBlock.
pub(super) fn drained_by(n: usize, want: usize, hup: bool) -> bool {
    n < want && !hup && !cfg!(windows)
}

/// [`drained_by`] for a stream. Not for a Unix-domain one: Linux ends its
/// read at a message that carries fds (`SCM_RIGHTS`, which `read` drops)
/// with more bytes queued behind it, and those raise no new edge.
pub(super) fn stream_drained_by(stream: &Stream, n: usize, want: usize, hup: bool) -> bool {
    matches!(stream, Stream::Tcp(_)) && drained_by(n, want, hup)
}

/// Why a ready connection broke: the error, and whether sending met it.
pub(super) struct Failure {
    pub error: io::Error,
    pub sending: bool,
}

impl Failure {
    fn sending(error: io::Error) -> Self {
        Failure { error, sending: true }
    }
}

/// An error met reading, connecting or registering: not a send's.
impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure { error, sending: false }
    }
}

impl Reactor {
    pub(super) fn stream(&mut self, token: Token) -> io::Result<(&mut Stream, &mut Connection)> {
        match self.entry(token)? {
            Entry { socket: Socket::Stream(s), kind: Kind::Stream(c), .. } => Ok((s, c)),
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a connection")),
        }
    }

    /// Starts a non-blocking connect; `Event::Connect` or `Event::Close`
    /// (with `ECONNREFUSED`, …) reports how it ended.
    pub fn connect(&mut self, addr: SocketAddr, local: Option<SocketAddr>) -> io::Result<Token> {
        let stream = socket::tcp_connect(addr, local, |fd| self.backend.can_watch(fd))?;
        let conn = Connection::connecting();
        self.insert(Socket::Stream(Stream::Tcp(stream)), Kind::Stream(conn))
    }

    /// Starts a non-blocking connect to a Unix-domain socket (IPC); reported
    /// as for [`Reactor::connect`].
    #[cfg(unix)]
    pub fn connect_unix(&mut self, path: &str) -> io::Result<Token> {
        let stream = socket::unix_connect(path, |fd| self.backend.can_watch(fd))?;
        let conn = Connection::connecting();
        self.insert(Socket::Stream(stream), Kind::Stream(conn))
    }

    /// Closes a TCP connection abortively: queued bytes are dropped and the
    /// peer gets RST (its reads fail with `ECONNRESET`). No `Close` event.
    pub fn reset(&mut self, token: Token) -> io::Result<()> {
        // Closed whatever SO_LINGER says, as libuv's uv_tcp_close_reset: macOS
        // and Solaris refuse it (EINVAL) on a socket shut down both ways.
        let linger = self.stream(token)?.0.set_linger_zero();
        self.close(token)?;
        match linger {
            Err(e) if e.kind() != io::ErrorKind::InvalidInput => Err(e),
            _ => Ok(()),
        }
    }

    /// Bytes not yet sent: the write queue and the files queued by
    /// [`Reactor::send_file`] (with the bytes written after them).
    pub fn queued(&mut self, token: Token) -> io::Result<usize> {
        Ok(self.stream(token)?.1.pending())
    }

    /// [`Reactor::queued`], and if bytes wait, a `Drain` once they are out —
    /// as a [`Reactor::write`] that queued would ask: for bytes queued by
    /// [`Reactor::write_corked`] (which asks for none), or to ask again after
    /// a `Drain` that a later write made stale.
    pub fn want_drain(&mut self, token: Token) -> io::Result<usize> {
        let conn = self.stream(token)?.1;
        conn.want_drain |= !conn.output_idle();
        Ok(conn.pending())
    }

    /// A `Drain` next turn, queued bytes or none: a writer handing over a
    /// large buffer a piece at a time writes the next piece there, in the
    /// turn's writable dispatch after the socket's read, as libuv writes on
    /// a writable event (a reset is met by that read, not by the write).
    pub fn drain_next_turn(&mut self, token: Token) -> io::Result<()> {
        self.stream(token)?.1.want_drain = true;
        self.flush_soon.push(token);
        Ok(())
    }

    /// Writes now what the kernel takes and queues the rest; returns the
    /// queued total (0: all sent). A write to a connection that already has
    /// bytes queued fails with `ENOBUFS`, writing nothing, if the queue
    /// could pass `write_queue_cap`; one write to an empty queue is always
    /// taken, however large, so the queue stays below the cap plus one
    /// write (memory the caller already held).
    pub fn write(&mut self, token: Token, data: &[u8]) -> io::Result<usize> {
        let mut count = IoCount::default();
        let result = self.write_counted(token, data, &mut count);
        self.counters.writes.add(count);
        result
    }

    /// One write(2) of `data`, when nothing waits before it (no queue, no
    /// corked bytes, connected); returns what the kernel took, 0 for none or
    /// a write that must wait its turn. Nothing is queued: the caller hands
    /// the rest over as it chooses, where libuv's `uv_write` makes one
    /// writev of the whole buffer in the call and writes the rest on
    /// writable events. (The Node drop-in's first step of a large write:
    /// the kernel takes as much in the call as node:net's, not more.)
    pub fn write_once(&mut self, token: Token, data: &[u8]) -> io::Result<usize> {
        let (stream, conn) = self.writable_stream(token, 0)?;
        if !conn.output_idle() || conn.corked || conn.connecting {
            return Ok(0);
        }
        let taken = loop {
            match std::io::Write::write(stream, data) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 0,
                Err(e) => return Err(e),
            }
        };
        let mut count = IoCount::default();
        count.one(taken);
        self.counters.writes.add(count);
        Ok(taken)
    }

    fn write_counted(&mut self, token: Token, data: &[u8], count: &mut IoCount) -> io::Result<usize> {
        let (stream, conn) = self.writable_stream(token, data.len())?;
        // Nothing watches for writable until a queue meets a full buffer.
        let mut unwatched = conn.output_idle();
        // Corked bytes stopped at a turn's bytes (`WRITE_TURN`), the socket writable still.
        let mut more = false;
        if std::mem::take(&mut conn.corked) {
            // Corked bytes go first, and now: this write is not corked.
            more = conn.queue.flush(stream, count)?;
            unwatched = true;
        }
        let direct = if conn.output_idle() && !conn.connecting { write_now(stream, data, count)? } else { 0 };
        let rest = &data[direct..];
        if !rest.is_empty() {
            // Behind the files being sent, if any.
            conn.enqueue(rest);
        }
        let queued = conn.pending();
        // A caller told that bytes wait is told when they are gone.
        conn.want_drain |= queued > 0;
        if more {
            // No readiness edge will come for it: the next turn's flush goes on.
            self.flush_soon.push(token);
        }
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
        // A queue already waiting for the kernel (or a connect, or a file)
        // is flushed when the socket turns writable, as for any write.
        let newly_corked = conn.output_idle() && !conn.connecting;
        conn.corked |= newly_corked;
        conn.enqueue(data);
        let held_back = if conn.corked { 0 } else { conn.pending() };
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
            let mut count = IoCount::default();
            // Corked bytes have no file behind them (`send_file` uncorks).
            let flushed = conn.flush(stream, &mut count, u64::MAX, |_| {});
            let yielded = matches!(flushed, Ok(Flushed::Yielded));
            let flushed = flushed.map(drop);
            let (finished, refused) = (conn.finished(), !conn.output_idle());
            // All out, and an end waits for it: the turn's flush reports Drain.
            let drained = !refused && conn.want_drain;
            self.counters.writes.add(count);
            if yielded {
                // Stopped at a turn's bytes, writable still: no edge will come.
                self.flush_soon.push(token);
            }
            // What the kernel refused waits for writable, as for any write.
            match flushed.and_then(|()| if refused { self.sync_interest(token) } else { Ok(()) }) {
                Err(error) => {
                    if let Ok((_, conn)) = self.stream(token) {
                        conn.set_failed(error);
                    }
                    self.carry.push(token);
                }
                Ok(()) => {
                    if drained {
                        self.flush_soon.push(token);
                    }
                    if finished {
                        self.carry.push(token);
                    }
                }
            }
        }
        // Keep the allocation for the next batch.
        self.corked = corked;
    }

    /// The connection, if it may still be written and `len` more bytes fit:
    /// with bytes already queued, a write that could pass the cap fails
    /// with `ENOBUFS` before any byte goes out (what the kernel took
    /// cannot be taken back, and the caller is told nothing was written).
    fn writable_stream(&mut self, token: Token, len: usize) -> io::Result<(&mut Stream, &mut Connection)> {
        let cap = self.config.write_queue_cap;
        let (stream, conn) = self.stream(token)?;
        if conn.ending || conn.write_closed {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "write after end"));
        }
        let buffered = conn.buffered();
        if buffered > 0 && buffered + len > cap {
            return Err(io::Error::from_raw_os_error(socket::os_errno::ENOBUFS));
        }
        Ok((stream, conn))
    }

    /// Sends `len` bytes of `file` from `offset` after everything written
    /// so far; later writes go after it. `len` `None`: to the end (a
    /// regular file's size now; a pipe's or FIFO's EOF — such a file has
    /// no offset: one asked of it is `ESPIPE`). The file is sent by the
    /// turns that find the socket writable — by the kernel (`sendfile` on
    /// Linux, macOS, FreeBSD) where it can, else by a read/write loop —
    /// never read whole into memory, and closed once sent; an
    /// `Event::FileSent` reports each file, in order, with the bytes sent
    /// (fewer than `len` if the file is shorter by then). An error reading
    /// the file or writing the socket closes the connection (an
    /// `Event::Close` with the error).
    pub fn send_file(&mut self, token: Token, file: std::fs::File, offset: u64, len: Option<u64>) -> io::Result<()> {
        let file = FileSend::new(file, offset, len)?;
        let (_, conn) = self.writable_stream(token, 0)?;
        conn.push_file(file);
        // Corked bytes go out with the file, by the same flush.
        conn.corked = false;
        self.sync_interest(token)?;
        // The socket may be writable already (no edge would come): the
        // next turn starts sending.
        self.flush_soon.push(token);
        self.backend.waker().wake()
    }

    /// Half-closes: FIN goes out after the queued bytes. The socket closes
    /// (an `Event::Close`) once the peer's FIN has come too.
    ///
    /// A connection this turn closed in order has sent its FIN: ending it
    /// is done, as `end()` on a finished socket is in node:net. (A pipe
    /// passes an end on in Rust; the owner, told of the end afterwards,
    /// may pass it on again to a partner that closed meanwhile.)
    pub fn shutdown(&mut self, token: Token) -> io::Result<()> {
        if self.closed_in_turn.get(&token).is_some_and(|c| c.orderly) {
            return Ok(());
        }
        let (stream, conn) = self.stream(token)?;
        conn.ending = true;
        // Whoever waits for the FIN hears `Drain` once the queue is out, even
        // when only a file or corked bytes (no write) were queued.
        conn.want_drain |= !conn.output_idle();
        if conn.output_idle() && !conn.connecting && !conn.write_closed {
            stream.shutdown_write()?;
            conn.write_closed = true;
            if conn.finished() {
                // Both sides done; report the close in the next turn.
                self.carry.push(token);
                self.backend.waker().wake()?;
            }
        }
        Ok(())
    }

    /// Reads at most [`LEAN_READ`] from the connection a turn (`on`), or
    /// up to [`Config::read_budget`]: for an owner that takes input a read
    /// at a time and may stop after any of them (a stream not flowing, as
    /// libuv's 64 KiB reads stop at the first a paused socket's buffer
    /// refuses), so what it must hold past its stop stays one read.
    pub fn set_lean_reads(&mut self, token: Token, on: bool) -> io::Result<()> {
        self.stream(token)?.1.lean = on;
        Ok(())
    }

    pub fn set_no_delay(&mut self, token: Token, on: bool) -> io::Result<()> {
        self.stream(token)?.0.set_options(Some(on), None)
    }

    /// The connection's type-of-service byte (`IP_TOS`/`IPV6_TCLASS`), set
    /// first if `set`; `Unsupported` for a Unix-domain stream.
    pub fn type_of_service(&mut self, token: Token, set: Option<u8>) -> io::Result<u32> {
        self.stream(token)?.0.type_of_service(set)
    }

    pub fn set_keep_alive(&mut self, token: Token, keep_alive: KeepAlive) -> io::Result<()> {
        self.stream(token)?.0.set_options(None, Some(keep_alive))
    }

    pub(super) fn stream_ready(&mut self, r: Readiness, space: &mut ReadSpace<'_>, events: &mut Vec<Event>) -> Result<(), Failure> {
        let token = r.token;
        let (stream, conn) = self.stream(token)?;
        // A corked send that failed outside the turn.
        if let Some(error) = conn.take_failed() {
            return Err(Failure::sending(error));
        }
        // A watched pipe's readiness comes as the connection's: a flush asks it.
        let watching = conn.watching();
        conn.hung_up |= r.hung_up;
        if conn.connecting {
            if !r.writable && !r.readable && !r.error {
                return Ok(());
            }
            if let Some(error) = stream.take_error()? {
                return Err(error.into());
            }
            if !stream.connected()? {
                return Ok(());
            }
            conn.connecting = false;
            events.push(Event::Connect { conn: token });
            self.sync_interest(token)?;
            self.flush(token, events).map_err(Failure::sending)?;
        } else {
            let partner = conn.pipe();
            if conn.held && (r.error || r.ended) {
                // Watched for errors only (see `Connection::wants_errors`).
                match stream.take_error()? {
                    // Reset mid-input: the pair breaks now, as it would
                    // reading (the partner takes none of that input).
                    Some(error) if error.kind() != io::ErrorKind::BrokenPipe => return Err(error.into()),
                    // A reset after its FIN (Linux says `EPIPE`), or the
                    // FIN alone: the input is whole and goes on once the
                    // partner drains, then its end, as a half-closed peer's.
                    Some(_) => conn.peer_ended = true,
                    None => conn.peer_ended |= r.ended,
                }
                self.sync_interest(token)?;
            }
            // Read first, even (above all) when an error is pending: what the
            // peer sent before its FIN or RST reaches the owner, then the
            // end, then the error (a read or a flush meets it), as in libuv.
            if r.readable || r.error {
                let end = match partner {
                    Some(partner) => self.relay(token, partner, r.hup || r.error, events)?,
                    None => self.read(token, r.hup || r.error, space, events)?,
                };
                if end == ReadEnd::Carried && r.error {
                    // The rest of the input comes next turn, before the error.
                    return Ok(());
                }
            }
            if r.writable || r.error || watching {
                self.flush(token, events).map_err(Failure::sending)?;
            }
        }
        let (_, conn) = self.stream(token)?;
        if conn.finished() {
            self.close_reported(token, None, false, events);
        }
        Ok(())
    }

    /// Sends queued bytes and files (reporting each file sent); sends the
    /// FIN `shutdown` asked for once empty.
    fn flush(&mut self, token: Token, events: &mut Vec<Event>) -> io::Result<()> {
        // At least a byte a turn: a zero budget would spin without sending.
        let budget = self.config.send_file_budget.max(1) as u64;
        // A watched pipe is asked again now (and watched again if still empty).
        self.unwatch_source(token);
        let (stream, conn) = self.stream(token)?;
        if conn.output_idle() && !conn.want_drain && !conn.ending {
            return Ok(());
        }
        let mut count = IoCount::default();
        let before = events.len();
        let flushed = conn.flush(stream, &mut count, budget, |sent| events.push(Event::FileSent { conn: token, sent }));
        self.counters.writes.add(count);
        if events.len() > before {
            // A file sent is closed: its fd is room for an accept that met
            // EMFILE, as a closed socket's is.
            self.resume_paused_listeners();
        }
        match flushed? {
            Flushed::Yielded => {
                // Still writable: no new edge will come, so the next turn goes on.
                self.flush_soon.push(token);
                return Ok(());
            }
            Flushed::Starved => return self.watch_source(token),
            Flushed::Done => {}
        }
        let (_, conn) = self.stream(token)?;
        if !conn.output_idle() {
            // The socket refused: watch it (again, after a pipe was watched).
            return self.sync_interest(token);
        }
        if std::mem::take(&mut conn.want_drain) {
            events.push(Event::Drain { conn: token });
        }
        match conn.pipe() {
            Some(partner) => self.release(partner)?,
            // Unjoined with spliced bytes left (its partner closed): they
            // are sent, and its pipe goes (see `unlink`).
            #[cfg(target_os = "linux")]
            None if conn.kernel_pipe().is_some() => self.spare_pipe(token),
            None => {}
        }
        self.sync_interest(token)
    }

    /// Watches the empty pipe that `token` is sending, to flush again once
    /// it turns readable. Where the backend cannot (`select`: an fd past
    /// `FD_SETSIZE`), the pipe is asked again each turn, and at least every
    /// [`super::SOURCE_RETRY`].
    #[cfg(unix)]
    fn watch_source(&mut self, token: Token) -> io::Result<()> {
        let Some(fd) = self.stream(token)?.1.starved_source() else { return Ok(()) };
        if self.backend.watch_fd(fd, token).is_err() {
            // Still marked watched, so that the socket is not watched for
            // writable meanwhile (select would report it so at every wait).
            self.poll_sources.push(token);
        }
        // A waiter blocked on the old interest set (or with no limit) must look again.
        self.interest_changes += 1;
        self.sync_interest(token)
    }

    /// Only Unix sends pipes; elsewhere a source is never starved.
    #[cfg(not(unix))]
    fn watch_source(&mut self, token: Token) -> io::Result<()> {
        self.flush_soon.push(token);
        Ok(())
    }

    /// Stops watching the pipe `token` is sending, if it was watched.
    pub(super) fn unwatch_source(&mut self, token: Token) {
        #[cfg(unix)]
        if let Ok((_, conn)) = self.stream(token) {
            if let Some(fd) = conn.take_watched() {
                // Fails only if the backend could not watch it (it was
                // polled instead): nothing to undo.
                let _ = self.backend.unwatch_fd(fd);
                self.interest_changes += 1;
            }
        }
        #[cfg(not(unix))]
        let _ = token;
    }

    /// Reads until the kernel has no more, the peer's FIN, or the budget;
    /// `hup`: keep reading past a short read (a FIN or error waits behind it).
    fn read(&mut self, token: Token, hup: bool, space: &mut ReadSpace<'_>, events: &mut Vec<Event>) -> io::Result<ReadEnd> {
        let mut count = IoCount::default();
        let result = self.read_counted(token, hup, space, events, &mut count);
        self.counters.reads.add(count);
        result
    }

    fn read_counted(
        &mut self,
        token: Token,
        hup: bool,
        space: &mut ReadSpace<'_>,
        events: &mut Vec<Event>,
        count: &mut IoCount,
    ) -> io::Result<ReadEnd> {
        let full = self.config.read_budget;
        let (stream, conn) = self.stream(token)?;
        // Our FIN out, the peer's bytes may have its FIN behind them (both
        // shut: a hang-up, whose EOF libuv reads with them), which select
        // cannot tell: read on past a short read.
        let hup = hup || conn.write_closed;
        let full = if conn.lean { full.min(LEAN_READ) } else { full };
        let mut budget = full;
        while conn.wants_read() {
            if budget == 0 || space.free() < MIN_READ {
                let served = budget < full;
                self.carry_over(token, served);
                return Ok(ReadEnd::Carried);
            }
            let want = budget.min(space.free());
            let pos = space.pos;
            let read = stream.read(&mut space.buf[pos..pos + want]);
            if let Ok(n) = read {
                count.one(n);
            }
            match read {
                Ok(0) => {
                    conn.read_closed = true;
                    events.push(conn.end_event(token));
                    self.sync_interest(token)?;
                    return Ok(ReadEnd::Drained);
                }
                Ok(n) => {
                    space.pos += n;
                    budget -= n;
                    events.push(Event::Data { conn: token, offset: pos, len: n });
                    if stream_drained_by(stream, n, want, hup) {
                        return Ok(ReadEnd::Drained);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.counters.empty_reads += 1;
                    return Ok(ReadEnd::Drained);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ReadEnd::Drained)
    }
}
