//! A connection's state beside its socket: where it is in its life
//! (connecting, open, half-closed) and the bytes the kernel has not taken.

use std::io::{self, Write};

use crate::backend::Token;
use crate::socket::Stream;
use crate::stats::IoCount;

/// The tail of writes that the kernel refused, in order. Bytes are copied
/// in only when a write could not complete, so a peer that keeps up costs
/// no copy and no allocation, and an empty queue is one null pointer: an
/// idle connection holds no buffer and no buffer's bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue(Option<Box<Queued>>);

#[derive(Debug)]
struct Queued {
    buf: Vec<u8>,
    /// Bytes of `buf` already sent.
    head: usize,
}

impl WriteQueue {
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.buf.len() - q.head)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let q = self.0.get_or_insert_with(|| Box::new(Queued { buf: Vec::new(), head: 0 }));
        if q.head > 0 && q.head >= q.buf.len() / 2 {
            q.buf.drain(..q.head);
            q.head = 0;
        }
        q.buf.extend_from_slice(data);
    }

    /// Writes queued bytes until the queue empties or the kernel refuses.
    pub fn flush(&mut self, stream: &mut Stream, count: &mut IoCount) -> io::Result<()> {
        let Some(q) = &mut self.0 else { return Ok(()) };
        while q.head < q.buf.len() {
            match stream.write(&q.buf[q.head..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    count.one(n);
                    q.head += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        // Release the memory a burst needed; an idle connection keeps none.
        self.0 = None;
        Ok(())
    }
}

/// Writes as much of `data` as the kernel takes now; returns how much.
pub(crate) fn write_now(stream: &mut Stream, data: &[u8], count: &mut IoCount) -> io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match stream.write(&data[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                count.one(n);
                done += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A connection's state. Held inline in the reactor's table (no
/// allocation per connection): a handful of flags and two pointers that
/// stay null while the connection is idle.
#[derive(Debug, Default)]
pub(crate) struct Connection {
    pub queue: WriteQueue,
    /// What few connections need: made on first use.
    extra: Option<Box<Extra>>,
    /// A non-blocking connect is under way.
    pub connecting: bool,
    /// The user asked to stop reading (backpressure toward the peer).
    pub paused: bool,
    /// The peer's FIN arrived.
    pub read_closed: bool,
    /// `end()` was called: FIN goes out once the queue drains.
    pub ending: bool,
    /// Our FIN went out.
    pub write_closed: bool,
    /// A write was queued: report `Drain` once the queue empties.
    pub want_drain: bool,
    /// The queue holds corked bytes, not yet tried (see `Reactor::write_corked`).
    pub corked: bool,
    /// Reading stopped because the pipe partner's queue is full (not the
    /// owner's pause): resumed when that queue drains.
    pub held: bool,
}

/// A connection's rarely used state.
#[derive(Debug, Default)]
struct Extra {
    /// A corked flush failed outside a turn; the next turn reports it.
    failed: Option<io::Error>,
    /// Joined to this connection by `Reactor::pipe`: input goes there, in
    /// Rust, not to the owner.
    pipe: Option<Token>,
    /// Bytes read from this connection and passed to its pipe partner.
    relayed: u64,
}

impl Connection {
    /// An outgoing connection, its connect under way.
    pub fn connecting() -> Connection {
        Connection { connecting: true, ..Connection::default() }
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// The connection `Reactor::pipe` joined this one to.
    pub fn pipe(&self) -> Option<Token> {
        self.extra.as_ref().and_then(|e| e.pipe)
    }

    pub fn set_pipe(&mut self, partner: Token) {
        self.extra().pipe = Some(partner);
    }

    /// Unjoins it; returns the partner it had.
    pub fn take_pipe(&mut self) -> Option<Token> {
        self.extra.as_mut().and_then(|e| e.pipe.take())
    }

    /// Bytes read from this connection and passed to its pipe partner.
    pub fn relayed(&self) -> u64 {
        self.extra.as_ref().map_or(0, |e| e.relayed)
    }

    pub fn add_relayed(&mut self, n: usize) {
        self.extra().relayed += n as u64;
    }

    /// Keeps a corked flush's failure for the next turn to report.
    pub fn set_failed(&mut self, error: io::Error) {
        self.extra().failed = Some(error);
    }

    pub fn take_failed(&mut self) -> Option<io::Error> {
        self.extra.as_mut().and_then(|e| e.failed.take())
    }

    pub fn wants_read(&self) -> bool {
        !self.connecting && !self.paused && !self.held && !self.read_closed
    }

    /// Writable interest: a connect under way, or bytes the kernel refused.
    /// Corked bytes have not been tried yet; `uncork` sends them.
    pub fn wants_write(&self) -> bool {
        self.connecting || (!self.queue.is_empty() && !self.corked)
    }

    /// Both directions are done: the socket can be closed.
    pub fn finished(&self) -> bool {
        self.read_closed && self.write_closed
    }

    /// Sends queued bytes; once none are left, the FIN `end()` asked for.
    pub fn flush(&mut self, stream: &mut Stream, count: &mut IoCount) -> io::Result<()> {
        self.queue.flush(stream, count)?;
        if self.queue.is_empty() && self.ending && !self.write_closed {
            stream.shutdown_write()?;
            self.write_closed = true;
        }
        Ok(())
    }
}
