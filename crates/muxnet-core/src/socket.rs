//! Non-blocking sockets as the reactor holds them, and how they are made:
//! the options a server expects (backlog, `SO_REUSEADDR`, `SO_REUSEPORT`,
//! `IPV6_V6ONLY`) are set through `socket2`, then the socket is handed to
//! mio's types, which every backend can register.

use std::io;
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream, UdpSocket};
use socket2::{Domain, Protocol, SockRef, Type};

/// A socket the reactor owns.
#[derive(Debug)]
pub enum Socket {
    Listener(TcpListener),
    Stream(TcpStream),
    Datagram(UdpSocket),
}

impl Socket {
    /// The mio view of the socket, for the mio backend.
    pub(crate) fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Socket::Listener(s) => s,
            Socket::Stream(s) => s,
            Socket::Datagram(s) => s,
        }
    }

    #[cfg(unix)]
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Socket::Listener(s) => s.as_raw_fd(),
            Socket::Stream(s) => s.as_raw_fd(),
            Socket::Datagram(s) => s.as_raw_fd(),
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Socket::Listener(s) => s.local_addr(),
            Socket::Stream(s) => s.local_addr(),
            Socket::Datagram(s) => s.local_addr(),
        }
    }

    fn sock_ref(&self) -> SockRef<'_> {
        match self {
            Socket::Listener(s) => SockRef::from(s),
            Socket::Stream(s) => SockRef::from(s),
            Socket::Datagram(s) => SockRef::from(s),
        }
    }

    /// The pending `SO_ERROR`, cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock_ref().take_error()
    }
}

/// How to bind a listening or datagram socket.
#[derive(Clone, Debug)]
pub struct BindOptions {
    pub addr: SocketAddr,
    /// Listen backlog (TCP only).
    pub backlog: i32,
    /// `SO_REUSEADDR`: on by default for TCP, as in Node and mio.
    pub reuse_addr: bool,
    /// `SO_REUSEPORT`: several sockets share the port (Unix).
    pub reuse_port: bool,
    /// `IPV6_V6ONLY` for an IPv6 address; `false` accepts IPv4 too.
    pub ipv6_only: bool,
}

impl BindOptions {
    pub fn new(addr: SocketAddr) -> BindOptions {
        BindOptions { addr, backlog: 511, reuse_addr: true, reuse_port: false, ipv6_only: false }
    }
}

fn bound_socket(opts: &BindOptions, ty: Type, protocol: Protocol) -> io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(Domain::for_address(opts.addr), ty, Some(protocol))?;
    socket.set_nonblocking(true)?;
    if opts.addr.is_ipv6() {
        socket.set_only_v6(opts.ipv6_only)?;
    }
    socket.set_reuse_address(opts.reuse_addr)?;
    if opts.reuse_port {
        #[cfg(all(unix, not(target_os = "solaris"), not(target_os = "illumos")))]
        socket.set_reuse_port(true)?;
        #[cfg(not(all(unix, not(target_os = "solaris"), not(target_os = "illumos"))))]
        return Err(io::Error::new(io::ErrorKind::Unsupported, "SO_REUSEPORT is not available on this platform"));
    }
    socket.bind(&opts.addr.into())?;
    Ok(socket)
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
    // macOS reports EAFNOSUPPORT yet dissolves the association.
    if r == 0 || (cfg!(target_os = "macos") && io::Error::last_os_error().raw_os_error() == Some(libc::EAFNOSUPPORT)) {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Starts a non-blocking connect; completion is reported as writability.
pub(crate) fn tcp_connect(addr: SocketAddr, local: Option<SocketAddr>) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    if let Some(local) = local {
        socket.bind(&local.into())?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Makes the next close abortive: the peer gets RST instead of FIN.
pub(crate) fn set_linger_zero(stream: &TcpStream) -> io::Result<()> {
    SockRef::from(stream).set_linger(Some(std::time::Duration::ZERO))
}

/// `TCP_NODELAY` and `SO_KEEPALIVE` for a stream.
pub(crate) fn set_stream_options(
    stream: &TcpStream,
    no_delay: Option<bool>,
    keep_alive: Option<Option<std::time::Duration>>,
) -> io::Result<()> {
    if let Some(on) = no_delay {
        stream.set_nodelay(on)?;
    }
    if let Some(ka) = keep_alive {
        let sock = SockRef::from(stream);
        match ka {
            None => sock.set_keepalive(false)?,
            Some(idle) => sock.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle))?,
        }
    }
    Ok(())
}
