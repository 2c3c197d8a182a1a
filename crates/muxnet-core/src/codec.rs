//! Framing codecs: turn a byte stream cut anywhere into whole frames, and
//! frames into bytes. Every split is handled (a frame over many reads, many
//! frames in one read, a length header split across reads), and the size
//! limit is checked before anything is allocated for a frame.
//!
//! A frame that lies whole in the bytes just given is reported as a range
//! of them, not copied; only a frame split across inputs is assembled.
//!
//! ```
//! use muxnet_core::codec::{Codec, Decoded, LineCodec};
//! let mut codec = LineCodec::new(16);
//! let mut out = Vec::new();
//! codec.decode(b"hel", &mut out);
//! assert!(out.is_empty());
//! let input = b"lo\r\nworld\n";
//! codec.decode(input, &mut out);
//! assert_eq!(out, vec![Decoded::Assembled(b"hello".to_vec()), Decoded::Span(4..9)]);
//! assert_eq!(out[1].frame(input), Some(&b"world"[..]));
//! ```

use std::ops::Range;

/// What decoding yields, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame within the input of the `decode` call that yielded
    /// it: `input[range]`, not copied.
    Span(Range<usize>),
    /// A frame whose bytes came in more than one input, assembled.
    Assembled(Vec<u8>),
    /// A frame longer than the limit was dropped. A line codec resumes at
    /// the next line; a length-prefix codec cannot resync and stops.
    TooLong { len: usize },
}

impl Decoded {
    /// The frame's bytes (`None` for `TooLong`); `input` is what the
    /// `decode` call that yielded it was given.
    pub fn frame<'a>(&'a self, input: &'a [u8]) -> Option<&'a [u8]> {
        match self {
            Decoded::Span(range) => Some(&input[range.clone()]),
            Decoded::Assembled(bytes) => Some(bytes),
            Decoded::TooLong { .. } => None,
        }
    }
}

pub trait Codec {
    /// Feeds the next bytes of the stream; appends what they complete.
    fn decode(&mut self, input: &[u8], out: &mut Vec<Decoded>);
    /// Appends `payload` as one frame; `false` if it exceeds the limit.
    fn encode(&self, payload: &[u8], out: &mut Vec<u8>) -> bool;
    /// Bytes held for an incomplete frame.
    fn buffered(&self) -> usize;
    /// Those bytes as they came in (a length header included): the stream
    /// from the end of the last frame decoded, for a reader that stops
    /// decoding and hands the rest on.
    fn pending(&self) -> Vec<u8>;
    /// Bytes of a frame already past the limit, dropped as they come until
    /// its end, where it is reported `TooLong` (a line codec's: a length
    /// codec knows at the header and stops).
    fn dropping(&self) -> usize {
        0
    }
}

/// `\n`-terminated lines (`\r\n` accepted); the terminator is not part of
/// the frame.
#[derive(Debug)]
pub struct LineCodec {
    max: usize,
    line: Vec<u8>,
    /// Inside a line already reported too long: skip to its end.
    discarding: usize,
}

impl LineCodec {
    pub fn new(max: usize) -> LineCodec {
        LineCodec { max, line: Vec::new(), discarding: 0 }
    }
}

impl Codec for LineCodec {
    fn decode(&mut self, input: &[u8], out: &mut Vec<Decoded>) {
        let mut at = 0;
        while at < input.len() {
            let start = at;
            let end = input[start..].iter().position(|&b| b == b'\n').map(|e| start + e);
            let piece = &input[start..end.unwrap_or(input.len())];
            at = end.map_or(input.len(), |e| e + 1);
            if self.discarding > 0 {
                self.discarding += piece.len();
            } else if self.line.len() + piece.len() > self.max + 1 {
                // Past the limit (one spare byte for a '\r'): drop it now,
                // before buffering any more of it.
                self.discarding = self.line.len() + piece.len();
                self.line = Vec::new();
            } else if end.is_some() && self.line.is_empty() {
                // The whole line is in this input: a range of it, no copy.
                let stop = start + piece.strip_suffix(b"\r").unwrap_or(piece).len();
                out.push(if stop - start > self.max { Decoded::TooLong { len: stop - start } } else { Decoded::Span(start..stop) });
                continue;
            } else {
                self.line.extend_from_slice(piece);
            }
            if end.is_none() {
                break;
            }
            if self.discarding > 0 {
                out.push(Decoded::TooLong { len: std::mem::take(&mut self.discarding) });
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            out.push(if line.len() > self.max { Decoded::TooLong { len: line.len() } } else { Decoded::Assembled(line) });
        }
    }

    fn encode(&self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        // A trailing '\r' would be read back as part of a "\r\n" line end, and lost.
        if payload.len() > self.max || payload.contains(&b'\n') || payload.last() == Some(&b'\r') {
            return false;
        }
        out.extend_from_slice(payload);
        out.push(b'\n');
        true
    }

    fn buffered(&self) -> usize {
        self.line.len()
    }

    fn pending(&self) -> Vec<u8> {
        self.line.clone()
    }

    fn dropping(&self) -> usize {
        self.discarding
    }
}

/// What a length-prefixed frame's buffer starts with; it grows as its bytes arrive.
const FIRST_RESERVE: usize = 64 * 1024;

/// A 4-byte big-endian length, then that many bytes.
#[derive(Debug)]
pub struct LengthCodec {
    max: usize,
    header: [u8; 4],
    header_len: usize,
    /// The frame being filled, once its header is known.
    body: Option<(usize, Vec<u8>)>,
    /// A length over the limit was seen: the stream cannot be trusted.
    broken: bool,
}

impl LengthCodec {
    pub fn new(max: usize) -> LengthCodec {
        LengthCodec { max, header: [0; 4], header_len: 0, body: None, broken: false }
    }
}

impl Codec for LengthCodec {
    fn decode(&mut self, input: &[u8], out: &mut Vec<Decoded>) {
        let mut at = 0;
        while at < input.len() && !self.broken {
            if let Some((len, body)) = &mut self.body {
                let take = (*len - body.len()).min(input.len() - at);
                if body.capacity() - body.len() < take {
                    // Doubling as the body arrives, never past the length announced.
                    body.reserve_exact(body.len().max(take).min(*len - body.len()));
                }
                body.extend_from_slice(&input[at..at + take]);
                at += take;
                if body.len() == *len {
                    out.push(Decoded::Assembled(self.body.take().unwrap().1));
                }
                continue;
            }
            let take = (4 - self.header_len).min(input.len() - at);
            self.header[self.header_len..self.header_len + take].copy_from_slice(&input[at..at + take]);
            self.header_len += take;
            at += take;
            if self.header_len < 4 {
                break;
            }
            self.header_len = 0;
            let len = u32::from_be_bytes(self.header) as usize;
            if len > self.max {
                // Checked before allocating: a hostile header costs nothing.
                self.broken = true;
                out.push(Decoded::TooLong { len });
            } else if input.len() - at >= len {
                // The whole body is in this input: a range of it, no copy.
                out.push(Decoded::Span(at..at + len));
                at += len;
            } else {
                // Memory follows the bytes that came, not the header: a peer that announces
                // maxFrame and sends four bytes has not made the process reserve maxFrame.
                self.body = Some((len, Vec::with_capacity(len.min(FIRST_RESERVE))));
            }
        }
    }

    fn encode(&self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        if payload.len() > self.max || payload.len() > u32::MAX as usize {
            return false;
        }
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        true
    }

    fn buffered(&self) -> usize {
        // A body begun counts its header too: a stream that ends just after one ends inside a frame.
        self.header_len + self.body.as_ref().map_or(0, |(_, b)| 4 + b.len())
    }

    fn pending(&self) -> Vec<u8> {
        match &self.body {
            // The header was taken in full and cleared when the body began: its bytes are the length.
            Some((len, body)) => [&(*len as u32).to_be_bytes()[..], body].concat(),
            None => self.header[..self.header_len].to_vec(),
        }
    }
}
