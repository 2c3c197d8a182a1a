//! A proxy's worst minute: two thousand piped pairs whose clients all leave
//! in one turn, half by FIN and half by RST, while other pairs relay bulk
//! both ways (spliced on Linux, and copied). Every survivor's bytes arrive
//! intact and in order both ways, each leaver's upstream sees exactly what
//! its client sent and then the end (FIN) or a reset (RST), and at the end
//! no socket, pair, kernel pipe or fd is left. Its own test binary, one
//! test: the fd count is process-wide.

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use muxnet_core::{BackendKind, Config, Token};
use socket2::SockRef;

#[test]
fn clients_leave_in_one_turn_while_others_relay() {
    for &kind in BackendKind::ALL {
        for splice in [true, false] {
            mass_leave(kind, splice);
        }
    }
}

/// Pairs in all; `select` takes fewer, its sockets (with the test's own
/// ends and the survivors' kernel pipes) staying below `FD_SETSIZE`.
fn pairs_for(kind: BackendKind) -> usize {
    if kind == BackendKind::Select {
        150
    } else {
        2000
    }
}
/// Pairs that stay and relay while the others leave.
const SURVIVORS: usize = 50;
/// Bytes each survivor sends each way: bulk, so the relay splices it.
const BULK: usize = 512 << 10;
/// Bytes each leaving client sends just before it leaves.
const LAST_WORDS: usize = 3000;

/// One std end of a pair (a client, or the upstream's accepted socket).
struct End {
    stream: TcpStream,
    out: Vec<u8>,
    sent: usize,
    got: Vec<u8>,
    /// How its input ended: `Ok(())` at EOF, else the error's kind.
    ended: Option<Result<(), ErrorKind>>,
}

impl End {
    fn new(stream: TcpStream, out: Vec<u8>) -> End {
        stream.set_nonblocking(true).unwrap();
        End { stream, out, sent: 0, got: Vec::new(), ended: None }
    }

    /// Writes what the kernel takes now, reads what it has.
    fn pump(&mut self) {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("writing: {e}"),
            }
        }
        let mut buf = [0u8; 64 << 10];
        while self.ended.is_none() {
            match self.stream.read(&mut buf) {
                Ok(0) => self.ended = Some(Ok(())),
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => self.ended = Some(Err(e.kind())),
            }
        }
    }
}

/// How a pair's client leaves.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Leave {
    Stays,
    Fin,
    Rst,
}

struct Pair {
    leave: Leave,
    client: Option<End>,
    upstream: End,
    a: Token,
    b: Token,
}

fn mass_leave(kind: BackendKind, splice: bool) {
    let fds = open_fds();
    let mut h = Harness::with_config(kind, Config { splice, ..Config::default() });
    let name = format!("{}, splice {splice}", h.name());
    let (_, addr) = h.listen("127.0.0.1:0");
    let listening = open_fds();
    let upstreams = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut pairs = join_pairs(&mut h, addr, &upstreams, pairs_for(kind));
    drop(upstreams);

    for (i, p) in pairs.iter_mut().enumerate() {
        p.leave = match i {
            i if i < SURVIVORS => Leave::Stays,
            i if i % 2 == 0 => Leave::Fin,
            _ => Leave::Rst,
        };
        if p.leave == Leave::Stays {
            p.client.as_mut().unwrap().out = pattern(i as u64, BULK);
            p.upstream.out = pattern((i + 1_000_000) as u64, BULK);
        }
    }
    // The survivors' bulk is under way...
    let mut closes: HashMap<Token, Option<i32>> = HashMap::new();
    let turn = |h: &mut Harness, closes: &mut HashMap<Token, Option<i32>>| {
        for e in h.turn(Duration::from_millis(1)) {
            match e {
                Ev::Close { conn, error, .. } => assert!(closes.insert(conn, error.map(|e| e.raw_os_error().unwrap_or(-1))).is_none()),
                Ev::End { .. } | Ev::Connect { .. } => {}
                other => panic!("[{name}] unexpected {other:?}"),
            }
        }
    };
    for _ in 0..3 {
        turn(&mut h, &mut closes);
        pairs[..SURVIVORS].iter_mut().for_each(|p| p.client.as_mut().unwrap().pump());
        pairs[..SURVIVORS].iter_mut().for_each(|p| p.upstream.pump());
    }
    // ...when every other client says its last words and leaves, with no
    // turn between the first and the last.
    for (i, p) in pairs.iter_mut().enumerate().filter(|(_, p)| p.leave != Leave::Stays) {
        let mut client = p.client.take().unwrap();
        client.stream.set_nonblocking(false).unwrap();
        client.stream.write_all(&pattern(i as u64, LAST_WORDS)).unwrap();
        match p.leave {
            Leave::Fin => client.stream.shutdown(Shutdown::Write).unwrap(),
            _ => SockRef::from(&client.stream).set_linger(Some(Duration::ZERO)).unwrap(),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        turn(&mut h, &mut closes);
        let mut done = true;
        for p in pairs.iter_mut() {
            if let Some(c) = p.client.as_mut() {
                c.pump();
                done &= c.got.len() >= BULK;
            }
            p.upstream.pump();
            done &= match p.leave {
                Leave::Stays => p.upstream.got.len() >= BULK,
                _ => p.upstream.ended.is_some(),
            };
        }
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "[{name}] stalled");
    }

    for (i, p) in pairs.iter().enumerate() {
        let up = &p.upstream;
        match p.leave {
            Leave::Stays => {
                let client = p.client.as_ref().unwrap();
                assert_same(&up.got, &pattern(i as u64, BULK), &format!("[{name}] survivor {i}: bytes up"));
                assert_same(&client.got, &pattern((i + 1_000_000) as u64, BULK), &format!("[{name}] survivor {i}: bytes down"));
                assert!(!closes.contains_key(&p.a) && !closes.contains_key(&p.b), "[{name}] survivor {i} was closed");
            }
            Leave::Fin => {
                assert_same(&up.got, &pattern(i as u64, LAST_WORDS), &format!("[{name}] FIN leaver {i}: bytes before its FIN"));
                assert_eq!(up.ended, Some(Ok(())), "[{name}] FIN leaver {i}: its upstream sees the end");
            }
            Leave::Rst => {
                let words = pattern(i as u64, LAST_WORDS);
                assert!(words.starts_with(&up.got), "[{name}] RST leaver {i}: its upstream got bytes that are not its client's");
                assert_eq!(up.ended, Some(Err(ErrorKind::ConnectionReset)), "[{name}] RST leaver {i}: its upstream is reset");
                assert_eq!(closes.get(&p.a), Some(&Some(libc::ECONNRESET)), "[{name}] RST leaver {i}: the client's side");
                assert_eq!(closes.get(&p.b), Some(&Some(libc::ECONNRESET)), "[{name}] RST leaver {i}: the upstream's side");
            }
        }
    }

    // Everyone else leaves too (upstreams by FIN): nothing is left behind.
    let survivors = pairs.len();
    drop(pairs);
    h.until_within(Duration::from_secs(20), "every pair closed", |r, _| r.len() == 1);
    let s = h.r.stats();
    assert_eq!((s.connections, s.piped, s.queued_bytes), (0, 0, 0), "[{name}] connections, pairs, bytes left");
    // Kernel pipes kept for reuse go with the last pair, not the reactor.
    assert_eq!(open_fds(), listening, "[{name}] fds open in the reactor after {survivors} pairs");
    drop(h);
    assert_eq!(open_fds(), fds, "[{name}] fds open after {survivors} pairs");
}

/// `n` clients joined to as many upstream connections, in batches.
fn join_pairs(h: &mut Harness, addr: SocketAddr, upstreams: &TcpListener, n: usize) -> Vec<Pair> {
    const BATCH: usize = 100;
    let target = upstreams.local_addr().unwrap();
    let mut pairs = Vec::with_capacity(n);
    while pairs.len() < n {
        let count = BATCH.min(n - pairs.len());
        let mut clients: HashMap<SocketAddr, TcpStream> = (0..count)
            .map(|_| {
                let c = client(addr);
                (c.local_addr().unwrap(), c)
            })
            .collect();
        let mut accepted = Vec::new();
        h.until(&format!("{count} accepts"), |_, events| {
            for e in events {
                match e {
                    Ev::Accept { conn, .. } => accepted.push(conn),
                    // The last batch's upstream connections.
                    Ev::Connect { .. } => {}
                    other => panic!("unexpected {other:?} while accepting"),
                }
            }
            accepted.len() == count
        });
        let mut joined: HashMap<SocketAddr, (Token, Token, TcpStream)> = HashMap::new();
        for a in accepted {
            let b = h.r.connect(target, None).unwrap();
            h.r.pipe(a, b).unwrap();
            let client = clients.remove(&h.r.peer_addr(a).unwrap()).unwrap();
            joined.insert(h.r.local_addr(b).unwrap(), (a, b, client));
        }
        for _ in 0..count {
            let (upstream, from) = upstreams.accept().unwrap();
            let (a, b, client) = joined.remove(&from).expect("an upstream connection from no pair");
            pairs.push(Pair {
                leave: Leave::Stays,
                client: Some(End::new(client, Vec::new())),
                upstream: End::new(upstream, Vec::new()),
                a,
                b,
            });
        }
    }
    pairs
}
