//! Readiness multiplexers. The reactor talks to exactly one [`Backend`]
//! through this trait and never asks which one it is: adding a backend is
//! adding a file here and a line in [`BackendKind::create`].

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::socket::Socket;

mod mio;
#[cfg(unix)]
mod poll;
#[cfg(unix)]
mod select;
#[cfg(unix)]
mod sys;

pub use crate::token::Token;
#[cfg(unix)]
pub use sys::{PipeWaker, SelfPipe};

/// What a socket wants to hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest {
    pub readable: bool,
    pub writable: bool,
}

impl Interest {
    pub const READABLE: Interest = Interest { readable: true, writable: false };
    pub const WRITABLE: Interest = Interest { readable: false, writable: true };
    pub const BOTH: Interest = Interest { readable: true, writable: true };
    /// Errors and hang-ups only: for a socket that must not be read now but
    /// whose reset should still be seen (a pipe side held for
    /// backpressure). poll asks for no event (`POLLERR` and `POLLHUP` come
    /// anyway); mio watches readable, edge-triggered, so each arrival is
    /// one edge the reactor ignores; select has no such set and reports
    /// nothing.
    pub const ERRORS: Interest = Interest { readable: false, writable: false };

    /// `None` when the socket wants nothing: it is then deregistered, which
    /// keeps level-triggered backends from reporting it on every wait
    /// (see [`Interest::ERRORS`] for a socket that wants only its errors).
    pub fn new(readable: bool, writable: bool) -> Option<Interest> {
        (readable || writable).then_some(Interest { readable, writable })
    }
}

/// One socket's readiness, copied out of the backend so no borrow of it is
/// held while the reactor does I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub token: Token,
    pub readable: bool,
    pub writable: bool,
    /// An error is pending: the reactor asks the socket which.
    pub error: bool,
    /// More input is known to wait behind a short read (the peer hung up,
    /// or urgent data's mark stops reads before the rest): read until EOF
    /// or `WouldBlock`.
    pub hup: bool,
    /// The peer's end, as far as the backend can tell (mio: its FIN; poll:
    /// both directions shut; select: never). Unlike `hup`, never urgent
    /// data: a socket watched only for its errors tells its peer's end
    /// from a byte sent out of band.
    pub ended: bool,
    /// Both directions are shut, the kernel's hang-up (`POLLHUP`): a
    /// Unix-domain peer closed, a reset, or both FINs. mio: both its read
    /// and write closed; poll: `POLLHUP`; select: never.
    pub hung_up: bool,
}

/// Interrupts a blocked [`Backend::wait`] from any thread.
pub trait Wake: Send + Sync {
    fn wake(&self) -> io::Result<()>;
}

/// Lets another thread block until the backend has something to report,
/// for owners that must not block in `wait` themselves (a JS thread) and
/// have no pollable fd to watch. `block` returns when a socket is ready or
/// the backend's [`Wake`] fires; the owner then calls `wait` with a zero
/// timeout to collect the readiness. Made afresh each time it is armed,
/// since level-triggered backends block on a copy of the interest set.
pub trait BlockingWait: Send {
    fn block(&mut self, timeout: Option<Duration>) -> io::Result<()>;
}

/// A readiness multiplexer over non-blocking sockets: what every backend has.
/// What only some offer, an owner asks for by capability
/// ([`Backend::as_pollable`]).
pub trait Backend: Blockable {
    /// `"mio"`, `"poll"` or `"select"`.
    fn name(&self) -> &'static str;
    fn register(&mut self, socket: &mut Socket, token: Token, interest: Interest) -> io::Result<()>;
    fn reregister(&mut self, socket: &mut Socket, token: Token, interest: Interest) -> io::Result<()>;
    fn deregister(&mut self, socket: &mut Socket) -> io::Result<()>;
    /// Watches an fd that is no socket of the reactor's (a pipe that
    /// `Reactor::send_file` is sending and found empty) for readability,
    /// reported as `token`'s. The owner unwatches it before closing it.
    #[cfg(unix)]
    fn watch_fd(&mut self, fd: RawHandle, token: Token) -> io::Result<()>;
    #[cfg(unix)]
    fn unwatch_fd(&mut self, fd: RawHandle) -> io::Result<()>;
    /// Appends the ready sockets to `out`; blocks at most `timeout`
    /// (`None`: until something is ready or [`Wake`] fires).
    fn wait(&mut self, out: &mut Vec<Readiness>, timeout: Option<Duration>) -> io::Result<()>;
    fn waker(&self) -> Arc<dyn Wake>;
    /// `fd` is one the backend made for itself (its wake-up pipe).
    #[cfg(unix)]
    fn holds_fd(&self, fd: RawHandle) -> bool;
    /// Whether it could watch `fd`: the error its `register` would give
    /// (`select`: an fd at or past `FD_SETSIZE`), asked before a socket
    /// goes anywhere it could not be taken back from.
    fn can_watch(&self, _fd: RawHandle) -> io::Result<()> {
        Ok(())
    }
    /// Every wait costs a scan of all the sockets watched (`poll`,
    /// `select`), not only of the ready ones (epoll, kqueue): a turn is
    /// costly when many sockets are open, so the reactor does more in each.
    fn waits_scan_every_socket(&self) -> bool {
        false
    }
    /// The backend as [`Pollable`], if another event loop can watch it.
    fn as_pollable(&self) -> Option<&dyn Pollable> {
        None
    }
}

/// A raw OS handle: an fd on Unix, a socket on Windows.
#[cfg(unix)]
pub type RawHandle = std::os::fd::RawFd;
#[cfg(windows)]
pub type RawHandle = std::os::windows::io::RawSocket;

/// Capability: a handle that polls readable while [`Backend::wait`] has
/// events (the epoll or kqueue fd), for owners that watch it from their own
/// event loop (Node's libuv) instead of blocking.
pub trait Pollable {
    fn pollable_handle(&self) -> RawHandle;
}

/// Capability: another thread can block until the backend has something
/// to report (see [`BlockingWait`]); every backend has it.
pub trait Blockable {
    fn blocking_wait(&self) -> Box<dyn BlockingWait>;

    /// Whether a watched socket is ready now: a look that neither waits nor
    /// takes a wake-up meant for a thread blocked on a snapshot (it would
    /// block on a stale one). For an owner whose waiter thread the OS may
    /// not run for a while (see the Node driver's busy loop). `false` where
    /// another loop can watch the backend itself.
    fn ready_now(&mut self) -> io::Result<bool> {
        Ok(false)
    }
}

/// The backends this build offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// epoll (Linux), kqueue (macOS, BSD), IOCP (Windows).
    Mio,
    /// `poll(2)` over the interest list.
    #[cfg(unix)]
    Poll,
    /// `select(2)`, limited to fds below `FD_SETSIZE`.
    #[cfg(unix)]
    Select,
}

impl BackendKind {
    pub const ALL: &'static [BackendKind] = &[
        BackendKind::Mio,
        #[cfg(unix)]
        BackendKind::Poll,
        #[cfg(unix)]
        BackendKind::Select,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Mio => "mio",
            #[cfg(unix)]
            BackendKind::Poll => "poll",
            #[cfg(unix)]
            BackendKind::Select => "select",
        }
    }

    pub fn from_name(name: &str) -> Option<BackendKind> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    pub fn create(self) -> io::Result<Box<dyn Backend>> {
        Ok(match self {
            BackendKind::Mio => Box::new(mio::MioBackend::new()?),
            #[cfg(unix)]
            BackendKind::Poll => Box::new(poll::PollBackend::new()?),
            #[cfg(unix)]
            BackendKind::Select => Box::new(select::SelectBackend::new()?),
        })
    }
}

/// The error `select` gives for an fd it cannot hold, kept as a type so
/// callers can tell it from a real `EMFILE` and show the limit.
#[derive(Debug)]
pub struct FdLimitError {
    pub fd: i64,
    pub limit: usize,
}

impl std::fmt::Display for FdLimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "select backend cannot watch fd {}: select(2) handles only fds below FD_SETSIZE ({}); use the poll or mio backend",
            self.fd, self.limit
        )
    }
}

impl std::error::Error for FdLimitError {}
