//! The syscalls behind `Reactor::send_file`, one per OS: the kernel's own
//! file-to-socket copy (`sendfile` on Linux, macOS and FreeBSD), and the
//! reads of the read/write loop that sends a file wherever the kernel
//! cannot (another OS, or a file it refuses: a pipe, a FIFO, some special
//! files). `connection.rs` decides which one runs; nothing here keeps state.

use std::fs::File;
use std::io::{self, Read};

/// Where a file is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A regular file (or block device): read at an offset the sender
    /// keeps, so the owner's own file position is left alone.
    At(u64),
    /// A pipe, FIFO, socket or character device: read from where it is,
    /// until its end (it has no offsets and no size).
    Stream,
}

impl Source {
    /// How a file of this kind is read: from `offset` if it has offsets,
    /// else as a stream, which must start at 0 (`ESPIPE` otherwise, as
    /// `pread(2)` says).
    pub fn of(meta: &std::fs::Metadata, offset: u64) -> io::Result<Source> {
        let kind = meta.file_type();
        #[cfg(unix)]
        let positional = kind.is_file() || std::os::unix::fs::FileTypeExt::is_block_device(&kind);
        #[cfg(not(unix))]
        let positional = kind.is_file();
        match (positional, offset) {
            (true, _) => Ok(Source::At(offset)),
            (false, 0) => Ok(Source::Stream),
            #[cfg(unix)]
            (false, _) => Err(io::Error::from_raw_os_error(libc::ESPIPE)),
            #[cfg(not(unix))]
            (false, _) => Err(io::ErrorKind::InvalidInput.into()),
        }
    }
}

/// Whether a failed `send_file` means "the kernel cannot send this file
/// to this socket" (nothing was sent): the read/write loop sends it
/// instead. Any other error is the connection's.
pub(crate) fn kernel_cannot(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::Unsupported {
        return true;
    }
    #[cfg(unix)]
    if let Some(code) = e.raw_os_error() {
        // EINVAL: no splice/mmap-like read for this file (Linux: pipes,
        // many /proc files), not a regular file or not a stream socket
        // (BSD); ENOSYS: no sendfile; ESPIPE: an offset asked of a file
        // that has none; ENOTSUP/EOPNOTSUPP (distinct on macOS): the file
        // system or the socket does not take part; ENOTSOCK: not a socket.
        return [libc::EINVAL, libc::ENOSYS, libc::ESPIPE, libc::ENOTSUP, libc::EOPNOTSUPP, libc::ENOTSOCK].contains(&code);
    }
    false
}

/// Linux `sendfile(2)`: up to `len` bytes of `file` from `source` to the
/// socket `out`, from the page cache, no byte through user space. Returns
/// the bytes sent (0: the file ended), `WouldBlock` when the socket's
/// buffer is full.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn send_file(out: std::os::fd::RawFd, file: &File, source: Source, len: usize) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // Linux sends at most 0x7ffff000 bytes per call anyway.
    let len = len.min(0x7fff_f000);
    let mut off = match source {
        Source::At(at) => libc::off_t::try_from(at).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        // No offset: the kernel reads from the file's position (and, for a
        // pipe or FIFO, refuses with EINVAL: it cannot splice from one).
        Source::Stream => 0,
    };
    let off_ptr: *mut libc::off_t = match source {
        Source::At(_) => &mut off,
        Source::Stream => std::ptr::null_mut(),
    };
    // SAFETY: both fds are open for the call (borrowed from their owners),
    // and `off_ptr` is null or points at the live local `off`, which the
    // kernel writes the new offset to.
    let n = unsafe { libc::sendfile(out, file.as_raw_fd(), off_ptr, len) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// macOS (and the other Apple systems) `sendfile(2)`: `len` in, bytes sent
/// out, also when it fails with `EAGAIN` or `EINTR` after a partial send.
/// Regular files to stream sockets only: a stream source is `EINVAL`.
#[cfg(target_vendor = "apple")]
pub(crate) fn send_file(out: std::os::fd::RawFd, file: &File, source: Source, len: usize) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let Source::At(at) = source else { return Err(io::Error::from_raw_os_error(libc::EINVAL)) };
    let offset = libc::off_t::try_from(at).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // 0 would mean "to the end of the file": ask for at least a byte.
    let mut sent = libc::off_t::try_from(len.max(1)).unwrap_or(libc::off_t::MAX);
    // SAFETY: both fds are open for the call (borrowed from their owners),
    // `sent` is a live local the kernel reads the length from and writes
    // the bytes sent to, and no header/trailer struct is passed (null).
    let r = unsafe { libc::sendfile(file.as_raw_fd(), out, offset, &mut sent, std::ptr::null_mut(), 0) };
    partial(r, sent)
}

/// FreeBSD (and DragonFly) `sendfile(2)`: `nbytes` in (never 0, which
/// means "to the end"), the bytes sent in `sbytes`, also when it fails
/// with `EAGAIN` or `EINTR` after a partial send. Regular files only.
#[cfg(any(target_os = "freebsd", target_os = "dragonfly"))]
pub(crate) fn send_file(out: std::os::fd::RawFd, file: &File, source: Source, len: usize) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let Source::At(at) = source else { return Err(io::Error::from_raw_os_error(libc::EINVAL)) };
    let offset = libc::off_t::try_from(at).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut sent: libc::off_t = 0;
    // SAFETY: both fds are open for the call (borrowed from their owners),
    // `sent` is a live local the kernel writes the bytes sent to, and no
    // header/trailer struct is passed (null).
    let r = unsafe { libc::sendfile(file.as_raw_fd(), out, offset, len.max(1), std::ptr::null_mut(), &mut sent, 0) };
    partial(r, sent)
}

/// The BSD convention: a call that failed after sending some bytes
/// (`EAGAIN`: the socket buffer filled; `EINTR`) still sent them.
#[cfg(any(target_vendor = "apple", target_os = "freebsd", target_os = "dragonfly"))]
fn partial(r: libc::c_int, sent: libc::off_t) -> io::Result<usize> {
    if r == 0 {
        return Ok(sent as usize);
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted if sent > 0 => Ok(sent as usize),
        _ => Err(e),
    }
}

/// Elsewhere (Windows, other Unixes) the kernel has no file-to-socket copy
/// this crate uses: every file goes through the read/write loop.
#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple", target_os = "freebsd", target_os = "dragonfly")))]
pub(crate) fn send_file<S>(_out: S, _file: &File, _source: Source, _len: usize) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The read/write loop's read: up to `buf.len()` bytes from `source`.
/// A stream is read only after [`ready`] said so.
pub(crate) fn read(file: &File, source: Source, buf: &mut [u8]) -> io::Result<usize> {
    match source {
        #[cfg(unix)]
        Source::At(at) => std::os::unix::fs::FileExt::read_at(file, buf, at),
        #[cfg(windows)]
        Source::At(at) => std::os::windows::fs::FileExt::seek_read(file, buf, at),
        Source::Stream => (&*file).read(buf),
    }
}

/// Whether reading `source` returns at once (data, its end or an error),
/// so neither `sendfile` nor `read` waits on a pipe's writer. The
/// descriptor is the owner's too, so its blocking mode is not changed:
/// a stream is asked with `poll(2)` instead. A file with offsets always is.
#[cfg(unix)]
pub(crate) fn ready(file: &File, source: Source) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    if let Source::At(_) = source {
        return Ok(true);
    }
    let mut pfd = libc::pollfd { fd: file.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: `pfd` is one live pollfd, as the count says; a zero timeout
    // never blocks.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n > 0)
}

/// Windows sends regular files only (by path), which never wait.
#[cfg(not(unix))]
pub(crate) fn ready(_file: &File, _source: Source) -> io::Result<bool> {
    Ok(true)
}
