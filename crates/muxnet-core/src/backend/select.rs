//! `select(2)`: the oldest multiplexer. Two bitmaps rebuilt and scanned on
//! every wait, and a hard limit: fds at or above `FD_SETSIZE` (1024 on
//! Linux) cannot be watched, which registration reports as an error.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use super::sys::{self, FdSet, SelfPipe};
use super::{Backend, Blockable, BlockingWait, Interest, Readiness, Token, Wake};
use crate::socket::Socket;

struct Entry {
    fd: RawFd,
    token: Token,
    interest: Interest,
}

pub struct SelectBackend {
    entries: Vec<Entry>,
    index: HashMap<RawFd, usize>,
    pipe: SelfPipe,
    waker: Arc<sys::PipeWaker>,
}

impl SelectBackend {
    pub fn new() -> io::Result<SelectBackend> {
        let pipe = SelfPipe::new()?;
        FdSet::check(pipe.read_fd())?;
        let waker = Arc::new(pipe.waker()?);
        Ok(SelectBackend { entries: Vec::new(), index: HashMap::new(), pipe, waker })
    }

    fn slot(&self, fd: RawFd) -> io::Result<usize> {
        self.index.get(&fd).copied().ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn add(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        FdSet::check(fd)?;
        if self.index.contains_key(&fd) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        self.index.insert(fd, self.entries.len());
        self.entries.push(Entry { fd, token, interest });
        Ok(())
    }

    fn remove(&mut self, fd: RawFd) -> io::Result<()> {
        let i = self.slot(fd)?;
        self.index.remove(&fd);
        self.entries.swap_remove(i);
        if let Some(moved) = self.entries.get(i) {
            self.index.insert(moved.fd, i);
        }
        Ok(())
    }

    /// The sets to wait on, the self-pipe included if `wakes`, and the `nfds` argument.
    fn sets(&self, wakes: bool) -> SelectSets {
        let mut read = FdSet::new();
        let mut write = FdSet::new();
        if wakes {
            read.insert(self.pipe.read_fd());
        }
        let mut max = self.pipe.read_fd();
        // An errors-only entry is in neither set: select folds errors into
        // readability and has no set for them alone (see `Interest::ERRORS`).
        for e in &self.entries {
            if e.interest.readable {
                read.insert(e.fd);
            }
            if e.interest.writable {
                write.insert(e.fd);
            }
            max = max.max(e.fd);
        }
        SelectSets { read, write, nfds: max + 1 }
    }
}

impl Backend for SelectBackend {
    fn name(&self) -> &'static str {
        "select"
    }

    fn waits_scan_every_socket(&self) -> bool {
        true
    }

    fn register(&mut self, socket: &mut Socket, token: Token, interest: Interest) -> io::Result<()> {
        self.add(socket.raw_fd(), token, interest)
    }

    fn reregister(&mut self, socket: &mut Socket, token: Token, interest: Interest) -> io::Result<()> {
        let i = self.slot(socket.raw_fd())?;
        self.entries[i].token = token;
        self.entries[i].interest = interest;
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
        let mut sets = self.sets(true);
        if sets.select(timeout)? == 0 {
            return Ok(());
        }
        if sets.read.contains(self.pipe.read_fd()) {
            self.pipe.drain();
        }
        for e in &self.entries {
            let readable = sets.read.contains(e.fd);
            let writable = sets.write.contains(e.fd);
            if readable || writable {
                // select folds errors into readability; the reactor finds
                // them when it reads or checks SO_ERROR.
                out.push(Readiness { token: e.token, readable, writable, error: false, hup: false, ended: false, hung_up: false });
            }
        }
        Ok(())
    }

    fn waker(&self) -> Arc<dyn Wake> {
        self.waker.clone()
    }

    fn holds_fd(&self, fd: RawFd) -> bool {
        self.pipe.holds_fd(fd)
    }

    fn can_watch(&self, fd: RawFd) -> io::Result<()> {
        FdSet::check(fd)
    }
}

impl Blockable for SelectBackend {
    fn blocking_wait(&self) -> Box<dyn BlockingWait> {
        Box::new(self.sets(true))
    }

    fn ready_now(&mut self) -> io::Result<bool> {
        Ok(self.sets(false).select(Some(Duration::ZERO))? > 0)
    }
}

#[derive(Clone, Copy)]
struct SelectSets {
    read: FdSet,
    write: FdSet,
    nfds: RawFd,
}

impl SelectSets {
    fn select(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        sys::select(self.nfds, &mut self.read, &mut self.write, timeout)
    }
}

impl BlockingWait for SelectSets {
    fn block(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.select(timeout).map(drop)
    }
}
