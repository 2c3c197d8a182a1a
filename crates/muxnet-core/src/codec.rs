//! Framing codecs: turn a byte stream cut anywhere into whole frames, and
//! frames into bytes. Every split is handled (a frame over many reads, many
//! frames in one read, a length header split across reads), and the size
//! limit is checked before anything is allocated for a frame.
//!
//! ```
//! use muxnet_core::codec::{Codec, Decoded, LineCodec};
//! let mut codec = LineCodec::new(16);
//! let mut out = Vec::new();
//! codec.decode(b"hel", &mut out);
//! codec.decode(b"lo\r\nworld\n", &mut out);
//! assert_eq!(out, vec![Decoded::Frame(b"hello".to_vec()), Decoded::Frame(b"world".to_vec())]);
//! ```

/// What decoding yields, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Frame(Vec<u8>),
    /// A frame longer than the limit was dropped. A line codec resumes at
    /// the next line; a length-prefix codec cannot resync and stops.
    TooLong {
        len: usize,
    },
}

pub trait Codec {
    /// Feeds the next bytes of the stream; appends what they complete.
    fn decode(&mut self, input: &[u8], out: &mut Vec<Decoded>);
    /// Appends `payload` as one frame; `false` if it exceeds the limit.
    fn encode(&self, payload: &[u8], out: &mut Vec<u8>) -> bool;
    /// Bytes held for an incomplete frame.
    fn buffered(&self) -> usize;
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
    fn decode(&mut self, mut input: &[u8], out: &mut Vec<Decoded>) {
        while !input.is_empty() {
            let end = input.iter().position(|&b| b == b'\n');
            let piece = &input[..end.unwrap_or(input.len())];
            input = end.map_or(&[][..], |e| &input[e + 1..]);
            if self.discarding > 0 {
                self.discarding += piece.len();
            } else if self.line.len() + piece.len() > self.max + 1 {
                // Past the limit (one spare byte for a '\r'): drop it now,
                // before buffering any more of it.
                self.discarding = self.line.len() + piece.len();
                self.line = Vec::new();
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
            out.push(if line.len() > self.max { Decoded::TooLong { len: line.len() } } else { Decoded::Frame(line) });
        }
    }

    fn encode(&self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        if payload.len() > self.max || payload.contains(&b'\n') {
            return false;
        }
        out.extend_from_slice(payload);
        out.push(b'\n');
        true
    }

    fn buffered(&self) -> usize {
        self.line.len()
    }
}

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
    fn decode(&mut self, mut input: &[u8], out: &mut Vec<Decoded>) {
        while !input.is_empty() && !self.broken {
            if let Some((len, body)) = &mut self.body {
                let take = (*len - body.len()).min(input.len());
                body.extend_from_slice(&input[..take]);
                input = &input[take..];
                if body.len() == *len {
                    out.push(Decoded::Frame(self.body.take().unwrap().1));
                }
                continue;
            }
            let take = (4 - self.header_len).min(input.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&input[..take]);
            self.header_len += take;
            input = &input[take..];
            if self.header_len < 4 {
                break;
            }
            self.header_len = 0;
            let len = u32::from_be_bytes(self.header) as usize;
            if len > self.max {
                // Checked before allocating: a hostile header costs nothing.
                self.broken = true;
                out.push(Decoded::TooLong { len });
            } else if len == 0 {
                out.push(Decoded::Frame(Vec::new()));
            } else {
                self.body = Some((len, Vec::with_capacity(len)));
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
        self.header_len + self.body.as_ref().map_or(0, |(_, b)| b.len())
    }
}
