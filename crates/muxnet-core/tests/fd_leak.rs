//! Two thousand connections through a reactor, ended every way there is
//! (peer close, our close, peer reset, both sides reactor-owned, refused
//! connects), must leave no fd and no socket behind; nor may a piped
//! connection whose partner closed keep its kernel pipe. Its own binary, since
//! it counts the process's fds; the tests here take turns.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, Config, Token};
use socket2::SockRef;

static SERIAL: Mutex<()> = Mutex::new(());

backend_tests!(no_fd_leak, pipe_survivor_gives_back_its_kernel_pipe);

const BATCHES: usize = 20;
/// Per batch: std clients, reactor-to-reactor pairs (two connections
/// each), refused connects; 100 reactor connections in all.
const STD_CLIENTS: usize = 30;
const PAIRS: usize = 30;
const REFUSED: usize = 10;

fn no_fd_leak(kind: BackendKind) {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let mut h = Harness::new(kind);
    let (server, addr) = h.listen("127.0.0.1:0");
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (fds, sockets) = (open_fds(), h.r.len());

    for batch in 0..BATCHES {
        let clients: Vec<TcpStream> = (0..STD_CLIENTS).map(|_| client(addr)).collect();
        let outs: HashSet<Token> = (0..PAIRS).map(|_| h.r.connect(addr, None).unwrap()).collect();
        let refused: HashSet<Token> = (0..REFUSED).map(|_| h.r.connect(dead, None).unwrap()).collect();

        let mut accepted = Vec::new();
        let (mut connected, mut refusals) = (0, 0);
        h.until(&format!("batch {batch}: accepts, connects and refusals"), |_, events| {
            for e in events {
                match e {
                    Ev::Accept { listener, conn } if listener == server => accepted.push(conn),
                    Ev::Connect { conn } if outs.contains(&conn) => connected += 1,
                    Ev::Close { conn, error: Some(_), .. } if refused.contains(&conn) => refusals += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
            accepted.len() == STD_CLIENTS + PAIRS && connected == PAIRS && refusals == REFUSED
        });

        // Which accepted connection is which std client.
        let by_peer: HashMap<_, _> = accepted.iter().map(|&c| (h.r.peer_addr(c).unwrap(), c)).collect();
        let mut expect_close = 2 * PAIRS;
        for (i, c) in clients.into_iter().enumerate() {
            let conn = by_peer[&c.local_addr().unwrap()];
            match i % 3 {
                // The peer closes: End, our shutdown, Close.
                0 => expect_close += 1,
                // We close: no event.
                1 => h.r.close(conn).unwrap(),
                // The peer resets: Close with an error.
                _ => {
                    SockRef::from(&c).set_linger(Some(Duration::ZERO)).unwrap();
                    expect_close += 1;
                }
            }
        }
        // Reactor to reactor: one side half-closes, the other answers.
        for &out in &outs {
            h.r.shutdown(out).unwrap();
        }

        let mut shut: HashSet<Token> = outs.clone();
        let mut closed = 0;
        h.until(&format!("batch {batch}: every connection closed"), |r, events| {
            for e in events {
                match e {
                    Ev::End { conn, .. } => {
                        if shut.insert(conn) {
                            r.shutdown(conn).unwrap();
                        }
                    }
                    Ev::Close { .. } => closed += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
            r.len() == sockets
        });
        assert_eq!(closed, expect_close, "batch {batch}: Close events");
    }

    assert_eq!(h.r.len(), sockets);
    assert_eq!(open_fds(), fds, "fds open after {} connections", BATCHES * (STD_CLIENTS + 2 * PAIRS + REFUSED));
}

/// A pair's side closed while the bytes it spliced toward its partner were
/// still in the partner's kernel pipe (the partner's peer not reading):
/// the partner, unjoined, sends them, and then holds no pipe (two fds) for
/// the rest of its life, as no idle connection does.
fn pipe_survivor_gives_back_its_kernel_pipe(kind: BackendKind) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let mut h = Harness::with_config(kind, Config { splice: true, ..Config::default() });
    let (mut a_peer, a, mut b_peer, b) = piped_pair(&mut h);
    let paired = open_fds();
    // More than the sockets' buffers and the pipe hold; a's close ends it.
    let data = pattern(7, 16 << 20);
    let writer = Peer::spawn({
        let data = data.clone();
        move || drop(a_peer.write_all(&data))
    });
    h.until("spliced bytes held in b's kernel pipe", |r, _| r.queued(b).unwrap() > 0);
    assert!(h.r.stats().spliced > 0, "[{}] nothing spliced", h.name());
    h.r.close(a).unwrap();
    b_peer.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    h.until("b's kernel pipe sent", |r, _| {
        let mut buf = [0; 64 << 10];
        while let Ok(n @ 1..) = b_peer.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        r.queued(b).unwrap() == 0
    });
    writer.join();
    assert!(data.starts_with(&got), "[{}] b's peer got other bytes", h.name());
    h.collect_for(Duration::from_millis(50));
    // a and its peer gone; b, its peer and the listener still open.
    assert_eq!(open_fds(), paired - 2, "[{}] fds held after a's close and b's flush", h.name());
}
