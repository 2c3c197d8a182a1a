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

/// A positive errno for any I/O error, numbered as libuv numbers it, so
/// JS can name it as Node does (`util.getSystemErrorMap()` is keyed by
/// libuv's numbers).
pub fn errno_of(e: &io::Error) -> i32 {
    if let Some(code) = e.raw_os_error() {
        return uv::from_os(code);
    }
    if e.get_ref().is_some_and(|inner| inner.is::<FdLimitError>()) {
        return FD_LIMIT_ERRNO;
    }
    match e.kind() {
        io::ErrorKind::BrokenPipe => uv::EPIPE,
        // A token that names no socket (closed, or never was).
        io::ErrorKind::NotFound => uv::EBADF,
        io::ErrorKind::InvalidInput => uv::EINVAL,
        io::ErrorKind::WouldBlock => uv::EAGAIN,
        io::ErrorKind::AlreadyExists => uv::EEXIST,
        io::ErrorKind::Unsupported => uv::ENOTSUP,
        io::ErrorKind::NotConnected => uv::ENOTCONN,
        _ => uv::EIO,
    }
}

/// libuv's error numbers. On Unix they are the errno values themselves.
#[cfg(unix)]
pub mod uv {
    pub use libc::{EAGAIN, EBADF, EEXIST, EINVAL, EIO, ENOTCONN, ENOTSUP, EPIPE};

    pub fn from_os(code: i32) -> i32 {
        code
    }
}

/// libuv's error numbers on Windows (its `uv/errno.h`), and the
/// translation of Winsock's codes to them, as libuv's own
/// `uv_translate_sys_error` does for the errors sockets meet.
#[cfg(windows)]
pub mod uv {
    pub const EACCES: i32 = 4092;
    pub const EADDRINUSE: i32 = 4091;
    pub const EADDRNOTAVAIL: i32 = 4090;
    pub const EAFNOSUPPORT: i32 = 4089;
    pub const EAGAIN: i32 = 4088;
    pub const EALREADY: i32 = 4084;
    pub const EBADF: i32 = 4083;
    pub const ECONNABORTED: i32 = 4079;
    pub const ECONNREFUSED: i32 = 4078;
    pub const ECONNRESET: i32 = 4077;
    pub const EEXIST: i32 = 4075;
    pub const EHOSTUNREACH: i32 = 4073;
    pub const EINTR: i32 = 4072;
    pub const EINVAL: i32 = 4071;
    pub const EIO: i32 = 4070;
    pub const EISCONN: i32 = 4069;
    pub const EMFILE: i32 = 4066;
    pub const EMSGSIZE: i32 = 4065;
    pub const ENETDOWN: i32 = 4063;
    pub const ENETUNREACH: i32 = 4062;
    pub const ENOBUFS: i32 = 4060;
    pub const ENOTCONN: i32 = 4053;
    pub const ENOTSOCK: i32 = 4050;
    pub const ENOTSUP: i32 = 4049;
    pub const EPIPE: i32 = 4047;
    pub const ESHUTDOWN: i32 = 4042;
    pub const ETIMEDOUT: i32 = 4039;
    pub const UNKNOWN: i32 = 4094;

    pub fn from_os(code: i32) -> i32 {
        match code {
            10004 => EINTR,         // WSAEINTR
            10009 => EBADF,         // WSAEBADF
            10013 => EACCES,        // WSAEACCES
            10022 => EINVAL,        // WSAEINVAL
            10024 => EMFILE,        // WSAEMFILE
            10035 => EAGAIN,        // WSAEWOULDBLOCK
            10037 => EALREADY,      // WSAEALREADY
            10038 => ENOTSOCK,      // WSAENOTSOCK
            10040 => EMSGSIZE,      // WSAEMSGSIZE
            10045 => ENOTSUP,       // WSAEOPNOTSUPP
            10047 => EAFNOSUPPORT,  // WSAEAFNOSUPPORT
            10048 => EADDRINUSE,    // WSAEADDRINUSE
            10049 => EADDRNOTAVAIL, // WSAEADDRNOTAVAIL
            10050 => ENETDOWN,      // WSAENETDOWN
            10051 => ENETUNREACH,   // WSAENETUNREACH
            10053 => ECONNABORTED,  // WSAECONNABORTED
            10054 => ECONNRESET,    // WSAECONNRESET
            10055 => ENOBUFS,       // WSAENOBUFS
            10056 => EISCONN,       // WSAEISCONN
            10057 => ENOTCONN,      // WSAENOTCONN
            10058 => ESHUTDOWN,     // WSAESHUTDOWN
            10060 => ETIMEDOUT,     // WSAETIMEDOUT
            10061 => ECONNREFUSED,  // WSAECONNREFUSED
            10065 => EHOSTUNREACH,  // WSAEHOSTUNREACH
            109 | 232 => EPIPE,     // ERROR_BROKEN_PIPE, ERROR_NO_DATA
            _ => UNKNOWN,
        }
    }
}

/// An error of the `Reactor` constructor: for what the system refused (no
/// fd left: `EMFILE`; an fd `select` cannot watch) its `code` is the
/// errno as above, in decimal, which the TypeScript layer names as Node
/// does; other failures keep their napi status as the code.
pub type SetupError = napi::Error<String>;

/// `e` as a [`SetupError`] coded with its errno.
pub fn setup_io(context: &str, e: &io::Error) -> SetupError {
    napi::Error::new(errno_of(e).to_string(), format!("{context}: {e}"))
}

/// A napi error as a [`SetupError`], its status as the code.
pub fn setup_napi(e: napi::Error) -> SetupError {
    napi::Error::new(e.status.as_ref().to_string(), e.reason)
}

/// `Ok(n)` as `n`, an error as its negative errno.
pub fn code<T: TryInto<i64>>(r: io::Result<T>) -> i64 {
    match r {
        Ok(n) => n.try_into().unwrap_or(i64::MAX),
        Err(e) => -(errno_of(&e) as i64),
    }
}
