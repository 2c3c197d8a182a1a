//! A connection's state beside its socket: where it is in its life
//! (connecting, open, half-closed) and the bytes the kernel has not taken.

use std::io::{self, Write};

use crate::backend::Token;
use crate::socket::Stream;
use crate::stats::IoCount;

/// The tail of writes that the kernel refused, in order. Bytes are copied
/// in only when a write could not complete, so a peer that keeps up costs
/// no copy and no allocation.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    buf: Vec<u8>,
    head: usize,
}

impl WriteQueue {
    pub fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.head > 0 && self.head >= self.buf.len() / 2 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Writes queued bytes until the queue empties or the kernel refuses.
    pub fn flush(&mut self, stream: &mut Stream, count: &mut IoCount) -> io::Result<()> {
        while !self.is_empty() {
            match stream.write(&self.buf[self.head..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    count.one(n);
                    self.head += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        // Release the memory a burst needed; an idle connection keeps none.
        self.buf = Vec::new();
        self.head = 0;
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

#[derive(Debug, Default)]
pub(crate) struct Connection {
    pub queue: WriteQueue,
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
    /// A corked flush failed outside a turn; the next turn reports it.
    pub failed: Option<io::Error>,
    /// Joined to this connection by `Reactor::pipe`: input goes there, in
    /// Rust, not to the owner.
    pub pipe: Option<Token>,
    /// Reading stopped because the pipe partner's queue is full (not the
    /// owner's pause): resumed when that queue drains.
    pub held: bool,
    /// Bytes read from this connection and passed to its pipe partner.
    pub relayed: u64,
}

impl Connection {
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
