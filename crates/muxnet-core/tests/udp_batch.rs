//! Batched UDP receives (`recvmmsg` on Linux): bursts larger than one batch
//! arrive whole, with their boundaries and senders, in each sender's order;
//! datagrams a turn had no room for come first in the next.

mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};

use common::*;
use muxnet_core::{BackendKind, BindOptions, Token};

backend_tests!(burst_from_several_senders, no_room_left_waits_for_next_turn);

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
