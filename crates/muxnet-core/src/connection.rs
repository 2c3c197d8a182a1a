//! A connection's state beside its socket: where it is in its life
//! (connecting, open, half-closed) and what the kernel has not taken yet:
//! queued bytes, then files being sent (each followed by the bytes written
//! after it), in the order the owner asked for them.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};

use crate::backend::Token;
use crate::file::{self, Source};
use crate::reactor::Event;
use crate::socket::Stream;
#[cfg(target_os = "linux")]
use crate::splice::KernelPipe;
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

    /// A queue holding `bytes` (the bytes written after a file, once the
    /// file is sent).
    fn from_vec(bytes: Vec<u8>) -> WriteQueue {
        WriteQueue((!bytes.is_empty()).then(|| Box::new(Queued { buf: bytes, head: 0 })))
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

    /// Writes queued bytes until the queue empties, the kernel refuses, or
    /// `WRITE_TURN` bytes went out; true in that last case, bytes left.
    pub fn flush(&mut self, stream: &mut Stream, count: &mut IoCount) -> io::Result<bool> {
        let Some(q) = &mut self.0 else { return Ok(false) };
        let limit = q.head + WRITE_TURN;
        while q.head < q.buf.len() {
            if q.head >= limit {
                return Ok(true);
            }
            // (One write of more takes more while the peer reads.)
            match stream.write(&q.buf[q.head..q.buf.len().min(limit)]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    count.one(n);
                    q.head += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        // Release the memory a burst needed; an idle connection keeps none.
        self.0 = None;
        Ok(false)
    }
}

/// The most a turn's flush writes of a connection's queue: the rest goes
/// on next turn, as libuv writes once a writable event. A peer reading as
/// fast as it is written to would otherwise hold the thread (every other
/// socket, every timer) until the queue was all out. (A write goes on while
/// the kernel takes its bytes: a cap there would copy the rest into the
/// queue, a second copy of all a fast reader takes.)
pub const WRITE_TURN: usize = 1 << 20;

/// Writes as much of `data` as the kernel takes now; returns how much.
pub(crate) fn write_now(stream: &mut Stream, data: &[u8], count: &mut IoCount) -> io::Result<usize> {
    if data.is_empty() {
        // As libuv's: an empty write is still a write(2), which reports a
        // connection the peer has reset.
        return match stream.write(data) {
            Err(e) if !matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock) => Err(e),
            _ => Ok(0),
        };
    }
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

/// Bytes the read/write loop reads from a file at a time.
const FILE_CHUNK: usize = 64 << 10;

/// One file being sent: `remaining` bytes (`None`: until its end) from
/// `source`, then the bytes written while it was queued. The file is the
/// owner's only for the duration; it is closed once sent (or when the
/// connection closes).
#[derive(Debug)]
pub(crate) struct FileSend {
    file: File,
    source: Source,
    remaining: Option<u64>,
    sent: u64,
    /// Bytes written after this file was queued, sent once it is done.
    after: Vec<u8>,
    /// The kernel copies this file (`sendfile`) until it says it cannot;
    /// from then on the read/write loop does, from where it stopped.
    kernel: bool,
    /// Read from the file, not yet taken by the kernel (the read/write loop).
    chunk: WriteQueue,
}

/// How a flush of files ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// Everything (queue and files) went out, or the kernel refused more.
    Done,
    /// A file's budget, or the turn's bytes (`WRITE_TURN`), ran out with the
    /// socket still writable: the owner flushes again next turn (no new
    /// readiness edge will come).
    Yielded,
    /// The front file is a pipe with nothing in it yet: the owner watches
    /// it (`Connection::starved_source`) and flushes when it turns readable.
    Starved,
}

/// What one step of sending a file did.
enum Step {
    /// The socket took this many bytes.
    Sent(usize),
    /// The file ended.
    End,
    /// A stream source (a pipe) has nothing to read yet.
    Starved,
}

impl FileSend {
    /// `len` bytes of `file` from `offset`; `None`: to its end — a regular
    /// file's size now (it is not chased while it grows), else its EOF: a
    /// stream's, or that of a file whose size says nothing (0, as Linux's
    /// `/proc` files report, like Node's `readFile` takes it). A pipe or
    /// FIFO has no offset: one asked of it is `ESPIPE`.
    pub fn new(file: File, offset: u64, len: Option<u64>) -> io::Result<FileSend> {
        let meta = file.metadata()?;
        let source = Source::of(&meta, offset)?;
        let remaining = match (len, source) {
            (None, Source::At(at)) if meta.is_file() && meta.len() > 0 => Some(meta.len().saturating_sub(at)),
            (len, _) => len,
        };
        Ok(FileSend { file, source, remaining, sent: 0, after: Vec::new(), kernel: true, chunk: WriteQueue::default() })
    }

    /// Sends until the file is done (`Ok(None)`) or stops first
    /// (`Ok(Some(how))`: `Done` when the socket refused, so writable will
    /// come; `Yielded` when `budget` ran out; `Starved` when a pipe had
    /// nothing yet).
    /// A file shorter than asked for is done at its end.
    fn send(&mut self, stream: &mut Stream, count: &mut IoCount, budget: &mut u64) -> io::Result<Option<Flushed>> {
        while self.remaining != Some(0) || !self.chunk.is_empty() {
            if *budget == 0 {
                return Ok(Some(Flushed::Yielded));
            }
            let want = self.remaining.unwrap_or(u64::MAX).min(*budget);
            match self.send_some(stream, want, count) {
                Ok(Step::Sent(n)) => *budget = budget.saturating_sub(n as u64),
                // The file ended early (truncated since, or a pipe's end).
                Ok(Step::End) => self.remaining = Some(0),
                Ok(Step::Starved) => return Ok(Some(Flushed::Starved)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(Flushed::Done)),
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// File bytes not yet sent, as far as known (a pipe's are not).
    fn unsent(&self) -> u64 {
        self.remaining.unwrap_or(0).saturating_add(self.chunk.len() as u64)
    }

    /// One step: by the kernel while it can, else by the read/write loop.
    fn send_some(&mut self, stream: &mut Stream, want: u64, count: &mut IoCount) -> io::Result<Step> {
        // Neither way may wait for a pipe's writer: the JS thread runs this.
        if self.chunk.is_empty() && !file::ready(&self.file, self.source)? {
            return Ok(Step::Starved);
        }
        if self.kernel {
            match stream.send_file(&self.file, self.source, want.min(usize::MAX as u64) as usize) {
                Ok(0) => return Ok(Step::End),
                Ok(n) => {
                    count.one(n);
                    self.advance(n);
                    self.sent += n as u64;
                    return Ok(Step::Sent(n));
                }
                // Nothing was sent: the loop below goes on from the same place.
                Err(e) if file::kernel_cannot(&e) => self.kernel = false,
                Err(e) => return Err(e),
            }
        }
        self.copy_some(stream, want, count)
    }

    /// The read/write loop (every file where the kernel cannot send it):
    /// a chunk is read (at the file's offset: the owner's own position is
    /// left alone) and written; what the socket refuses waits in `chunk`.
    fn copy_some(&mut self, stream: &mut Stream, want: u64, count: &mut IoCount) -> io::Result<Step> {
        if self.chunk.is_empty() {
            let mut buf = vec![0; want.min(FILE_CHUNK as u64) as usize];
            let n = match file::read(&self.file, self.source, &mut buf) {
                Ok(0) => return Ok(Step::End),
                Ok(n) => n,
                // A pipe's writer came and went between `ready` and here.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Starved),
                Err(e) => return Err(e),
            };
            buf.truncate(n);
            self.advance(n);
            self.chunk = WriteQueue::from_vec(buf);
        }
        let before = self.chunk.len();
        // (A chunk is smaller than a turn's bytes.)
        self.chunk.flush(stream, count)?;
        let n = before - self.chunk.len();
        self.sent += n as u64;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Step::Sent(n))
    }

    /// `n` bytes were taken from the file (by the kernel, or into `chunk`).
    fn advance(&mut self, n: usize) {
        if let Source::At(at) = &mut self.source {
            *at += n as u64;
        }
        if let Some(left) = &mut self.remaining {
            *left -= n as u64;
        }
    }
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
    /// Reads at most `LEAN_READ` a turn (see `Reactor::set_lean_reads`).
    pub lean: bool,
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
    /// Held, its peer ended its input (a FIN, a hang-up, a reset after its
    /// FIN): the rest waits unread in the kernel, its errors unwatched.
    pub peer_ended: bool,
    /// The backend told of a hang-up (see `Readiness::hung_up`).
    pub hung_up: bool,
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
    /// Files to send after `queue`, in order (see `Reactor::send_file`).
    files: VecDeque<FileSend>,
    /// The front file's fd is watched by the backend (it was an empty pipe).
    watching: bool,
    /// Bytes spliced from the pipe partner, sent before `queue` (see
    /// `Config::splice`): made on the first splice, closed with the socket.
    #[cfg(target_os = "linux")]
    spliced: Option<KernelPipe>,
    /// The last relayed read from this connection filled what it asked
    /// for (more is likely waiting) or was large enough to pay for a
    /// splice's extra call: the next one splices.
    #[cfg(target_os = "linux")]
    bulk: bool,
    /// Its bulk input may be spliced to the pipe partner (see `PipeOptions`).
    #[cfg(target_os = "linux")]
    splice: bool,
}

impl Connection {
    /// An outgoing connection, its connect under way.
    pub fn connecting() -> Connection {
        Connection { connecting: true, ..Connection::default() }
    }

    /// The peer's end, read: a hang-up if both directions are shut.
    pub fn end_event(&self, token: Token) -> Event {
        Event::End { conn: token, hung_up: self.hung_up || self.write_closed }
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// The connection `Reactor::pipe` joined this one to.
    pub fn pipe(&self) -> Option<Token> {
        self.extra.as_ref().and_then(|e| e.pipe)
    }

    /// Joins it to `partner`; `splice`: its bulk input may be spliced (Linux).
    pub fn set_pipe(&mut self, partner: Token, splice: bool) {
        let extra = self.extra();
        extra.pipe = Some(partner);
        #[cfg(target_os = "linux")]
        {
            extra.splice = splice;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = splice;
    }

    /// Its bulk input may be spliced to the pipe partner.
    #[cfg(target_os = "linux")]
    pub fn splices_input(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| e.splice)
    }

    /// Its input is copied from now on (the kernel cannot splice it).
    #[cfg(target_os = "linux")]
    pub fn stop_splicing(&mut self) {
        self.extra().splice = false;
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

    /// Bytes waiting in the kernel pipe toward this socket.
    fn spliced_len(&self) -> usize {
        #[cfg(target_os = "linux")]
        return self.extra.as_ref().and_then(|e| e.spliced.as_ref()).map_or(0, KernelPipe::len);
        #[cfg(not(target_os = "linux"))]
        0
    }

    /// The kernel pipe toward this socket, if it has one.
    #[cfg(target_os = "linux")]
    pub fn kernel_pipe(&mut self) -> Option<&mut KernelPipe> {
        self.extra.as_mut().and_then(|e| e.spliced.as_mut())
    }

    #[cfg(target_os = "linux")]
    pub fn set_kernel_pipe(&mut self, pipe: KernelPipe) {
        self.extra().spliced = Some(pipe);
    }

    /// Takes the kernel pipe toward this socket if it holds nothing.
    #[cfg(target_os = "linux")]
    pub fn take_empty_pipe(&mut self) -> Option<KernelPipe> {
        let extra = self.extra.as_mut()?;
        if extra.spliced.as_ref().is_some_and(|p| p.len() == 0) {
            return extra.spliced.take();
        }
        None
    }

    #[cfg(target_os = "linux")]
    pub fn bulk(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| e.bulk)
    }

    #[cfg(target_os = "linux")]
    pub fn set_bulk(&mut self, bulk: bool) {
        self.extra().bulk = bulk;
    }

    /// Sends the spliced bytes until none are left or the kernel refuses.
    pub fn flush_spliced(&mut self, stream: &Stream, count: &mut IoCount) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(pipe) = self.extra.as_mut().and_then(|e| e.spliced.as_mut()) {
            pipe.drain(stream.raw_fd(), count)?;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (stream, count);
        Ok(())
    }

    /// Keeps a corked flush's failure for the next turn to report.
    pub fn set_failed(&mut self, error: io::Error) {
        self.extra().failed = Some(error);
    }

    pub fn take_failed(&mut self) -> Option<io::Error> {
        self.extra.as_mut().and_then(|e| e.failed.take())
    }

    /// The files queued behind `queue` (none for most connections).
    fn files(&self) -> impl Iterator<Item = &FileSend> {
        self.extra.iter().flat_map(|e| e.files.iter())
    }

    /// `fd` is a file this connection sends, or an end of its kernel pipe.
    #[cfg(unix)]
    pub fn holds_fd(&self, fd: std::os::fd::RawFd) -> bool {
        use std::os::fd::AsRawFd;
        #[cfg(target_os = "linux")]
        if self.extra.as_ref().and_then(|e| e.spliced.as_ref()).is_some_and(|p| p.holds_fd(fd)) {
            return true;
        }
        self.files().any(|f| f.file.as_raw_fd() == fd)
    }

    fn has_files(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| !e.files.is_empty())
    }

    /// The fd of the front file, a pipe found empty, for the backend to
    /// watch; marks it watched.
    #[cfg(unix)]
    pub fn starved_source(&mut self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        let extra = self.extra.as_mut()?;
        let fd = extra.files.front()?.file.as_raw_fd();
        extra.watching = true;
        Some(fd)
    }

    /// The watched fd, if any, no longer marked watched: the owner
    /// unwatches it (before a flush, or before the file is closed).
    #[cfg(unix)]
    pub fn take_watched(&mut self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        let extra = self.extra.as_mut().filter(|e| e.watching)?;
        extra.watching = false;
        extra.files.front().map(|f| f.file.as_raw_fd())
    }

    /// A watched pipe may have become readable: any readiness of the
    /// connection is a reason to flush.
    pub fn watching(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| e.watching)
    }

    /// Queues a file behind everything written so far.
    pub fn push_file(&mut self, file: FileSend) {
        self.extra().files.push_back(file);
    }

    pub fn wants_read(&self) -> bool {
        !self.connecting && !self.paused && !self.held && !self.read_closed
    }

    /// Held for its pipe partner, it still wants its errors: a peer that
    /// resets while the partner takes nothing would otherwise hold both
    /// sockets until the partner reads. Its own FIN sent (the other
    /// direction half-closed) changes nothing; once its peer's FIN came
    /// too, it is not watched: poll reports `POLLHUP` on such a socket at
    /// every wait. (An owner's `pause` wants nothing, as libuv's
    /// `readStop`.)
    pub fn wants_errors(&self) -> bool {
        self.held && !self.read_closed && !self.peer_ended
    }

    /// Writable interest: a connect under way, or bytes the kernel refused.
    /// Corked bytes have not been tried yet; `uncork` sends them. A file
    /// that is an empty pipe waits for the pipe, not the socket (which a
    /// level-triggered backend would report writable on every wait).
    pub fn wants_write(&self) -> bool {
        self.connecting || (!self.queue.is_empty() && !self.corked) || (self.has_files() && !self.watching()) || self.spliced_len() > 0
    }

    /// Nothing waits to be sent: no queued byte, no file, no spliced byte.
    pub fn output_idle(&self) -> bool {
        self.queue.is_empty() && !self.has_files() && self.spliced_len() == 0
    }

    /// Bytes held for the kernel (the spliced bytes, the queue and what
    /// waits behind files): what the write-queue cap limits.
    pub fn buffered(&self) -> usize {
        self.spliced_len() + self.queue.len() + self.files().map(|f| f.after.len()).sum::<usize>()
    }

    /// Everything not yet sent, files included (saturating where a file
    /// is larger than the address space).
    pub fn pending(&self) -> usize {
        let files = self.files().map(FileSend::unsent).fold(0, u64::saturating_add);
        self.buffered().saturating_add(usize::try_from(files).unwrap_or(usize::MAX))
    }

    /// Queues bytes behind everything else (behind the last file, if any).
    pub fn enqueue(&mut self, data: &[u8]) {
        match self.extra.as_mut().and_then(|e| e.files.back_mut()) {
            Some(file) => file.after.extend_from_slice(data),
            None => self.queue.push(data),
        }
    }

    /// Both directions are done: the socket can be closed.
    pub fn finished(&self) -> bool {
        self.read_closed && self.write_closed
    }

    /// Sends the spliced bytes, then queued bytes, then each file and the bytes written after it
    /// (at most `budget` file bytes: see `Config::send_file_budget`); once
    /// none are left, the FIN `end()` asked for. Each file sent whole is
    /// reported to `done` with its byte count (fewer than asked if the file
    /// was shorter), in order.
    pub fn flush(&mut self, stream: &mut Stream, count: &mut IoCount, budget: u64, mut done: impl FnMut(u64)) -> io::Result<Flushed> {
        let mut budget = budget;
        self.flush_spliced(stream, count)?;
        if self.spliced_len() > 0 {
            return Ok(Flushed::Done);
        }
        loop {
            if self.queue.flush(stream, count)? {
                return Ok(Flushed::Yielded);
            }
            if !self.queue.is_empty() {
                return Ok(Flushed::Done);
            }
            let Some(file) = self.extra.as_mut().and_then(|e| e.files.front_mut()) else { break };
            if let Some(stopped) = file.send(stream, count, &mut budget)? {
                return Ok(stopped);
            }
            let file = self.extra().files.pop_front().expect("the front file was just sent");
            done(file.sent);
            self.queue = WriteQueue::from_vec(file.after);
        }
        if self.ending && !self.write_closed {
            stream.shutdown_write()?;
            self.write_closed = true;
        }
        Ok(Flushed::Done)
    }
}
