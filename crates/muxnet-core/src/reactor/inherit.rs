//! Sockets this process is handed by another owner rather than making them:
//! Node's cluster primary gives a worker a bound listener, or each
//! connection it accepted, through libuv's IPC; a service manager (systemd's
//! socket activation) or a parent process passes an fd. Each is a duplicate,
//! so the giver closes its own copy whenever it likes; Node's
//! `net.BoundSocket` is one too, a socket bound beforehand that a server
//! listens on or a client connects from. A listener or UDP
//! socket shared with other processes (a cluster's workers) yields one
//! connection or datagram per turn ([`Shared`]). And the other way:
//! [`Reactor::duplicate`] gives a copy of one of this reactor's sockets for
//! Node's IPC to hand to another process.

use std::io;

use super::{Kind, Reactor, Shared};
use crate::backend::Token;
use crate::connection::Connection;
use socket2::Type;

use crate::socket::{self, Peer, Socket};

impl Reactor {
    /// Listens on a copy of the bound (or listening) stream socket `fd`;
    /// accepted connections get `TCP_NODELAY` if `no_delay`. `shared`:
    /// other processes accept from it too.
    pub fn inherit_listener(&mut self, fd: i32, backlog: i32, no_delay: bool, shared: bool) -> io::Result<Token> {
        let listener = socket::inherited_listener(fd, backlog)?;
        let shared = if shared { Shared::Yes } else { Shared::No };
        let token = self.insert(Socket::Listener(listener), Kind::Listener { no_delay, accept_paused: false, held: false, shared })?;
        // Connections may already wait in its backlog: no edge announces them.
        self.carry.push(token);
        Ok(token)
    }

    /// Serves a copy of the connected stream socket `fd` as an accepted
    /// connection of this reactor's.
    pub fn inherit_stream(&mut self, fd: i32, no_delay: bool) -> io::Result<Token> {
        let stream = socket::inherited_stream(fd, no_delay)?;
        let token = self.insert(Socket::Stream(stream), Kind::Stream(Connection::default()))?;
        // Bytes (or a FIN) may have arrived before it was registered here.
        self.carry.push(token);
        Ok(token)
    }

    /// Receives on a copy of the bound UDP socket `fd`. `shared`: other
    /// processes receive from it too.
    pub fn inherit_datagram(&mut self, fd: i32, shared: bool) -> io::Result<Token> {
        let (socket, _) = socket::inherited(fd, Type::DGRAM)?;
        let socket = mio::net::UdpSocket::from_std(socket.into());
        let shared = if shared { Shared::Yes } else { Shared::No };
        let connected = socket.peer_addr().is_ok();
        let token = self.insert(Socket::Datagram(socket), Kind::Datagram { paused: false, shared, connected })?;
        self.carry.push(token);
        Ok(token)
    }

    /// Starts a non-blocking connect, to `to`, on a copy of the bound stream
    /// socket `fd` (Node's `net.BoundSocket` adopted by a client): reported
    /// as for [`Reactor::connect`].
    pub fn inherit_connect(&mut self, fd: i32, to: Peer<'_>) -> io::Result<Token> {
        let stream = socket::inherited_connect(fd, to)?;
        self.insert(Socket::Stream(stream), Kind::Stream(Connection::connecting()))
    }

    /// A duplicate of the socket behind `token` (close-on-exec), for Node's
    /// `subprocess.send(message, socket)` to hand to another process: the
    /// socket stays open for as long as either copy is. A listener or UDP
    /// socket is [`Shared`] from then on: what this side has not taken
    /// stays in the kernel for the other if this side closes (a listener
    /// closed from a `'connection'` would otherwise reset the connections
    /// accepted ahead in the same turn).
    pub fn duplicate(&mut self, token: Token) -> io::Result<socket2::Socket> {
        let entry = self.entry(token)?;
        let copy = entry.socket.sock_ref().try_clone()?;
        if let Kind::Listener { shared, .. } | Kind::Datagram { shared, .. } = &mut entry.kind {
            *shared = Shared::Yes;
        }
        Ok(copy)
    }
}
