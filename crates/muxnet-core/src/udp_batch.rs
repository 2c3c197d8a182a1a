//! Batched datagram I/O, the raw syscalls behind `reactor/datagram.rs`:
//! on Linux, `recvmmsg(2)` takes up to [`BATCH`] datagrams in one call and
//! `sendmmsg(2)` sends up to [`BATCH`]; elsewhere one `recvfrom`/`sendto`
//! at a time, behind the same interface. Buffers live as long as the
//! reactor: nothing is allocated per datagram.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

/// Datagrams per `recvmmsg`/`sendmmsg` call.
pub(crate) const BATCH: usize = 64;

/// The largest datagram: a receive slot this size never truncates.
pub(crate) const MAX_DATAGRAM: usize = 65536;

/// The most a UDP datagram carries: 65 535 bytes less the UDP header and,
/// over IPv4, the IP header (IPv6's is outside its payload length).
pub(crate) const MAX_UDP_PAYLOAD_V4: usize = 65_535 - 8 - 20;
pub(crate) const MAX_UDP_PAYLOAD_V6: usize = 65_535 - 8;

/// Where a batch of received datagrams lands: one [`MAX_DATAGRAM`] slot per
/// datagram (allocated zeroed, so the kernel maps a page only once a
/// datagram reaches it), with each datagram's length and sender.
pub(crate) struct RecvBatch {
    buf: Box<[u8]>,
    lens: Vec<usize>,
    from: Vec<SocketAddr>,
    /// Where `recvmmsg` writes each sender.
    #[cfg(target_os = "linux")]
    names: Vec<libc::sockaddr_storage>,
}

impl RecvBatch {
    pub fn new() -> RecvBatch {
        RecvBatch {
            buf: vec![0; SLOTS * MAX_DATAGRAM].into_boxed_slice(),
            lens: Vec::with_capacity(SLOTS),
            from: Vec::with_capacity(SLOTS),
            // SAFETY: `sockaddr_storage` is plain data; all zeroes is valid.
            #[cfg(target_os = "linux")]
            names: vec![unsafe { std::mem::zeroed() }; SLOTS],
        }
    }

    /// Datagram `i` of the last [`RecvBatch::receive`] and its sender.
    pub fn datagram(&self, i: usize) -> (&[u8], SocketAddr) {
        let start = i * MAX_DATAGRAM;
        (&self.buf[start..start + self.lens[i]], self.from[i])
    }

    /// Receives up to `max` datagrams (at least one is asked for) with one
    /// syscall; returns how many came. None waiting is `WouldBlock`.
    #[cfg(target_os = "linux")]
    pub fn receive(&mut self, socket: &UdpSocket, max: usize) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let n = max.clamp(1, SLOTS);
        // Headers and vectors are rebuilt per call (they hold pointers into
        // `self`); only the `n` in use are written.
        let mut iovs = [const { std::mem::MaybeUninit::<libc::iovec>::uninit() }; SLOTS];
        let mut hdrs = [const { std::mem::MaybeUninit::<libc::mmsghdr>::uninit() }; SLOTS];
        let base = self.buf.as_mut_ptr();
        for i in 0..n {
            // `(i + 1) * MAX_DATAGRAM <= buf.len()`: the slot is inside `buf`.
            let iov = iovs[i].write(libc::iovec { iov_base: base.wrapping_add(i * MAX_DATAGRAM).cast(), iov_len: MAX_DATAGRAM });
            // SAFETY: `mmsghdr` is a plain C struct; all zeroes (null
            // pointers, zero lengths) is a valid value.
            let hdr = hdrs[i].write(unsafe { std::mem::zeroed() });
            hdr.msg_hdr.msg_name = (&raw mut self.names[i]).cast();
            hdr.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
        }
        let got = loop {
            // SAFETY: the first `n` headers are written and point at `n`
            // distinct slots of `buf` (each `MAX_DATAGRAM` long) and at `n`
            // address buffers of the size given, all alive and unaliased
            // for the call; the fd stays open (borrowed). No timeout.
            let r = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    hdrs.as_mut_ptr().cast(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT as _,
                    std::ptr::null_mut(),
                )
            };
            if r >= 0 {
                break r as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        self.lens.clear();
        self.from.clear();
        for (i, hdr) in hdrs.iter().enumerate().take(got) {
            // SAFETY: headers `0..n` were written above, and `got <= n`.
            let hdr = unsafe { hdr.assume_init_ref() };
            self.lens.push(hdr.msg_len as usize);
            self.from.push(socket_addr(&self.names[i], hdr.msg_hdr.msg_namelen));
        }
        Ok(got)
    }

    /// Receives one datagram (no `recvmmsg` here).
    #[cfg(not(target_os = "linux"))]
    pub fn receive(&mut self, socket: &UdpSocket, _max: usize) -> io::Result<usize> {
        let (len, from) = socket.recv_from(&mut self.buf[..MAX_DATAGRAM])?;
        self.lens.clear();
        self.from.clear();
        self.lens.push(len);
        self.from.push(from);
        Ok(1)
    }
}

/// Receive slots: a batch on Linux, one datagram elsewhere.
#[cfg(target_os = "linux")]
const SLOTS: usize = BATCH;
#[cfg(not(target_os = "linux"))]
const SLOTS: usize = 1;

/// The sender the kernel wrote into `name` (an IPv4 or IPv6 address: the
/// only kinds a UDP socket of the reactor's has).
#[cfg(target_os = "linux")]
fn socket_addr(name: &libc::sockaddr_storage, len: libc::socklen_t) -> SocketAddr {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    let len = len as usize;
    match name.ss_family as libc::c_int {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family and length say the storage holds a
            // `sockaddr_in`; `sockaddr_storage` is large and aligned enough.
            let a = unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            SocketAddrV4::new(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)), u16::from_be(a.sin_port)).into()
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a `sockaddr_in6`.
            let a = unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            SocketAddrV6::new(Ipv6Addr::from(a.sin6_addr.s6_addr), u16::from_be(a.sin6_port), a.sin6_flowinfo, a.sin6_scope_id).into()
        }
        // Not reached for an IP socket; an unnamed sender, as `0.0.0.0:0`.
        _ => SocketAddr::from(([0, 0, 0, 0], 0)),
    }
}

/// One datagram to send: its bytes (at `start..start + len` of the
/// queue's bytes) and, unless the socket is connected, where to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outgoing {
    pub start: usize,
    pub len: usize,
    pub to: Option<SocketAddr>,
}

/// The destinations of a `sendmmsg` batch, kept between calls.
#[derive(Default)]
pub(crate) struct SendBatch {
    #[cfg(target_os = "linux")]
    names: Vec<socket2::SockAddr>,
}

impl SendBatch {
    /// Sends the first of `out` (bytes in `bytes`) and as many after it as
    /// one syscall takes (up to [`BATCH`]); returns how many were sent, at
    /// least one. If the first cannot be sent, its error (a full send
    /// buffer: `WouldBlock`). Linux: an error met after the first is not
    /// reported (`sendmmsg` drops it); the next call starts there and meets
    /// it again, unless it was a pending ICMP error, which is then spent.
    #[cfg(target_os = "linux")]
    pub fn send(&mut self, socket: &UdpSocket, bytes: &[u8], out: &[Outgoing]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let n = out.len().min(BATCH);
        match n {
            0 => return Ok(0),
            // A lone datagram (most sockets' share of a turn when each peer
            // waits for its reply) goes by `sendto`: no message header and
            // vector for the kernel to copy in, no count to copy back.
            1 => return send_one(socket, bytes, &out[0]),
            _ => {}
        }
        self.names.clear();
        self.names.extend(out[..n].iter().map(|o| socket2::SockAddr::from(o.to.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))))));
        let mut iovs = [const { std::mem::MaybeUninit::<libc::iovec>::uninit() }; BATCH];
        let mut hdrs = [const { std::mem::MaybeUninit::<libc::mmsghdr>::uninit() }; BATCH];
        for (i, o) in out[..n].iter().enumerate() {
            let data = &bytes[o.start..o.start + o.len];
            // The kernel only reads through this pointer (a send).
            let iov = iovs[i].write(libc::iovec { iov_base: data.as_ptr().cast_mut().cast(), iov_len: data.len() });
            // SAFETY: `mmsghdr` is a plain C struct; all zeroes (null
            // pointers, zero lengths) is a valid value.
            let hdr = hdrs[i].write(unsafe { std::mem::zeroed() });
            if o.to.is_some() {
                hdr.msg_hdr.msg_name = self.names[i].as_ptr().cast_mut().cast();
                hdr.msg_hdr.msg_namelen = self.names[i].len();
            }
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
        }
        loop {
            // SAFETY: the first `n` headers are written; each points at one
            // datagram's bytes and (or null) an address of the length
            // given, all alive for the call and only read by the kernel;
            // the fd stays open (borrowed).
            let r = unsafe { libc::sendmmsg(socket.as_raw_fd(), hdrs.as_mut_ptr().cast(), n as libc::c_uint, libc::MSG_DONTWAIT as _) };
            if r > 0 {
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Sends the first of `out` (no `sendmmsg` here): returns 1, or its error.
    #[cfg(not(target_os = "linux"))]
    pub fn send(&mut self, socket: &UdpSocket, bytes: &[u8], out: &[Outgoing]) -> io::Result<usize> {
        out.first().map_or(Ok(0), |o| send_one(socket, bytes, o))
    }
}

/// Sends one datagram with `sendto` (or `send`, connected): returns 1, or its error.
fn send_one(socket: &UdpSocket, bytes: &[u8], o: &Outgoing) -> io::Result<usize> {
    let data = &bytes[o.start..o.start + o.len];
    loop {
        let sent = match o.to {
            Some(to) => socket.send_to(data, to),
            None => socket.send(data),
        };
        match sent {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(1),
        }
    }
}
