//! Thousands of connections come and leave, by FIN and by RST, across
//! batches, on every backend, checked for cross-talk byte by byte; the fd
//! count is back where it started. Its own test binary, one test: the
//! count is process-wide.

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use muxnet_core::{BackendKind, Token};
use socket2::SockRef;

#[test]
fn churn_without_cross_talk() {
    for &kind in BackendKind::ALL {
        churn(kind);
    }
}

/// One client of the churn: what it sent, what came back.
struct Client {
    stream: TcpStream,
    sent: Vec<u8>,
    got: Vec<u8>,
}

const ROUNDS: u64 = 6;
/// Per round; two rounds are open at once, so the select backend stays
/// below FD_SETSIZE.
const PER_ROUND: u64 = 200;
const MESSAGE: usize = 300;

// Rounds of clients connect, send bytes unique to each, and read their
// echo; while a round connects, the previous one leaves, half by FIN and
// half by RST, so turns mix closes, accepts and data, and freed slots are
// taken again at once. Any byte echoed to the wrong client shows.
fn churn(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (_, addr) = h.listen("127.0.0.1:0");
    let fds_before = open_fds();
    // Server side: which client (by its first bytes) each token carries.
    let mut owner: HashMap<Token, Vec<u8>> = HashMap::new();
    let mut leaving: Vec<Client> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for round in 0..ROUNDS {
        let mut clients: Vec<Client> = (0..PER_ROUND)
            .map(|i| {
                let mut stream = client(addr);
                let sent = pattern(round * PER_ROUND + i + 1, MESSAGE);
                stream.write_all(&sent).unwrap();
                stream.set_nonblocking(true).unwrap();
                Client { stream, sent, got: Vec::new() }
            })
            .collect();
        for (i, old) in leaving.drain(..).enumerate() {
            if i % 2 == 0 {
                old.stream.shutdown(Shutdown::Write).unwrap();
            } else {
                SockRef::from(&old.stream).set_linger(Some(Duration::ZERO)).unwrap();
            }
        }
        loop {
            for e in h.turn(Duration::from_millis(5)) {
                match e {
                    Ev::Accept { .. } => {}
                    Ev::Data { conn, data } => {
                        let seen = owner.entry(conn).or_default();
                        seen.extend_from_slice(&data);
                        // A token's bytes are one client's stream, from its start.
                        let seed_bytes = &seen[..seen.len().min(8)];
                        assert!(
                            (1..=ROUNDS * PER_ROUND).any(|seed| pattern(seed, seed_bytes.len()) == seed_bytes),
                            "[{}] bytes on {conn:?} are no client's",
                            h.name()
                        );
                        let _ = h.r.write(conn, &data);
                    }
                    Ev::End { conn, .. } => {
                        let _ = h.r.shutdown(conn);
                    }
                    Ev::Close { conn, .. } => {
                        owner.remove(&conn);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            for c in &mut clients {
                let mut buf = [0u8; 4096];
                match c.stream.read(&mut buf) {
                    Ok(n) => c.got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("client read: {e}"),
                }
            }
            if clients.iter().all(|c| c.got.len() >= MESSAGE) {
                break;
            }
            assert!(Instant::now() < deadline, "[{}] churn round {round} stalled", h.name());
        }
        for c in &clients {
            assert!(c.got == c.sent, "[{}] a client got bytes that were not its own", h.name());
        }
        leaving = clients;
    }
    drop(leaving);
    h.until("every connection closed", |r, events| {
        for e in events {
            if let Ev::End { conn, .. } = e {
                let _ = r.shutdown(conn);
            }
        }
        r.len() == 1
    });
    assert_eq!(open_fds(), fds_before, "[{}] fds leaked", h.name());
}
