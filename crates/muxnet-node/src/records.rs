//! The event-record format, defined once: what one reactor turn hands to
//! JavaScript in an `Int32Array`. Every record is [`RECORD_WORDS`] i32s:
//! `[kind, token index, token generation, a, b, c, d]`. The kinds and the
//! field positions are exported to JS; `src/reactor.ts` decodes with them.

use std::io;
use std::net::SocketAddr;

use muxnet_core::{Event, Token};
use napi_derive::napi;

use crate::address::ip_text;
use crate::errno::errno_of;

// Each constant is exported to JavaScript under its own name.

/// token: the new connection; a, b: the listener's index and generation.
#[napi]
pub const EVENT_ACCEPT: i32 = 1;
/// token: the listener; a: errno.
#[napi]
pub const EVENT_ACCEPT_ERROR: i32 = 2;
#[napi]
pub const EVENT_CONNECT: i32 = 3;
/// a: offset in the slab, b: length.
#[napi]
pub const EVENT_DATA: i32 = 4;
#[napi]
pub const EVENT_END: i32 = 5;
#[napi]
pub const EVENT_DRAIN: i32 = 6;
/// a: errno, 0 for an orderly close; b: 1 if sending queued bytes met it
/// (node:net's `write` errors), 0 if reading or connecting did.
#[napi]
pub const EVENT_CLOSE: i32 = 7;
/// a: offset, b: length, c: port, d: index into the turn's peers array.
#[napi]
pub const EVENT_MESSAGE: i32 = 8;
/// No token; a: errno.
#[napi]
pub const EVENT_REACTOR_ERROR: i32 = 9;
/// A UDP socket's receive failed (an ICMP error on a connected socket);
/// it stays open. a: errno.
#[napi]
pub const EVENT_RECEIVE_ERROR: i32 = 10;

/// The oldest file queued by `sendFile` is sent; a, b: the bytes sent,
/// low and high 32 bits.
#[napi]
pub const EVENT_FILE_SENT: i32 = 11;

/// Words per record, and where each field is.
#[napi]
pub const RECORD_WORDS: u32 = 7;
#[napi]
pub const RECORD_KIND: u32 = 0;
#[napi]
pub const RECORD_TOKEN_INDEX: u32 = 1;
#[napi]
pub const RECORD_TOKEN_GENERATION: u32 = 2;
#[napi]
pub const RECORD_A: u32 = 3;
#[napi]
pub const RECORD_B: u32 = 4;
#[napi]
pub const RECORD_C: u32 = 5;
#[napi]
pub const RECORD_D: u32 = 6;

// `encode` writes the fields in this order.
const _: () = assert!(
    RECORD_KIND == 0
        && RECORD_TOKEN_INDEX == 1
        && RECORD_TOKEN_GENERATION == 2
        && RECORD_A == 3
        && RECORD_B == 4
        && RECORD_C == 5
        && RECORD_D == 6
        && RECORD_WORDS == 7
);

/// Writes a turn's events as records; datagram peers go to `peers` (their
/// text) and `hosts` (their address, each at the same index).
pub fn encode(events: &[Event], turn_error: Option<io::Error>, words: &mut Vec<i32>, peers: &mut Vec<String>, hosts: &mut Vec<SocketAddr>) {
    words.clear();
    peers.clear();
    hosts.clear();
    let mut record = |kind: i32, token: Option<Token>, a: i32, b: i32, c: i32, d: i32| {
        let (index, generation) = token.map_or((0, 0), |t| (t.index() as i32, t.generation() as i32));
        words.extend_from_slice(&[kind, index, generation, a, b, c, d]);
    };
    // The host (address and scope, any port) of a datagram: its entry in `hosts`.
    let host_of = |a: &SocketAddr| (a.ip(), if let SocketAddr::V6(v6) = a { v6.scope_id() } else { 0 });
    for event in events {
        match event {
            Event::Accept { listener, conn } => {
                record(EVENT_ACCEPT, Some(*conn), listener.index() as i32, listener.generation() as i32, 0, 0)
            }
            Event::AcceptError { listener, error } => record(EVENT_ACCEPT_ERROR, Some(*listener), errno_of(error), 0, 0, 0),
            Event::Connect { conn } => record(EVENT_CONNECT, Some(*conn), 0, 0, 0, 0),
            Event::Data { conn, offset, len } => record(EVENT_DATA, Some(*conn), *offset as i32, *len as i32, 0, 0),
            Event::End { conn, hung_up } => record(EVENT_END, Some(*conn), *hung_up as i32, 0, 0, 0),
            Event::Drain { conn } => record(EVENT_DRAIN, Some(*conn), 0, 0, 0, 0),
            Event::FileSent { conn, sent } => record(EVENT_FILE_SENT, Some(*conn), *sent as u32 as i32, (*sent >> 32) as i32, 0, 0),
            Event::Close { conn, error, sending } => {
                record(EVENT_CLOSE, Some(*conn), error.as_ref().map_or(0, errno_of), *sending as i32, 0, 0)
            }
            Event::Message { socket, offset, len, from } => {
                // Consecutive datagrams from one host share a string, made once.
                // (The scope is part of a link-local IPv6 sender's text.)
                if hosts.last().map(host_of) != Some(host_of(from)) {
                    peers.push(ip_text(from));
                    hosts.push(*from);
                }
                let index = peers.len() as i32 - 1;
                record(EVENT_MESSAGE, Some(*socket), *offset as i32, *len as i32, from.port() as i32, index);
            }
            Event::ReceiveError { socket, error } => record(EVENT_RECEIVE_ERROR, Some(*socket), errno_of(error), 0, 0, 0),
        }
    }
    if let Some(error) = turn_error {
        record(EVENT_REACTOR_ERROR, None, errno_of(&error), 0, 0, 0);
    }
}

/// A token as JavaScript holds it: one integer below 2^53. Anything else
/// (a negative, a fraction, NaN, a number too large) names no socket.
pub fn token_of(n: f64) -> Token {
    if n >= 0.0 && n < (1u64 << 53) as f64 && n.fract() == 0.0 {
        Token::from_bits(n as u64)
    } else {
        Token::from_bits(0)
    }
}

/// A token for JavaScript (see [`token_of`]).
pub fn token_number(token: Token) -> i64 {
    token.to_bits() as i64
}
