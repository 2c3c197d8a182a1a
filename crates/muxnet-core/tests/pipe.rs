//! Connections joined in the reactor: bytes relayed both ways with no
//! `Data` for the owner, backpressure that bounds the queue, half-close
//! passed through as a FIN, a reset passed through as a reset — each
//! with bulk input spliced (Linux) and copied.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, Config, PipeOptions, Token};
use socket2::SockRef;

backend_tests!(
    pipe_relays_both_ways,
    pipe_relays_a_short_read_without_a_wasted_read,
    pipe_relays_up_to_the_read_budget_per_turn,
    pipe_splices_request_sized_chunks,
    pipe_backpressure_bounds_the_queue,
    pipe_backpressure_holds_within_the_write_queue_cap,
    pipe_passes_half_close_and_reset,
    pipe_splices_past_a_short_splice,
    pipe_reuses_kernel_pipes_between_bursts,
    pipe_with_chooses_splicing_per_pair,
    pipe_relays_past_urgent_data,
    pipe_relays_past_urgent_data_with_nothing_behind,
    pipe_passes_a_fin_without_a_drain_for_the_owner,
    pipe_lets_the_owner_end_a_side_the_pipe_ended,
    pipe_passes_on_an_end_read_before_the_join,
    pipe_passes_on_an_end_after_the_owners_writes,
    pipe_refuses_bad_pairs
);

/// Each relay test runs with splicing on (the default) and off.
const SPLICE: [bool; 2] = [true, false];

/// What `config.splice` should have spliced of `relayed` bytes: all bulk
/// input on Linux (at least `bulk` bytes), nothing elsewhere or when off.
fn assert_spliced(h: &Harness, splice: bool, spliced: u64, bulk: u64) {
    if splice && cfg!(target_os = "linux") {
        assert!(spliced >= bulk, "[{}] only {spliced} bytes spliced, of at least {bulk} in bulk", h.name());
    } else {
        assert_eq!(spliced, 0, "[{}] spliced with splice off (or off Linux)", h.name());
    }
}

/// Turns until `until` holds, failing on any `Data` (a pipe reports none).
fn turn_without_data(h: &mut Harness, what: &str, mut until: impl FnMut() -> bool) {
    h.until(what, |_, events| {
        for e in events {
            assert!(!matches!(e, Ev::Data { .. }), "a piped connection reported data: {e:?}");
        }
        until()
    });
}

fn pipe_relays_both_ways(kind: BackendKind) {
    for splice in SPLICE {
        relay_both_ways(kind, splice);
    }
}

fn relay_both_ways(kind: BackendKind, splice: bool) {
    let mut h = Harness::with_config(kind, Config { splice, ..Config::default() });
    let (a_peer, a, b_peer, b) = piped_pair(&mut h);
    let (up, down) = (pattern(1, 3 << 20), pattern(2, 2 << 20));
    // Each peer writes and reads on its own thread; the reactor relays. The
    // threads hand their sockets back: none closes before the counts are read.
    let writer = |mut s: TcpStream, data: Vec<u8>| {
        Peer::spawn(move || {
            s.write_all(&data).unwrap();
            s
        })
    };
    let reader = |mut s: TcpStream, n: usize| Peer::spawn(move || (read_n(&mut s, n), s));
    let to_b = writer(a_peer.try_clone().unwrap(), up.clone());
    let to_a = writer(b_peer.try_clone().unwrap(), down.clone());
    let mut at_b = reader(b_peer, up.len());
    let mut at_a = reader(a_peer, down.len());
    turn_without_data(&mut h, "8 MiB relayed", || at_a.done() && at_b.done());
    let _open = (to_b.join(), to_a.join());
    let ((got_b, _b), (got_a, _a)) = (at_b.join(), at_a.join());
    assert!(got_b == up, "[{}] bytes toward b differ", h.name());
    assert!(got_a == down, "[{}] bytes toward a differ", h.name());
    assert_eq!(h.r.relayed(a).unwrap(), up.len() as u64, "bytes relayed from a");
    assert_eq!(h.r.relayed(b).unwrap(), down.len() as u64, "bytes relayed from b");
    // The first read of each side is copied; what follows in bulk is spliced.
    assert_spliced(&h, splice, h.r.stats().spliced, ((up.len() + down.len()) / 2) as u64);
}

/// Request/response traffic, one 64-byte message at a time: each relay is
/// one read (short: the socket is drained) and one write. Reading again to
/// meet `WouldBlock` would double the reads; a few spurious wake-ups may
/// still find nothing.
fn pipe_relays_a_short_read_without_a_wasted_read(kind: BackendKind) {
    const ROUNDS: usize = 100;
    let mut h = Harness::new(kind);
    let (a_peer, _, b_peer, _) = piped_pair(&mut h);
    let before = h.r.stats();
    let mut client = Peer::spawn(move || {
        let mut s = a_peer;
        for i in 0..ROUNDS {
            s.write_all(&pattern(i as u64, 64)).unwrap();
            assert_eq!(read_n(&mut s, 64), pattern(!(i as u64), 64), "reply {i}");
        }
        s
    });
    let mut server = Peer::spawn(move || {
        let mut s = b_peer;
        for i in 0..ROUNDS {
            assert_eq!(read_n(&mut s, 64), pattern(i as u64, 64), "request {i}");
            s.write_all(&pattern(!(i as u64), 64)).unwrap();
        }
        s
    });
    turn_without_data(&mut h, "100 round trips", || client.done() && server.done());
    let _open = (client.join(), server.join());
    let s = h.r.stats();
    let (reads, empty) = (s.reads.calls - before.reads.calls, s.empty_reads - before.empty_reads);
    assert_eq!(s.relayed - before.relayed, (2 * ROUNDS * 64) as u64, "[{}]", h.name());
    assert_eq!(reads, (2 * ROUNDS) as u64, "[{}] one read per relayed message", h.name());
    assert!(empty < (ROUNDS / 4) as u64, "[{}] {empty} reads found nothing in {} relays", h.name(), 2 * ROUNDS);
}

/// Request/response traffic of 16 KiB messages, one at a time: no read
/// fills its 64 KiB, but each is large enough that the next one splices
/// (on Linux, splice on) — every chunk but each side's first — and the
/// pipes are taken from and given back to the spares, not made anew.
fn pipe_splices_request_sized_chunks(kind: BackendKind) {
    const ROUNDS: u64 = 50;
    const SIZE: usize = 16 << 10;
    for splice in SPLICE {
        let mut h = Harness::with_config(kind, Config { splice, ..Config::default() });
        let (a_peer, _, b_peer, _) = piped_pair(&mut h);
        let before = h.r.stats();
        let mut client = Peer::spawn(move || {
            let mut s = a_peer;
            for i in 0..ROUNDS {
                s.write_all(&pattern(i, SIZE)).unwrap();
                assert_eq!(read_n(&mut s, SIZE), pattern(!i, SIZE), "reply {i}");
            }
            s
        });
        let mut server = Peer::spawn(move || {
            let mut s = b_peer;
            for i in 0..ROUNDS {
                assert_eq!(read_n(&mut s, SIZE), pattern(i, SIZE), "request {i}");
                s.write_all(&pattern(!i, SIZE)).unwrap();
            }
            s
        });
        turn_without_data(&mut h, "50 round trips of 16 KiB", || client.done() && server.done());
        let _open = (client.join(), server.join());
        let s = h.r.stats();
        assert_eq!(s.relayed - before.relayed, 2 * ROUNDS * SIZE as u64, "[{}]", h.name());
        assert_spliced(&h, splice, s.spliced - before.spliced, 2 * (ROUNDS - 1) * SIZE as u64);
        let made = s.kernel_pipes - before.kernel_pipes;
        assert!(made <= 2, "[{}] {made} kernel pipes made for {} relays", h.name(), 2 * ROUNDS);
    }
}

/// A side relays up to `read_budget` a turn, in as many chunks as that
/// takes (a chunk is the kernel pipe's 64 KiB); past it, the side waits
/// for the next turn.
fn pipe_relays_up_to_the_read_budget_per_turn(kind: BackendKind) {
    const BUDGET: usize = 96 << 10;
    const CHUNK: usize = 64 << 10;
    for splice in SPLICE {
        let mut h = Harness::with_config(kind, Config { read_budget: BUDGET, splice, ..Config::default() });
        let (mut a_peer, a, b_peer, _) = piped_pair(&mut h);
        let data = pattern(3, 4 << 20);
        let mut at_b = Peer::spawn(move || {
            let mut s = b_peer;
            (read_n(&mut s, 4 << 20), s)
        });
        let to_b = {
            let data = data.clone();
            Peer::spawn(move || {
                a_peer.write_all(&data).unwrap();
                a_peer
            })
        };
        let (mut before, mut most) = (0, 0);
        h.until("4 MiB relayed", |r, events| {
            assert!(events.iter().all(|e| !matches!(e, Ev::Data { .. })), "a piped connection reported data: {events:?}");
            let now = r.relayed(a).unwrap();
            most = most.max(now - before);
            before = now;
            at_b.done()
        });
        let _open = to_b.join();
        assert!(at_b.join().0 == data, "[{}] bytes toward b differ", h.name());
        assert!(most <= BUDGET as u64, "[{}] {most} bytes relayed in one turn, budget {BUDGET}", h.name());
        assert!(most > CHUNK as u64, "[{}] at most {most} bytes a turn: one chunk, not the budget", h.name());
    }
}

/// A peer that reads nothing and takes little: its receive buffer fixed
/// (no autotuning, which may grow it to tens of MiB on loopback and take
/// a whole test's bytes with no hold at all).
fn hold_little(peer: &TcpStream) {
    SockRef::from(peer).set_recv_buffer_size(64 << 10).unwrap();
}

/// The relay held `a` back: what passed it toward a peer that reads
/// nothing is bounded by that path's kernel buffers, far below `sent`.
fn assert_held(h: &mut Harness, a: Token, sent: usize) {
    let relayed = h.r.relayed(a).unwrap();
    assert!(relayed < sent as u64 / 2, "[{}] {relayed} of {sent} bytes relayed toward a peer that reads nothing", h.name());
}

fn pipe_backpressure_bounds_the_queue(kind: BackendKind) {
    for splice in SPLICE {
        backpressure_bounds_the_queue(kind, splice);
    }
}

fn backpressure_bounds_the_queue(kind: BackendKind, splice: bool) {
    let config = Config { pipe_high_water: 64 << 10, splice, ..Config::default() };
    let mut h = Harness::with_config(kind, config);
    let (a_peer, a, b_peer, b) = piped_pair(&mut h);
    hold_little(&b_peer);
    let data = pattern(3, 16 << 20);
    let sending = Peer::spawn({
        let (mut s, data) = (a_peer.try_clone().unwrap(), data.clone());
        move || s.write_all(&data).unwrap()
    });
    // b's peer reads nothing: the relay must stop reading a, not queue 16 MiB.
    let mut most = 0;
    for _ in 0..50 {
        turn_without_data(&mut h, "a turn", || true);
        most = most.max(h.r.queued(b).unwrap());
    }
    assert_held(&mut h, a, data.len());
    assert!(most <= (64 << 10) + (64 << 10), "[{}] queued {most} bytes toward a peer that reads nothing", h.name());
    let mut receiving = Peer::spawn(move || read_n(&mut { b_peer }, 16 << 20));
    turn_without_data(&mut h, "16 MiB relayed once b reads", || receiving.done());
    sending.join();
    assert!(receiving.join() == data, "[{}] bytes differ", h.name());
    assert_spliced(&h, splice, h.r.stats().spliced, (data.len() / 2) as u64);
    drop(a_peer);
}

fn pipe_backpressure_holds_within_the_write_queue_cap(kind: BackendKind) {
    for splice in SPLICE {
        backpressure_holds_within_the_write_queue_cap(kind, splice);
    }
}

/// A write-queue cap below the pipe's high-water mark (and below one
/// relayed chunk): the relay must hold the reading side before the
/// partner's queue would pass the cap, never have its own write refused
/// (`ENOBUFS`, which would break both connections).
fn backpressure_holds_within_the_write_queue_cap(kind: BackendKind, splice: bool) {
    const CAP: usize = 16 << 10;
    let mut h = Harness::with_config(kind, Config { write_queue_cap: CAP, splice, ..Config::default() });
    let (a_peer, a, b_peer, b) = piped_pair(&mut h);
    hold_little(&b_peer);
    let data = pattern(4, 16 << 20);
    let sending = Peer::spawn({
        let (mut s, data) = (a_peer.try_clone().unwrap(), data.clone());
        move || s.write_all(&data).unwrap()
    });
    let closed = |events: &[Ev]| events.iter().find(|e| matches!(e, Ev::Close { .. })).map(|e| format!("{e:?}"));
    for _ in 0..50 {
        let events = h.turn(Duration::from_millis(10));
        assert_eq!(closed(&events), None, "[{} splice={splice}] b's peer reads nothing", h.name());
    }
    assert_held(&mut h, a, data.len());
    let mut receiving = Peer::spawn(move || read_n(&mut { b_peer }, 16 << 20));
    h.until(&format!("[{} splice={splice}] 16 MiB relayed once b reads", h.name()), |_, events| {
        assert_eq!(closed(&events), None, "[{} splice={splice}] while b reads", kind.name());
        receiving.done()
    });
    sending.join();
    assert!(receiving.join() == data, "[{} splice={splice}] bytes differ", h.name());
    assert_eq!(h.r.relayed(a).unwrap(), data.len() as u64);
    h.r.close(b).unwrap();
    drop(a_peer);
}

/// Two pairs take turns sending bursts. A burst's end gives its pair's
/// kernel pipe back (an idle pair holds no fds); the next burst, on either
/// pair, takes that pipe again instead of making one (a `pipe2` and two
/// `close`s per burst before), and each pair gets its own bytes only.
fn pipe_reuses_kernel_pipes_between_bursts(kind: BackendKind) {
    if !cfg!(target_os = "linux") {
        return;
    }
    const BURSTS: u64 = 20;
    let mut h = Harness::with_config(kind, Config { splice: true, ..Config::default() });
    let first = piped_pair(&mut h);
    // Its connect's event, before the next pair's accept.
    h.collect_for(Duration::from_millis(50));
    let pairs = [first, piped_pair(&mut h)];
    let before = h.r.stats();
    for i in 0..BURSTS {
        let (a_peer, _, b_peer, _) = &pairs[(i % 2) as usize];
        let data = pattern(i, 256 << 10);
        let mut writer = Peer::spawn({
            let (mut s, data) = (a_peer.try_clone().unwrap(), data.clone());
            move || s.write_all(&data).unwrap()
        });
        let mut reader = Peer::spawn({
            let mut s = b_peer.try_clone().unwrap();
            move || read_n(&mut s, 256 << 10)
        });
        turn_without_data(&mut h, "a burst relayed", || writer.done() && reader.done());
        writer.join();
        assert!(reader.join() == data, "[{}] burst {i}: bytes differ", h.name());
    }
    let s = h.r.stats();
    assert_spliced(&h, true, s.spliced - before.spliced, BURSTS * (128 << 10));
    let made = s.kernel_pipes - before.kernel_pipes;
    assert!(made <= 2, "[{}] {made} kernel pipes made for {BURSTS} bursts", h.name());
}

/// `pipe_with` overrides `Config::splice` for its pair: with the reactor's
/// default either way, a pair that asks for splicing splices its bulk input
/// (Linux) and one that does not copies all of it.
fn pipe_with_chooses_splicing_per_pair(kind: BackendKind) {
    for default in SPLICE {
        let mut h = Harness::with_config(kind, Config { splice: default, ..Config::default() });
        // The peers stay open until the end: a close would be reported while the next pair is made.
        let mut open = Vec::new();
        for splice in SPLICE {
            let (mut a_peer, _, mut b_peer, _) = piped_pair_with(&mut h, PipeOptions { splice });
            let data = pattern(u64::from(splice), 1 << 20);
            let before = h.r.stats().spliced;
            let mut writer = Peer::spawn({
                let data = data.clone();
                move || {
                    a_peer.write_all(&data).unwrap();
                    a_peer
                }
            });
            let mut reader = Peer::spawn(move || (read_n(&mut b_peer, 1 << 20), b_peer));
            turn_without_data(&mut h, "1 MiB relayed", || writer.done() && reader.done());
            let (got, b_peer) = reader.join();
            open.extend([writer.join(), b_peer]);
            assert!(got == data, "[{}] bytes differ (default {default}, splice {splice})", h.name());
            assert_spliced(&h, splice, h.r.stats().spliced - before, 512 << 10);
        }
    }
}

fn pipe_passes_half_close_and_reset(kind: BackendKind) {
    for splice in SPLICE {
        half_close_and_reset(kind, splice);
    }
}

fn half_close_and_reset(kind: BackendKind, splice: bool) {
    let mut h = Harness::with_config(kind, Config { splice, ..Config::default() });
    let (mut a_peer, a, mut b_peer, b) = piped_pair(&mut h);
    // a's peer half-closes: b's peer sees the bytes (bulk, then a tail),
    // then EOF; it can still answer.
    let words = [pattern(4, 1 << 20), b"last words".to_vec()].concat();
    let mut writer = Peer::spawn({
        let (mut s, words) = (a_peer.try_clone().unwrap(), words.clone());
        move || {
            s.write_all(&words).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
        }
    });
    let mut reading = Peer::spawn({
        let mut s = b_peer.try_clone().unwrap();
        move || {
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        }
    });
    let mut ended = false;
    h.until("a's end", |_, events| {
        ended |= events.iter().any(|e| matches!(e, Ev::End { conn, .. } if *conn == a));
        ended && writer.done() && reading.done()
    });
    writer.join();
    assert!(reading.join() == words, "[{}] bytes before the FIN differ", h.name());
    assert_spliced(&h, splice, h.r.stats().spliced, 1);
    send(&mut b_peer, b"reply");
    let mut reply = [0u8; 5];
    let mut reader = Peer::spawn(move || {
        a_peer.read_exact(&mut reply).unwrap();
        expect_eof(&mut a_peer);
        reply
    });
    drop(b_peer);
    let mut closes = Vec::new();
    h.until("the reply, then both closed in order", |_, events| {
        for e in events {
            match e {
                Ev::Close { conn, error, .. } => closes.push((conn, error.is_none())),
                Ev::End { conn, .. } => assert_eq!(conn, b),
                other => panic!("unexpected {other:?}"),
            }
        }
        reader.done() && closes.len() == 2
    });
    assert_eq!(&reader.join(), b"reply");
    assert!(closes.iter().all(|&(conn, orderly)| (conn == a || conn == b) && orderly), "{closes:?}");

    // A reset on one side resets the other, and both are reported.
    let (a_peer, a, mut b_peer, b) = piped_pair(&mut h);
    SockRef::from(&a_peer).set_linger(Some(Duration::ZERO)).unwrap();
    drop(a_peer);
    let mut errors = Vec::new();
    h.until("both closed with the reset", |_, events| {
        for e in events {
            if let Ev::Close { conn, error, .. } = e {
                assert!(conn == a || conn == b);
                errors.push(error.and_then(|e| e.raw_os_error()));
            }
        }
        errors.len() == 2
    });
    assert_eq!(errors, vec![Some(libc::ECONNRESET); 2]);
    let mut byte = [0u8; 1];
    match b_peer.read(&mut byte) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "[{}] {e}", h.name()),
        Ok(n) => panic!("[{}] b's peer read {n} bytes instead of a reset", h.name()),
    }
}

/// Bulk input (so the next read splices), then small segments that wait
/// in the socket together: the splice takes one pipe slot per segment and
/// stops short at the pipe's 16, which does not prove the socket drained
/// (as a short read would); the rest is read and relayed all the same.
fn pipe_splices_past_a_short_splice(kind: BackendKind) {
    const SMALL: usize = 200;
    let mut h = Harness::with_config(kind, Config { splice: true, ..Config::default() });
    let (a_peer, a, b_peer, _) = piped_pair(&mut h);
    a_peer.set_nodelay(true).unwrap();
    let bulk = pattern(5, 256 << 10);
    let small: Vec<Vec<u8>> = (0..SMALL).map(|i| pattern(i as u64, 16)).collect();
    let want = [bulk.clone(), small.concat()].concat();
    let mut reading = Peer::spawn({
        let (mut s, n) = (b_peer, want.len());
        move || (read_n(&mut s, n), s)
    });
    let mut s = a_peer.try_clone().unwrap();
    s.write_all(&bulk).unwrap();
    h.until("the bulk relayed", |r, _| r.relayed(a).unwrap() == bulk.len() as u64);
    // The last bulk read was carried to a turn that finds nothing: no turn
    // is owed to `a` once the segments come, only their edge.
    for _ in 0..2 {
        h.turn(Duration::from_millis(10));
    }
    // The reactor is not turning: the segments pile up in a's socket.
    for piece in &small {
        s.write_all(piece).unwrap();
    }
    turn_without_data(&mut h, "the small segments relayed", || reading.done());
    let (got, _b) = reading.join();
    assert_same(&got, &want, "bytes relayed");
    drop(a_peer);
}

/// TCP urgent data: a splice stops at the urgent mark as if the input had
/// ended (`EAGAIN`, or 0 once the FIN is in). The relay then reads by
/// copying, which steps over the mark: every in-band byte arrives, the FIN
/// only after them, and the socket is not woken in vain meanwhile.
fn pipe_relays_past_urgent_data(kind: BackendKind) {
    for splice in SPLICE {
        let mut h = Harness::with_config(kind, Config { splice, ..Config::default() });
        let (a_peer, _, b_peer, _) = piped_pair(&mut h);
        // Bulk that ends on a full read, so the next read is a splice that meets the mark.
        let (first, second) = (pattern(7, 1 << 20), pattern(8, (1 << 20) + 1000));
        let want = [first.clone(), second.clone()].concat();
        let mut reading = Peer::spawn({
            let mut s = b_peer;
            move || {
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap();
                got
            }
        });
        let writing = Peer::spawn({
            let mut s = a_peer.try_clone().unwrap();
            move || {
                s.write_all(&first).unwrap();
                SockRef::from(&s).send_out_of_band(b"!").unwrap();
                s.write_all(&second).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
            }
        });
        turn_without_data(&mut h, "every in-band byte and the FIN relayed", || reading.done());
        writing.join();
        assert_same(&reading.join(), &want, "in-band bytes relayed");
        drop(a_peer);
    }
}

/// Urgent data inside a message, the rest of which is already in the
/// socket, and then silence (no FIN, no more bytes): a read stops short at
/// the urgent mark, so that short read does not prove the socket drained.
/// With an edge-triggered poller no new edge comes for the bytes behind
/// the mark: unless the turn reads on, they stay there until the peer
/// sends again (which it won't: it waits for the reply).
fn pipe_relays_past_urgent_data_with_nothing_behind(kind: BackendKind) {
    for splice in SPLICE {
        let mut h = Harness::with_config(kind, Config { splice, ..Config::default() });
        let (mut a_peer, _, b_peer, b) = piped_pair(&mut h);
        // The join's own turn reads on regardless: past it, only the backend's word counts.
        h.until("b connected", |_, events| events.iter().any(|e| matches!(e, Ev::Connect { conn } if *conn == b)));
        // The reactor is not turning: the three sends wait in a's socket together.
        a_peer.write_all(b"request, with an urgent byte").unwrap();
        SockRef::from(&a_peer).send_out_of_band(b"!").unwrap();
        a_peer.write_all(b" inside").unwrap();
        let want = b"request, with an urgent byte inside";
        let mut server = Peer::spawn(move || {
            let mut s = b_peer;
            let got = read_n(&mut s, want.len());
            s.write_all(b"reply").unwrap();
            (got, s)
        });
        turn_without_data(&mut h, "the request relayed in full", || server.done());
        let (got, _b) = server.join();
        assert_same(&got, want, "in-band bytes around the urgent byte");
        let mut reply = [0u8; 5];
        let mut client = Peer::spawn(move || {
            a_peer.read_exact(&mut reply).unwrap();
            (reply, a_peer)
        });
        turn_without_data(&mut h, "the reply relayed", || client.done());
        assert_eq!(&client.join().0, b"reply", "[{}]", h.name());
    }
}

/// A FIN read while the partner's queue still holds relayed bytes: the
/// partner's FIN waits for them, and the owner, who wrote nothing, hears
/// no `Drain` when they are gone (its `Drain` is for its own writes).
fn pipe_passes_a_fin_without_a_drain_for_the_owner(kind: BackendKind) {
    for splice in SPLICE {
        // No hold: the FIN is read whatever b's queue holds by then.
        let config = Config { pipe_high_water: 64 << 20, splice, ..Config::default() };
        let mut h = Harness::with_config(kind, config);
        let (a_peer, a, b_peer, b) = piped_pair(&mut h);
        // More than b's socket buffers take while b's peer reads nothing.
        let data = pattern(11, 8 << 20);
        let mut writer = Peer::spawn({
            let (mut s, data) = (a_peer.try_clone().unwrap(), data.clone());
            move || {
                s.write_all(&data).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
            }
        });
        let mut events = Vec::new();
        // Copied, all of a is read (the FIN too) while b's queue holds
        // megabytes; spliced, a is held until b takes the pipe's bytes.
        h.until("a's end, or bytes held for b", |r, e| {
            events.extend(e);
            let ended = events.iter().any(|e| matches!(e, Ev::End { conn, .. } if *conn == a));
            if splice {
                r.queued(b).unwrap() > 0
            } else {
                ended && writer.done()
            }
        });
        assert!(h.r.queued(b).unwrap() > 0, "[{}] nothing queued toward b", h.name());
        let mut reading = Peer::spawn(move || {
            let mut s = b_peer;
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            (got, s)
        });
        h.until("b's peer reads all and the end", |_, e| {
            events.extend(e);
            reading.done()
        });
        let (got, b_peer) = reading.join();
        assert_same(&got, &data, "bytes before the FIN");
        writer.join();
        drop((a_peer, b_peer));
        h.until("both closed", |_, e| {
            events.extend(e);
            events.iter().filter(|e| matches!(e, Ev::Close { .. })).count() == 2
        });
        let drains: Vec<_> = events.iter().filter(|e| matches!(e, Ev::Drain { .. })).collect();
        assert!(drains.is_empty(), "[{}, splice {splice}] the owner wrote nothing, yet heard {drains:?}", h.name());
    }
}

/// Both peers end at once: the pipe passes each FIN on, and both sides
/// close in order, maybe in the turn that reports an `End`. An owner that
/// ends the partner of a side that ended (as a relay does, for an end read
/// before the join) ends a connection already done: no error, as
/// node:net's `end()` on a finished socket — not `EPIPE`, which the proxy
/// counted as a reset pair and the fast API reported as the close's error.
fn pipe_lets_the_owner_end_a_side_the_pipe_ended(kind: BackendKind) {
    let mut h = Harness::new(kind);
    for _ in 0..20 {
        let (a_peer, a, b_peer, b) = piped_pair(&mut h);
        h.until("b connected", |_, events| events.iter().any(|e| matches!(e, Ev::Connect { conn } if *conn == b)));
        a_peer.shutdown(Shutdown::Write).unwrap();
        b_peer.shutdown(Shutdown::Write).unwrap();
        // Both FINs wait in the kernel before the next turn reads them.
        std::thread::sleep(Duration::from_millis(5));
        let mut closed = Vec::new();
        h.until("both closed", |r, events| {
            for e in events {
                match e {
                    Ev::End { conn, .. } => {
                        let partner = if conn == a { b } else { a };
                        if let Err(e) = r.shutdown(partner) {
                            panic!("ending the partner of {conn:?}, which ended: {e}");
                        }
                    }
                    Ev::Close { conn, error, .. } => closed.push((conn, error.map(|e| e.to_string()))),
                    _ => {}
                }
            }
            closed.len() == 2
        });
        assert!(closed.iter().all(|(conn, error)| (*conn == a || *conn == b) && error.is_none()), "[{}] {closed:?}", h.name());
        drop((a_peer, b_peer));
    }
}

/// Two accepted connections; a's peer sends `words` and ends. Returns the
/// reactor's sides and b's peer, once a's bytes and end are reported.
fn ended_before_the_join(h: &mut Harness, words: &[u8]) -> (Token, Token, TcpStream) {
    let (_, addr) = h.listen("127.0.0.1:0");
    let (mut a_peer, b_peer) = (client(addr), client(addr));
    let c = h.accept(2);
    a_peer.write_all(words).unwrap();
    a_peer.shutdown(Shutdown::Write).unwrap();
    let mut said = Vec::new();
    h.until("a's bytes and end", |_, events| {
        for e in events {
            match e {
                Ev::Data { conn, data } if conn == c[0] => said.extend(data),
                Ev::End { conn, .. } if conn == c[0] => return true,
                other => panic!("unexpected event: {other:?}"),
            }
        }
        false
    });
    assert_eq!(said, words);
    (c[0], c[1], b_peer)
}

/// Turns until b's peer has read to its EOF; returns what it read.
fn read_to_eof(h: &mut Harness, b_peer: TcpStream) -> Vec<u8> {
    let mut reading = Peer::spawn(move || {
        let mut s = b_peer;
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        (got, s)
    });
    h.until("b's peer reads its end", |_, _| reading.done());
    reading.join().0
}

/// A side whose peer ended before the join (its `End` already reported,
/// so the owner did not end the partner itself, or still in the batch the
/// owner is handed): the pipe passes that end on, and the partner's peer
/// reads its EOF; without it the pair stayed half-open.
fn pipe_passes_on_an_end_read_before_the_join(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (a, b, b_peer) = ended_before_the_join(&mut h, b"last words");
    h.r.pipe(a, b).unwrap();
    let got = read_to_eof(&mut h, b_peer);
    assert!(got.is_empty(), "[{}] b's peer got {got:?}, not only its end", h.name());
}

/// The owner joins a pair while handling the batch that read a's bytes
/// and end, then writes those bytes to b (a proxy's way: what came before
/// the join is the owner's to pass on). The end follows them: passed on
/// at the join, it went first and the write failed with `EPIPE`.
fn pipe_passes_on_an_end_after_the_owners_writes(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (a, b, b_peer) = ended_before_the_join(&mut h, b"before the join");
    h.r.pipe(a, b).unwrap();
    h.r.write(b, b"before the join").unwrap();
    let got = read_to_eof(&mut h, b_peer);
    assert_eq!(got, b"before the join", "[{}] b's peer", h.name());
}

fn pipe_refuses_bad_pairs(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let (listener, addr) = h.listen("127.0.0.1:0");
    let _peers = (client(addr), client(addr), client(addr));
    let c = h.accept(3);
    let invalid = |e: std::io::Error| assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    invalid(h.r.pipe(c[0], c[0]).unwrap_err());
    invalid(h.r.pipe(c[0], listener).unwrap_err());
    h.r.pipe(c[0], c[1]).unwrap();
    invalid(h.r.pipe(c[1], c[2]).unwrap_err());
    // Closing one side unjoins the other: it reports its input again.
    h.r.close(c[0]).unwrap();
    h.r.pipe(c[1], c[2]).unwrap();
}
