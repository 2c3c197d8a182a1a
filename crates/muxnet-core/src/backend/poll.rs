//! `poll(2)` over the whole interest list on every wait: level-triggered,
//! O(registered sockets) per call, no fd limit. The classic model.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use super::sys::{self, SelfPipe};
use super::{Backend, Blockable, BlockingWait, Interest, Readiness, Token, Wake};
use crate::socket::Socket;

pub struct PollBackend {
    /// `fds[0]` is the self-pipe; `tokens[i]` belongs to `fds[i]`.
    fds: Vec<libc::pollfd>,
    tokens: Vec<Token>,
    /// Where each fd is in `fds`, by fd number (`NONE`: not registered).
    /// Fds are small and dense: 4 bytes each, where a hash map spends
    /// several times that per socket.
    index: Vec<u32>,
    pipe: SelfPipe,
    waker: Arc<sys::PipeWaker>,
}

const NONE: u32 = u32::MAX;

/// The peer's FIN (Linux): with it a turn reads on past a short read to
/// the EOF, as libuv takes the end in the pass that reads the last bytes
/// (without it the end came a turn late: a proxy piping a peer's answer
/// into a socket whose FIN it had not yet seen met EPIPE).
#[cfg(any(target_os = "linux", target_os = "android"))]
const RDHUP: libc::c_short = libc::POLLRDHUP;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const RDHUP: libc::c_short = 0;

fn events(interest: Interest) -> libc::c_short {
    let mut ev = 0;
    if interest.readable {
        ev |= libc::POLLIN | RDHUP;
    }
    if interest.writable {
        ev |= libc::POLLOUT;
    }
    ev
}

impl PollBackend {
    pub fn new() -> io::Result<PollBackend> {
        let pipe = SelfPipe::new()?;
        let waker = Arc::new(pipe.waker()?);
        let fds = vec![libc::pollfd { fd: pipe.read_fd(), events: libc::POLLIN, revents: 0 }];
        Ok(PollBackend { fds, tokens: vec![Token::from_bits(u64::MAX)], index: Vec::new(), pipe, waker })
    }

    fn slot(&self, fd: RawFd) -> io::Result<usize> {
        match usize::try_from(fd).ok().and_then(|fd| self.index.get(fd)) {
            Some(&i) if i != NONE => Ok(i as usize),
            _ => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn add(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        if self.slot(fd).is_ok() {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let at = usize::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        if at >= self.index.len() {
            self.index.resize(at + 1, NONE);
        }
        self.index[at] = self.fds.len() as u32;
        self.fds.push(libc::pollfd { fd, events: events(interest), revents: 0 });
        self.tokens.push(token);
        Ok(())
    }

    fn remove(&mut self, fd: RawFd) -> io::Result<()> {
        let i = self.slot(fd)?;
        self.index[fd as usize] = NONE;
        self.fds.swap_remove(i);
        self.tokens.swap_remove(i);
        if let Some(moved) = self.fds.get(i) {
            self.index[moved.fd as usize] = i as u32;
        }
        Ok(())
    }
}

impl Backend for PollBackend {
    fn name(&self) -> &'static str {
        "poll"
    }

    fn waits_scan_every_socket(&self) -> bool {
        true
    }

    fn register(&mut self, socket: &mut Socket, token: Token, interest: Interest) -> io::Result<()> {
        self.add(socket.raw_fd(), token, interest)
    }

    fn reregister(&mut self, socket: &mut Socket, token: Token, interest: Interest) -> io::Result<()> {
        let i = self.slot(socket.raw_fd())?;
        self.fds[i].events = events(interest);
        self.tokens[i] = token;
        Ok(())
    }

    fn deregister(&mut self, socket: &mut Socket) -> io::Result<()> {
        self.remove(socket.raw_fd())
    }

    fn watch_fd(&mut self, fd: RawFd, token: Token) -> io::Result<()> {
        self.add(fd, token, Interest::READABLE)
    }

    fn unwatch_fd(&mut self, fd: RawFd) -> io::Result<()> {
        self.remove(fd)
    }

    fn wait(&mut self, out: &mut Vec<Readiness>, timeout: Option<Duration>) -> io::Result<()> {
        for pfd in &mut self.fds {
            pfd.revents = 0;
        }
        if sys::poll(&mut self.fds, timeout)? == 0 {
            return Ok(());
        }
        if self.fds[0].revents != 0 {
            self.pipe.drain();
        }
        for (pfd, &token) in self.fds.iter().zip(&self.tokens).skip(1) {
            let r = pfd.revents;
            if r == 0 {
                continue;
            }
            let error = r & (libc::POLLERR | libc::POLLNVAL) != 0;
            out.push(Readiness {
                token,
                readable: r & (libc::POLLIN | libc::POLLHUP) != 0 || error,
                writable: r & libc::POLLOUT != 0 || error,
                error,
                hup: r & (libc::POLLHUP | RDHUP) != 0,
                ended: r & libc::POLLHUP != 0,
                hung_up: r & libc::POLLHUP != 0,
            });
        }
        Ok(())
    }

    fn waker(&self) -> Arc<dyn Wake> {
        self.waker.clone()
    }

    fn holds_fd(&self, fd: RawFd) -> bool {
        self.pipe.holds_fd(fd)
    }
}

impl Blockable for PollBackend {
    fn blocking_wait(&self) -> Box<dyn BlockingWait> {
        Box::new(PollSnapshot(self.fds.clone()))
    }

    fn ready_now(&mut self) -> io::Result<bool> {
        // The self-pipe (`fds[0]`) left out: `wait` resets every `revents`.
        Ok(sys::poll(&mut self.fds[1..], Some(Duration::ZERO))? > 0)
    }
}

/// The interest list as it was when the waiter was armed.
struct PollSnapshot(Vec<libc::pollfd>);

impl BlockingWait for PollSnapshot {
    fn block(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        sys::poll(&mut self.0, timeout).map(drop)
    }
}
