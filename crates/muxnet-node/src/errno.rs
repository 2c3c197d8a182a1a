//! The binding's one errno convention: a call that fails returns (or a
//! record carries) a positive errno, and the TypeScript layer names it as
//! Node does (`code`, `errno`, `syscall`). Methods return `-errno`.

use std::io;

use muxnet_core::FdLimitError;
use napi_derive::napi;

/// The errno reported for an fd that `select` cannot hold; the TS layer
/// shows it as `EMFILE` with the limit in the message.
#[napi]
pub const FD_LIMIT_ERRNO: i32 = 100_000;

/// A positive errno for any I/O error, so JS can name it as Node does.
pub fn errno_of(e: &io::Error) -> i32 {
    if let Some(code) = e.raw_os_error() {
        return code;
    }
    if e.get_ref().is_some_and(|inner| inner.is::<FdLimitError>()) {
        return FD_LIMIT_ERRNO;
    }
    match e.kind() {
        io::ErrorKind::BrokenPipe => libc::EPIPE,
        // A token that names no socket (closed, or never was).
        io::ErrorKind::NotFound => libc::EBADF,
        io::ErrorKind::InvalidInput => libc::EINVAL,
        io::ErrorKind::WouldBlock => libc::EAGAIN,
        io::ErrorKind::AlreadyExists => libc::EEXIST,
        io::ErrorKind::Unsupported => libc::ENOTSUP,
        io::ErrorKind::NotConnected => libc::ENOTCONN,
        _ => libc::EIO,
    }
}

/// `Ok(n)` as `n`, an error as its negative errno.
pub fn code<T: TryInto<i64>>(r: io::Result<T>) -> i64 {
    match r {
        Ok(n) => n.try_into().unwrap_or(i64::MAX),
        Err(e) => -(errno_of(&e) as i64),
    }
}
