//! The raw syscalls of the classic backends, `poll(2)` and `select(2)`,
//! each behind a safe function, and the self-pipe that wakes them.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use super::{FdLimitError, Wake};

/// A socket pair whose read end sits in an interest set: writing a byte
/// makes a blocked `poll`/`select` return (and the Node binding's libuv
/// watch fire, when a waiter thread wakes the JS thread).
pub struct SelfPipe {
    reader: UnixStream,
    /// Shared with the wakers (no copy of the fd each).
    writer: Arc<UnixStream>,
}

impl SelfPipe {
    pub fn new() -> io::Result<SelfPipe> {
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        Ok(SelfPipe { reader, writer: Arc::new(writer) })
    }

    pub fn read_fd(&self) -> RawFd {
        self.reader.as_raw_fd()
    }

    /// Empties the pipe so a level-triggered wait stops reporting it.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.reader).read(&mut buf), Ok(n) if n > 0) {}
    }

    pub fn waker(&self) -> io::Result<PipeWaker> {
        Ok(PipeWaker(self.writer.clone()))
    }

    /// `fd` is one of the pair's two ends.
    pub fn holds_fd(&self, fd: RawFd) -> bool {
        fd == self.reader.as_raw_fd() || fd == self.writer.as_raw_fd()
    }
}

/// Writes the wake-up byte; any thread may hold one.
pub struct PipeWaker(Arc<UnixStream>);

impl Wake for PipeWaker {
    fn wake(&self) -> io::Result<()> {
        match (&*self.0).write(&[1]) {
            // A full pipe already holds a wake-up.
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(()),
        }
    }
}

fn retry_interrupted(r: libc::c_int) -> io::Result<usize> {
    if r >= 0 {
        return Ok(r as usize);
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::Interrupted {
        Ok(0)
    } else {
        Err(e)
    }
}

/// `poll(2)`: fills each entry's `revents`; returns how many are non-zero.
pub(super) fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        // Round up so a 0.5 ms timeout does not become a busy loop.
        Some(t) => t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
    };
    // SAFETY: `fds` is a valid, exclusively borrowed slice of `pollfd` and
    // its length is passed alongside; the kernel writes only `revents`.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    retry_interrupted(r)
}

/// The highest fd `select(2)` can hold, plus one.
pub(super) const FD_SETSIZE: usize = libc::FD_SETSIZE;

/// An `fd_set` that refuses fds it cannot hold instead of writing past it.
#[derive(Clone, Copy)]
pub(super) struct FdSet(libc::fd_set);

impl FdSet {
    pub fn new() -> FdSet {
        let mut set = std::mem::MaybeUninit::<libc::fd_set>::uninit();
        // SAFETY: FD_ZERO initialises every byte of the set it is given.
        unsafe {
            libc::FD_ZERO(set.as_mut_ptr());
            FdSet(set.assume_init())
        }
    }

    pub fn check(fd: RawFd) -> io::Result<()> {
        if fd < 0 || fd as usize >= FD_SETSIZE {
            return Err(io::Error::other(FdLimitError { fd: fd as i64, limit: FD_SETSIZE }));
        }
        Ok(())
    }

    /// `fd` must have passed [`FdSet::check`].
    pub fn insert(&mut self, fd: RawFd) {
        debug_assert!(Self::check(fd).is_ok());
        // SAFETY: `check` bounds fd to 0..FD_SETSIZE, the set's capacity.
        unsafe { libc::FD_SET(fd, &mut self.0) }
    }

    pub fn contains(&self, fd: RawFd) -> bool {
        // SAFETY: as for `insert`; FD_ISSET only reads the set.
        (0..FD_SETSIZE as RawFd).contains(&fd) && unsafe { libc::FD_ISSET(fd, &self.0) }
    }
}

/// `select(2)` over read and write sets whose fds are all below `nfds`.
pub(super) fn select(nfds: RawFd, read: &mut FdSet, write: &mut FdSet, timeout: Option<Duration>) -> io::Result<usize> {
    let mut tv = timeout.map(|t| libc::timeval {
        // The fields' own types (musl deprecates the names of its 32-bit ones).
        tv_sec: t.as_secs().min(i32::MAX as u64) as _,
        tv_usec: t.subsec_micros() as _,
    });
    let tv_ptr = tv.as_mut().map_or(std::ptr::null_mut(), |tv| tv as *mut libc::timeval);
    // SAFETY: both sets are valid and exclusively borrowed, every fd in
    // them is below `nfds` <= FD_SETSIZE, and `tv_ptr` is null or points
    // to a live timeval.
    let r = unsafe { libc::select(nfds, &mut read.0, &mut write.0, std::ptr::null_mut(), tv_ptr) };
    retry_interrupted(r)
}
