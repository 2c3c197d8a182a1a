//! Non-blocking sockets as the reactor holds them, and how they are made:
//! the options a server expects (backlog, `SO_REUSEADDR`, `SO_REUSEPORT`,
//! `IPV6_V6ONLY`) are set through `socket2`, then the socket is handed to
//! mio's types, which every backend can register.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use mio::net::{TcpListener, TcpStream, UdpSocket};
use socket2::{Domain, Protocol, SockAddr, SockRef, Type};

use crate::backend::RawHandle;

/// Errors the reactor reports itself, numbered as the OS numbers them
/// (Winsock's codes on Windows), so the binding names them like the
/// kernel's own.
#[cfg(unix)]
pub(crate) mod os_errno {
    pub const EMSGSIZE: i32 = libc::EMSGSIZE;
    pub const ENOBUFS: i32 = libc::ENOBUFS;
    pub const EPIPE: i32 = libc::EPIPE;
}
#[cfg(windows)]
pub(crate) mod os_errno {
    pub const EMSGSIZE: i32 = 10040; // WSAEMSGSIZE
    pub const ENOBUFS: i32 = 10055; // WSAENOBUFS
    /// A send after shutdown: libuv's `uv_translate_sys_error` names it `EPIPE`.
    pub const EPIPE: i32 = 10058; // WSAESHUTDOWN
}

/// A socket the reactor owns.
#[derive(Debug)]
pub enum Socket {
    Listener(Listener),
    Stream(Stream),
    Datagram(UdpSocket),
}

/// A listening socket: TCP, or a Unix-domain path (IPC).
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    /// `path`: the file to remove when it closes, as libuv does (none for
    /// an abstract name). Boxed: a `Socket` is as big as its largest
    /// variant, and the table holds one per connection.
    #[cfg(unix)]
    Unix {
        listener: mio::net::UnixListener,
        path: Option<Box<std::path::PathBuf>>,
    },
}

/// A connected byte stream: TCP, or Unix-domain.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(mio::net::UnixStream),
}

/// Where a socket is bound or connected: an IP address, or a Unix-domain
/// path (an abstract name starts with a NUL byte; `None` if unnamed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Ip(SocketAddr),
    Path(Option<String>),
}

impl Socket {
    /// The mio view of the socket, for the mio backend.
    pub(crate) fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Socket::Listener(Listener::Tcp(s)) => s,
            #[cfg(unix)]
            Socket::Listener(Listener::Unix { listener, .. }) => listener,
            Socket::Stream(Stream::Tcp(s)) => s,
            #[cfg(unix)]
            Socket::Stream(Stream::Unix(s)) => s,
            Socket::Datagram(s) => s,
        }
    }

    #[cfg(unix)]
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Socket::Listener(Listener::Tcp(s)) => s.as_raw_fd(),
            Socket::Listener(Listener::Unix { listener, .. }) => listener.as_raw_fd(),
            Socket::Stream(s) => s.raw_fd(),
            Socket::Datagram(s) => s.as_raw_fd(),
        }
    }

    pub(crate) fn sock_ref(&self) -> SockRef<'_> {
        match self {
            Socket::Listener(Listener::Tcp(s)) => SockRef::from(s),
            #[cfg(unix)]
            Socket::Listener(Listener::Unix { listener, .. }) => SockRef::from(listener),
            Socket::Stream(s) => s.sock_ref(),
            Socket::Datagram(s) => SockRef::from(s),
        }
    }

    /// The local address: IP and port, or the Unix-domain path.
    pub fn local_address(&self) -> io::Result<Address> {
        address_of(&self.sock_ref().local_addr()?)
    }

    /// The local IP address and port (`InvalidInput` for a Unix-domain socket).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self.local_address()? {
            Address::Ip(addr) => Ok(addr),
            Address::Path(_) => Err(io::Error::new(io::ErrorKind::InvalidInput, "a Unix-domain socket has no IP address")),
        }
    }
}

fn address_of(addr: &SockAddr) -> io::Result<Address> {
    if let Some(ip) = addr.as_socket() {
        return Ok(Address::Ip(ip));
    }
    #[cfg(unix)]
    if let Some(path) = addr.as_pathname() {
        return Ok(Address::Path(Some(path.to_string_lossy().into_owned())));
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(name) = addr.as_abstract_namespace() {
        return Ok(Address::Path(Some(format!("\0{}", String::from_utf8_lossy(name)))));
    }
    if addr.is_unix() {
        return Ok(Address::Path(None));
    }
    Err(io::Error::new(io::ErrorKind::Unsupported, "unknown address family"))
}

impl Stream {
    fn sock_ref(&self) -> SockRef<'_> {
        match self {
            Stream::Tcp(s) => SockRef::from(s),
            #[cfg(unix)]
            Stream::Unix(s) => SockRef::from(s),
        }
    }

    /// The peer's IP address (`NotConnected` before a connect completes;
    /// `InvalidInput` for a Unix-domain stream).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr(),
            #[cfg(unix)]
            Stream::Unix(_) => Err(io::Error::new(io::ErrorKind::InvalidInput, "a Unix-domain socket has no IP address")),
        }
    }

    /// Whether a non-blocking connect has completed (an error is taken
    /// from `SO_ERROR` first).
    pub(crate) fn connected(&self) -> io::Result<bool> {
        let peer = match self {
            Stream::Tcp(s) => s.peer_addr().map(drop),
            #[cfg(unix)]
            Stream::Unix(s) => s.peer_addr().map(drop),
        };
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock_ref().take_error()
    }

    /// Sends FIN. A socket the peer already reset (`ENOTCONN`) has no
    /// write side left to close: that is done too, as node:net takes it.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        match self.sock_ref().shutdown(std::net::Shutdown::Write) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r,
        }
    }

    /// The kernel's copy of up to `len` bytes of `file` from `source` to
    /// this socket (see `file::send_file`): the bytes sent, 0 at the end of
    /// the file, `WouldBlock` when the socket's buffer is full, an error
    /// `file::kernel_cannot` knows when this OS or file has no such copy.
    pub(crate) fn send_file(&self, file: &std::fs::File, source: crate::file::Source, len: usize) -> io::Result<usize> {
        #[cfg(unix)]
        let out = self.raw_fd();
        #[cfg(not(unix))]
        let out = ();
        crate::file::send_file(out, file, source, len)
    }

    /// Makes the next close abortive: the peer gets RST instead of FIN. A
    /// Unix-domain stream has no RST: it just closes.
    pub(crate) fn set_linger_zero(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => SockRef::from(s).set_linger(Some(std::time::Duration::ZERO)),
            #[cfg(unix)]
            Stream::Unix(_) => Ok(()),
        }
    }

    /// The type-of-service byte of the packets it sends (`IP_TOS`, or
    /// `IPV6_TCLASS` on an IPv6 socket), set first if `set`, as read back
    /// from the kernel. A Unix-domain stream has none: `Unsupported`.
    pub(crate) fn type_of_service(&self, set: Option<u8>) -> io::Result<u32> {
        let stream = match self {
            Stream::Tcp(stream) => stream,
            #[cfg(unix)]
            Stream::Unix(_) => return Err(io::ErrorKind::Unsupported.into()),
        };
        let sock = SockRef::from(stream);
        if stream.local_addr()?.is_ipv6() {
            return traffic_class_v6(&sock, set);
        }
        if let Some(tos) = set {
            sock.set_tos_v4(u32::from(tos))?;
        }
        sock.tos_v4()
    }

    /// `TCP_NODELAY` and `SO_KEEPALIVE`; a Unix-domain stream has neither
    /// and ignores them, as node:net does for pipes.
    pub(crate) fn set_options(&self, no_delay: Option<bool>, keep_alive: Option<KeepAlive>) -> io::Result<()> {
        let stream = match self {
            Stream::Tcp(stream) => stream,
            #[cfg(unix)]
            Stream::Unix(_) => return Ok(()),
        };
        if let Some(on) = no_delay {
            stream.set_nodelay(on)?;
        }
        if let Some(ka) = keep_alive {
            let sock = SockRef::from(stream);
            match ka {
                KeepAlive::Off => sock.set_keepalive(false)?,
                KeepAlive::On => sock.set_keepalive(true)?,
                // SO_KEEPALIVE, then the idle time, interval and count, each only if the one before
                // was taken (as libuv sets them: a value the kernel refuses leaves the rest as they were).
                KeepAlive::Probing { idle, interval, count } => match sock.set_tcp_keepalive(&probing(idle, interval, count)) {
                    // Windows before 10 1703 (Server 2016) has no TCP_KEEPCNT: idle and
                    // interval are set, the count stays the system's 10, as libuv leaves it.
                    #[cfg(windows)]
                    Err(e) if e.raw_os_error() == Some(10042) => {} // WSAENOPROTOOPT
                    r => r?,
                },
            }
        }
        Ok(())
    }
}

/// A connection's TCP keep-alive, as libuv sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAlive {
    Off,
    /// On, with the probe timing the system (or an earlier call) set.
    On,
    /// On: the first probe after `idle` quiet seconds, then one every
    /// `interval` seconds; `count` unanswered drop the connection.
    Probing {
        idle: u32,
        interval: u32,
        count: u32,
    },
}

fn seconds(s: u32) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(s))
}

/// Keep-alive probes' timing, where the platform sets all of it (Windows:
/// as libuv's `uv__tcp_keepalive`, idle, interval and count).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "freebsd", windows))]
fn probing(idle: u32, interval: u32, count: u32) -> socket2::TcpKeepalive {
    socket2::TcpKeepalive::new().with_time(seconds(idle)).with_interval(seconds(interval)).with_retries(count)
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "freebsd", windows)))]
fn probing(idle: u32, _interval: u32, _count: u32) -> socket2::TcpKeepalive {
    socket2::TcpKeepalive::new().with_time(seconds(idle))
}

/// `IPV6_TCLASS`, where the platform has it.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "freebsd"))]
fn traffic_class_v6(sock: &SockRef<'_>, set: Option<u8>) -> io::Result<u32> {
    if let Some(class) = set {
        sock.set_tclass_v6(u32::from(class))?;
    }
    sock.tclass_v6()
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "freebsd")))]
fn traffic_class_v6(_sock: &SockRef<'_>, _set: Option<u8>) -> io::Result<u32> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(unix)]
impl Stream {
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    /// The same connection on the lowest free fd (a `dup`, the original
    /// closed), or as it was if no fd is free.
    pub(crate) fn on_lowest_fd(self) -> Stream {
        match self {
            Stream::Tcp(s) => {
                let s = std::net::TcpStream::from(s);
                Stream::Tcp(TcpStream::from_std(s.try_clone().unwrap_or(s)))
            }
            Stream::Unix(s) => {
                let s = std::os::unix::net::UnixStream::from(s);
                Stream::Unix(mio::net::UnixStream::from_std(s.try_clone().unwrap_or(s)))
            }
        }
    }
}

// On Unix, reads and writes say `MSG_DONTWAIT`: `O_NONBLOCK` belongs to the
// file, which every copy of the socket shares, and libuv clears it on a copy
// it gives a child as stdio (`spawn(cmd, { stdio: [socket] })`). A plain
// read would then wait for the peer, and the whole thread with it.
// (Through mio's `try_io`, which re-arms the socket after `WouldBlock` where
// its selector needs that, as its own reads do.)
#[cfg(unix)]
impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.raw_fd();
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call, and `fd` is this stream's own, open.
        let recv = || cvt(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) });
        match self {
            Stream::Tcp(s) => s.try_io(recv),
            Stream::Unix(s) => s.try_io(recv),
        }
    }
}

#[cfg(unix)]
impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.raw_fd();
        // `MSG_NOSIGNAL`: a write the peer reset raises no SIGPIPE.
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the call, and `fd` is this stream's own, open.
        let send = || cvt(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) });
        match self {
            Stream::Tcp(s) => s.try_io(send),
            Stream::Unix(s) => s.try_io(send),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A byte count from a syscall's return, or the error it set.
#[cfg(unix)]
fn cvt(n: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(windows)]
impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Stream::Tcp(s) = self;
        s.read(buf)
    }
}

#[cfg(windows)]
impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Stream::Tcp(s) = self;
        s.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How to bind a listening or datagram socket.
#[derive(Clone, Debug)]
pub struct BindOptions {
    pub addr: SocketAddr,
    /// Listen backlog (TCP only).
    pub backlog: i32,
    /// `SO_REUSEADDR`: on by default for TCP, as in Node and mio (never on
    /// a Windows listener, as libuv).
    pub reuse_addr: bool,
    /// `SO_REUSEPORT`: several sockets share the port, the kernel spreading
    /// the load (Linux, DragonFly, FreeBSD; elsewhere `Unsupported`).
    pub reuse_port: bool,
    /// `IPV6_V6ONLY` for an IPv6 address; `false` accepts IPv4 too.
    pub ipv6_only: bool,
}

impl BindOptions {
    pub fn new(addr: SocketAddr) -> BindOptions {
        BindOptions { addr, backlog: 511, reuse_addr: true, reuse_port: false, ipv6_only: false }
    }
}

/// A new socket, non-blocking: made so at once where the OS takes the flag
/// with the type (`SOCK_NONBLOCK`), saving two `fcntl` calls a socket.
fn nonblocking_socket(domain: Domain, ty: Type, protocol: Option<Protocol>) -> io::Result<socket2::Socket> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    return socket2::Socket::new(domain, ty.nonblocking(), protocol);
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        let socket = socket2::Socket::new(domain, ty, protocol)?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    }
}

fn bound_socket(opts: &BindOptions, ty: Type, protocol: Protocol) -> io::Result<socket2::Socket> {
    let socket = nonblocking_socket(Domain::for_address(opts.addr), ty, Some(protocol))?;
    if opts.addr.is_ipv6() {
        socket.set_only_v6(opts.ipv6_only)?;
    }
    bind_reusing(&SockRef::from(&socket), opts, ty)?;
    Ok(socket)
}

/// Sets `opts`' address and port reuse on `socket`, of type `ty`, then
/// binds it to `opts.addr`.
fn bind_reusing(socket: &SockRef<'_>, opts: &BindOptions, ty: Type) -> io::Result<()> {
    set_reuse_address(socket, opts.reuse_addr, ty)?;
    if opts.reuse_port {
        // As libuv's `uv__sock_reuseport`: only where the kernel spreads the
        // load over the sockets (FreeBSD: `SO_REUSEPORT_LB`); elsewhere
        // `SO_REUSEPORT` only lets a socket share the port, and it is ENOTSUP.
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "dragonfly"))]
        socket.set_reuse_port(true)?;
        #[cfg(target_os = "freebsd")]
        socket.set_reuse_port_lb(true)?;
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "dragonfly", target_os = "freebsd")))]
        return Err(io::Error::new(io::ErrorKind::Unsupported, "no load-balancing SO_REUSEPORT on this platform"));
    }
    socket.bind(&opts.addr.into())
}

/// `reuse_addr` on a socket of type `ty`, as libuv's `uv__sock_reuseaddr`
/// sets it for UDP on the BSDs and macOS: `SO_REUSEPORT`, which there is
/// `SO_REUSEADDR` that also lets sockets share a port (multicast receivers).
#[cfg(any(target_vendor = "apple", target_os = "freebsd", target_os = "openbsd", target_os = "netbsd"))]
fn set_reuse_address(socket: &SockRef<'_>, on: bool, ty: Type) -> io::Result<()> {
    if ty == Type::DGRAM {
        socket.set_reuse_port(on)
    } else {
        socket.set_reuse_address(on)
    }
}

/// `reuse_addr` on a socket of type `ty`: `SO_REUSEADDR`, except on a
/// Windows listener, where (as libuv's `uv__tcp_try_bind` and mio say) it
/// would let a second server take a port in use, not only one in TIME_WAIT.
#[cfg(not(any(target_vendor = "apple", target_os = "freebsd", target_os = "openbsd", target_os = "netbsd")))]
fn set_reuse_address(socket: &SockRef<'_>, on: bool, ty: Type) -> io::Result<()> {
    if cfg!(windows) && ty == Type::STREAM {
        return Ok(());
    }
    socket.set_reuse_address(on)
}

pub(crate) fn tcp_listen(opts: &BindOptions) -> io::Result<TcpListener> {
    let socket = bound_socket(opts, Type::STREAM, Protocol::TCP)?;
    socket.listen(opts.backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

pub(crate) fn udp_bind(opts: &BindOptions) -> io::Result<UdpSocket> {
    let socket = bound_socket(opts, Type::DGRAM, Protocol::UDP)?;
    Ok(UdpSocket::from_std(socket.into()))
}

/// A non-blocking UDP socket of the IPv6 family (`ipv6`) or the IPv4 one,
/// bound to nothing yet: as libuv makes a UDP handle's socket before its
/// first bind.
pub(crate) fn udp_unbound(ipv6: bool) -> io::Result<UdpSocket> {
    let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
    let socket = nonblocking_socket(domain, Type::DGRAM, Some(Protocol::UDP))?;
    // Dual-stack unless a bind asks for `ipv6_only`, as `udp_bind` makes them.
    if ipv6 {
        socket.set_only_v6(false)?;
    }
    Ok(UdpSocket::from_std(socket.into()))
}

/// Binds a UDP socket that exists already (see [`udp_unbound`]) as
/// libuv's `uv_udp_bind` binds one: `IPV6_V6ONLY` asked for an IPv4
/// address is `InvalidInput`, and so is an address of the other family
/// (the BSDs' `EAFNOSUPPORT`; Linux says `EINVAL` itself). A socket bound
/// already is the kernel's `EINVAL`. What fails leaves the socket as it
/// was, to be bound again.
pub(crate) fn udp_bind_existing(socket: &UdpSocket, opts: &BindOptions) -> io::Result<()> {
    if opts.ipv6_only && !opts.addr.is_ipv6() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "IPV6_V6ONLY for an IPv4 address"));
    }
    let socket = SockRef::from(socket);
    // Set only when asked, as libuv sets it: an IPv4 socket given an IPv6 address fails at the bind.
    if opts.ipv6_only {
        socket.set_only_v6(true)?;
    }
    bind_reusing(&socket, opts, Type::DGRAM).map_err(|e| match e.raw_os_error() {
        #[cfg(unix)]
        Some(libc::EAFNOSUPPORT) => io::Error::new(io::ErrorKind::InvalidInput, "address of the other family"),
        _ => e,
    })
}

/// Dissolves a UDP socket's association (a `connect` to `AF_UNSPEC`): it
/// hears every sender again and needs a destination for each send.
#[cfg(unix)]
pub(crate) fn udp_disconnect(socket: &UdpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero `sockaddr` is valid (family AF_UNSPEC is 0), its
    // exact size is passed, and the fd stays open for the call (borrowed).
    let r = unsafe {
        let addr: libc::sockaddr = std::mem::zeroed();
        libc::connect(socket.as_raw_fd(), &addr, std::mem::size_of::<libc::sockaddr>() as libc::socklen_t)
    };
    // As libuv's `uv__udp_disconnect`: the BSDs and macOS report EAFNOSUPPORT
    // or EINVAL for the AF_UNSPEC address, yet dissolve the association.
    let bsd =
        cfg!(any(target_vendor = "apple", target_os = "freebsd", target_os = "openbsd", target_os = "netbsd", target_os = "dragonfly"));
    if r == 0 || (bsd && matches!(io::Error::last_os_error().raw_os_error(), Some(libc::EAFNOSUPPORT | libc::EINVAL))) {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One of a socket's kernel buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketBuffer {
    Receive,
    Send,
}

/// The local interface multicast goes out of or is joined on: IPv4 by
/// address (unspecified: the kernel picks), IPv6 by index (0: the kernel
/// picks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MulticastInterface {
    V4(Ipv4Addr),
    V6(u32),
}

/// A multicast group to join or leave, on `interface`; with a `source`,
/// only that sender's datagrams (source-specific multicast). The group,
/// the source and the interface are of one family, or the call is
/// `InvalidInput`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    pub group: IpAddr,
    pub source: Option<IpAddr>,
    pub interface: MulticastInterface,
}

/// Sets an option's IPv6 form on a socket bound to an IPv6 address, its
/// IPv4 form otherwise, as libuv decides which applies.
fn by_family(
    socket: &UdpSocket,
    v4: impl FnOnce(&SockRef<'_>) -> io::Result<()>,
    v6: impl FnOnce(&SockRef<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let sock = SockRef::from(socket);
    if socket.local_addr()?.is_ipv6() {
        v6(&sock)
    } else {
        v4(&sock)
    }
}

/// `IP_TTL` or `IPV6_UNICAST_HOPS`.
pub(crate) fn udp_set_ttl(socket: &UdpSocket, ttl: u32) -> io::Result<()> {
    by_family(socket, |s| s.set_ttl_v4(ttl), |s| s.set_unicast_hops_v6(ttl))
}

/// `IP_MULTICAST_TTL` or `IPV6_MULTICAST_HOPS`.
pub(crate) fn udp_set_multicast_ttl(socket: &UdpSocket, ttl: u32) -> io::Result<()> {
    by_family(socket, |s| s.set_multicast_ttl_v4(ttl), |s| s.set_multicast_hops_v6(ttl))
}

/// `IP_MULTICAST_LOOP` or `IPV6_MULTICAST_LOOP`.
pub(crate) fn udp_set_multicast_loop(socket: &UdpSocket, on: bool) -> io::Result<()> {
    by_family(socket, |s| s.set_multicast_loop_v4(on), |s| s.set_multicast_loop_v6(on))
}

/// `SO_BROADCAST`.
pub(crate) fn udp_set_broadcast(socket: &UdpSocket, on: bool) -> io::Result<()> {
    SockRef::from(socket).set_broadcast(on)
}

/// `IP_MULTICAST_IF` or `IPV6_MULTICAST_IF`, by the interface's family
/// (the kernel judges whether the socket takes it).
pub(crate) fn udp_set_multicast_interface(socket: &UdpSocket, interface: MulticastInterface) -> io::Result<()> {
    let sock = SockRef::from(socket);
    match interface {
        MulticastInterface::V4(addr) => sock.set_multicast_if_v4(&addr),
        MulticastInterface::V6(index) => sock.set_multicast_if_v6(index),
    }
}

/// Joins (`join`) or leaves a multicast group, by the group's family.
pub(crate) fn udp_membership(socket: &UdpSocket, m: &Membership, join: bool) -> io::Result<()> {
    let sock = SockRef::from(socket);
    match (m.group, m.source, m.interface) {
        (IpAddr::V4(group), None, MulticastInterface::V4(interface)) if join => sock.join_multicast_v4(&group, &interface),
        (IpAddr::V4(group), None, MulticastInterface::V4(interface)) => sock.leave_multicast_v4(&group, &interface),
        (IpAddr::V6(group), None, MulticastInterface::V6(index)) if join => sock.join_multicast_v6(&group, index),
        (IpAddr::V6(group), None, MulticastInterface::V6(index)) => sock.leave_multicast_v6(&group, index),
        (IpAddr::V4(group), Some(IpAddr::V4(source)), MulticastInterface::V4(interface)) if join => {
            sock.join_ssm_v4(&source, &group, &interface)
        }
        (IpAddr::V4(group), Some(IpAddr::V4(source)), MulticastInterface::V4(interface)) => sock.leave_ssm_v4(&source, &group, &interface),
        (IpAddr::V6(group), Some(IpAddr::V6(source)), MulticastInterface::V6(index)) => ssm_v6(socket, group, source, index, join),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "the group, source and interface are not of one family")),
    }
}

/// `MCAST_JOIN_SOURCE_GROUP`/`MCAST_LEAVE_SOURCE_GROUP` (socket2 has no
/// IPv6 source-specific membership).
#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple", target_os = "freebsd"))]
fn ssm_v6(socket: &UdpSocket, group: std::net::Ipv6Addr, source: std::net::Ipv6Addr, index: u32, join: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let storage = |ip| {
        let addr = SockAddr::from(SocketAddr::new(IpAddr::V6(ip), 0));
        // SAFETY: a `sockaddr_storage` is plain data, all zeroes valid, and
        // large enough for any address: `addr.len()` bytes of it are copied.
        unsafe {
            let mut out: libc::sockaddr_storage = std::mem::zeroed();
            std::ptr::copy_nonoverlapping(addr.as_ptr().cast::<u8>(), (&raw mut out).cast::<u8>(), addr.len() as usize);
            out
        }
    };
    let req = libc::group_source_req { gsr_interface: index, gsr_group: storage(group), gsr_source: storage(source) };
    let option = if join { libc::MCAST_JOIN_SOURCE_GROUP } else { libc::MCAST_LEAVE_SOURCE_GROUP };
    // SAFETY: `req` is a valid `group_source_req` of the size passed, alive
    // for the call; the fd stays open (borrowed).
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            option,
            (&raw const req).cast(),
            std::mem::size_of::<libc::group_source_req>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple", target_os = "freebsd")))]
fn ssm_v6(_: &UdpSocket, _: std::net::Ipv6Addr, _: std::net::Ipv6Addr, _: u32, _: bool) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "IPv6 source-specific multicast is not built for this platform"))
}

/// `SO_RCVBUF` or `SO_SNDBUF` as the kernel reports it (Linux doubles
/// what was set, for its bookkeeping).
pub(crate) fn buffer_size(socket: &UdpSocket, which: SocketBuffer) -> io::Result<usize> {
    let sock = SockRef::from(socket);
    match which {
        SocketBuffer::Receive => sock.recv_buffer_size(),
        SocketBuffer::Send => sock.send_buffer_size(),
    }
}

/// Sets `SO_RCVBUF` or `SO_SNDBUF` (the kernel caps it at its maximum).
pub(crate) fn set_buffer_size(socket: &UdpSocket, which: SocketBuffer, size: usize) -> io::Result<()> {
    let sock = SockRef::from(socket);
    match which {
        SocketBuffer::Receive => sock.set_recv_buffer_size(size),
        SocketBuffer::Send => sock.set_send_buffer_size(size),
    }
}

/// Where a connect or send to `addr` goes: on Windows the unspecified
/// address is loopback, as libuv's `uv__convert_to_localhost_if_unspecified`
/// makes it (Unix kernels take it so; Winsock refuses it).
pub(crate) fn unspecified_as_loopback(mut addr: SocketAddr) -> SocketAddr {
    if cfg!(windows) && addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() });
    }
    addr
}

/// Starts a non-blocking connect; completion is reported as writability.
pub(crate) fn tcp_connect(
    addr: SocketAddr,
    local: Option<SocketAddr>,
    can_watch: impl Fn(RawHandle) -> io::Result<()>,
) -> io::Result<TcpStream> {
    let addr = unspecified_as_loopback(addr);
    let socket = nonblocking_socket(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    before_connect(&socket, can_watch)?;
    if let Some(local) = local {
        // As libuv binds: a local port whose last connection waits in TIME_WAIT is taken again.
        #[cfg(unix)]
        socket.set_reuse_address(true)?;
        socket.bind(&local.into())?;
    }
    start_connect(&socket, &addr.into())?;
    Ok(TcpStream::from_std(socket.into()))
}

/// Refuses, before it connects, a socket whose fd the backend could not
/// watch (`select`: at or past `FD_SETSIZE`), as its `register` would: else
/// its SYN would leave anyway, and the peer see a connection come and go.
fn before_connect(socket: &socket2::Socket, can_watch: impl Fn(RawHandle) -> io::Result<()>) -> io::Result<()> {
    #[cfg(unix)]
    return can_watch(std::os::fd::AsRawFd::as_raw_fd(socket));
    #[cfg(not(unix))]
    {
        let _ = (socket, can_watch);
        Ok(())
    }
}

/// Starts a non-blocking connect: one under way is no error. As in libuv,
/// `EAGAIN` on Unix is one (a Unix-domain listener's full backlog, or no
/// local port left for TCP); Windows says "under way" with it.
fn start_connect(socket: &socket2::Socket, to: &SockAddr) -> io::Result<()> {
    match socket.connect(to) {
        Ok(()) => Ok(()),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(()),
        #[cfg(windows)]
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

/// A Unix-domain listener on `path` (Linux: a leading NUL byte names an
/// abstract socket, which has no file).
#[cfg(unix)]
pub(crate) fn unix_listen(path: &str, backlog: i32) -> io::Result<Listener> {
    let addr = unix_address(path)?;
    let socket = nonblocking_socket(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&addr)?;
    let file = (!path.starts_with('\0')).then(|| Box::new(std::path::PathBuf::from(path)));
    if let Err(e) = socket.listen(backlog) {
        // Bound but not listening: the file is ours to remove.
        if let Some(file) = &file {
            let _ = std::fs::remove_file(file.as_path());
        }
        return Err(e);
    }
    Ok(Listener::Unix { listener: mio::net::UnixListener::from_std(socket.into()), path: file })
}

/// A socket another owner holds (Node's cluster primary hands its listener,
/// or each connection it accepted, to a worker through libuv's IPC),
/// duplicated so each side closes its own copy, and made non-blocking.
/// Only stream and datagram sockets of the IP and Unix domains are taken:
/// another kind of fd is `ENOTSOCK` or `EINVAL`, as the kernel would say.
/// Returns the copy and its domain.
#[cfg(unix)]
pub(crate) fn inherited(fd: i32, ty: Type) -> io::Result<(socket2::Socket, Domain)> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: F_DUPFD_CLOEXEC only reads the descriptor number (a closed
    // or invalid one is EBADF) and returns a new descriptor or -1.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` was just returned by fcntl, is open, and nothing else owns it.
    let socket = socket2::Socket::from(unsafe { OwnedFd::from_raw_fd(dup) });
    let domain = socket.local_addr()?.domain();
    if socket.r#type()? != ty || !(domain == Domain::IPV4 || domain == Domain::IPV6 || (domain == Domain::UNIX && ty == Type::STREAM)) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    socket.set_nonblocking(true)?;
    Ok((socket, domain))
}

/// What libuv's `uv_guess_handle` calls the socket `fd` (for the error an
/// fd of the wrong kind gets): `"TCP"`, `"UDP"`, `"PIPE"` (a Unix-domain
/// stream), or `"UNKNOWN"` (another kind, or no socket at all).
#[cfg(unix)]
pub fn socket_kind(fd: i32) -> &'static str {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `ty` and `len` are live locals of the sizes given; an fd that
    // is closed or no socket makes the call fail (EBADF, ENOTSOCK).
    if unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_TYPE, (&mut ty as *mut libc::c_int).cast(), &mut len) } < 0 {
        return "UNKNOWN";
    }
    // SAFETY: sockaddr_storage is plain data, valid all zero.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `addr` is a live sockaddr_storage and `len` its size; the
    // kernel writes at most that much.
    if unsafe { libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_storage).cast(), &mut len) } < 0 {
        return "UNKNOWN";
    }
    match (ty, addr.ss_family as libc::c_int) {
        (libc::SOCK_STREAM, libc::AF_INET | libc::AF_INET6) => "TCP",
        (libc::SOCK_DGRAM, libc::AF_INET | libc::AF_INET6) => "UDP",
        (libc::SOCK_STREAM, libc::AF_UNIX) => "PIPE",
        _ => "UNKNOWN",
    }
}

/// The stream socket `fd` was never connected (bound, or not even that):
/// it has no peer and no pending error. One the peer reset has no peer
/// either, but its error is pending (`POLLERR`, read without taking it):
/// it is a connection, whose read reports the reset.
#[cfg(unix)]
pub fn never_connected(fd: i32) -> bool {
    // SAFETY: sockaddr_storage is plain data, valid all zero.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `addr` is a live sockaddr_storage and `len` its size; the
    // kernel writes at most that much; a bad fd only fails the call.
    if unsafe { libc::getpeername(fd, (&mut addr as *mut libc::sockaddr_storage).cast(), &mut len) } == 0 {
        return false;
    }
    if io::Error::last_os_error().raw_os_error() != Some(libc::ENOTCONN) {
        return false;
    }
    let mut pfd = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    // SAFETY: one live pollfd, its count 1, no wait.
    let polled = unsafe { libc::poll(&mut pfd, 1, 0) };
    polled >= 0 && pfd.revents & libc::POLLERR == 0
}

/// An inherited socket that is bound (or already listening), listening
/// now with `backlog`. A Unix-domain one's file stays its creator's.
#[cfg(unix)]
pub(crate) fn inherited_listener(fd: i32, backlog: i32) -> io::Result<Listener> {
    let (socket, domain) = inherited(fd, Type::STREAM)?;
    socket.listen(backlog)?;
    Ok(if domain == Domain::UNIX {
        Listener::Unix { listener: mio::net::UnixListener::from_std(socket.into()), path: None }
    } else {
        Listener::Tcp(TcpListener::from_std(socket.into()))
    })
}

/// An inherited connected stream; a TCP one gets `TCP_NODELAY` if `no_delay`,
/// else keeps what its maker set.
#[cfg(unix)]
pub(crate) fn inherited_stream(fd: i32, no_delay: bool) -> io::Result<Stream> {
    let (socket, domain) = inherited(fd, Type::STREAM)?;
    Ok(if domain == Domain::UNIX {
        Stream::Unix(mio::net::UnixStream::from_std(socket.into()))
    } else {
        if no_delay {
            socket.set_tcp_nodelay(true)?;
        }
        Stream::Tcp(TcpStream::from_std(socket.into()))
    })
}

/// Starts a non-blocking Unix-domain connect.
#[cfg(unix)]
pub(crate) fn unix_connect(path: &str, can_watch: impl Fn(RawHandle) -> io::Result<()>) -> io::Result<Stream> {
    let addr = unix_address(path)?;
    let socket = nonblocking_socket(Domain::UNIX, Type::STREAM, None)?;
    before_connect(&socket, can_watch)?;
    start_connect(&socket, &addr)?;
    Ok(Stream::Unix(mio::net::UnixStream::from_std(socket.into())))
}

/// Where a connect goes: an IP address and port, or a Unix-domain path.
#[derive(Clone, Copy, Debug)]
pub enum Peer<'a> {
    Ip(SocketAddr),
    Path(&'a str),
}

/// Starts a non-blocking connect on a copy of `fd`, a stream socket bound
/// already and not yet connected (Node's `net.BoundSocket`), so the
/// connection leaves from its address. A peer the socket's family cannot
/// reach fails as the kernel says (`EAFNOSUPPORT`, `EINVAL`).
#[cfg(unix)]
pub(crate) fn inherited_connect(fd: i32, to: Peer<'_>) -> io::Result<Stream> {
    let (socket, domain) = inherited(fd, Type::STREAM)?;
    let addr = match to {
        Peer::Ip(addr) => SockAddr::from(addr),
        Peer::Path(path) => unix_address(path)?,
    };
    start_connect(&socket, &addr)?;
    Ok(if domain == Domain::UNIX {
        Stream::Unix(mio::net::UnixStream::from_std(socket.into()))
    } else {
        Stream::Tcp(TcpStream::from_std(socket.into()))
    })
}

/// The address of the Unix-domain `path` (Linux: a leading NUL names an
/// abstract socket). As libuv makes it, a path may fill `sun_path` to its
/// last byte, with no NUL after it (socket2's `SockAddr::unix` wants room
/// for one: 108 bytes failed with EINVAL, node:net takes them); a longer
/// path, or one with a NUL inside, is EINVAL.
#[cfg(unix)]
fn unix_address(path: &str) -> io::Result<SockAddr> {
    refuse_nul(path)?;
    let bytes = path.as_bytes();
    let mut storage = socket2::SockAddrStorage::zeroed();
    // SAFETY: `sockaddr_un` is one of this platform's `sockaddr_*` types,
    // no larger than the storage, and all-zero is a valid one.
    let sun = unsafe { storage.view_as::<libc::sockaddr_un>() };
    if bytes.len() > sun.sun_path.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a socket path longer than sun_path"));
    }
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (to, from) in sun.sun_path.iter_mut().zip(bytes) {
        *to = *from as libc::c_char;
    }
    // A path's NUL goes with it when there is room; an abstract name is its bytes only.
    let nul = usize::from(!path.starts_with('\0') && bytes.len() < sun.sun_path.len());
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + nul;
    #[cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    ))]
    {
        sun.sun_len = len as u8;
    }
    // SAFETY: the storage holds a `sockaddr_un` initialised up to `len` bytes.
    Ok(unsafe { SockAddr::new(storage, len as libc::socklen_t) })
}

/// A path with a NUL inside (past an abstract name's leading one): the
/// kernel would take the path up to the NUL, a file the close could not
/// remove or another socket than the one named. EINVAL, as Node 24 says.
#[cfg(unix)]
fn refuse_nul(path: &str) -> io::Result<()> {
    if !path.starts_with('\0') && path.contains('\0') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a socket path must not hold a NUL byte"));
    }
    Ok(())
}

#[cfg(unix)]
impl Drop for Listener {
    /// A Unix-domain listener removes its socket file, as libuv does.
    fn drop(&mut self) {
        if let Listener::Unix { path: Some(path), .. } = self {
            let _ = std::fs::remove_file(path.as_path());
        }
    }
}
