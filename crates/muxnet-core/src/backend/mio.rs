//! epoll (Linux), kqueue (macOS, BSD) and IOCP (Windows), through mio.
//! Edge-triggered: the reactor reads and writes until `WouldBlock`.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[cfg(unix)]
use super::Pollable;
use super::{Backend, Blockable, BlockingWait, Interest, Readiness, Token, Wake};
use crate::socket::Socket;

/// mio reserves no token for its waker; this one is never handed out.
const WAKE_TOKEN: mio::Token = mio::Token(usize::MAX);
const EVENTS_PER_WAIT: usize = 1024;

pub struct MioBackend {
    /// Shared with a [`BlockingWait`] on another thread (on Unix only to
    /// keep its fd open while the thread waits on it). Only one side polls
    /// at a time (the owner waits only after `block` returned), so the lock
    /// is never contended.
    poll: Arc<Mutex<mio::Poll>>,
    /// Readiness that a `BlockingWait` took from IOCP before the owner
    /// asked: mio hands each edge out once.
    #[cfg(windows)]
    stash: Arc<Mutex<Vec<Readiness>>>,
    registry: mio::Registry,
    events: mio::Events,
    waker: Arc<MioWaker>,
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
}

struct MioWaker(mio::Waker);

impl Wake for MioWaker {
    fn wake(&self) -> io::Result<()> {
        self.0.wake()
    }
}

impl MioBackend {
    pub fn new() -> io::Result<MioBackend> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Arc::new(MioWaker(mio::Waker::new(&registry, WAKE_TOKEN)?));
        #[cfg(unix)]
        let fd = std::os::fd::AsRawFd::as_raw_fd(&poll);
        Ok(MioBackend {
            poll: Arc::new(Mutex::new(poll)),
            #[cfg(windows)]
            stash: Arc::default(),
            registry,
            events: mio::Events::with_capacity(EVENTS_PER_WAIT),
            waker,
            #[cfg(unix)]
            fd,
        })
    }
}

fn mio_interest(interest: Interest) -> mio::Interest {
    match (interest.readable, interest.writable) {
        (true, true) => READABLE | mio::Interest::WRITABLE,
        (false, true) => mio::Interest::WRITABLE,
        // Readable or errors only: mio has no errors-only interest, and
        // an edge-triggered readable one reports each arrival once.
        (_, false) => READABLE,
    }
}

/// Input, and on Linux TCP urgent data too: a read stops short at the
/// urgent mark with more input behind it, and an edge-triggered poller
/// raises no new edge for bytes already there. `EPOLLPRI` says a mark
/// waits, so the turn reads on past the short read (see `Readiness::hup`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const READABLE: mio::Interest = mio::Interest::READABLE.add(mio::Interest::PRIORITY);
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const READABLE: mio::Interest = mio::Interest::READABLE;

/// Polls once and appends what it saw, without the waker's own event.
fn poll_into(poll: &Mutex<mio::Poll>, events: &mut mio::Events, out: &mut Vec<Readiness>, timeout: Option<Duration>) -> io::Result<()> {
    let mut poll = poll.lock().unwrap_or_else(PoisonError::into_inner);
    match poll.poll(events, timeout) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
        Err(e) => return Err(e),
    }
    out.extend(events.iter().filter(|e| e.token() != WAKE_TOKEN).map(|e| Readiness {
        token: Token::from_bits(e.token().0 as u64),
        readable: e.is_readable() || e.is_read_closed(),
        writable: e.is_writable() || e.is_write_closed(),
        error: e.is_error(),
        hup: e.is_read_closed() || e.is_priority(),
        ended: e.is_read_closed(),
        hung_up: e.is_read_closed() && e.is_write_closed(),
    }));
    Ok(())
}

/// Our tokens use 53 bits; mio's are `usize`, 64 bits on every target we build.
const _: () = assert!(usize::BITS >= 64);

fn mio_token(token: Token) -> mio::Token {
    mio::Token(token.to_bits() as usize)
}

impl Backend for MioBackend {
    fn name(&self) -> &'static str {
        "mio"
    }

    fn register(&mut self, socket: &mut Socket, token: Token, interest: Interest) -> io::Result<()> {
        self.registry.register(socket.source(), mio_token(token), mio_interest(interest))
    }

    fn reregister(&mut self, socket: &mut Socket, token: Token, interest: Interest) -> io::Result<()> {
        self.registry.reregister(socket.source(), mio_token(token), mio_interest(interest))
    }

    fn deregister(&mut self, socket: &mut Socket) -> io::Result<()> {
        self.registry.deregister(socket.source())
    }

    #[cfg(unix)]
    fn watch_fd(&mut self, fd: super::RawHandle, token: Token) -> io::Result<()> {
        self.registry.register(&mut mio::unix::SourceFd(&fd), mio_token(token), mio::Interest::READABLE)
    }

    #[cfg(unix)]
    fn unwatch_fd(&mut self, fd: super::RawHandle) -> io::Result<()> {
        self.registry.deregister(&mut mio::unix::SourceFd(&fd))
    }

    fn wait(&mut self, out: &mut Vec<Readiness>, timeout: Option<Duration>) -> io::Result<()> {
        #[cfg(windows)]
        let timeout = {
            let mut stash = self.stash.lock().unwrap_or_else(PoisonError::into_inner);
            let stashed = stash.len();
            out.append(&mut stash);
            // Stashed edges are ready now: only look for more, don't sleep.
            if stashed > 0 {
                Some(Duration::ZERO)
            } else {
                timeout
            }
        };
        poll_into(&self.poll, &mut self.events, out, timeout)
    }

    fn waker(&self) -> Arc<dyn Wake> {
        self.waker.clone()
    }

    /// The epoll or kqueue fd (libuv watches it, unless a waiter thread
    /// does; mio's own waker is no socket, which no caller takes).
    #[cfg(unix)]
    fn holds_fd(&self, fd: super::RawHandle) -> bool {
        fd == self.fd
    }

    #[cfg(unix)]
    fn as_pollable(&self) -> Option<&dyn Pollable> {
        Some(self)
    }
}

/// epoll and kqueue fds are pollable; IOCP is not.
#[cfg(unix)]
impl Pollable for MioBackend {
    fn pollable_handle(&self) -> super::RawHandle {
        self.fd
    }
}

impl Blockable for MioBackend {
    #[cfg(unix)]
    fn blocking_wait(&self) -> Box<dyn BlockingWait> {
        Box::new(MioBlockingWait { fd: self.fd, _open: self.poll.clone() })
    }

    #[cfg(windows)]
    fn blocking_wait(&self) -> Box<dyn BlockingWait> {
        Box::new(MioBlockingWait {
            poll: self.poll.clone(),
            stash: self.stash.clone(),
            events: mio::Events::with_capacity(EVENTS_PER_WAIT),
        })
    }

    /// The epoll or kqueue fd polls readable while it holds events, a
    /// wake-up included: a look at it takes none.
    #[cfg(unix)]
    fn ready_now(&mut self) -> io::Result<bool> {
        fd_readable(self.fd, Some(Duration::ZERO))
    }
}

/// Whether the epoll or kqueue fd holds events, within `timeout`.
#[cfg(unix)]
fn fd_readable(fd: std::os::fd::RawFd, timeout: Option<Duration>) -> io::Result<bool> {
    let mut own = [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }];
    Ok(super::sys::poll(&mut own, timeout)? > 0)
}

/// On Unix, a wait on the epoll or kqueue fd that takes no event: the
/// owner's own wait takes them, and a look at the fd (`ready_now`) sees
/// them till then. A waiter that took them (into a stash) and was
/// preempted before it told hid them for a time slice: a busy loop heard
/// an echoed byte 1 030 turns late (a CI run, Node 24, under load).
#[cfg(unix)]
struct MioBlockingWait {
    fd: std::os::fd::RawFd,
    /// The poller `fd` belongs to, kept open for as long as this waits on it.
    _open: Arc<Mutex<mio::Poll>>,
}

#[cfg(unix)]
impl BlockingWait for MioBlockingWait {
    fn block(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        fd_readable(self.fd, timeout).map(drop)
    }
}

/// On Windows, IOCP has no fd to wait on: the wait takes the events and
/// stashes them for the owner's.
#[cfg(windows)]
struct MioBlockingWait {
    poll: Arc<Mutex<mio::Poll>>,
    stash: Arc<Mutex<Vec<Readiness>>>,
    events: mio::Events,
}

#[cfg(windows)]
impl BlockingWait for MioBlockingWait {
    fn block(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let mut found = Vec::new();
        poll_into(&self.poll, &mut self.events, &mut found, timeout)?;
        self.stash.lock().unwrap_or_else(PoisonError::into_inner).append(&mut found);
        Ok(())
    }
}
