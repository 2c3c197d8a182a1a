//! The binding's `Reactor` class: a muxnet-core reactor bound to this
//! thread's Node environment, its methods (one per reactor call: a token or
//! count back, or a negative errno), and its teardown with the env.

use std::cell::RefCell;
use std::ffi::c_void;
use std::io;
use std::rc::{Rc, Weak};

use muxnet_core::{BackendKind, BindOptions, Config, KeepAlive, Membership, PipeOptions, SocketBuffer};
use napi::bindgen_prelude::*;
use napi::JsValue;
use napi_derive::napi;

use crate::address::{group_interface, parse_addr, parse_interface, SocketAddress};
use crate::driver::{with_reactor, with_state, Shared, State};
use crate::errno::{code, setup_io, setup_napi};
use crate::records::{token_number, token_of};
use crate::{barrier, fast_path};

/// The select backend's limit: fds at or above it cannot be watched.
#[cfg(unix)]
#[napi]
#[cfg_attr(test, allow(dead_code))] // read from JavaScript only
pub const FD_SETSIZE: u32 = libc::FD_SETSIZE as u32;

/// The most a turn writes of one connection's bytes (`muxnet_core::WRITE_TURN`):
/// the drop-in hands a larger write over a piece of this at a time.
#[napi]
#[cfg_attr(test, allow(dead_code))] // read from JavaScript only
pub const WRITE_TURN: u32 = muxnet_core::WRITE_TURN as u32;

/// Backends this build offers, in order of preference.
#[napi(catch_unwind)]
#[cfg_attr(test, allow(dead_code))] // called from JavaScript only
pub fn backends() -> Vec<&'static str> {
    BackendKind::ALL.iter().map(|k| k.name()).collect()
}

/// `reportUncaught(error)`: hands a throw JavaScript caught to
/// `process.on('uncaughtException')` now, in the async context current (the
/// handle's, where one of its listeners threw), as Node reports a throw from
/// one of its own callbacks there (node:test tells by it which test failed).
#[napi(catch_unwind)]
#[cfg_attr(test, allow(dead_code))] // called from JavaScript only
pub fn report_uncaught(env: Env, error: Unknown<'_>) {
    crate::js::report(env.raw(), error.raw());
}

#[napi(object)]
pub struct ReactorOptions {
    /// `"auto"` (default: watch the poller's fd where there is one),
    /// `"fd"` or `"thread"` (a waiter thread, forced).
    pub wake: Option<String>,
    /// Bytes per read slab (default 1 MiB).
    pub slab_size: Option<u32>,
    /// Per-connection write queue cap in bytes (default 16 MiB).
    pub write_queue_cap: Option<u32>,
    /// Bytes read from one connection per turn (default 256 KiB).
    pub read_budget: Option<u32>,
    /// Linux: relay bulk input between piped connections with `splice(2)`
    /// (default false: copied through user space; see `Config::splice`).
    pub splice: Option<bool>,
}

/// Syscalls of one kind that did something, and the bytes they moved.
#[napi(object)]
pub struct IoCount {
    pub calls: f64,
    pub bytes: f64,
}

impl From<muxnet_core::stats::IoCount> for IoCount {
    fn from(c: muxnet_core::stats::IoCount) -> IoCount {
        IoCount { calls: c.calls as f64, bytes: c.bytes as f64 }
    }
}

/// A reactor's counters since it was made, and its sockets now (see
/// muxnet-core's `Stats`); counts are numbers (exact below 2^53).
#[napi(object)]
pub struct ReactorStats {
    pub backend: String,
    pub wake_mode: String,
    pub turns: f64,
    pub events: f64,
    /// Turns by their number of events: 0, 1, 2–3, 4–7, …, 256–511, 512+.
    pub events_per_turn: Vec<f64>,
    pub waits: f64,
    pub accepts: f64,
    /// Times a listener paused for want of an fd: once per out-of-fds
    /// accept, so each retry that still finds none counts again.
    pub accept_pauses: f64,
    pub reads: IoCount,
    /// Stream reads and datagram receives that found no input (`WouldBlock`).
    pub empty_reads: f64,
    pub writes: IoCount,
    /// Receive and send syscalls (`recvmmsg`/`sendmmsg` on Linux: one for
    /// up to 64 datagrams) and the bytes they moved.
    pub receives: IoCount,
    pub sends: IoCount,
    pub datagrams_received: f64,
    pub datagrams_sent: f64,
    pub relayed: f64,
    /// Of `relayed`, the bytes moved with `splice(2)` (Linux).
    pub spliced: f64,
    /// Kernel pipes made for splicing (Linux; a drained pair's is kept for its next splice).
    pub kernel_pipes: f64,
    pub listeners: f64,
    pub connections: f64,
    pub connecting: f64,
    pub half_closed: f64,
    pub piped: f64,
    pub datagram_sockets: f64,
    pub queued_bytes: f64,
    pub paused_listeners: f64,
    /// Read slabs made and not yet collected by V8.
    pub slabs_alive: f64,
}

/// A reactor bound to this thread's Node environment.
#[napi]
pub struct Reactor {
    state: Shared,
    backend: &'static str,
    wake_mode: &'static str,
    write_queue_cap: usize,
    /// The env cleanup hook's argument, freed by whoever runs first.
    hook: *mut Weak<RefCell<State>>,
}

unsafe extern "C" fn on_env_cleanup(arg: *mut c_void) {
    // SAFETY: `arg` is the Box made in the constructor; the hook is removed
    // (and the Box freed) by `close` if that runs first, so this is the
    // only owner now.
    let weak = unsafe { Box::from_raw(arg.cast::<Weak<RefCell<State>>>()) };
    if let Err(panic) = barrier::catch(|| weak.upgrade().map(|state| state.borrow_mut().shut_down())) {
        barrier::warn(&panic);
    }
}

#[napi]
impl Reactor {
    /// `onEvents(count, records, slab, peers, part, parts)` is called once per
    /// turn, and again while it returns `true` (or throws), `part` counting
    /// the calls, `parts` the most it will make for the batch.
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "backend: string, onEvents: (count: number, records: Int32Array, slab: Buffer, peers: string[] | undefined, part: number, parts: number) => boolean | void, options?: ReactorOptions"
    )]
    pub fn new(env: Env, backend: String, on_events: Unknown, options: Option<ReactorOptions>) -> Result<Reactor, String> {
        let invalid = |reason: String| setup_napi(Error::new(Status::InvalidArg, reason));
        let kind = BackendKind::from_name(&backend).ok_or_else(|| invalid(format!("unknown backend: {backend}")))?;
        if on_events.get_type().map_err(setup_napi)? != ValueType::Function {
            return Err(invalid("onEvents must be a function".into()));
        }
        let options =
            options.unwrap_or(ReactorOptions { wake: None, slab_size: None, write_queue_cap: None, read_budget: None, splice: None });
        let mut config = Config::default();
        if let Some(cap) = options.write_queue_cap {
            config.write_queue_cap = cap as usize;
        }
        if let Some(budget) = options.read_budget {
            config.read_budget = budget.max(1) as usize;
        }
        if let Some(splice) = options.splice {
            config.splice = splice;
        }
        let write_queue_cap = config.write_queue_cap;
        let reactor = muxnet_core::Reactor::new(kind, config).map_err(|e| setup_io(&format!("cannot create {backend} reactor"), &e))?;
        // libuv watches the poller's own fd where there is one (epoll, kqueue;
        // not IOCP, and not poll or select, which have no such fd).
        let watchable = reactor.backend().as_pollable().is_some();
        let use_thread = match options.wake.as_deref() {
            None | Some("auto") => !watchable,
            Some("fd") if watchable => false,
            Some("fd") => return Err(invalid(format!("the {backend} backend has no fd to watch; use wake: 'thread'"))),
            Some("thread") => true,
            Some(other) => return Err(invalid(format!("unknown wake mode: {other}"))),
        };
        let slab_size = options.slab_size.map_or(1 << 20, |n| (n as usize).max(256 * 1024));
        let raw_env = env.raw();
        let state = State::new(raw_env, reactor, on_events.raw(), slab_size, use_thread)?;
        let hook = Box::into_raw(Box::new(Rc::downgrade(&state)));
        // SAFETY: `raw_env` is live; the hook and its Box argument stay
        // valid until the hook runs or `close` removes it.
        unsafe { napi::sys::napi_add_env_cleanup_hook(raw_env, Some(on_env_cleanup), hook.cast()) };
        Ok(Reactor { state, backend: kind.name(), wake_mode: if use_thread { "thread" } else { "fd" }, write_queue_cap, hook })
    }

    #[napi(getter, catch_unwind)]
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// `"fd"`: libuv watches the poller's fd; `"thread"`: a waiter thread.
    #[napi(getter, catch_unwind)]
    pub fn wake_mode(&self) -> &'static str {
        self.wake_mode
    }

    /// Bytes a connection's write queue may hold: a write that would take
    /// a non-empty queue past it is refused (`ENOBUFS`).
    #[napi(getter, catch_unwind)]
    pub fn write_queue_cap(&self) -> f64 {
        self.write_queue_cap as f64
    }

    /// [`with_reactor`] on this reactor.
    fn with<T>(&self, f: impl FnOnce(&mut muxnet_core::Reactor) -> io::Result<T>) -> io::Result<T> {
        with_reactor(&self.state, f)
    }

    /// Listens; returns the listener's token or a negative errno.
    #[napi(catch_unwind)]
    pub fn listen(&self, host: String, port: u32, backlog: i32, reuse_port: bool, ipv6_only: bool, no_delay: bool) -> i64 {
        code(self.with(|r| {
            let mut opts = BindOptions::new(parse_addr(&host, port)?);
            opts.backlog = backlog;
            opts.reuse_port = reuse_port;
            opts.ipv6_only = ipv6_only;
            r.listen(&opts, no_delay).map(token_number)
        }))
    }

    /// Listens on a Unix-domain path (IPC; Linux: a leading NUL names an
    /// abstract socket); returns the listener's token or a negative errno.
    #[napi(catch_unwind)]
    pub fn listen_unix(&self, path: String, backlog: i32) -> i64 {
        #[cfg(unix)]
        return code(self.with(|r| r.listen_unix(&path, backlog).map(token_number)));
        #[cfg(not(unix))]
        {
            let _ = (path, backlog);
            -(crate::errno::uv::ENOTSUP as i64)
        }
    }

    /// Takes a copy of a socket another owner handed this process (Node's
    /// cluster primary, through libuv): `kind` 0 a bound or listening stream
    /// socket, listened on with `backlog`; 1 a connected stream; 2 a bound
    /// UDP socket. Returns its token or a negative errno; `ENOTSUP` off Unix,
    /// `EEXIST` for an fd one of Node's own handles watches (libuv's answer
    /// when node:net is given one; closing that fd under libuv would abort).
    #[napi(catch_unwind)]
    pub fn inherit(&self, env: Env, fd: i32, kind: u32, backlog: i32, no_delay: bool, shared: bool) -> i64 {
        #[cfg(unix)]
        return code(self.with(|r| {
            if crate::wake::libuv_watches(env.raw(), fd).map_err(|e| io::Error::other(e.reason))? {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            match kind {
                0 => r.inherit_listener(fd, backlog, no_delay, shared),
                1 => r.inherit_stream(fd, no_delay),
                2 => r.inherit_datagram(fd, shared),
                _ => Err(io::Error::from(io::ErrorKind::InvalidInput)),
            }
            .map(token_number)
        }));
        #[cfg(not(unix))]
        {
            let _ = (env, fd, kind, backlog, no_delay, shared);
            -(crate::errno::uv::ENOTSUP as i64)
        }
    }

    /// Connects from a copy of `fd`, a bound stream socket (Node's
    /// `net.BoundSocket`), to `host`:`port`, or to the Unix-domain `path`
    /// when it is given; returns the token or a negative errno (`ENOTSUP`
    /// off Unix).
    #[napi(catch_unwind)]
    pub fn connect_from(&self, fd: i32, host: String, port: u32, path: Option<String>) -> i64 {
        #[cfg(unix)]
        return code(self.with(|r| {
            let to = match &path {
                Some(path) => muxnet_core::Peer::Path(path),
                None => muxnet_core::Peer::Ip(parse_addr(&host, port)?),
            };
            r.inherit_connect(fd, to).map(token_number)
        }));
        #[cfg(not(unix))]
        {
            let _ = (fd, host, port, path);
            -(crate::errno::uv::ENOTSUP as i64)
        }
    }

    /// A duplicate of the socket behind `token` (close-on-exec) for Node's
    /// IPC to hand to another process; the caller closes it. Returns the fd
    /// or a negative errno; `ENOTSUP` off Unix.
    #[napi(catch_unwind)]
    pub fn duplicate(&self, token: f64) -> i64 {
        #[cfg(unix)]
        return code(self.with(|r| r.duplicate(token_of(token)).map(std::os::fd::IntoRawFd::into_raw_fd)));
        #[cfg(not(unix))]
        {
            let _ = token;
            -(crate::errno::uv::ENOTSUP as i64)
        }
    }

    /// `fd` is one this reactor serves or made for itself (a socket, a file
    /// or pipe it sends, its wake-up pipe), or a given fd it serves a copy
    /// of: a socket "given by fd" with that number is refused (`EEXIST`),
    /// as libuv refuses one it watches.
    #[napi(catch_unwind)]
    pub fn holds_fd(&self, fd: i32) -> bool {
        #[cfg(unix)]
        return !self.state.borrow().is_closed() && (self.state.borrow().holds_fd(fd) || self.state.borrow().given.contains(fd));
        #[cfg(not(unix))]
        {
            let _ = fd;
            false
        }
    }

    /// A given fd this reactor now serves a copy of: its number stays
    /// open until `releaseGivenFd`, or until the reactor shuts down.
    #[napi(catch_unwind)]
    pub fn hold_given_fd(&self, fd: i32) {
        self.state.borrow_mut().given.add(fd);
    }

    /// The copy of a given fd closed; true if no copy serves it on any
    /// thread now, and the caller closes the number.
    #[napi(catch_unwind)]
    pub fn release_given_fd(&self, fd: i32) -> bool {
        self.state.borrow_mut().given.remove(fd)
    }

    /// The stream socket `fd` was never connected (see
    /// [`muxnet_core::never_connected`]): `new Socket({ fd })` connects
    /// from it later rather than serving it.
    #[napi(catch_unwind)]
    pub fn never_connected(&self, fd: i32) -> bool {
        #[cfg(unix)]
        return muxnet_core::never_connected(fd);
        #[cfg(not(unix))]
        {
            let _ = fd;
            false
        }
    }

    /// What libuv calls the socket `fd`: `TCP`, `UDP`, `PIPE` (a Unix-domain
    /// stream) or `UNKNOWN` (for the error an fd of the wrong kind gets).
    #[napi(catch_unwind)]
    pub fn socket_kind(&self, fd: i32) -> String {
        #[cfg(unix)]
        return muxnet_core::socket_kind(fd).to_owned();
        #[cfg(not(unix))]
        {
            let _ = fd;
            "UNKNOWN".to_owned()
        }
    }

    /// Connects to a Unix-domain path; returns the token or a negative errno.
    #[napi(catch_unwind)]
    pub fn connect_unix(&self, path: String) -> i64 {
        #[cfg(unix)]
        return code(self.with(|r| r.connect_unix(&path).map(token_number)));
        #[cfg(not(unix))]
        {
            let _ = path;
            -(crate::errno::uv::ENOTSUP as i64)
        }
    }

    /// Starts connecting; returns the connection's token or a negative errno.
    #[napi(catch_unwind)]
    pub fn connect(&self, host: String, port: u32, local_host: Option<String>, local_port: Option<u32>) -> i64 {
        code(self.with(|r| {
            let local = match local_host {
                Some(h) => Some(parse_addr(&h, local_port.unwrap_or(0))?),
                None => None,
            };
            r.connect(parse_addr(&host, port)?, local).map(token_number)
        }))
    }

    #[napi(catch_unwind)]
    pub fn udp_bind(&self, host: String, port: u32, reuse_addr: bool, reuse_port: bool, ipv6_only: bool) -> i64 {
        code(self.with(|r| r.udp_bind(&udp_options(&host, port, reuse_addr, reuse_port, ipv6_only)?).map(token_number)))
    }

    /// A UDP socket of the IPv6 family (`ipv6`) or the IPv4 one, bound to
    /// nothing yet, as libuv makes one on a handle's first bind (see
    /// `udpBindSocket`); returns its token or a negative errno.
    #[napi(catch_unwind)]
    pub fn udp_socket(&self, ipv6: bool) -> i64 {
        code(self.with(|r| r.udp_socket(ipv6).map(token_number)))
    }

    /// Binds the UDP socket `token` (from `udpSocket`, or one whose bind
    /// failed) as libuv's `uv_udp_bind` does: 0, or a negative errno with
    /// the socket left open and unbound (`EINVAL` for one bound already, an
    /// address of the other family, `ipv6Only` for an IPv4 address).
    #[napi(catch_unwind)]
    pub fn udp_bind_socket(&self, token: f64, host: String, port: u32, reuse_addr: bool, reuse_port: bool, ipv6_only: bool) -> i64 {
        code(self.with(|r| r.udp_bind_socket(token_of(token), &udp_options(&host, port, reuse_addr, reuse_port, ipv6_only)?).map(|()| 0)))
    }

    /// `write(token, data)`: writes now what the kernel takes; returns the
    /// bytes left queued, or a negative errno.
    #[napi(ts_return_type = "(token: number, data: Uint8Array) => number", catch_unwind)]
    pub fn writer(&self, env: Env) -> Result<Unknown<'_>> {
        fast_path::bind(env, &self.state, "write", fast_path::write)
    }

    /// `send(token, data[, host, port])`: one datagram, to `host:port` or to
    /// the connected peer; returns the bytes sent or a negative errno. A
    /// number for `host` names the sender at that index of the last batch's
    /// `peers` (a reply: no address text to parse).
    #[napi(ts_return_type = "(token: number, data: Uint8Array, host?: string | number, port?: number) => number", catch_unwind)]
    pub fn sender(&self, env: Env) -> Result<Unknown<'_>> {
        fast_path::bind(env, &self.state, "send", fast_path::send)
    }

    /// `sendLater(token, data[, host, port])`: queues one datagram (as
    /// `send` takes it) to leave at the next `flushSends` with the others
    /// queued on its socket, in one `sendmmsg` on Linux; returns its place
    /// in the queue, or a negative errno (a token that names no UDP
    /// socket, an address that is none).
    #[napi(ts_return_type = "(token: number, data: Uint8Array, host?: string | number, port?: number) => number", catch_unwind)]
    pub fn queuer(&self, env: Env) -> Result<Unknown<'_>> {
        fast_path::bind(env, &self.state, "sendLater", fast_path::send_later)
    }

    /// Sends every datagram queued by `sendLater`, each socket's in order;
    /// `results[i]` becomes the outcome of the `i`-th: the bytes sent or a
    /// negative errno (`EAGAIN`: the send buffer was full, and so are the
    /// socket's datagrams after it, unsent). Returns how many there were;
    /// if `results` has no room for them all, sends nothing and returns
    /// `-EINVAL`.
    #[napi(catch_unwind)]
    pub fn flush_sends(&self, mut results: Int32ArraySlice<'_>) -> i64 {
        // SAFETY: no JavaScript runs during this call, so nothing else
        // reads or writes the array's memory while the slice lives.
        let results = unsafe { results.as_mut() };
        code(self.with(|r| {
            if r.queued_sends() > results.len() {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            }
            let mut outcomes = Vec::with_capacity(r.queued_sends());
            r.flush_sends(&mut outcomes);
            let count = outcomes.len();
            for (slot, outcome) in results.iter_mut().zip(outcomes) {
                *slot = code(outcome) as i32;
            }
            Ok(count)
        }))
    }

    /// Writes one buffer to many connections in one call (room fan-out).
    /// The writes are corked: each connection gets one send for all that
    /// was broadcast to it in this batch of events (or, outside one, by
    /// the next turn). Returns, for each connection that needs the
    /// caller's attention, its token and why: a negative errno if the
    /// write was refused (none of it queued, as a refused `write`), 0 if
    /// its queue now holds more than `slowCap` bytes after the kernel
    /// refused some (bytes only corked so far are not counted).
    #[napi(catch_unwind)]
    pub fn broadcast(&self, tokens: &[f64], data: &[u8], slow_cap: f64) -> Vec<f64> {
        let attention = self.with(|r| {
            let mut attention = Vec::new();
            for &t in tokens {
                match r.write_corked(token_of(t), data) {
                    // Compared as numbers: `Infinity` means no cap, NaN flags everyone.
                    Ok(queued) if queued as f64 <= slow_cap => {}
                    Ok(_) => attention.extend([t, 0.0]),
                    Err(e) => attention.extend([t, code::<i64>(Err(e)) as f64]),
                }
            }
            Ok(attention)
        });
        // A closed reactor wrote nothing at all (its connections are closed already).
        attention.unwrap_or_else(|_| tokens.iter().flat_map(|&t| [t, 0.0]).collect())
    }

    #[napi(catch_unwind)]
    pub fn udp_connect(&self, token: f64, host: String, port: u32) -> i64 {
        code(self.with(|r| r.udp_connect(token_of(token), parse_addr(&host, port)?).map(|()| 0)))
    }

    /// Undoes `udpConnect`. Not built for Windows yet (untested there): EOPNOTSUPP.
    #[napi(catch_unwind)]
    pub fn udp_disconnect(&self, token: f64) -> i64 {
        #[cfg(unix)]
        return code(self.with(|r| r.udp_disconnect(token_of(token)).map(|()| 0)));
        #[cfg(not(unix))]
        {
            let _ = token;
            -(crate::errno::uv::ENOTSUP as i64)
        }
    }

    /// `SO_BROADCAST` on a UDP socket; 0 or a negative errno.
    #[napi(catch_unwind)]
    pub fn udp_set_broadcast(&self, token: f64, on: bool) -> i64 {
        code(self.with(|r| r.set_broadcast(token_of(token), on).map(|()| 0)))
    }

    /// The unicast TTL (1..=255, else EINVAL, checked before the token).
    #[napi(catch_unwind)]
    pub fn udp_set_ttl(&self, token: f64, ttl: i32) -> i64 {
        code(self.with(|r| r.set_ttl(token_of(token), ttl).map(|()| 0)))
    }

    /// The multicast TTL (0..=255, else EINVAL, checked before the token).
    #[napi(catch_unwind)]
    pub fn udp_set_multicast_ttl(&self, token: f64, ttl: i32) -> i64 {
        code(self.with(|r| r.set_multicast_ttl(token_of(token), ttl).map(|()| 0)))
    }

    #[napi(catch_unwind)]
    pub fn udp_set_multicast_loopback(&self, token: f64, on: bool) -> i64 {
        code(self.with(|r| r.set_multicast_loop(token_of(token), on).map(|()| 0)))
    }

    /// The interface multicast leaves from, as libuv reads it: an IPv4
    /// address, or an IPv6 one whose `%zone` names the interface.
    #[napi(catch_unwind)]
    pub fn udp_set_multicast_interface(&self, token: f64, interface: String) -> i64 {
        code(self.with(|r| r.set_multicast_interface(token_of(token), parse_interface(&interface)?).map(|()| 0)))
    }

    /// Joins (`join`) or leaves `group`, from `source` only if given, on
    /// `interface` (the kernel's choice if not given); addresses that are
    /// not IP text of the group's family are EINVAL, as in libuv.
    #[napi(catch_unwind)]
    pub fn udp_membership(&self, token: f64, join: bool, group: String, source: Option<String>, interface: Option<String>) -> i64 {
        code(self.with(|r| {
            let group = parse_addr(&group, 0)?.ip();
            let source = source.map(|s| parse_addr(&s, 0).map(|a| a.ip())).transpose()?;
            let interface = group_interface(group.is_ipv6(), interface.as_deref())?;
            r.set_membership(token_of(token), &Membership { group, source, interface }, join).map(|()| 0)
        }))
    }

    /// `SO_RCVBUF` (`recv`) or `SO_SNDBUF`, as libuv's
    /// `uv_{recv,send}_buffer_size`: a `size` of 0 reads it, any other sets
    /// it; returns the size (the kernel's, when read) or a negative errno.
    /// A size above `i32::MAX` is EINVAL, as Node's binding says.
    #[napi(catch_unwind)]
    pub fn udp_buffer_size(&self, token: f64, recv: bool, size: u32) -> i64 {
        let which = if recv { SocketBuffer::Receive } else { SocketBuffer::Send };
        code(self.with(|r| match size {
            0 => r.buffer_size(token_of(token), which),
            n if n > i32::MAX as u32 => Err(io::Error::from(io::ErrorKind::InvalidInput)),
            n => r.set_buffer_size(token_of(token), which, n as usize).map(|()| n as usize),
        }))
    }

    /// Queues a file to send after the bytes written so far (see
    /// muxnet-core's `Reactor::send_file`): `length` bytes from `offset`,
    /// or to the end of the file (a pipe's EOF) if `length` is negative. On Unix the file
    /// is `fd` (duplicated: the caller keeps and closes its own); on
    /// Windows, `path`. Returns 0, or a negative errno; an `EVENT_FILE_SENT`
    /// record reports the bytes sent.
    #[napi(catch_unwind)]
    pub fn send_file(&self, token: f64, fd: i32, path: String, offset: f64, length: f64) -> i64 {
        code(self.with(|r| {
            let file = open_file(fd, &path)?;
            let len = (length >= 0.0).then_some(length as u64);
            r.send_file(token_of(token), file, offset as u64, len).map(|()| 0)
        }))
    }

    /// Half-closes after the queued bytes.
    #[napi(catch_unwind)]
    pub fn shutdown(&self, token: f64) -> i64 {
        code(self.with(|r| r.shutdown(token_of(token)).map(|()| 0)))
    }

    /// Joins two connections in the reactor (see muxnet-core's
    /// `Reactor::pipe`): 0, or a negative errno. `splice`: relay bulk input
    /// with `splice(2)` (Linux); the reactor's `splice` option if not given.
    #[napi(catch_unwind)]
    pub fn pipe(&self, a: f64, b: f64, splice: Option<bool>) -> i64 {
        code(self.with(|r| {
            let (a, b) = (token_of(a), token_of(b));
            match splice {
                Some(splice) => r.pipe_with(a, b, PipeOptions { splice }),
                None => r.pipe(a, b),
            }
            .map(|()| 0)
        }))
    }

    /// Bytes read from a piped connection and passed to its partner, or a
    /// negative errno.
    #[napi(catch_unwind)]
    pub fn relayed(&self, token: f64) -> f64 {
        code(self.with(|r| r.relayed(token_of(token)))) as f64
    }

    /// Closes now; the token is free, and the socket gone from the kernel
    /// (unless another process holds it), when this returns.
    #[napi(catch_unwind)]
    pub fn close_socket(&self, token: f64) -> i64 {
        let closed = code(self.with(|r| r.close(token_of(token)).map(|()| 0)));
        self.state.borrow().closed();
        closed
    }

    /// Closes now with RST instead of FIN.
    #[napi(catch_unwind)]
    pub fn reset_socket(&self, token: f64) -> i64 {
        let closed = code(self.with(|r| r.reset(token_of(token)).map(|()| 0)));
        self.state.borrow().closed();
        closed
    }

    #[napi(catch_unwind)]
    pub fn pause(&self, token: f64) -> i64 {
        code(self.with(|r| r.pause(token_of(token)).map(|()| 0)))
    }

    #[napi(catch_unwind)]
    pub fn resume(&self, token: f64) -> i64 {
        code(self.with(|r| r.resume(token_of(token)).map(|()| 0)))
    }

    #[napi(catch_unwind)]
    pub fn resume_accept(&self, token: f64) -> i64 {
        code(self.with(|r| r.resume_accept(token_of(token)).map(|()| 0)))
    }

    /// Takes an idle connection out of this reactor, open, for another
    /// thread's reactor to `adopt`: its ticket, or a negative errno.
    #[napi(catch_unwind)]
    pub fn detach(&self, token: f64) -> f64 {
        code(self.with(|r| r.detach(token_of(token)))) as f64
    }

    /// Adopts a connection another reactor of this process detached: its
    /// token here, or a negative errno (`EBADF`: no such ticket).
    #[napi(catch_unwind)]
    pub fn adopt(&self, ticket: f64) -> f64 {
        code(self.with(|r| r.adopt(ticket as u64).map(token_number))) as f64
    }

    /// Closes a connection detached under `ticket` that no reactor will
    /// adopt (the table is process-wide: any reactor may): 0, or a negative
    /// errno (`EBADF`: no such ticket).
    #[napi(catch_unwind)]
    pub fn discard_detached(&self, ticket: f64) -> i64 {
        code(muxnet_core::discard_detached(ticket as u64).map(|()| 0))
    }

    /// Holds accepting (`on`) or lets it go on; see `Reactor::hold_accept`.
    #[napi(catch_unwind)]
    pub fn hold_accept(&self, token: f64, on: bool) -> i64 {
        code(self.with(|r| r.hold_accept(token_of(token), on).map(|()| 0)))
    }

    /// At most 64 KiB read from the connection a turn (`on`), or the full
    /// budget: see `Reactor::set_lean_reads`.
    #[napi(catch_unwind)]
    pub fn set_lean_reads(&self, token: f64, on: bool) -> i64 {
        code(self.with(|r| r.set_lean_reads(token_of(token), on).map(|()| 0)))
    }

    #[napi(catch_unwind)]
    pub fn set_no_delay(&self, token: f64, on: bool) -> i64 {
        code(self.with(|r| r.set_no_delay(token_of(token), on).map(|()| 0)))
    }

    /// The type-of-service byte, set first when `tos` is 0–255 (-1 only
    /// reads it); a negative errno on failure (`ENOTSUP` for a Unix-domain stream).
    #[napi(catch_unwind)]
    pub fn type_of_service(&self, token: f64, tos: i32) -> i64 {
        let set = u8::try_from(tos).ok();
        code(self.with(|r| r.type_of_service(token_of(token), set).map(i64::from)))
    }

    /// Keep-alive as libuv's `uv_tcp_keepalive_ex` sets it: off, or on and,
    /// where the idle seconds, interval seconds and count are each at least
    /// 1, probing with them (else the system's timing stays, as libuv
    /// leaves it after its EINVAL, which node:net ignores).
    #[napi(catch_unwind)]
    pub fn set_keep_alive(&self, token: f64, enable: bool, idle_s: f64, interval_s: f64, count: f64) -> i64 {
        // Whole numbers from 1 up (kernel limits above are its own to refuse): else none.
        let whole = |v: f64| (v >= 1.0 && v <= f64::from(u32::MAX)).then_some(v as u32);
        let keep_alive = match (enable, whole(idle_s), whole(interval_s), whole(count)) {
            (false, ..) => KeepAlive::Off,
            (true, Some(idle), Some(interval), Some(count)) => KeepAlive::Probing { idle, interval, count },
            (true, ..) => KeepAlive::On,
        };
        code(self.with(|r| r.set_keep_alive(token_of(token), keep_alive).map(|()| 0)))
    }

    #[napi(catch_unwind)]
    pub fn queued(&self, token: f64) -> i64 {
        code(self.with(|r| r.queued(token_of(token))))
    }

    /// `queued(token)`, and a Drain once those bytes are out (see
    /// [`muxnet_core::Reactor::want_drain`]).
    #[napi(catch_unwind)]
    pub fn arm_drain(&self, token: f64) -> i64 {
        code(self.with(|r| r.want_drain(token_of(token))))
    }

    /// Asks for a call in the pending phase (the driver's `PENDING_PHASE`):
    /// after the batch being handed out, or just after the poll phase, or
    /// just before the next one (see the driver's `AroundPoll`). False if
    /// the reactor is closed.
    #[napi(catch_unwind)]
    pub fn ask_pending(&self) -> bool {
        with_state(&self.state, |state| {
            state.ask_pending();
            Ok(())
        })
        .is_ok()
    }

    /// One write(2) of `data` when nothing waits before it: the bytes the
    /// kernel took, or a negative errno; nothing is queued (see
    /// [`muxnet_core::Reactor::write_once`]).
    #[napi(catch_unwind)]
    pub fn write_once(&self, token: f64, data: &[u8]) -> i64 {
        code(self.with(|r| r.write_once(token_of(token), data).map(|n| n as i64)))
    }

    /// A Drain next turn, bytes queued or none (see
    /// [`muxnet_core::Reactor::drain_next_turn`]); 0 or a negative errno.
    #[napi(catch_unwind)]
    pub fn drain_next_turn(&self, token: f64) -> i64 {
        code(self.with(|r| r.drain_next_turn(token_of(token)).map(|()| 0)))
    }

    #[napi(catch_unwind)]
    pub fn local_address(&self, token: f64) -> Option<SocketAddress> {
        self.with(|r| r.local_addr(token_of(token))).ok().map(Into::into)
    }

    /// The Unix-domain path a socket is bound to (`null` for an IP socket
    /// or an unnamed one).
    #[napi(catch_unwind)]
    pub fn local_path(&self, token: f64) -> Option<String> {
        match self.with(|r| r.local_address(token_of(token))) {
            Ok(muxnet_core::Address::Path(path)) => path,
            _ => None,
        }
    }

    #[napi(catch_unwind)]
    pub fn remote_address(&self, token: f64) -> Option<SocketAddress> {
        self.with(|r| r.peer_addr(token_of(token))).ok().map(Into::into)
    }

    /// The counters and the sockets now (one pass over the table).
    #[napi(catch_unwind)]
    pub fn stats(&self) -> ReactorStats {
        let state = self.state.borrow();
        let s = state.reactor.stats();
        ReactorStats {
            backend: self.backend.to_string(),
            wake_mode: self.wake_mode.to_string(),
            turns: s.turns as f64,
            events: s.events as f64,
            events_per_turn: s.events_per_turn.iter().map(|&n| n as f64).collect(),
            waits: s.waits as f64,
            accepts: s.accepts as f64,
            accept_pauses: s.accept_pauses as f64,
            reads: s.reads.into(),
            empty_reads: s.empty_reads as f64,
            writes: s.writes.into(),
            receives: s.receives.into(),
            sends: s.sends.into(),
            datagrams_received: s.datagrams_received as f64,
            datagrams_sent: s.datagrams_sent as f64,
            relayed: s.relayed as f64,
            spliced: s.spliced as f64,
            kernel_pipes: s.kernel_pipes as f64,
            listeners: s.listeners as f64,
            connections: s.connections as f64,
            connecting: s.connecting as f64,
            half_closed: s.half_closed as f64,
            piped: s.piped as f64,
            datagram_sockets: s.datagram_sockets as f64,
            queued_bytes: s.queued_bytes as f64,
            paused_listeners: s.paused_listeners as f64,
            slabs_alive: state.slabs.get() as f64,
        }
    }

    /// Open sockets.
    #[napi(getter, catch_unwind)]
    pub fn size(&self) -> u32 {
        self.state.borrow().reactor.len() as u32
    }

    /// Whether the reactor keeps the process alive.
    #[napi(js_name = "setRef", catch_unwind)]
    pub fn set_ref(&self, on: bool) {
        self.state.borrow().set_ref(on);
    }

    /// Test hook: the next binding call (`"call"`) or reactor turn
    /// (`"turn"`) panics, so the suite can prove the panic barrier. A
    /// panic is otherwise a bug; nothing else causes one on purpose.
    #[napi(catch_unwind)]
    pub fn inject_panic(&self, site: String) -> Result<()> {
        let site =
            barrier::Injected::from_name(&site).ok_or_else(|| Error::new(Status::InvalidArg, format!("unknown panic site: {site}")))?;
        self.state.borrow_mut().injected = Some(site);
        Ok(())
    }

    /// Calls the callback with the count -1 alone in libuv's closing phase
    /// of this loop turn, where node:net's sockets emit `'close'`; false
    /// where that phase is out of reach (Windows, a closed reactor), and
    /// the caller uses `setImmediate`.
    #[napi(catch_unwind)]
    pub fn in_closing_phase(&self) -> bool {
        #[cfg(unix)]
        return !self.state.borrow().is_closed() && crate::driver::in_closing_phase(&self.state).is_ok();
        #[cfg(not(unix))]
        false
    }

    /// Closes every socket and stops watching; the reactor is unusable after.
    #[napi(catch_unwind)]
    pub fn close(&mut self) {
        self.state.borrow_mut().shut_down();
        if !self.hook.is_null() {
            let env = self.state.borrow().env;
            // SAFETY: the hook was added with exactly this function and
            // argument; after removal nothing else frees the Box.
            unsafe {
                napi::sys::napi_remove_env_cleanup_hook(env, Some(on_env_cleanup), self.hook.cast());
                drop(Box::from_raw(self.hook));
            }
            self.hook = std::ptr::null_mut();
        }
        self.state.borrow_mut().reactor.close_all();
    }
}

/// A file of its own for `send_file`: a duplicate of the caller's `fd`
/// (closed with the file, whatever the caller does with its own).
#[cfg(unix)]
fn open_file(fd: i32, _path: &str) -> io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) touches no memory; an fd that is not
    // open fails with EBADF.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` was just made by fcntl and is owned by nothing else.
    Ok(unsafe { std::fs::File::from_raw_fd(dup) })
}

/// Windows: the C runtime's fds are not handles; the path is opened again.
#[cfg(windows)]
fn open_file(_fd: i32, path: &str) -> io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// A UDP bind's options, as `udpBind` and `udpBindSocket` take them.
fn udp_options(host: &str, port: u32, reuse_addr: bool, reuse_port: bool, ipv6_only: bool) -> io::Result<BindOptions> {
    let mut opts = BindOptions::new(parse_addr(host, port)?);
    opts.reuse_addr = reuse_addr;
    opts.reuse_port = reuse_port;
    opts.ipv6_only = ipv6_only;
    Ok(opts)
}
