//! `splice(2)` for connections joined in the reactor (Linux): a relayed
//! chunk moves from one socket into a kernel pipe and from there into the
//! other socket as page references, never copied into user space and back.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::stats::IoCount;

/// A kernel pipe holding bytes on their way to one socket (both ends
/// non-blocking, closed when dropped).
#[derive(Debug)]
pub(crate) struct KernelPipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes in the pipe, not yet taken by the socket.
    len: usize,
}

impl KernelPipe {
    pub fn new() -> io::Result<KernelPipe> {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a live array of two ints, which the kernel fills.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both fds are open and owned by no one else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(KernelPipe { read, write, len: 0 })
    }

    /// `fd` is one of the pipe's two ends.
    pub fn holds_fd(&self, fd: RawFd) -> bool {
        fd == self.read.as_raw_fd() || fd == self.write.as_raw_fd()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Moves up to `want` bytes from the socket `from` into the pipe;
    /// 0: the peer's FIN. Fewer than `want` does not prove the socket
    /// drained: the pipe's slots (one per page piece) may have run out.
    pub fn fill(&mut self, from: RawFd, want: usize) -> io::Result<usize> {
        let n = splice(from, self.write.as_raw_fd(), want)?;
        self.len += n;
        Ok(n)
    }

    /// Sends what the pipe holds to the socket `to`, until it is empty or
    /// the socket's buffer is full.
    pub fn drain(&mut self, to: RawFd, count: &mut IoCount) -> io::Result<()> {
        while self.len > 0 {
            match splice(self.read.as_raw_fd(), to, self.len) {
                Ok(n) => {
                    count.one(n);
                    self.len -= n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Empty kernel pipes kept for the next splice. A pair whose input drains
/// gives its pipe back (an idle pair holds no fds); under pipelined load it
/// splices again a moment later, and making and closing a pipe each time
/// cost a `pipe2` and two `close`s per drain — about half a pipe per
/// message in the proxy bench. Kept: at most `SPARE_PIPES`, and no more
/// than there are joined connections to use them, so that the fds are
/// back once the last pair is gone.
#[derive(Debug, Default)]
pub(crate) struct SparePipes {
    pipes: Vec<KernelPipe>,
    /// Pipes made so far (`Stats::kernel_pipes`).
    pub made: u64,
}

/// More than a turn's relays hold at once: each takes a pipe and gives it back.
const SPARE_PIPES: usize = 16;

impl SparePipes {
    /// An empty pipe: a kept one, or a new one.
    /// `fd` is an end of a kept pipe.
    pub fn holds_fd(&self, fd: RawFd) -> bool {
        self.pipes.iter().any(|p| p.holds_fd(fd))
    }

    pub fn take(&mut self) -> io::Result<KernelPipe> {
        match self.pipes.pop() {
            Some(pipe) => Ok(pipe),
            None => {
                let pipe = KernelPipe::new()?;
                self.made += 1;
                Ok(pipe)
            }
        }
    }

    /// Keeps `pipe` for later if it is empty and fewer than `joined` (and
    /// `SPARE_PIPES`) are kept; closes it otherwise. Bytes left in a pipe
    /// belong to its connection: such a pipe is never handed to another.
    pub fn give(&mut self, pipe: KernelPipe, joined: usize) {
        if pipe.len == 0 && self.pipes.len() < joined.min(SPARE_PIPES) {
            self.pipes.push(pipe);
        }
    }

    /// Closes the kept pipes beyond what `joined` connections may use.
    pub fn trim(&mut self, joined: usize) {
        self.pipes.truncate(joined.min(SPARE_PIPES));
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: both fds are open for the call (borrowed from their owners);
    // the offsets are null, as they must be for a pipe or a socket.
    let n =
        unsafe { libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
