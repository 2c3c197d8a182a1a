//! TCP echo load: `connections` connections each keeping `depth` messages
//! in flight, plus `idle` connections that never send.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::args::Args;
use crate::{pattern, Clock, Tally, Window};

struct Conn {
    stream: TcpStream,
    id: usize,
    active: bool,
    connected: bool,
    dead: bool,
    out: Vec<u8>,
    out_off: usize,
    sent: u64,
    recv_msg: u64,
    recv_off: usize,
    /// Send times of the messages in flight, oldest first.
    inflight: VecDeque<Instant>,
    /// Echoes received in the measured window.
    echoed: u64,
}

impl Conn {
    fn fill(&mut self, args: &Args, now: Instant) {
        while self.inflight.len() < args.depth {
            pattern::fill(&mut self.out, self.id, self.sent, args.payload);
            self.inflight.push_back(now);
            self.sent += 1;
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.out_off < self.out.len() {
            match self.stream.write(&self.out[self.out_off..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_off = 0;
        Ok(())
    }

    /// Verifies echoed bytes; returns the send times of completed messages.
    fn receive(&mut self, mut data: &[u8], args: &Args, tally: &mut Tally, done: &mut Vec<Instant>) {
        while !data.is_empty() {
            let n = data.len().min(args.payload - self.recv_off);
            tally.verification_errors += pattern::mismatches(&data[..n], self.id, self.recv_msg, self.recv_off);
            self.recv_off += n;
            data = &data[n..];
            if self.recv_off == args.payload {
                self.recv_off = 0;
                self.recv_msg += 1;
                match self.inflight.pop_front() {
                    Some(t) => done.push(t),
                    // More bytes than were sent.
                    None => tally.verification_errors += 1,
                }
            }
        }
    }
}

/// How long the measured window waits, past the warm-up, for the last
/// connections to open (a full listen backlog drops SYNs, retried after 1 s, 3 s, …).
const CONNECT_WAIT: Duration = Duration::from_secs(30);

/// A non-blocking connect from `source` (any port), or from wherever the kernel picks.
fn connect_from(target: SocketAddr, source: Option<Ipv4Addr>) -> io::Result<TcpStream> {
    let Some(ip) = source else { return TcpStream::connect(target) };
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((ip, 0)).into())?;
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

pub fn run(args: &Args, mut clock: Clock, window: &mut dyn Window) -> Tally {
    let mut tally = Tally::default();
    let mut poll = Poll::new().expect("create poller");
    let mut conns = Vec::with_capacity(args.connections + args.idle);
    for id in 0..args.connections + args.idle {
        let source = (args.sources > 1).then(|| Ipv4Addr::new(127, 0, 0, 1 + (id % args.sources as usize) as u8));
        match connect_from(args.target, source) {
            Ok(mut stream) => {
                if poll.registry().register(&mut stream, Token(conns.len()), Interest::READABLE | Interest::WRITABLE).is_err() {
                    tally.errors += 1;
                    continue;
                }
                conns.push(Conn {
                    stream,
                    id,
                    active: id < args.connections,
                    connected: false,
                    dead: false,
                    out: Vec::new(),
                    out_off: 0,
                    sent: 0,
                    recv_msg: 0,
                    recv_off: 0,
                    inflight: VecDeque::new(),
                    echoed: 0,
                });
            }
            Err(e) => {
                tally.errors += 1;
                eprintln!("muxnet-loadgen: connect {}: {e}", args.target);
            }
        }
    }
    let mut events = Events::with_capacity(4096);
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = Vec::new();
    let mut measuring = false;
    // The window opens once every connection is open: the server's memory
    // is then read with all of them held.
    let mut unconnected = conns.len();
    let connect_deadline = clock.measure_from + CONNECT_WAIT;
    loop {
        let now = Instant::now();
        let waiting = now >= clock.measure_from && unconnected > 0 && now < connect_deadline;
        if !measuring && now >= clock.measure_from && !waiting {
            measuring = true;
            if now > clock.measure_from + Duration::from_millis(50) {
                clock.start_at(now);
            }
            window.open();
        }
        if measuring && now >= clock.measure_until {
            break;
        }
        let next = if measuring { clock.measure_until } else { clock.measure_from };
        let timeout = if waiting { Duration::from_millis(50) } else { next.saturating_duration_since(now).min(Duration::from_millis(50)) };
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                panic!("poll: {e}");
            }
        }
        let now = Instant::now();
        for event in events.iter() {
            let c = &mut conns[event.token().0];
            if c.dead {
                continue;
            }
            let result = (|| -> io::Result<()> {
                if !c.connected {
                    if let Some(e) = c.stream.take_error()? {
                        return Err(e);
                    }
                    match c.stream.peer_addr() {
                        Ok(_) => {
                            c.connected = true;
                            unconnected -= 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                        Err(e) => return Err(e),
                    }
                    let _ = c.stream.set_nodelay(true);
                    if c.active {
                        c.fill(args, now);
                    }
                }
                if event.is_readable() {
                    loop {
                        match c.stream.read(&mut buf) {
                            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                            Ok(n) => {
                                done.clear();
                                c.receive(&buf[..n], args, &mut tally, &mut done);
                                // Not while the window waits for the last connections
                                // to open: it opens later, and these would be counted
                                // against a window they came before.
                                if measuring && clock.measuring(now) {
                                    tally.messages += done.len() as u64;
                                    c.echoed += done.len() as u64;
                                    for &t in &done {
                                        tally.samples.record(now - t);
                                    }
                                }
                                if !done.is_empty() {
                                    c.fill(args, now);
                                }
                                // A short read drained the socket; with edge
                                // triggering more input raises a new event.
                                // Skipping the read that would only say
                                // WouldBlock leaves the client core to load.
                                if n < buf.len() {
                                    break;
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                c.flush()
            })();
            if let Err(e) = result {
                if !c.connected {
                    unconnected -= 1;
                }
                c.dead = true;
                tally.errors += 1;
                eprintln!("muxnet-loadgen: connection {}: {e}", c.id);
            }
        }
        if measuring && now >= clock.deadline {
            break;
        }
    }
    window.close();
    let end = Instant::now();
    let live = conns.iter().filter(|c| c.active && !c.dead);
    tally.starved = Some(live.clone().filter(|c| c.echoed == 0).count() as u64);
    // Answered in the window, then left waiting (a lost chunk, a stuck connection): what `starved` misses.
    let stall = (args.duration / 2).max(Duration::from_secs(1));
    tally.stalled =
        Some(live.clone().filter(|c| c.echoed > 0 && c.inflight.front().is_some_and(|&sent| end - sent >= stall)).count() as u64);
    for c in live {
        for &sent in &c.inflight {
            tally.waiting.record(end - sent);
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// An echo server whose listen backlog holds one connection and which
    /// accepts only the first for `hold`: the connections after it wait for
    /// SYN retries (1 s) while the first one echoes. The times of its echoes.
    fn slow_to_accept(hold: Duration) -> (SocketAddr, Arc<Mutex<Vec<Instant>>>) {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
        socket.listen(0).unwrap();
        let listener: TcpListener = socket.into();
        let addr = listener.local_addr().unwrap();
        let echoes = Arc::new(Mutex::new(Vec::new()));
        let times = echoes.clone();
        std::thread::spawn(move || {
            let (mut first, _) = listener.accept().unwrap();
            let opened = Instant::now();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = first.read(&mut buf) {
                    times.lock().unwrap().push(Instant::now());
                    if first.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            std::thread::sleep(hold.saturating_sub(opened.elapsed()));
            // The rest stay open and silent until the process ends.
            let mut rest = Vec::new();
            while let Ok((conn, _)) = listener.accept() {
                rest.push(conn);
            }
        });
        (addr, echoes)
    }

    /// Notes when the window opened.
    struct Opened(Option<Instant>);

    impl Window for Opened {
        fn open(&mut self) {
            self.0 = Some(Instant::now());
        }

        fn close(&mut self) {}
    }

    /// A 300 ms window at once, `connections` active and `idle` silent.
    fn short_run(target: SocketAddr, connections: usize, idle: usize) -> Args {
        let mut args = crate::args::parse(["--port", "1"].into_iter().map(String::from)).unwrap();
        args.target = target;
        args.connections = connections;
        args.idle = idle;
        args.warmup = Duration::ZERO;
        args.duration = Duration::from_millis(300);
        args
    }

    #[test]
    fn messages_echoed_while_the_window_waits_for_connections_are_not_counted() {
        let (target, echoes) = slow_to_accept(Duration::from_millis(1500));
        let args = short_run(target, 1, 3);
        let mut window = Opened(None);
        let tally = run(&args, Clock::new(&args), &mut window);
        let opened = window.0.expect("the window opened");
        let echoes = echoes.lock().unwrap();
        let before = echoes.iter().filter(|&&t| t < opened).count();
        let within = echoes.iter().filter(|&&t| t >= opened && t < opened + args.duration).count() as u64;
        assert!(before > 100, "the first connection echoed while the others waited ({before} echoes)");
        assert_eq!(tally.errors, 0);
        // One message may be in flight across each edge of the window.
        assert!(tally.messages <= within + 1, "{} messages counted, {within} echoed within the window", tally.messages);
        assert!(tally.messages > 0);
    }

    #[test]
    fn connections_a_server_never_answers_are_counted_starved_with_their_wait() {
        // The first connection is echoed; the other two are accepted late and never answered.
        let (target, _) = slow_to_accept(Duration::from_millis(1500));
        let args = short_run(target, 3, 0);
        let tally = run(&args, Clock::new(&args), &mut Opened(None));
        assert!(tally.messages > 0);
        assert_eq!(tally.starved, Some(2));
        // Both unanswered requests waited at least the whole window.
        assert_eq!(tally.waiting.0.iter().filter(|&&us| us >= 300_000).count(), 2, "{:?}", tally.waiting.0);
        let mut all = tally.with_waiting();
        let mut served = tally.samples.clone();
        assert!(all.quantile(1.0) > served.quantile(1.0));
    }
}
