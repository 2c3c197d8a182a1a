//! UDP echo load: `connections` connected sockets, one datagram in flight
//! each; a reply that does not come within `LOSS_TIMEOUT` counts as lost.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::args::Args;
use crate::{pattern, Clock, Tally, Window};

const LOSS_TIMEOUT: Duration = Duration::from_millis(200);

struct Peer {
    socket: UdpSocket,
    id: usize,
    msg: u64,
    sent_at: Instant,
    /// The message before `msg` was given up as lost: one late echo of it is no error.
    late: bool,
}

impl Peer {
    fn send(&mut self, args: &Args, buf: &mut Vec<u8>, now: Instant) {
        buf.clear();
        pattern::fill(buf, self.id, self.msg, args.payload);
        // A full send buffer drops the datagram: the loss timeout covers it.
        let _ = self.socket.send(buf);
        self.sent_at = now;
    }
}

pub fn run(args: &Args, clock: Clock, window: &mut dyn Window) -> Tally {
    let mut tally = Tally::default();
    let mut poll = Poll::new().expect("create poller");
    let local: SocketAddr = if args.target.is_ipv6() { "[::1]:0".parse().unwrap() } else { "127.0.0.1:0".parse().unwrap() };
    let mut peers = Vec::new();
    let mut out = Vec::new();
    let start = Instant::now();
    for id in 0..args.connections {
        let socket = UdpSocket::bind(local).and_then(|s| s.connect(args.target).map(|()| s));
        match socket {
            Ok(mut socket) => {
                poll.registry().register(&mut socket, Token(peers.len()), Interest::READABLE).expect("register");
                let mut p = Peer { socket, id, msg: 0, sent_at: start, late: false };
                p.send(args, &mut out, start);
                peers.push(p);
            }
            Err(e) => {
                tally.errors += 1;
                eprintln!("muxnet-loadgen: udp socket: {e}");
            }
        }
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 65_536];
    let mut measuring = false;
    loop {
        let now = Instant::now();
        if !measuring && now >= clock.measure_from {
            measuring = true;
            window.open();
        }
        if now >= clock.measure_until || now >= clock.deadline {
            break;
        }
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(10))) {
            if e.kind() != io::ErrorKind::Interrupted {
                panic!("poll: {e}");
            }
        }
        let now = Instant::now();
        for event in events.iter() {
            let p = &mut peers[event.token().0];
            loop {
                match p.socket.recv(&mut buf) {
                    Ok(n) => {
                        let data = &buf[..n];
                        // A late echo of a message already counted lost, once; a second
                        // echo of one answered (or of one lost) is a duplicate.
                        if n == args.payload && p.msg > 0 && pattern::mismatches(data, p.id, p.msg - 1, 0) == 0 {
                            if !std::mem::take(&mut p.late) {
                                tally.verification_errors += 1;
                            }
                            continue;
                        }
                        if n != args.payload || pattern::mismatches(data, p.id, p.msg, 0) != 0 {
                            tally.verification_errors += 1;
                            continue;
                        }
                        if clock.measuring(now) {
                            tally.messages += 1;
                            tally.samples.record(now - p.sent_at);
                        }
                        p.msg += 1;
                        p.late = false;
                        p.send(args, &mut out, now);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // ICMP port unreachable: the server is gone.
                    Err(_) => {
                        tally.errors += 1;
                        break;
                    }
                }
            }
        }
        for p in &mut peers {
            if now - p.sent_at > LOSS_TIMEOUT {
                if clock.measuring(now) {
                    tally.lost += 1;
                }
                p.msg += 1;
                p.late = true;
                p.send(args, &mut out, now);
            }
        }
    }
    window.close();
    tally
}
