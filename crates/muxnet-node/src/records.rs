//! The event-record format, defined once: what one reactor turn hands to
//! JavaScript in an `Int32Array`. Every record is [`WORDS`] i32s:
//! `[kind, token index, token generation, a, b, c, d]`. The kinds and the
//! field positions are exported to JS (see `lib.rs`); `src/reactor.ts`
//! decodes with them, and a test checks the two agree.

use std::io;

use muxnet_core::{Event, Token};

use crate::errno::errno_of;

pub const ACCEPT: i32 = 1; // token: the new connection; a, b: the listener's index, generation
pub const ACCEPT_ERROR: i32 = 2; // token: the listener; a: errno
pub const CONNECT: i32 = 3;
pub const DATA: i32 = 4; // a: offset in the slab, b: length
pub const END: i32 = 5;
pub const DRAIN: i32 = 6;
pub const CLOSE: i32 = 7; // a: errno, 0 for an orderly close
pub const MESSAGE: i32 = 8; // a: offset, b: length, c: port, d: index into the peers array
pub const REACTOR_ERROR: i32 = 9; // a: errno (no token)

/// Words per record.
pub const WORDS: usize = 7;
/// Where a record's fields are.
pub const KIND: usize = 0;
pub const TOKEN_INDEX: usize = 1;
pub const TOKEN_GENERATION: usize = 2;
pub const A: usize = 3;
pub const B: usize = 4;
pub const C: usize = 5;
pub const D: usize = 6;

/// Writes a turn's events as records; datagram peers go to `peers`.
pub fn encode(events: &[Event], turn_error: Option<io::Error>, words: &mut Vec<i32>, peers: &mut Vec<String>) {
    words.clear();
    peers.clear();
    let mut record = |kind: i32, token: Option<Token>, a: i32, b: i32, c: i32, d: i32| {
        let (index, generation) = token.map_or((0, 0), |t| (t.index() as i32, t.generation() as i32));
        words.extend_from_slice(&[kind, index, generation, a, b, c, d]);
    };
    for event in events {
        match event {
            Event::Accept { listener, conn } => record(ACCEPT, Some(*conn), listener.index() as i32, listener.generation() as i32, 0, 0),
            Event::AcceptError { listener, error } => record(ACCEPT_ERROR, Some(*listener), errno_of(error), 0, 0, 0),
            Event::Connect { conn } => record(CONNECT, Some(*conn), 0, 0, 0, 0),
            Event::Data { conn, offset, len } => record(DATA, Some(*conn), *offset as i32, *len as i32, 0, 0),
            Event::End { conn } => record(END, Some(*conn), 0, 0, 0, 0),
            Event::Drain { conn } => record(DRAIN, Some(*conn), 0, 0, 0, 0),
            Event::Close { conn, error } => record(CLOSE, Some(*conn), error.as_ref().map_or(0, errno_of), 0, 0, 0),
            Event::Message { socket, offset, len, from } => {
                let ip = from.ip().to_string();
                // Consecutive datagrams from one peer share a string.
                if peers.last() != Some(&ip) {
                    peers.push(ip);
                }
                let index = peers.len() as i32 - 1;
                record(MESSAGE, Some(*socket), *offset as i32, *len as i32, from.port() as i32, index);
            }
        }
    }
    if let Some(error) = turn_error {
        record(REACTOR_ERROR, None, errno_of(&error), 0, 0, 0);
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
