//! Hostile peers on either side of a pipe (the proxy's relay), with bytes
//! held in the reactor for the other side (in the kernel pipe when spliced,
//! in the queue when copied): a FIN then a reset, a reset from the side
//! that is not reading, a reset from a side held back while its partner
//! reads nothing (also once the other direction has ended), a half-closed
//! client reading a long answer.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, Config, Token};
use socket2::SockRef;

backend_tests!(
    pipe_sender_fins_then_resets_with_bytes_held,
    pipe_receiver_resets_with_bytes_held,
    pipe_held_side_resets_while_its_partner_reads_nothing,
    pipe_held_side_resets_after_the_other_way_ended,
    pipe_held_unix_side_hangs_up,
    pipe_half_closed_client_reads_a_long_answer
);

const SPLICE: [bool; 2] = [true, false];

/// Whether our FIN was acknowledged: the socket is in FIN_WAIT_2, by
/// Linux's `TCP_INFO` (linux/tcp_states.h numbering).
#[cfg(target_os = "linux")]
fn fin_acknowledged(s: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain integers, for which all zeroes is a value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a live tcp_info of `len` bytes, which the kernel fills.
    let r =
        unsafe { libc::getsockopt(s.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, (&mut info as *mut libc::tcp_info).cast(), &mut len) };
    assert_eq!(r, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    info.tcpi_state == 5
}

/// As above by macOS's `TCP_CONNECTION_INFO` (BSD's tcp_fsm.h numbering).
#[cfg(target_vendor = "apple")]
fn fin_acknowledged(s: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_connection_info is plain integers, for which all zeroes is a value.
    let mut info: libc::tcp_connection_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_connection_info>() as libc::socklen_t;
    // SAFETY: `info` is a live tcp_connection_info of `len` bytes, which the kernel fills.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONNECTION_INFO,
            (&mut info as *mut libc::tcp_connection_info).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "TCP_CONNECTION_INFO: {}", std::io::Error::last_os_error());
    info.tcpi_state == 9
}

/// Sends from `a_peer` (non-blocking, turning the reactor between writes)
/// until the reactor holds bytes for `b` (`b_peer` reads nothing); returns
/// what was sent.
fn fill_until_held(h: &mut Harness, a_peer: &mut TcpStream, b: Token, seed: u64) -> Vec<u8> {
    a_peer.set_nonblocking(true).unwrap();
    let chunk = 64 << 10;
    let mut sent = Vec::new();
    h.until("bytes held for b", |r, events| {
        assert!(events.iter().all(|e| matches!(e, Ev::Connect { .. })), "unexpected {events:?}");
        if r.queued(b).unwrap() > 0 {
            return true;
        }
        // What a's peer takes now, then a turn relays it.
        loop {
            let next = pattern(seed.wrapping_add(sent.len() as u64), chunk);
            match a_peer.write(&next) {
                Ok(n) => sent.extend_from_slice(&next[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) => panic!("a's peer writing: {e}"),
            }
        }
    });
    a_peer.set_nonblocking(false).unwrap();
    sent
}

/// Turns until both sides are reported closed; returns their errnos.
fn both_closed(h: &mut Harness, a: Token, b: Token) -> (Option<i32>, Option<i32>) {
    let (mut at_a, mut at_b) = (None, None);
    h.until("both sides closed", |_, events| {
        for e in events {
            match e {
                Ev::Close { conn, error, .. } if conn == a => at_a = Some(error.map(|e| e.raw_os_error().unwrap_or(-1))),
                Ev::Close { conn, error, .. } if conn == b => at_b = Some(error.map(|e| e.raw_os_error().unwrap_or(-1))),
                Ev::End { .. } | Ev::Connect { .. } => {}
                Ev::Data { conn, data } => panic!("{} bytes of Data on {conn:?}: a piped connection reports none", data.len()),
                other => panic!("unexpected {other:?}"),
            }
        }
        at_a.is_some() && at_b.is_some()
    });
    (at_a.unwrap(), at_b.unwrap())
}

/// The client sends while its upstream reads nothing, so the reactor holds
/// bytes for the upstream; then it sends FIN, and once its FIN is in, a
/// reset. Every byte before the FIN reaches the upstream, in order, then
/// the end; the reset costs nothing already received. The upstream's
/// answer then finds the client gone: both sides close with the error.
fn pipe_sender_fins_then_resets_with_bytes_held(kind: BackendKind) {
    for splice in SPLICE {
        let mut h = Harness::with_config(kind, Config { splice, ..Config::default() });
        let (mut a_peer, a, b_peer, b) = piped_pair(&mut h);
        // Little unsent in a's peer: its FIN gets through while a is held.
        SockRef::from(&a_peer).set_send_buffer_size(16 << 10).unwrap();
        let sent = fill_until_held(&mut h, &mut a_peer, b, 21);
        a_peer.shutdown(Shutdown::Write).unwrap();
        // The relay may read the FIN meanwhile (when b's socket takes more).
        let mut ended = false;
        h.until("a's peer's FIN acknowledged", |_, events| {
            for e in events {
                match e {
                    Ev::End { conn, .. } if conn == a => ended = true,
                    other => panic!("unexpected {other:?}"),
                }
            }
            fin_acknowledged(&a_peer)
        });
        assert!(h.r.queued(b).unwrap() > 0, "[{}, splice {splice}] bytes still held for b", h.name());
        SockRef::from(&a_peer).set_linger(Some(Duration::ZERO)).unwrap();
        drop(a_peer);
        // Held, a is watched for its errors: this reset comes after its
        // FIN and breaks nothing, and a's hang-up (poll's `POLLHUP` at every
        // wait) is watched no more.
        h.assert_sleeps(Duration::from_millis(300), Duration::from_millis(50), 10, "a held after its FIN and reset");
        let mut reading = Peer::spawn(move || {
            let mut s = b_peer;
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap_or_else(|e| panic!("b's peer reading to the end: {e}"));
            (got, s)
        });
        h.until("b's peer reads everything and the end", |_, events| {
            for e in events {
                match e {
                    Ev::End { conn, .. } if conn == a => ended = true,
                    other => panic!("unexpected {other:?}"),
                }
            }
            reading.done()
        });
        let (got, mut b_peer) = reading.join();
        assert_same(&got, &sent, &format!("[{}, splice {splice}] bytes before the FIN", h.name()));
        assert!(ended, "[{}, splice {splice}] the owner heard a's end", h.name());
        b_peer.write_all(b"reply").unwrap();
        let (at_a, at_b) = both_closed(&mut h, a, b);
        assert!(at_a.is_some() && at_a == at_b, "[{}, splice {splice}] closed with {at_a:?} and {at_b:?}", h.name());
        assert_eq!(h.r.len(), 1, "[{}] only the listener is left", h.name());
    }
}

/// The upstream reads nothing and then resets while the reactor holds
/// bytes for it, and the client keeps sending: the client is reset (its
/// writes fail, the process goes on), both sides are reported closed with
/// `ECONNRESET`, and nothing is left.
fn pipe_receiver_resets_with_bytes_held(kind: BackendKind) {
    for splice in SPLICE {
        let mut h = Harness::with_config(kind, Config { splice, ..Config::default() });
        let (a_peer, a, b_peer, b) = piped_pair(&mut h);
        let mut sending = Peer::spawn({
            let mut s = a_peer.try_clone().unwrap();
            move || {
                let chunk = pattern(22, 64 << 10);
                loop {
                    if let Err(e) = s.write(&chunk) {
                        return e.kind();
                    }
                }
            }
        });
        h.until("bytes held for b", |r, _| r.queued(b).unwrap() > 0);
        SockRef::from(&b_peer).set_linger(Some(Duration::ZERO)).unwrap();
        drop(b_peer);
        let closed = both_closed(&mut h, a, b);
        assert_eq!(closed, (Some(libc::ECONNRESET), Some(libc::ECONNRESET)), "[{}, splice {splice}]", h.name());
        h.until("the client's writes fail", |_, _| sending.done());
        let failed = sending.join();
        assert!(matches!(failed, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe), "[{}, splice {splice}] {failed:?}", h.name());
        assert_eq!(h.r.len(), 1, "[{}] only the listener is left", h.name());
        drop(a_peer);
    }
}

/// The client sends until the relay holds it (the upstream reads nothing,
/// so its queue passes the high-water mark), then resets. A held side is
/// watched for errors only: the pair breaks at once, both sides reported
/// with `ECONNRESET`, the upstream reset, nothing left — though the
/// upstream never read (else a proxy keeps two fds and the queue per such
/// client until its upstream reads). select has no errors-only set: there
/// the reset is found once the upstream reads and the hold ends.
fn pipe_held_side_resets_while_its_partner_reads_nothing(kind: BackendKind) {
    for splice in SPLICE {
        let mut h = Harness::with_config(kind, Config { pipe_high_water: 64 << 10, splice, ..Config::default() });
        let (mut a_peer, a, b_peer, b) = piped_pair(&mut h);
        SockRef::from(&b_peer).set_recv_buffer_size(64 << 10).unwrap();
        a_peer.set_nonblocking(true).unwrap();
        hold(&mut h, &mut a_peer, a, b, 24, 64 << 10);
        SockRef::from(&a_peer).set_linger(Some(Duration::ZERO)).unwrap();
        drop(a_peer);
        let what = format!("[{}, splice {splice}]", h.name());
        reset_breaks_the_pair(&mut h, a, b, b_peer, &what);
    }
}

/// The client sends its request and half-closes; the upstream answers at
/// length while the client reads nothing, so the upstream's side is held;
/// then the upstream resets. The FIN the held side passed on (the other
/// direction ended) does not stop it being watched: the pair breaks at
/// once, as above.
fn pipe_held_side_resets_after_the_other_way_ended(kind: BackendKind) {
    for splice in SPLICE {
        let mut h = Harness::with_config(kind, Config { pipe_high_water: 64 << 10, splice, ..Config::default() });
        let (a_peer, a, mut b_peer, b) = piped_pair(&mut h);
        SockRef::from(&a_peer).set_recv_buffer_size(64 << 10).unwrap();
        a_peer.shutdown(Shutdown::Write).unwrap();
        h.until("a's end passed on", |_, events| events.iter().any(|e| matches!(e, Ev::End { conn, .. } if *conn == a)));
        b_peer.set_nonblocking(true).unwrap();
        hold(&mut h, &mut b_peer, b, a, 26, 64 << 10);
        SockRef::from(&b_peer).set_linger(Some(Duration::ZERO)).unwrap();
        drop(b_peer);
        let what = format!("[{}, splice {splice}]", h.name());
        reset_breaks_the_pair(&mut h, b, a, a_peer, &what);
    }
}

/// Sends from `peer` (non-blocking, turning the reactor between writes)
/// until the relay holds `from`: nothing more relayed while `peer` is
/// blocked and bytes wait for `to`, whose peer reads nothing. Returns what
/// was sent.
fn hold(h: &mut Harness, peer: &mut impl Write, from: Token, to: Token, seed: u64, chunk: usize) -> Vec<u8> {
    let mut sent = Vec::new();
    let mut last = u64::MAX;
    h.until("held: nothing more relayed while the sender is blocked", |r, events| {
        assert!(events.iter().all(|e| matches!(e, Ev::Connect { .. })), "unexpected {events:?}");
        loop {
            let next = pattern(seed.wrapping_add(sent.len() as u64), chunk);
            match peer.write(&next) {
                Ok(n) => sent.extend_from_slice(&next[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("the sender writing: {e}"),
            }
        }
        let relayed = r.relayed(from).unwrap();
        let still = relayed == last && r.queued(to).unwrap() > 0;
        last = relayed;
        still
    });
    // `from` is read no more.
    let relayed = h.r.relayed(from).unwrap();
    let quiet = h.collect_for(Duration::from_millis(200));
    assert!(quiet.is_empty(), "[{}] unexpected {quiet:?}", h.name());
    assert_eq!(h.r.relayed(from).unwrap(), relayed, "[{}] read while held", h.name());
    sent
}

/// `held`'s peer has just reset; `partner_peer` reads nothing. A held side
/// is watched for its errors: both sides close with `ECONNRESET` at once,
/// and the partner's peer is reset too. select has no errors-only set:
/// there the reset is found once the partner's peer reads and the hold ends.
fn reset_breaks_the_pair(h: &mut Harness, held: Token, partner: Token, partner_peer: TcpStream, what: &str) {
    if h.name() == "select" {
        let still = h.collect_for(Duration::from_millis(300));
        assert!(still.is_empty(), "{what} {still:?}: select cannot watch a held side's errors");
        let reading = Peer::spawn(move || {
            set_timeouts(&partner_peer);
            let mut s = partner_peer;
            let mut sink = vec![0u8; 64 << 10];
            while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
        });
        let closed = both_closed(h, held, partner);
        assert_eq!(closed, (Some(libc::ECONNRESET), Some(libc::ECONNRESET)), "{what}");
        reading.join();
    } else {
        let closed = both_closed(h, held, partner);
        assert_eq!(closed, (Some(libc::ECONNRESET), Some(libc::ECONNRESET)), "{what}");
        // The partner's peer is reset too: its reads end in an error, not an end.
        let mut s = partner_peer;
        set_timeouts(&s);
        let mut sink = vec![0u8; 64 << 10];
        let end = loop {
            match s.read(&mut sink) {
                Ok(0) => break None,
                Ok(_) => {}
                Err(e) => break Some(e.kind()),
            }
        };
        assert_eq!(end, Some(ErrorKind::ConnectionReset), "{what} the partner's peer's reads");
    }
    assert_eq!(h.r.len(), 1, "{what} only the listener is left");
}

/// A Unix-domain side held while its partner reads nothing, whose peer
/// then closes (in order, having read everything): poll reports `POLLHUP`
/// on it at every wait from then on, with no error to take. It breaks
/// nothing and costs no turns (it is watched no more); once the partner
/// reads, every byte arrives, then the end.
fn pipe_held_unix_side_hangs_up(kind: BackendKind) {
    use std::os::unix::net::UnixStream;
    let mut h = Harness::with_config(kind, Config { pipe_high_water: 64 << 10, ..Config::default() });
    let path = std::env::temp_dir().join(format!("muxnet-{}-held-{}.sock", std::process::id(), kind.name()));
    let _ = std::fs::remove_file(&path);
    h.r.listen_unix(path.to_str().unwrap(), 4).unwrap();
    let mut a_peer = UnixStream::connect(&path).unwrap();
    let a = h.accept(1)[0];
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = h.r.connect(upstream.local_addr().unwrap(), None).unwrap();
    h.r.pipe(a, b).unwrap();
    let (b_peer, _) = upstream.accept().unwrap();
    SockRef::from(&b_peer).set_recv_buffer_size(64 << 10).unwrap();
    a_peer.set_nonblocking(true).unwrap();
    let sent = hold(&mut h, &mut a_peer, a, b, 25, 16 << 10);
    drop(a_peer);
    h.assert_sleeps(Duration::from_millis(300), Duration::from_millis(50), 10, "a held after its peer hung up");
    let mut reading = Peer::spawn(move || {
        let mut s = b_peer;
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let mut ended = false;
    h.until("b's peer reads everything and the end", |_, events| {
        for e in events {
            match e {
                Ev::End { conn, .. } if conn == a => ended = true,
                // b's peer, done reading, goes: b ends, the pair closes in order.
                Ev::End { conn, .. } if conn == b => {}
                Ev::Close { conn, error: None, .. } if conn == a || conn == b => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        reading.done()
    });
    assert!(ended, "[{}] the owner heard a's end", h.name());
    assert_same(&reading.join(), &sent, &format!("[{}] bytes before the hang-up", h.name()));
    let _ = std::fs::remove_file(&path);
}

/// A client sends its request and half-closes, then reads a long answer
/// slowly: the answer is held back by its pace (not queued whole), arrives
/// intact and in order, then its end; both sides close in order.
fn pipe_half_closed_client_reads_a_long_answer(kind: BackendKind) {
    for splice in SPLICE {
        let config = Config { pipe_high_water: 64 << 10, splice, ..Config::default() };
        let mut h = Harness::with_config(kind, config);
        let (mut a_peer, a, b_peer, b) = piped_pair(&mut h);
        let answer = pattern(23, 16 << 20);
        a_peer.write_all(b"request").unwrap();
        a_peer.shutdown(Shutdown::Write).unwrap();
        let mut server = Peer::spawn({
            let answer = answer.clone();
            move || {
                let mut s = b_peer;
                let mut request = Vec::new();
                s.read_to_end(&mut request).unwrap();
                s.write_all(&answer).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                (request, s)
            }
        });
        let mut client = Peer::spawn(move || {
            let mut got = Vec::new();
            let mut piece = [0u8; 4096];
            loop {
                match a_peer.read(&mut piece).unwrap() {
                    0 => return (got, a_peer),
                    n => got.extend_from_slice(&piece[..n]),
                }
            }
        });
        let mut most = 0;
        let mut closed = Vec::new();
        h.until_within(Duration::from_secs(20), "the answer read to its end", |r, events| {
            most = most.max(r.queued(a).unwrap_or(0));
            for e in events {
                match e {
                    Ev::Close { conn, error, .. } => closed.push((conn, error.is_none())),
                    Ev::End { .. } | Ev::Connect { .. } => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            client.done() && server.done()
        });
        let (request, _b_peer) = server.join();
        let (got, a_peer) = client.join();
        assert_eq!(request, b"request");
        assert_same(&got, &answer, &format!("[{}, splice {splice}] the answer", h.name()));
        assert!(most <= 2 * (64 << 10), "[{}, splice {splice}] {most} bytes queued toward a slow reader", h.name());
        drop(a_peer);
        h.until("both closed", |_, events| {
            for e in events {
                if let Ev::Close { conn, error, .. } = e {
                    closed.push((conn, error.is_none()));
                }
            }
            closed.len() == 2
        });
        closed.sort_by_key(|&(conn, _)| conn == b);
        assert_eq!(closed, vec![(a, true), (b, true)], "[{}, splice {splice}] orderly closes", h.name());
    }
}
