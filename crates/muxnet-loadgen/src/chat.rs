//! Chat fan-out load: `connections` members sit in the chat server's lobby,
//! one more connection sends lines `SEQ MICROS`, keeping `depth` lines in
//! flight (a line is done once every member has it). Each delivery to a
//! member is a message; its latency is from the send to that member's read.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::args::Args;
use crate::{Clock, Tally, Window};

struct Member {
    stream: TcpStream,
    /// Bytes of an incomplete line.
    partial: Vec<u8>,
    welcomed: bool,
    dead: bool,
}

const SENDER: usize = 0;

pub fn run(args: &Args, connect_clock: Clock, window: &mut dyn Window) -> Tally {
    // Warm-up and measurement start once every member is in the room (10 000
    // connections take a while to be accepted); until then only the
    // original deadline applies.
    let mut clock = Clock { measure_from: connect_clock.deadline, measure_until: connect_clock.deadline, deadline: connect_clock.deadline };
    let mut tally = Tally::default();
    let mut poll = Poll::new().expect("create poller");
    let mut conns = Vec::new();
    for i in 0..=args.connections {
        match TcpStream::connect(args.target) {
            Ok(mut stream) => {
                poll.registry().register(&mut stream, Token(i), Interest::READABLE).expect("register");
                conns.push(Member { stream, partial: Vec::new(), welcomed: false, dead: false });
            }
            Err(e) => {
                eprintln!("muxnet-loadgen: connect: {e}");
                tally.errors += 1;
                return tally;
            }
        }
    }
    let start = Instant::now();
    let mut events = Events::with_capacity(4096);
    let mut buf = vec![0u8; 256 * 1024];
    let mut welcomed = 0;
    let mut measuring = false;
    // Send time and deliveries still missing, per line in flight.
    let mut inflight: VecDeque<(u64, Instant, usize)> = VecDeque::new();
    let mut next_seq = 0u64;
    let mut out = Vec::new();
    loop {
        let now = Instant::now();
        if !measuring && now >= clock.measure_from {
            measuring = true;
            window.open();
        }
        if now >= clock.measure_until || now >= clock.deadline {
            if welcomed < conns.len() {
                eprintln!("muxnet-loadgen: only {welcomed} of {} members joined in time", conns.len());
                tally.errors += (conns.len() - welcomed) as u64;
            }
            break;
        }
        // Start sending once everyone is in the room.
        if welcomed == conns.len() {
            if next_seq == 0 {
                clock = Clock::new(args);
            }
            while inflight.len() < args.depth {
                out.extend_from_slice(format!("{next_seq} {}\n", (now - start).as_micros()).as_bytes());
                inflight.push_back((next_seq, now, args.connections));
                next_seq += 1;
            }
            if !out.is_empty() {
                match conns[SENDER].stream.write(&out) {
                    Ok(n) => drop(out.drain(..n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        eprintln!("muxnet-loadgen: sender: {e}");
                        tally.errors += 1;
                        break;
                    }
                }
            }
        }
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(5))) {
            if e.kind() != io::ErrorKind::Interrupted {
                panic!("poll: {e}");
            }
        }
        let now = Instant::now();
        for event in events.iter() {
            let i = event.token().0;
            let m = &mut conns[i];
            if m.dead {
                continue;
            }
            loop {
                match m.stream.read(&mut buf) {
                    Ok(0) => {
                        m.dead = true;
                        tally.errors += 1;
                        break;
                    }
                    Ok(n) => {
                        m.partial.extend_from_slice(&buf[..n]);
                        let mut consumed = 0;
                        while let Some(end) = m.partial[consumed..].iter().position(|&b| b == b'\n') {
                            let line = &m.partial[consumed..consumed + end];
                            consumed += end + 1;
                            if !m.welcomed && line.starts_with(b"WELCOME") {
                                m.welcomed = true;
                                welcomed += 1;
                            } else if i != SENDER {
                                deliver(line, start, now, clock, &mut inflight, &mut tally);
                            }
                        }
                        m.partial.drain(..consumed);
                        // A short read drained the socket (see tcp.rs).
                        if n < buf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        m.dead = true;
                        tally.errors += 1;
                        break;
                    }
                }
            }
        }
        while inflight.front().is_some_and(|&(_, _, missing)| missing == 0) {
            inflight.pop_front();
        }
    }
    window.close();
    tally
}

/// A relayed line `TIMESTAMP NICK: SEQ MICROS`: one delivery of line SEQ.
fn deliver(line: &[u8], start: Instant, now: Instant, clock: Clock, inflight: &mut VecDeque<(u64, Instant, usize)>, tally: &mut Tally) {
    let mut words = line.rsplit(|&b| b == b' ');
    let (Some(micros), Some(seq)) = (words.next().and_then(number), words.next().and_then(number)) else {
        return;
    };
    if let Some(entry) = inflight.iter_mut().find(|(s, _, _)| *s == seq) {
        entry.2 = entry.2.saturating_sub(1);
    } else {
        tally.verification_errors += 1;
    }
    if clock.measuring(now) {
        tally.messages += 1;
        tally.samples.record((now - start).saturating_sub(Duration::from_micros(micros)));
    }
}

/// Decimal digits as a number, without going through a string.
fn number(word: &[u8]) -> Option<u64> {
    if word.is_empty() || word.len() > 19 || !word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(word.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::number;

    #[test]
    fn parses_only_plain_decimals() {
        assert_eq!(number(b"1234567"), Some(1_234_567));
        assert_eq!(number(b""), None);
        assert_eq!(number(b"12a"), None);
        assert_eq!(number(b"99999999999999999999"), None);
    }
}
