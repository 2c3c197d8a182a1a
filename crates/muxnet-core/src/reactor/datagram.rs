//! UDP sockets: receiving within a budget into the slab, and sending now.

use std::io;
use std::net::SocketAddr;

use super::{Event, Kind, Reactor, ReadSpace};
use crate::backend::Token;
use crate::socket::{self, BindOptions, Membership, MulticastInterface, Socket, SocketBuffer};

/// The largest datagram; a receive needs this much room.
const MAX_DATAGRAM: usize = 65536;

/// `ttl` if it is within `least..=255`, as libuv takes a TTL.
fn ttl_within(ttl: i32, least: u32) -> io::Result<u32> {
    u32::try_from(ttl)
        .ok()
        .filter(|t| (least..=255).contains(t))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "TTL out of range"))
}

impl Reactor {
    pub fn udp_bind(&mut self, opts: &BindOptions) -> io::Result<Token> {
        let socket = socket::udp_bind(opts)?;
        self.insert(Socket::Datagram(socket), Kind::Datagram)
    }

    fn datagram(&mut self, token: Token) -> io::Result<&mut mio::net::UdpSocket> {
        match &mut self.entry(token)?.socket {
            Socket::Datagram(s) => Ok(s),
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a UDP socket")),
        }
    }

    /// Sends one datagram now; a full send buffer is `WouldBlock`.
    pub fn send_to(&mut self, token: Token, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        let sent = self.datagram(token)?.send_to(data, to)?;
        self.counters.sends.one(sent);
        Ok(sent)
    }

    /// Sends on a connected UDP socket.
    pub fn send(&mut self, token: Token, data: &[u8]) -> io::Result<usize> {
        let sent = self.datagram(token)?.send(data)?;
        self.counters.sends.one(sent);
        Ok(sent)
    }

    /// Fixes the peer of a UDP socket: `send` goes there and only its
    /// datagrams are received.
    pub fn udp_connect(&mut self, token: Token, to: SocketAddr) -> io::Result<()> {
        self.datagram(token)?.connect(to)
    }

    /// Undoes [`Reactor::udp_connect`].
    #[cfg(unix)]
    pub fn udp_disconnect(&mut self, token: Token) -> io::Result<()> {
        socket::udp_disconnect(self.datagram(token)?)
    }

    /// `SO_BROADCAST`: whether sends to a broadcast address are allowed.
    pub fn set_broadcast(&mut self, token: Token, on: bool) -> io::Result<()> {
        socket::udp_set_broadcast(self.datagram(token)?, on)
    }

    /// The unicast TTL (IPv6: hop limit) of outgoing datagrams. Outside
    /// 1..=255 it is `InvalidInput`, before the token is looked at.
    pub fn set_ttl(&mut self, token: Token, ttl: i32) -> io::Result<()> {
        let ttl = ttl_within(ttl, 1)?;
        socket::udp_set_ttl(self.datagram(token)?, ttl)
    }

    /// The multicast TTL (IPv6: hop limit). Outside 0..=255 it is
    /// `InvalidInput`, before the token is looked at.
    pub fn set_multicast_ttl(&mut self, token: Token, ttl: i32) -> io::Result<()> {
        let ttl = ttl_within(ttl, 0)?;
        socket::udp_set_multicast_ttl(self.datagram(token)?, ttl)
    }

    /// Whether the socket's own multicast datagrams come back to it.
    pub fn set_multicast_loop(&mut self, token: Token, on: bool) -> io::Result<()> {
        socket::udp_set_multicast_loop(self.datagram(token)?, on)
    }

    /// The interface multicast datagrams go out of.
    pub fn set_multicast_interface(&mut self, token: Token, interface: MulticastInterface) -> io::Result<()> {
        socket::udp_set_multicast_interface(self.datagram(token)?, interface)
    }

    /// Joins (`join`) or leaves a multicast group, source-specific or not.
    pub fn set_membership(&mut self, token: Token, membership: &Membership, join: bool) -> io::Result<()> {
        socket::udp_membership(self.datagram(token)?, membership, join)
    }

    /// The size of a UDP socket's receive or send buffer, as the kernel
    /// reports it.
    pub fn buffer_size(&mut self, token: Token, which: SocketBuffer) -> io::Result<usize> {
        socket::buffer_size(self.datagram(token)?, which)
    }

    /// Asks the kernel for a receive or send buffer of `size` bytes.
    pub fn set_buffer_size(&mut self, token: Token, which: SocketBuffer, size: usize) -> io::Result<()> {
        socket::set_buffer_size(self.datagram(token)?, which, size)
    }

    pub(super) fn receive(&mut self, token: Token, space: &mut ReadSpace<'_>, events: &mut Vec<Event>) {
        for _ in 0..self.config.datagram_budget {
            if space.free() < MAX_DATAGRAM {
                self.carry.push(token);
                return;
            }
            let Ok(socket) = self.datagram(token) else { return };
            let pos = space.pos;
            match socket.recv_from(&mut space.buf[pos..pos + MAX_DATAGRAM]) {
                Ok((len, from)) => {
                    self.counters.receives.one(len);
                    space.pos += len;
                    events.push(Event::Message { socket: token, offset: pos, len, from });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // An ICMP error for a connected socket (port unreachable:
                // `ECONNREFUSED`), reported as libuv does: once, ending the
                // socket's reads for this turn; what follows is read next turn.
                Err(error) => {
                    events.push(Event::ReceiveError { socket: token, error });
                    break;
                }
            }
        }
        self.carry.push(token);
    }
}
