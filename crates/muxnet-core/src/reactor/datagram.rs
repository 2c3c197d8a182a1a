//! UDP sockets: receiving within a budget into the slab, and sending now.

use std::io;
use std::net::SocketAddr;

use super::{Event, Kind, Reactor, ReadSpace};
use crate::backend::Token;
use crate::socket::{self, BindOptions, Socket};

/// The largest datagram; a receive needs this much room.
const MAX_DATAGRAM: usize = 65536;

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
        self.datagram(token)?.send_to(data, to)
    }

    /// Sends on a connected UDP socket.
    pub fn send(&mut self, token: Token, data: &[u8]) -> io::Result<usize> {
        self.datagram(token)?.send(data)
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
                // ICMP errors (port unreachable) surface here on Linux;
                // they say nothing about the next datagram.
                Err(_) => {}
            }
        }
        self.carry.push(token);
    }
}
