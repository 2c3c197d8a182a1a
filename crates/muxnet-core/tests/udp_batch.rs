//! Batched UDP (`recvmmsg`/`sendmmsg` on Linux): bursts larger than one
//! batch arrive whole, with their boundaries and senders, in each sender's
//! order; datagrams a turn had no room for come first in the next; sends
//! queued together leave in order, each with its own result.

mod common;

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;
use muxnet_core::{BackendKind, BindOptions, SocketBuffer, Token};

backend_tests!(
    burst_from_several_senders,
    no_room_left_waits_for_next_turn,
    held_datagrams_of_a_closed_socket_are_dropped,
    held_datagrams_of_a_paused_socket_wait_for_its_resume,
    queued_sends_leave_in_order,
    queued_send_errors_stay_with_their_send,
    a_short_batch_skips_the_empty_receive,
    a_flood_gives_one_batch_a_turn
);

/// Receives until `want` datagrams have come, by sender, in arrival order.
fn receive(h: &mut Harness, want: usize, what: &str) -> HashMap<SocketAddr, Vec<(Token, Vec<u8>)>> {
    let mut got: HashMap<SocketAddr, Vec<(Token, Vec<u8>)>> = HashMap::new();
    let mut n = 0;
    h.until(what, |_, events| {
        for e in events {
            match e {
                Ev::Message { socket, data, from } => {
                    got.entry(from).or_default().push((socket, data));
                    n += 1;
                }
                other => panic!("{what}: unexpected {other:?}"),
            }
        }
        n >= want
    });
    got
}

// Three senders queue 40 datagrams each (sizes 0 to 117, empty ones
// included) before the reactor turns: 120, more than one batch of 64.
// Every datagram arrives once, whole, from its sender, in its order; on
// Linux fewer receive syscalls than datagrams are counted.
fn burst_from_several_senders(kind: BackendKind) {
    const PER_SENDER: usize = 40;
    let mut h = Harness::new(kind);
    let sock = h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let saddr = h.r.local_addr(sock).unwrap();
    let senders: Vec<UdpSocket> = (0..3).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    let datagram = |s: usize, i: usize| pattern((s * 1000 + i) as u64, (s * 7 + i * 3) % 118);
    for i in 0..PER_SENDER {
        for (s, sender) in senders.iter().enumerate() {
            sender.send_to(&datagram(s, i), saddr).unwrap();
        }
    }
    let before = h.r.stats();
    let got = receive(&mut h, senders.len() * PER_SENDER, &format!("[{}] a burst of 120 datagrams", kind.name()));
    for (s, sender) in senders.iter().enumerate() {
        let from = sender.local_addr().unwrap();
        let mine = got.get(&from).unwrap_or_else(|| panic!("[{}] nothing from sender {s}", h.name()));
        assert_eq!(mine.len(), PER_SENDER, "[{}] datagrams from sender {s}", h.name());
        for (i, (socket, data)) in mine.iter().enumerate() {
            assert_eq!(*socket, sock);
            assert_same(data, &datagram(s, i), &format!("[{}] datagram {i} of sender {s}", h.name()));
        }
    }
    assert_eq!(got.len(), senders.len(), "[{}] senders seen", h.name());
    let after = h.r.stats();
    let datagrams = after.datagrams_received - before.datagrams_received;
    let calls = after.receives.calls - before.receives.calls;
    assert_eq!(datagrams, (senders.len() * PER_SENDER) as u64);
    let bytes: usize = (0..senders.len()).flat_map(|s| (0..PER_SENDER).map(move |i| datagram(s, i).len())).sum();
    assert_eq!(after.receives.bytes - before.receives.bytes, bytes as u64);
    if cfg!(target_os = "linux") {
        assert!(calls < datagrams, "[{}] {calls} receive calls for {datagrams} datagrams", h.name());
    } else {
        assert_eq!(calls, datagrams);
    }
    h.r.close(sock).unwrap();
}

// A turn with room for two of three 30 000-byte datagrams delivers two;
// the third, already received, comes first in the next turn, whole and
// in order, even when another socket is served before its own (it is
// lower in the table) and receives into the same batch buffer.
fn no_room_left_waits_for_next_turn(kind: BackendKind) {
    const SIZE: usize = 30_000;
    // Room for one receive (64 KiB) and two of these datagrams, not three.
    let mut h = Harness::with_slab(kind, 65_536 + 1_500);
    let first = h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let second = h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let (first_addr, second_addr) = (h.r.local_addr(first).unwrap(), h.r.local_addr(second).unwrap());
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..3 {
        peer.send_to(&pattern(i, SIZE), second_addr).unwrap();
    }
    let mut got: Vec<(Token, Vec<u8>)> = Vec::new();
    let mut sent_to_first = false;
    h.until(&format!("[{}] three large datagrams", kind.name()), |_, events| {
        for e in events {
            match e {
                Ev::Message { socket, data, .. } => got.push((socket, data)),
                other => panic!("unexpected {other:?}"),
            }
        }
        // Once two have come, the first socket gets three datagrams: the
        // next turn serves it before the second, and a receive of three
        // would overwrite the held datagram's slot.
        if got.len() >= 2 && !sent_to_first {
            for i in 0..3 {
                peer.send_to(&pattern(10 + i, 5), first_addr).unwrap();
            }
            sent_to_first = true;
        }
        got.len() >= 6
    });
    let seconds: Vec<&Vec<u8>> = got.iter().filter(|(s, _)| *s == second).map(|(_, d)| d).collect();
    assert_eq!(seconds.len(), 3, "[{}] datagrams on the second socket", kind.name());
    for (i, data) in seconds.iter().enumerate() {
        assert_same(data, &pattern(i as u64, SIZE), &format!("[{}] datagram {i}", kind.name()));
    }
    let firsts: Vec<&Vec<u8>> = got.iter().filter(|(s, _)| *s == first).map(|(_, d)| d).collect();
    assert_eq!(firsts.len(), 3, "[{}] datagrams on the first socket", kind.name());
    for (i, data) in firsts.iter().enumerate() {
        assert_same(data, &pattern(10 + i as u64, 5), &format!("[{}] datagram {i} on the first socket", kind.name()));
    }
}

// A socket closed while a datagram it received waits for room (see above)
// reports nothing more; a socket bound after it, which may take its slot,
// hears only its own datagram.
fn held_datagrams_of_a_closed_socket_are_dropped(kind: BackendKind) {
    const SIZE: usize = 30_000;
    let mut h = Harness::with_slab(kind, 65_536 + 1_500);
    let closing = h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let addr = h.r.local_addr(closing).unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..3 {
        peer.send_to(&pattern(i, SIZE), addr).unwrap();
    }
    let mut before_close = 0;
    h.until(&format!("[{}] two large datagrams", kind.name()), |_, events| {
        before_close += events.iter().filter(|e| matches!(e, Ev::Message { socket, .. } if *socket == closing)).count();
        before_close >= 2
    });
    h.r.close(closing).unwrap();
    let next = h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    peer.send_to(b"next", h.r.local_addr(next).unwrap()).unwrap();
    let mut got = Vec::new();
    h.until(&format!("[{}] the new socket's datagram", kind.name()), |_, events| {
        got.extend(events);
        got.iter().any(|e| matches!(e, Ev::Message { socket, .. } if *socket == next))
    });
    match &got[..] {
        [Ev::Message { socket, data, .. }] => assert_eq!((*socket, &data[..]), (next, &b"next"[..]), "[{}]", kind.name()),
        other => panic!("[{}] want only the new socket's datagram, got {other:?}", kind.name()),
    }
}

// A socket paused while a datagram it received waits for room (see above)
// reports nothing, even when another socket's receive runs meanwhile (and
// reuses the batch buffer that held it); on resume the datagram comes,
// whole, before the ones that arrived during the pause.
fn held_datagrams_of_a_paused_socket_wait_for_its_resume(kind: BackendKind) {
    const SIZE: usize = 30_000;
    let mut h = Harness::with_slab(kind, 65_536 + 1_500);
    let paused = h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let other = h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let (paused_addr, other_addr) = (h.r.local_addr(paused).unwrap(), h.r.local_addr(other).unwrap());
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..3 {
        peer.send_to(&pattern(i, SIZE), paused_addr).unwrap();
    }
    let mut got: Vec<(Token, Vec<u8>)> = Vec::new();
    h.until(&format!("[{}] two large datagrams", kind.name()), |_, events| {
        got.extend(events.into_iter().map(|e| match e {
            Ev::Message { socket, data, .. } => (socket, data),
            other => panic!("unexpected {other:?}"),
        }));
        got.len() >= 2
    });
    h.r.pause(paused).unwrap();
    peer.send_to(&pattern(3, SIZE), paused_addr).unwrap();
    peer.send_to(b"other", other_addr).unwrap();
    h.until(&format!("[{}] the other socket's datagram", kind.name()), |_, events| {
        for e in events {
            match e {
                Ev::Message { socket, data, .. } if socket == other => got.push((socket, data)),
                Ev::Message { socket, data, .. } => panic!("[{}] while paused, {} bytes for {socket:?}", kind.name(), data.len()),
                e => panic!("[{}] while paused: {e:?}", kind.name()),
            }
        }
        got.len() >= 3
    });
    let quiet = h.collect_for(Duration::from_millis(100));
    assert!(quiet.is_empty(), "[{}] paused, yet: {quiet:?}", kind.name());
    h.r.resume(paused).unwrap();
    h.until(&format!("[{}] the paused socket's datagrams", kind.name()), |_, events| {
        got.extend(events.into_iter().map(|e| match e {
            Ev::Message { socket, data, .. } => (socket, data),
            other => panic!("unexpected {other:?}"),
        }));
        got.len() >= 5
    });
    let of_paused: Vec<&Vec<u8>> = got.iter().filter(|(s, _)| *s == paused).map(|(_, d)| d).collect();
    assert_eq!(of_paused.len(), 4, "[{}] datagrams on the paused socket", kind.name());
    for (i, data) in of_paused.iter().enumerate() {
        assert_same(data, &pattern(i as u64, SIZE), &format!("[{}] datagram {i}", kind.name()));
    }
}

/// A blocking peer that reads `n` datagrams, each with its sender.
fn read_datagrams(peer: &UdpSocket, n: usize) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 65536];
    (0..n)
        .map(|i| {
            let (len, from) = peer.recv_from(&mut buf).unwrap_or_else(|e| panic!("datagram {i} of {n}: {e}"));
            (buf[..len].to_vec(), from)
        })
        .collect()
}

// 150 datagrams queued on two sockets to two peers, interleaved (runs of
// five on a socket), leave at one flush: each result is its own length, and
// each peer gets its datagrams from the right socket, whole, in the order
// queued — the two sockets' too, as node:dgram's sends leave at their calls
// (sorted by socket, a tracker heard three clients' datagrams out of
// order). On Linux, fewer send syscalls than datagrams.
fn queued_sends_leave_in_order(kind: BackendKind) {
    const N: usize = 150;
    let mut h = Harness::new(kind);
    let socks = [0, 1].map(|_| h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap());
    let peers = [0, 1].map(|_| UdpSocket::bind("127.0.0.1:0").unwrap());
    for p in &peers {
        p.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    }
    let to = [0, 1].map(|i| peers[i].local_addr().unwrap());
    let datagram = |i: usize| pattern(i as u64, (i * 13) % 200);
    let before = h.r.stats();
    for i in 0..N {
        // Socket (i / 5) % 2 to peer (i / 2) % 2: each socket sends to both peers.
        let place = h.r.send_later(socks[(i / 5) % 2], &datagram(i), Some(to[(i / 2) % 2])).unwrap();
        assert_eq!(place, i);
    }
    assert_eq!(h.r.queued_sends(), N);
    let mut results = Vec::new();
    h.r.flush_sends(&mut results);
    assert_eq!(h.r.queued_sends(), 0);
    assert_eq!(results.len(), N);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(*r.as_ref().unwrap_or_else(|e| panic!("[{}] send {i}: {e}", kind.name())), datagram(i).len());
    }
    for (p, peer) in peers.iter().enumerate() {
        let want: Vec<usize> = (0..N).filter(|i| (i / 2) % 2 == p).collect();
        let got = read_datagrams(peer, want.len());
        assert_eq!(got.len(), want.len(), "[{}] peer {p}", kind.name());
        for (k, ((g, from), &i)) in got.iter().zip(&want).enumerate() {
            assert_eq!(*from, h.r.local_addr(socks[(i / 5) % 2]).unwrap(), "[{}] peer {p}, datagram {k}: its socket", kind.name());
            assert_same(g, &datagram(i), &format!("[{}] peer {p}, datagram {k}", kind.name()));
        }
    }
    let after = h.r.stats();
    assert_eq!(after.datagrams_sent - before.datagrams_sent, N as u64);
    let bytes: usize = (0..N).map(|i| datagram(i).len()).sum();
    assert_eq!(after.sends.bytes - before.sends.bytes, bytes as u64);
    let calls = after.sends.calls - before.sends.calls;
    if cfg!(target_os = "linux") {
        assert!(calls < N as u64, "[{}] {calls} send calls for {N} datagrams", kind.name());
    } else {
        assert_eq!(calls, N as u64);
    }
}

// In one flush: a datagram to an IPv6 address from an IPv4 socket fails
// alone (the sends before and after it on the same socket go out), and
// those queued on a socket closed before the flush fail as a closed
// socket's calls do; each error is in its own send's result.
fn queued_send_errors_stay_with_their_send(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let sock = h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let doomed = h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let to = peer.local_addr().unwrap();
    let v6: SocketAddr = "[::1]:9".parse().unwrap();
    let plan: [(Token, &[u8], SocketAddr); 5] =
        [(sock, b"one", to), (doomed, b"lost", to), (sock, b"bad", v6), (sock, b"two", to), (doomed, b"lost too", to)];
    for (i, (s, data, dest)) in plan.iter().enumerate() {
        assert_eq!(h.r.send_later(*s, data, Some(*dest)).unwrap(), i);
    }
    h.r.close(doomed).unwrap();
    let mut results = Vec::new();
    h.r.flush_sends(&mut results);
    assert_eq!(*results[0].as_ref().unwrap(), 3);
    assert_eq!(*results[3].as_ref().unwrap(), 3);
    let bad = results[2].as_ref().unwrap_err();
    assert!(bad.raw_os_error().is_some(), "[{}] the kernel's error for the IPv6 destination: {bad}", kind.name());
    for i in [1, 4] {
        assert_eq!(results[i].as_ref().unwrap_err().kind(), io::ErrorKind::NotFound, "[{}] send {i} on the closed socket", kind.name());
    }
    let got: Vec<Vec<u8>> = read_datagrams(&peer, 2).into_iter().map(|(d, _)| d).collect();
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
    // A token that names no UDP socket fails at once.
    assert_eq!(h.r.send_later(doomed, b"x", Some(to)).unwrap_err().kind(), io::ErrorKind::NotFound);
}

// Ten datagrams waiting, fewer than a batch: on Linux one `recvmmsg` takes
// them and, the socket being drained, no second call goes to meet
// `WouldBlock` (counted in `empty_reads`). A connected socket still makes
// that call: a batch stops short at a pending ICMP error as well, and only
// the next call reports it.
fn a_short_batch_skips_the_empty_receive(kind: BackendKind) {
    let mut h = Harness::new(kind);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for connect in [false, true] {
        let sock = h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
        if connect {
            h.r.udp_connect(sock, sender.local_addr().unwrap()).unwrap();
        }
        let to = h.r.local_addr(sock).unwrap();
        for i in 0..10 {
            sender.send_to(&pattern(i, 32), to).unwrap();
        }
        let before = h.r.stats();
        let got = receive(&mut h, 10, &format!("[{}] ten datagrams (connected: {connect})", kind.name()));
        assert_eq!(got.values().map(Vec::len).sum::<usize>(), 10);
        let after = h.r.stats();
        let empty = after.empty_reads - before.empty_reads;
        if cfg!(target_os = "linux") && !connect {
            assert_eq!(empty, 0, "[{}] empty receives after a short batch", h.name());
            assert_eq!(after.receives.calls - before.receives.calls, 1, "[{}] receive calls", h.name());
        } else {
            assert!(empty >= 1, "[{}] no empty receive proved the socket drained (connected: {connect})", h.name());
        }
        h.r.close(sock).unwrap();
    }
}

// Found 2026-12-06 (a hunt): 256 datagrams of one socket a turn, and a
// handler costing 1 ms each held Node's loop for 256 ms (timers 397-532 ms
// late; node:dgram reads 32 a wake, 46-230 ms). A flood of 300 queued
// datagrams comes in turns of at most the budget (64, one batch), all of it.
fn a_flood_gives_one_batch_a_turn(kind: BackendKind) {
    const FLOOD: usize = 300;
    // One recvmmsg batch (libuv: 32 a wake).
    let budget = 64;
    let mut h = Harness::new(kind);
    let sock = h.r.udp_bind(&BindOptions::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let saddr = h.r.local_addr(sock).unwrap();
    // Room for the whole flood in the kernel (the default buffer drops some of it).
    h.r.set_buffer_size(sock, SocketBuffer::Receive, 4 << 20).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..FLOOD {
        sender.send_to(&pattern(i as u64, 32), saddr).unwrap();
    }
    let mut got = 0;
    h.until("the whole flood", |_, events| {
        let n = events.iter().filter(|e| matches!(e, Ev::Message { .. })).count();
        assert!(n <= budget, "{n} datagrams in one turn, over the budget of {budget}");
        got += n;
        got >= FLOOD
    });
    assert_eq!(got, FLOOD);
}
