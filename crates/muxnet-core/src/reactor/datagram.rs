//! UDP sockets: receiving in batches (`recvmmsg` on Linux) within a
//! budget into the slab, and sending.

use std::io;
use std::net::SocketAddr;

use super::stream::drained_by;
use super::{gone, Entry, Event, Kind, Reactor, ReadSpace, Shared};
use crate::backend::Token;
use crate::socket::{self, BindOptions, Membership, MulticastInterface, Socket, SocketBuffer};
use crate::stats::Stats;
use crate::udp_batch::{Outgoing, RecvBatch, SendBatch, BATCH, MAX_DATAGRAM, MAX_UDP_PAYLOAD_V4, MAX_UDP_PAYLOAD_V6};

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
        self.insert(Socket::Datagram(socket), Kind::Datagram { paused: false, shared: Shared::No, connected: false })
    }

    /// A UDP socket of the IPv6 family (`ipv6`) or the IPv4 one, bound to
    /// nothing yet, as libuv makes one before a handle's first bind: its
    /// options can be set and its local address read (the any-address,
    /// port 0), and [`Reactor::udp_bind_socket`] binds it, again after a
    /// bind that failed. It receives nothing until bound.
    ///
    /// ```
    /// use muxnet_core::{BackendKind, BindOptions, Reactor};
    /// let mut reactor = Reactor::new(BackendKind::Mio, Default::default())?;
    /// let taken = reactor.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap()))?;
    /// let mut opts = BindOptions::new(reactor.local_addr(taken)?);
    /// opts.reuse_addr = false;
    /// let socket = reactor.udp_socket(false)?;
    /// assert!(reactor.udp_bind_socket(socket, &opts).is_err()); // EADDRINUSE: still there, unbound
    /// assert_eq!(reactor.local_addr(socket)?, "0.0.0.0:0".parse().unwrap());
    /// opts.addr = "127.0.0.1:0".parse().unwrap();
    /// reactor.udp_bind_socket(socket, &opts)?;
    /// assert_ne!(reactor.local_addr(socket)?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn udp_socket(&mut self, ipv6: bool) -> io::Result<Token> {
        let socket = socket::udp_unbound(ipv6)?;
        self.insert(Socket::Datagram(socket), Kind::Datagram { paused: false, shared: Shared::No, connected: false })
    }

    /// Binds the UDP socket `token` with `opts` (its backlog unused), as
    /// libuv's `uv_udp_bind` binds a handle's socket: the options are set,
    /// then the address is bound. A failure leaves the socket open, unbound
    /// if it was, to be bound again; one bound already is `EINVAL`, an
    /// address of the other family or `ipv6_only` for an IPv4 address
    /// `InvalidInput`.
    pub fn udp_bind_socket(&mut self, token: Token, opts: &BindOptions) -> io::Result<()> {
        socket::udp_bind_existing(self.datagram(token)?, opts)
    }

    fn datagram(&mut self, token: Token) -> io::Result<&mut mio::net::UdpSocket> {
        match &mut self.entry(token)?.socket {
            Socket::Datagram(s) => Ok(s),
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a UDP socket")),
        }
    }

    /// Sends one datagram now; a full send buffer is `WouldBlock`.
    pub fn send_to(&mut self, token: Token, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        let sent = self.datagram(token)?.send_to(data, socket::unspecified_as_loopback(to))?;
        self.counters.sends.one(sent);
        self.counters.datagrams_sent += 1;
        Ok(sent)
    }

    /// Sends on a connected UDP socket.
    pub fn send(&mut self, token: Token, data: &[u8]) -> io::Result<usize> {
        let sent = self.datagram(token)?.send(data)?;
        self.counters.sends.one(sent);
        self.counters.datagrams_sent += 1;
        Ok(sent)
    }

    /// Queues one datagram (to `to`, or to the connected peer) to leave at
    /// the next [`Reactor::flush_sends`] with the others queued on its
    /// socket: one `sendmmsg` for up to 64 on Linux. Returns its place in
    /// the queue, which is the index of its result then. A token that names
    /// no UDP socket fails now. Send directly (`send_to`, `send`) only
    /// once the queue is flushed, or a datagram overtakes those queued.
    pub fn send_later(&mut self, token: Token, data: &[u8], to: Option<SocketAddr>) -> io::Result<usize> {
        self.datagram(token)?;
        // What the kernel refuses whatever the moment is refused now, where
        // the caller can still catch it: a datagram longer than UDP carries.
        let max = match to {
            Some(SocketAddr::V4(_)) => MAX_UDP_PAYLOAD_V4,
            _ => MAX_UDP_PAYLOAD_V6,
        };
        if data.len() > max {
            return Err(io::Error::from_raw_os_error(socket::os_errno::EMSGSIZE));
        }
        let outbox = &mut self.outbox;
        let to = to.map(socket::unspecified_as_loopback);
        outbox.queued.push((token, Outgoing { start: outbox.bytes.len(), len: data.len(), to }));
        outbox.bytes.extend_from_slice(data);
        Ok(outbox.queued.len() - 1)
    }

    /// Datagrams queued by [`Reactor::send_later`] and not yet flushed.
    pub fn queued_sends(&self) -> usize {
        self.outbox.queued.len()
    }

    /// Sends every queued datagram in the order queued (node:dgram sends
    /// each at its call: several sockets' datagrams leave interleaved as
    /// their sends were; a socket's consecutive ones in one `sendmmsg`), and
    /// empties the queue. `results[i]` is the outcome of the `i`-th queued
    /// send: the bytes sent, or its error. Once a socket's send buffer is
    /// full (`WouldBlock`), the rest of its datagrams are not tried and are
    /// `WouldBlock` too, so a caller that retries them keeps their order.
    pub fn flush_sends(&mut self, results: &mut Vec<io::Result<usize>>) {
        results.clear();
        let mut outbox = std::mem::take(&mut self.outbox);
        let Outbox { bytes, queued, blocked, group, batch } = &mut outbox;
        results.resize_with(queued.len(), || Ok(0));
        blocked.clear();
        let mut first = 0;
        while first < queued.len() {
            let token = queued[first].0;
            let end = first + queued[first..].iter().take_while(|q| q.0 == token).count();
            if blocked.contains(&token) {
                for result in &mut results[first..end] {
                    *result = Err(io::ErrorKind::WouldBlock.into());
                }
                first = end;
                continue;
            }
            group.clear();
            group.extend(queued[first..end].iter().map(|q| q.1));
            let mut next = 0;
            while next < group.len() {
                let at = first + next;
                let Some(Entry { socket: Socket::Datagram(socket), .. }) = self.entries.get(token) else {
                    results[at] = Err(gone(&self.closed_in_turn, token));
                    next += 1;
                    continue;
                };
                match batch.send(socket, bytes, &group[next..]) {
                    Ok(sent) => {
                        self.counters.sends.calls += 1;
                        self.counters.datagrams_sent += sent as u64;
                        for (k, out) in group[next..next + sent].iter().enumerate() {
                            self.counters.sends.bytes += out.len as u64;
                            results[at + k] = Ok(out.len);
                        }
                        next += sent;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        for result in &mut results[at..end] {
                            *result = Err(io::ErrorKind::WouldBlock.into());
                        }
                        blocked.push(token);
                        next = group.len();
                    }
                    Err(e) => {
                        results[at] = Err(e);
                        next += 1;
                    }
                }
            }
            first = end;
        }
        bytes.clear();
        queued.clear();
        self.outbox = outbox;
    }

    /// Fixes the peer of a UDP socket: `send` goes there and only its
    /// datagrams are received.
    pub fn udp_connect(&mut self, token: Token, to: SocketAddr) -> io::Result<()> {
        self.datagram(token)?.connect(to)?;
        self.set_connected(token, true);
        Ok(())
    }

    /// Undoes [`Reactor::udp_connect`].
    #[cfg(unix)]
    pub fn udp_disconnect(&mut self, token: Token) -> io::Result<()> {
        socket::udp_disconnect(self.datagram(token)?)?;
        self.set_connected(token, false);
        Ok(())
    }

    fn set_connected(&mut self, token: Token, on: bool) {
        if let Some(Entry { kind: Kind::Datagram { connected, .. }, .. }) = self.entries.get_mut(token) {
            *connected = on;
        }
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

    /// Receives what `token` holds, within the turn's datagram budget:
    /// batches land in the reactor's [`RecvBatch`] and are copied into
    /// `space`, each datagram one [`Event::Message`].
    pub(super) fn receive(&mut self, token: Token, shared: Shared, connected: bool, space: &mut ReadSpace<'_>, events: &mut Vec<Event>) {
        // What an earlier turn received and had no room for goes first
        // (another socket's too: the batch buffer is shared), then what
        // this socket's pause set aside.
        if !self.deliver_held(space, events) || !self.deliver_parked(token, space, events) {
            self.carry.push(token);
            return;
        }
        let budget = if shared == Shared::Yes { 1 } else { self.config.datagram_budget };
        let mut left = budget;
        while left > 0 {
            if space.free() < MAX_DATAGRAM {
                self.carry_over(token, left < budget);
                return;
            }
            let Some(Entry { socket: Socket::Datagram(socket), .. }) = self.entries.get(token) else { return };
            let batch = self.inbox.batch.get_or_insert_with(|| Box::new(RecvBatch::new()));
            let want = left.min(BATCH);
            match batch.receive(socket, want) {
                Ok(got) => {
                    self.counters.receives.calls += 1;
                    left = left.saturating_sub(got);
                    self.inbox.held = Held { socket: token, next: 0, count: got };
                    if !self.deliver_held(space, events) {
                        self.carry.push(token);
                        return;
                    }
                    // A short batch emptied the socket: the next datagram raises
                    // a new edge, so the call that would say WouldBlock is
                    // skipped (see `drained_by`). Not on a connected socket:
                    // recvmmsg stops short at a pending ICMP error too, which
                    // only the next call reports (and raises no new edge).
                    if cfg!(target_os = "linux") && !connected && drained_by(got, want, false) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.counters.empty_reads += 1;
                    return;
                }
                // As libuv on Windows: WSAECONNRESET or WSAENETRESET only says
                // an earlier send met an ICMP error; skipped, the reads go on.
                #[cfg(windows)]
                Err(e) if matches!(e.raw_os_error(), Some(10052 | 10054)) => left -= 1,
                // An ICMP error for a connected socket (port unreachable:
                // `ECONNREFUSED`), reported as libuv does: once, ending the
                // socket's reads for this turn; what follows is read next turn.
                Err(error) => {
                    events.push(Event::ReceiveError { socket: token, error });
                    break;
                }
            }
        }
        self.carry_over(token, left < budget);
    }

    /// Copies the received datagrams not yet delivered into `space`, in
    /// order, as `Message` events; false if one did not fit (it stays for
    /// the next turn). Those of a socket closed meanwhile are dropped.
    fn deliver_held(&mut self, space: &mut ReadSpace<'_>, events: &mut Vec<Event>) -> bool {
        let Inbox { batch: Some(batch), held, .. } = &mut self.inbox else { return true };
        if held.next < held.count && self.entries.get(held.socket).is_none() {
            held.next = held.count;
        }
        while held.next < held.count {
            let (data, from) = batch.datagram(held.next);
            if !deliver(space, events, &mut self.counters, held.socket, data, from) {
                return false;
            }
            held.next += 1;
        }
        true
    }

    /// A socket being paused: its received datagrams still waiting for
    /// room are copied out of the shared batch buffer, which the next
    /// socket's receive reuses, to be delivered once it is resumed (a
    /// paused socket reports nothing).
    pub(super) fn park_held(&mut self, token: Token) {
        let Inbox { batch: Some(batch), held, parked } = &mut self.inbox else { return };
        if held.socket != token {
            return;
        }
        parked.extend((held.next..held.count).map(|i| {
            let (data, from) = batch.datagram(i);
            Parked { socket: token, data: data.into(), from }
        }));
        held.next = held.count;
    }

    /// Delivers `token`'s parked datagrams, oldest first; false if one did
    /// not fit (it and those after it stay for the next turn).
    fn deliver_parked(&mut self, token: Token, space: &mut ReadSpace<'_>, events: &mut Vec<Event>) -> bool {
        let mut fits = true;
        let counters = &mut self.counters;
        self.inbox.parked.retain(|p| {
            if !fits || p.socket != token {
                return true;
            }
            fits = deliver(space, events, counters, token, &p.data, p.from);
            !fits
        });
        fits
    }

    /// A closed socket's parked datagrams go with it.
    pub(super) fn drop_parked(&mut self, token: Token) {
        if !self.inbox.parked.is_empty() {
            self.inbox.parked.retain(|p| p.socket != token);
        }
    }
}

/// Copies one received datagram into `space` as a `Message`; false if it
/// does not fit.
fn deliver(space: &mut ReadSpace<'_>, events: &mut Vec<Event>, counters: &mut Stats, socket: Token, data: &[u8], from: SocketAddr) -> bool {
    if data.len() > space.free() {
        return false;
    }
    let offset = space.pos;
    space.buf[offset..offset + data.len()].copy_from_slice(data);
    space.pos += data.len();
    counters.receives.bytes += data.len() as u64;
    counters.datagrams_received += 1;
    events.push(Event::Message { socket, offset, len: data.len(), from });
    true
}

/// Datagrams queued by [`Reactor::send_later`]: their bytes, one after
/// another, and each one's socket and place; with what a flush reuses.
#[derive(Default)]
pub(super) struct Outbox {
    bytes: Vec<u8>,
    queued: Vec<(Token, Outgoing)>,
    /// Sockets whose send buffer filled during a flush: their later datagrams are not tried.
    blocked: Vec<Token>,
    /// One socket's datagrams, in order.
    group: Vec<Outgoing>,
    batch: SendBatch,
}

/// Datagrams received and not yet copied out to the caller: the batch
/// buffer, made on the first receive, and which of its datagrams remain.
pub(super) struct Inbox {
    batch: Option<Box<RecvBatch>>,
    held: Held,
    /// Held datagrams of sockets paused since, in the order received
    /// (see `park_held`): empty unless a pause met a full slab.
    parked: Vec<Parked>,
}

impl Default for Inbox {
    fn default() -> Inbox {
        Inbox { batch: None, held: Held { socket: Token::from_bits(0), next: 0, count: 0 }, parked: Vec::new() }
    }
}

/// A datagram received on `socket` before its pause, copied out of the batch.
struct Parked {
    socket: Token,
    data: Box<[u8]>,
    from: SocketAddr,
}

/// Datagrams `next..count` of the batch, received on `socket`.
struct Held {
    socket: Token,
    next: usize,
    count: usize,
}
