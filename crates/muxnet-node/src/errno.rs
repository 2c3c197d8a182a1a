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
/// translation of Windows' codes to them, all of libuv's own
/// `uv_translate_sys_error` (`src/win/error.c`), in its order. (Its write
/// variant, `ERROR_BROKEN_PIPE`/`ERROR_NO_DATA` as `EPIPE`, is for named
/// pipes, which sockets never report.)
#[cfg(windows)]
pub mod uv {
    pub const E2BIG: i32 = 4093;
    pub const EACCES: i32 = 4092;
    pub const EADDRINUSE: i32 = 4091;
    pub const EADDRNOTAVAIL: i32 = 4090;
    pub const EAFNOSUPPORT: i32 = 4089;
    pub const EAGAIN: i32 = 4088;
    pub const EALREADY: i32 = 4084;
    pub const EBADF: i32 = 4083;
    pub const EBUSY: i32 = 4082;
    pub const ECANCELED: i32 = 4081;
    pub const ECHARSET: i32 = 4080;
    pub const ECONNABORTED: i32 = 4079;
    pub const ECONNREFUSED: i32 = 4078;
    pub const ECONNRESET: i32 = 4077;
    pub const EEXIST: i32 = 4075;
    pub const EFAULT: i32 = 4074;
    pub const EFTYPE: i32 = 4028;
    pub const EHOSTUNREACH: i32 = 4073;
    pub const EINVAL: i32 = 4071;
    pub const EIO: i32 = 4070;
    pub const EISCONN: i32 = 4069;
    pub const EISDIR: i32 = 4068;
    pub const ELOOP: i32 = 4067;
    pub const EMFILE: i32 = 4066;
    pub const EMSGSIZE: i32 = 4065;
    pub const ENAMETOOLONG: i32 = 4064;
    pub const ENETUNREACH: i32 = 4062;
    pub const ENOBUFS: i32 = 4060;
    pub const ENOENT: i32 = 4058;
    pub const ENOMEM: i32 = 4057;
    pub const ENOSPC: i32 = 4055;
    pub const ENOTCONN: i32 = 4053;
    pub const ENOTEMPTY: i32 = 4051;
    pub const ENOTSOCK: i32 = 4050;
    pub const ENOTSUP: i32 = 4049;
    pub const EOF: i32 = 4095;
    pub const EPERM: i32 = 4048;
    pub const EPIPE: i32 = 4047;
    pub const EPROTONOSUPPORT: i32 = 4045;
    pub const EROFS: i32 = 4043;
    pub const ESOCKTNOSUPPORT: i32 = 4025;
    pub const ETIMEDOUT: i32 = 4039;
    pub const EXDEV: i32 = 4037;
    pub const UNKNOWN: i32 = 4094;

    pub fn from_os(code: i32) -> i32 {
        match code {
            10013 => EACCES,          // WSAEACCES
            740 => EACCES,            // ERROR_ELEVATION_REQUIRED
            1920 => EACCES,           // ERROR_CANT_ACCESS_FILE
            1227 => EADDRINUSE,       // ERROR_ADDRESS_ALREADY_ASSOCIATED
            10048 => EADDRINUSE,      // WSAEADDRINUSE
            10049 => EADDRNOTAVAIL,   // WSAEADDRNOTAVAIL
            10047 => EAFNOSUPPORT,    // WSAEAFNOSUPPORT
            10035 => EAGAIN,          // WSAEWOULDBLOCK
            232 => EAGAIN,            // ERROR_NO_DATA
            10037 => EALREADY,        // WSAEALREADY
            1004 => EBADF,            // ERROR_INVALID_FLAGS
            6 => EBADF,               // ERROR_INVALID_HANDLE
            33 => EBUSY,              // ERROR_LOCK_VIOLATION
            231 => EBUSY,             // ERROR_PIPE_BUSY
            32 => EBUSY,              // ERROR_SHARING_VIOLATION
            995 => ECANCELED,         // ERROR_OPERATION_ABORTED
            10004 => ECANCELED,       // WSAEINTR
            1113 => ECHARSET,         // ERROR_NO_UNICODE_TRANSLATION
            1236 => ECONNABORTED,     // ERROR_CONNECTION_ABORTED
            10053 => ECONNABORTED,    // WSAECONNABORTED
            1225 => ECONNREFUSED,     // ERROR_CONNECTION_REFUSED
            10061 => ECONNREFUSED,    // WSAECONNREFUSED
            64 => ECONNRESET,         // ERROR_NETNAME_DELETED
            10054 => ECONNRESET,      // WSAECONNRESET
            183 => EEXIST,            // ERROR_ALREADY_EXISTS
            80 => EEXIST,             // ERROR_FILE_EXISTS
            998 => EFAULT,            // ERROR_NOACCESS
            10014 => EFAULT,          // WSAEFAULT
            1232 => EHOSTUNREACH,     // ERROR_HOST_UNREACHABLE
            10065 => EHOSTUNREACH,    // WSAEHOSTUNREACH
            122 => EINVAL,            // ERROR_INSUFFICIENT_BUFFER
            13 => EINVAL,             // ERROR_INVALID_DATA
            87 => EINVAL,             // ERROR_INVALID_PARAMETER
            1464 => EINVAL,           // ERROR_SYMLINK_NOT_SUPPORTED
            10022 => EINVAL,          // WSAEINVAL
            10046 => EINVAL,          // WSAEPFNOSUPPORT
            1102 => EIO,              // ERROR_BEGINNING_OF_MEDIA
            1111 => EIO,              // ERROR_BUS_RESET
            23 => EIO,                // ERROR_CRC
            1166 => EIO,              // ERROR_DEVICE_DOOR_OPEN
            1165 => EIO,              // ERROR_DEVICE_REQUIRES_CLEANING
            1393 => EIO,              // ERROR_DISK_CORRUPT
            1129 => EIO,              // ERROR_EOM_OVERFLOW
            1101 => EIO,              // ERROR_FILEMARK_DETECTED
            31 => EIO,                // ERROR_GEN_FAILURE
            1106 => EIO,              // ERROR_INVALID_BLOCK_LENGTH
            1117 => EIO,              // ERROR_IO_DEVICE
            1104 => EIO,              // ERROR_NO_DATA_DETECTED
            205 => EIO,               // ERROR_NO_SIGNAL_SENT
            110 => EIO,               // ERROR_OPEN_FAILED
            1103 => EIO,              // ERROR_SETMARK_DETECTED
            156 => EIO,               // ERROR_SIGNAL_REFUSED
            10056 => EISCONN,         // WSAEISCONN
            1921 => ELOOP,            // ERROR_CANT_RESOLVE_FILENAME
            4 => EMFILE,              // ERROR_TOO_MANY_OPEN_FILES
            10024 => EMFILE,          // WSAEMFILE
            10040 => EMSGSIZE,        // WSAEMSGSIZE
            111 => ENAMETOOLONG,      // ERROR_BUFFER_OVERFLOW
            206 => ENAMETOOLONG,      // ERROR_FILENAME_EXCED_RANGE
            1231 => ENETUNREACH,      // ERROR_NETWORK_UNREACHABLE
            10051 => ENETUNREACH,     // WSAENETUNREACH
            10055 => ENOBUFS,         // WSAENOBUFS
            161 => ENOENT,            // ERROR_BAD_PATHNAME
            267 => ENOENT,            // ERROR_DIRECTORY
            203 => ENOENT,            // ERROR_ENVVAR_NOT_FOUND
            2 => ENOENT,              // ERROR_FILE_NOT_FOUND
            123 => ENOENT,            // ERROR_INVALID_NAME
            15 => ENOENT,             // ERROR_INVALID_DRIVE
            4392 => ENOENT,           // ERROR_INVALID_REPARSE_DATA
            126 => ENOENT,            // ERROR_MOD_NOT_FOUND
            3 => ENOENT,              // ERROR_PATH_NOT_FOUND
            11001 => ENOENT,          // WSAHOST_NOT_FOUND
            11004 => ENOENT,          // WSANO_DATA
            8 => ENOMEM,              // ERROR_NOT_ENOUGH_MEMORY
            14 => ENOMEM,             // ERROR_OUTOFMEMORY
            82 => ENOSPC,             // ERROR_CANNOT_MAKE
            112 => ENOSPC,            // ERROR_DISK_FULL
            277 => ENOSPC,            // ERROR_EA_TABLE_FULL
            1100 => ENOSPC,           // ERROR_END_OF_MEDIA
            39 => ENOSPC,             // ERROR_HANDLE_DISK_FULL
            2250 => ENOTCONN,         // ERROR_NOT_CONNECTED
            10057 => ENOTCONN,        // WSAENOTCONN
            145 => ENOTEMPTY,         // ERROR_DIR_NOT_EMPTY
            10038 => ENOTSOCK,        // WSAENOTSOCK
            50 => ENOTSUP,            // ERROR_NOT_SUPPORTED
            109 => EOF,               // ERROR_BROKEN_PIPE
            5 => EPERM,               // ERROR_ACCESS_DENIED
            1314 => EPERM,            // ERROR_PRIVILEGE_NOT_HELD
            230 => EPIPE,             // ERROR_BAD_PIPE
            233 => EPIPE,             // ERROR_PIPE_NOT_CONNECTED
            10058 => EPIPE,           // WSAESHUTDOWN
            10043 => EPROTONOSUPPORT, // WSAEPROTONOSUPPORT
            19 => EROFS,              // ERROR_WRITE_PROTECT
            121 => ETIMEDOUT,         // ERROR_SEM_TIMEOUT
            10060 => ETIMEDOUT,       // WSAETIMEDOUT
            17 => EXDEV,              // ERROR_NOT_SAME_DEVICE
            1 => EISDIR,              // ERROR_INVALID_FUNCTION
            208 => E2BIG,             // ERROR_META_EXPANSION_TOO_LONG
            10044 => ESOCKTNOSUPPORT, // WSAESOCKTNOSUPPORT
            193 => EFTYPE,            // ERROR_BAD_EXE_FORMAT
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
