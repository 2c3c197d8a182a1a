//! Pairs of connections joined in the reactor ([`Reactor::pipe`]): what one
//! side reads is written to the other in the same turn, with no call into
//! the owner per chunk. Backpressure holds a side's reading while its
//! partner's queue is over [`Config::pipe_high_water`](super::Config) (or
//! has no room left under its `write_queue_cap`); a FIN
//! is passed on as a FIN (after the queued bytes), a broken side resets the
//! other. On Linux, bulk input moves with `splice(2)` through a kernel pipe
//! per direction when the pipe asks for it ([`PipeOptions::splice`]), no
//! copy through user space.

use std::io::{self, Read};

use super::stream::{stream_drained_by, ReadEnd};
use super::{Event, Reactor};
use crate::backend::Token;
use crate::stats::IoCount;

/// How [`Reactor::pipe_with`] joins two connections.
#[derive(Clone, Copy, Debug, Default)]
pub struct PipeOptions {
    /// Linux: relay bulk input (reads of 8 KiB or more, or that filled
    /// their chunk) with `splice(2)` through a kernel pipe per direction,
    /// not through user space; small chunks are still copied. Ignored
    /// elsewhere. See [`Config::splice`](super::Config) for what it costs.
    pub splice: bool,
}

/// Bytes read from a piped connection at a time.
const RELAY_CHUNK: usize = 64 * 1024;

/// A relayed read this long makes the next one a splice even though it
/// did not fill its chunk: a short splice costs one more call (a copying
/// read to prove the socket drained), which two copies of 8 KiB outweigh.
/// Proxy echo at pipeline 1, msgs per proxy CPU-second, splicing from this
/// size against only after full chunks: 16 KiB +27 %, 8 KiB +12 %, 4 KiB
/// +4 % (the upstream then shared the proxy's core; apart, 16 KiB spliced
/// against copied: +4–12 %).
#[cfg(target_os = "linux")]
const SPLICE_FROM: usize = 8 * 1024;

impl Reactor {
    /// Joins two connections: from now on each one's input is written to
    /// the other in Rust, and the owner hears no `Data` for them (only
    /// `End`, `Close`, and `Drain` for its own writes). An end of input on
    /// one side shuts down the other's write side once its queue is sent,
    /// so a half-close passes through — an end read before the join too, in
    /// the next turn (after what the owner writes while handling the batch
    /// that read it: the bytes before that end); an error on one side resets the
    /// other, and both are reported closed with that error. Closing one
    /// side with [`Reactor::close`] unjoins the other, which then reports
    /// its input again. A connection still connecting may be joined: what
    /// its partner sends waits in its queue.
    ///
    /// Fails with `InvalidInput` if either is not a connection, both are
    /// the same, or either is already joined. Splices bulk input if
    /// [`Config::splice`](super::Config) says so (see [`Reactor::pipe_with`]).
    pub fn pipe(&mut self, a: Token, b: Token) -> io::Result<()> {
        let options = PipeOptions { splice: self.config.splice };
        self.pipe_with(a, b, options)
    }

    /// [`Reactor::pipe`], with this pair's own options.
    pub fn pipe_with(&mut self, a: Token, b: Token, options: PipeOptions) -> io::Result<()> {
        let joinable = |r: &mut Reactor, t: Token| -> io::Result<()> {
            match r.stream(t)?.1.pipe() {
                None => Ok(()),
                Some(_) => Err(io::Error::new(io::ErrorKind::InvalidInput, "connection already piped")),
            }
        };
        if a == b {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a connection cannot be piped to itself"));
        }
        joinable(self, a)?;
        joinable(self, b)?;
        self.stream(a)?.1.set_pipe(b, options.splice);
        self.stream(b)?.1.set_pipe(a, options.splice);
        self.joined += 2;
        // Input that came before the join raises no new edge.
        self.carry.extend([a, b]);
        self.backend.waker().wake()
    }

    /// Reads from `from` and writes to its partner `to`, within the read
    /// budget; holds `from` once `to`'s queue passes the high-water mark
    /// or has no room left under `write_queue_cap` (or, spliced, while `to`
    /// has not taken the pipe's bytes). Bulk input
    /// is spliced on Linux (see `splices`), the rest copied through
    /// `relay_buf`. `hup`: a FIN or error is known to wait behind the input.
    pub(super) fn relay(&mut self, from: Token, to: Token, hup: bool, events: &mut Vec<Event>) -> io::Result<ReadEnd> {
        let mut buf = std::mem::take(&mut self.relay_buf);
        buf.resize(RELAY_CHUNK, 0);
        let result = self.relay_with(from, to, hup, &mut buf, events);
        self.relay_buf = buf;
        result
    }

    fn relay_with(&mut self, from: Token, to: Token, hup: bool, buf: &mut [u8], events: &mut Vec<Event>) -> io::Result<ReadEnd> {
        let mut budget = self.config.read_budget;
        // After a short splice: the next read copies, to tell a drained
        // socket (short, or `WouldBlock`) from a full pipe.
        let mut confirm = false;
        loop {
            let (_, conn) = self.stream(from)?;
            if !conn.wants_read() {
                if conn.read_closed {
                    // An end read before the join (the join carries both
                    // sides here, a turn later) is passed on now, not in
                    // `pipe`: the owner, handling the batch that read it,
                    // may still write the bytes read before it.
                    return self.relay_shutdown(to).map(|()| ReadEnd::Drained);
                }
                return Ok(ReadEnd::Drained);
            }
            if budget == 0 {
                self.carry_over(from, true);
                return Ok(ReadEnd::Carried);
            }
            // No more than the partner's queue takes: a relayed write is
            // never refused for the cap (see `Reactor::write`), the side
            // is held instead until that queue drains.
            let room = self.room(to)?;
            if room == 0 {
                return self.hold(from);
            }
            let want = budget.min(buf.len()).min(room);
            let mut spliced = !confirm && self.splices(from, to);
            let mut read = if spliced { self.splice_in(from, to, want) } else { self.stream(from)?.0.read(&mut buf[..want]) };
            if spliced && matches!(&read, Ok(0)) | matches!(&read, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                // A splice stops at TCP urgent data as at the end of the
                // input (0 or EAGAIN): a copying read tells a drained socket
                // or a FIN from such a stop, and steps over the mark. The
                // pipe goes (an idle pair holds none); the bulk goes on, so
                // the next input is spliced at once.
                #[cfg(target_os = "linux")]
                self.spare_pipe(to);
                spliced = false;
                read = self.stream(from)?.0.read(&mut buf[..want]);
            }
            if let Ok(n) = read {
                self.counters.reads.one(n);
            }
            let (_, conn) = self.stream(from)?;
            let n = match read {
                Ok(0) => {
                    conn.read_closed = true;
                    events.push(conn.end_event(from));
                    self.sync_interest(from)?;
                    // The partner's FIN follows the bytes queued for it.
                    return self.relay_shutdown(to).map(|()| ReadEnd::Drained);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Drained after a splice: an idle pair holds no pipe.
                    #[cfg(target_os = "linux")]
                    self.spare_pipe(to);
                    self.counters.empty_reads += 1;
                    return Ok(ReadEnd::Drained);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                #[cfg(target_os = "linux")]
                Err(e) if spliced && e.raw_os_error() == Some(libc::EINVAL) => {
                    // This kernel cannot splice this socket: copy from now on.
                    self.stream(from)?.1.stop_splicing();
                    continue;
                }
                Err(e) => return Err(e),
            };
            budget -= n;
            conn.add_relayed(n);
            #[cfg(target_os = "linux")]
            conn.set_bulk(n == want || n >= SPLICE_FROM);
            confirm = spliced && n < want;
            #[cfg(target_os = "linux")]
            if !spliced && n < want {
                // Drained (a short read): an idle pair holds no pipe (two fds).
                self.spare_pipe(to);
            }
            self.counters.relayed += n as u64;
            if spliced {
                self.counters.spliced += n as u64;
            }
            let sent = if spliced { self.splice_out(to) } else { self.relay_write(to, &buf[..n]).map(drop) };
            if let Err(error) = sent {
                // The partner broke: it is reported with its error, and
                // this side is reset with it (see `close_reported`).
                self.close_reported(to, Some(error), true, events);
                return Ok(ReadEnd::Drained);
            }
            // Spliced bytes the partner has not taken hold this side: the
            // next splice must start from an empty pipe (see `splices`).
            let high_water = self.config.pipe_high_water;
            let (_, partner) = self.stream(to)?;
            if partner.buffered() > high_water || (spliced && !partner.output_idle()) {
                return self.hold(from);
            }
            // A short splice may have met the pipe's slot limit, not the
            // socket's end: the next pass (a copying read) finds out.
            if !spliced && stream_drained_by(self.stream(from)?.0, n, want, hup) {
                return Ok(ReadEnd::Drained);
            }
        }
    }

    /// Stops reading `from` until its partner's queue drains (`release`).
    fn hold(&mut self, from: Token) -> io::Result<ReadEnd> {
        self.stream(from)?.1.held = true;
        self.sync_interest(from)?;
        Ok(ReadEnd::Drained)
    }

    /// Bytes `to` takes in one write before `write_queue_cap` refuses it:
    /// any number while its queue is empty.
    fn room(&mut self, to: Token) -> io::Result<usize> {
        let cap = self.config.write_queue_cap;
        Ok(match self.stream(to)?.1.buffered() {
            0 => usize::MAX,
            buffered => cap.saturating_sub(buffered),
        })
    }

    /// Whether the next chunk from `from` is spliced: on Linux, when the
    /// last one filled its read (bulk input: small chunks cost less copied
    /// than through two more syscalls' worth of pipe), and `to` has nothing
    /// else to send first, so its pipe is empty — a splice into a full
    /// pipe would fail as if the socket were drained.
    #[cfg(target_os = "linux")]
    fn splices(&mut self, from: Token, to: Token) -> bool {
        if !self.stream(from).is_ok_and(|(_, c)| c.splices_input() && c.bulk()) {
            return false;
        }
        let Ok((_, conn)) = self.stream(to) else { return false };
        // Not to a side that is ending: the copy path refuses that without a
        // syscall, where a splice into a closed socket would raise SIGPIPE.
        if conn.connecting || conn.corked || conn.ending || conn.write_closed || !conn.output_idle() {
            return false;
        }
        if conn.kernel_pipe().is_some() {
            return true;
        }
        // No pipe (out of fds): this chunk is copied.
        match self.spare_pipes.take() {
            Ok(pipe) => self.stream(to).map(|(_, conn)| conn.set_kernel_pipe(pipe)).is_ok(),
            Err(_) => false,
        }
    }

    /// Gives `to`'s kernel pipe back to the spares if it holds nothing.
    #[cfg(target_os = "linux")]
    pub(super) fn spare_pipe(&mut self, to: Token) {
        if let Some(pipe) = self.stream(to).ok().and_then(|(_, conn)| conn.take_empty_pipe()) {
            self.spare_pipes.give(pipe, self.joined);
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn splices(&mut self, _from: Token, _to: Token) -> bool {
        false
    }

    /// Moves up to `want` bytes from `from` into `to`'s kernel pipe.
    #[cfg(target_os = "linux")]
    fn splice_in(&mut self, from: Token, to: Token, want: usize) -> io::Result<usize> {
        let fd = self.stream(from)?.0.raw_fd();
        let pipe = self.stream(to)?.1.kernel_pipe().ok_or(io::ErrorKind::NotFound)?;
        pipe.fill(fd, want)
    }

    #[cfg(not(target_os = "linux"))]
    fn splice_in(&mut self, _from: Token, _to: Token, _want: usize) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Sends what `to`'s pipe holds; what the kernel refuses waits for
    /// writable, as a queue would.
    fn splice_out(&mut self, to: Token) -> io::Result<()> {
        let mut count = IoCount::default();
        let (stream, conn) = self.stream(to)?;
        let flushed = conn.flush_spliced(stream, &mut count);
        self.counters.writes.add(count);
        flushed?;
        self.sync_interest(to)
    }

    /// A write on the owner's behalf that asks for no `Drain`: the pipe,
    /// not the owner, waits for that queue (unless the owner wrote too).
    fn relay_write(&mut self, to: Token, data: &[u8]) -> io::Result<usize> {
        let asked = self.stream(to)?.1.want_drain;
        let queued = self.write(to, data)?;
        self.stream(to)?.1.want_drain = asked;
        Ok(queued)
    }

    /// A FIN passed on for the owner, who asked for none: like
    /// `relay_write`, it asks for no `Drain` (the FIN waits for the queue
    /// all the same).
    fn relay_shutdown(&mut self, to: Token) -> io::Result<()> {
        let asked = self.stream(to)?.1.want_drain;
        self.shutdown(to)?;
        self.stream(to)?.1.want_drain = asked;
        Ok(())
    }

    /// `token`'s queue drained: its partner, if held, may read again.
    pub(super) fn release(&mut self, token: Token) -> io::Result<()> {
        let conn = self.stream(token)?.1;
        if !std::mem::take(&mut conn.held) {
            return Ok(());
        }
        self.sync_interest(token)?;
        // What arrived while held raises no new edge.
        self.carry.push(token);
        Ok(())
    }

    /// The partner of a socket that is closing: it reports its input to
    /// the owner again, and reads again if it was held.
    pub(super) fn unlink(&mut self, partner: Token) {
        self.unjoin(partner);
        // No longer relayed to, it needs no pipe: an empty one goes now, one
        // holding bytes once they are sent (see `flush`).
        #[cfg(target_os = "linux")]
        self.spare_pipe(partner);
        let _ = self.release(partner);
    }

    /// Unjoins `token` from its partner, if it has one, and returns the
    /// partner; spare pipes beyond what the joined ones may use are closed.
    pub(super) fn unjoin(&mut self, token: Token) -> Option<Token> {
        let partner = self.stream(token).ok().and_then(|(_, conn)| conn.take_pipe())?;
        self.joined -= 1;
        #[cfg(target_os = "linux")]
        self.spare_pipes.trim(self.joined);
        Some(partner)
    }

    /// `token` broke with `error`: reset its partner and report it closed
    /// with the same error.
    pub(super) fn reset_partner(&mut self, token: Token, error: &io::Error, events: &mut Vec<Event>) {
        let Some(partner) = self.unjoin(token) else { return };
        let same = match error.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::from(error.kind()),
        };
        self.unjoin(partner);
        if let Ok((stream, _)) = self.stream(partner) {
            let _ = stream.set_linger_zero();
        }
        self.close_reported(partner, Some(same), false, events);
    }
}
