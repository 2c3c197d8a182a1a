//! muxnet-core's framing codecs for JavaScript: one N-API call per chunk
//! read, however many frames it completes.

use muxnet_core::codec::{Codec, Decoded, LengthCodec, LineCodec};
use napi::bindgen_prelude::*;
use napi_derive::napi;

fn codec(framing: &str, max_frame: u32) -> Result<Box<dyn Codec>> {
    let max = max_frame as usize;
    match framing {
        "line" => Ok(Box::new(LineCodec::new(max))),
        "length" => Ok(Box::new(LengthCodec::new(max))),
        other => Err(Error::new(Status::InvalidArg, format!("unknown framing: {other} (use 'line' or 'length')"))),
    }
}

/// What one chunk completed. Frames that lie whole in the chunk are not
/// copied: the caller takes views of its own chunk.
#[napi(object)]
pub struct DecodedFrames {
    /// Two numbers per frame, in order: `start, end` of a range of the
    /// chunk, or `-1, i` for `assembled[i]`.
    pub spans: Vec<i64>,
    /// Frames whose bytes came in more than one chunk.
    pub assembled: Vec<Buffer>,
    /// Frames dropped for exceeding the limit.
    pub too_long: u32,
    /// How many of the frames came before the first one dropped (`-1`:
    /// none was): a reader that stops at a bad frame takes only those.
    pub too_long_at: i64,
}

/// Splits a byte stream into frames (`'line'`: `\n`-terminated, `\r\n`
/// accepted; `'length'`: 4-byte big-endian length prefix). A frame over
/// `maxFrame` is dropped before its bytes are buffered and counted in
/// `tooLong`; a length-prefixed stream stops decoding after one.
#[napi]
pub struct FrameDecoder {
    codec: Box<dyn Codec>,
    out: Vec<Decoded>,
}

#[napi]
impl FrameDecoder {
    #[napi(constructor, catch_unwind)]
    pub fn new(framing: String, max_frame: u32) -> Result<FrameDecoder> {
        Ok(FrameDecoder { codec: codec(&framing, max_frame)?, out: Vec::new() })
    }

    #[napi(catch_unwind)]
    pub fn push(&mut self, chunk: &[u8]) -> DecodedFrames {
        self.codec.decode(chunk, &mut self.out);
        let mut result = DecodedFrames { spans: Vec::new(), assembled: Vec::new(), too_long: 0, too_long_at: -1 };
        for decoded in self.out.drain(..) {
            match decoded {
                Decoded::Span(range) => result.spans.extend([range.start as i64, range.end as i64]),
                Decoded::Assembled(frame) => {
                    result.spans.extend([-1, result.assembled.len() as i64]);
                    result.assembled.push(frame.into());
                }
                Decoded::TooLong { .. } => {
                    if result.too_long == 0 {
                        result.too_long_at = (result.spans.len() / 2) as i64;
                    }
                    result.too_long += 1;
                }
            }
        }
        result
    }

    /// Bytes held for an incomplete frame.
    #[napi(getter, catch_unwind)]
    pub fn buffered(&self) -> u32 {
        self.codec.buffered() as u32
    }

    /// The bytes held for an incomplete frame as they came in (a length
    /// header included), copied.
    #[napi(catch_unwind)]
    pub fn pending(&self) -> Buffer {
        self.codec.pending().into()
    }

    /// Bytes of a line already past `maxFrame`, dropped as they arrive; it
    /// is counted in `tooLong` when its newline comes.
    #[napi(getter, catch_unwind)]
    pub fn dropping(&self) -> f64 {
        self.codec.dropping() as f64
    }
}

/// One frame's bytes; throws if `payload` exceeds `maxFrame` (or holds a
/// newline or ends in `\r`, for `'line'`).
#[napi(catch_unwind)]
#[cfg_attr(test, allow(dead_code))] // called from JavaScript only
pub fn encode_frame(framing: String, max_frame: u32, payload: &[u8]) -> Result<Buffer> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    if !codec(&framing, max_frame)?.encode(payload, &mut out) {
        return Err(Error::new(
            Status::InvalidArg,
            format!("frame of {} bytes cannot be encoded as {framing} (limit {max_frame})", payload.len()),
        ));
    }
    Ok(out.into())
}
