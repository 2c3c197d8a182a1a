//! The framing codecs against random frames cut at random places: whatever
//! the splits, the decoded frames are exactly the frames encoded.

use muxnet_core::codec::{Codec, Decoded, LengthCodec, LineCodec};

/// xorshift64*: deterministic, so a failure names a seed that replays it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A decoded frame with its bytes, or a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Frame(Vec<u8>),
    TooLong(usize),
}

/// Decodes `input` and copies out what it yields (spans refer to `input`).
fn decode(codec: &mut dyn Codec, input: &[u8], got: &mut Vec<Got>) {
    let mut out = Vec::new();
    codec.decode(input, &mut out);
    got.extend(out.iter().map(|d| match (d, d.frame(input)) {
        (Decoded::TooLong { len }, _) => Got::TooLong(*len),
        (_, frame) => Got::Frame(frame.unwrap().to_vec()),
    }));
}

/// Feeds `stream` to `codec` in random-sized pieces (1 byte up to all).
fn feed(codec: &mut dyn Codec, stream: &[u8], rng: &mut Rng) -> Vec<Got> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let n = match rng.below(4) {
            0 => 1,
            1 => 1 + rng.below(4),
            2 => 1 + rng.below(64),
            _ => 1 + rng.below(stream.len() - at),
        }
        .min(stream.len() - at);
        decode(codec, &stream[at..at + n], &mut out);
        at += n;
        // What it holds is the stream since the last frame's end, byte for byte.
        assert_eq!(codec.pending(), &stream[at - codec.buffered()..at]);
    }
    out
}

const MAX: usize = 100;

#[test]
fn line_codec_survives_every_split() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed);
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for _ in 0..rng.below(40) {
            let len = match rng.below(10) {
                0 => MAX + 1 + rng.below(300), // too long
                1 => 0,
                _ => rng.below(MAX + 1),
            };
            let line: Vec<u8> = (0..len).map(|_| b'a' + rng.below(26) as u8).collect();
            stream.extend_from_slice(&line);
            if rng.below(3) == 0 {
                stream.push(b'\r');
            }
            stream.push(b'\n');
            want.push(if len > MAX { Got::TooLong(0) } else { Got::Frame(line) });
        }
        let mut codec = LineCodec::new(MAX);
        let got = feed(&mut codec, &stream, &mut rng);
        let normalise = |d: &Got| match d {
            Got::TooLong(_) => Got::TooLong(0),
            f => f.clone(),
        };
        assert_eq!(got.iter().map(normalise).collect::<Vec<_>>(), want, "seed {seed}");
        assert_eq!(codec.buffered(), 0, "seed {seed}");
    }
}

#[test]
fn line_codec_holds_at_most_the_limit_of_an_endless_line() {
    let mut codec = LineCodec::new(MAX);
    let mut out = Vec::new();
    for _ in 0..10_000 {
        decode(&mut codec, &[b'x'; 1000], &mut out);
        assert!(codec.buffered() <= MAX + 1);
    }
    assert!(out.is_empty());
    assert_eq!(codec.dropping(), 10_000_000, "known too long before its end");
    decode(&mut codec, b"\nok\n", &mut out);
    assert_eq!(out, vec![Got::TooLong(10_000_000), Got::Frame(b"ok".to_vec())]);
    assert_eq!(codec.dropping(), 0);
}

#[test]
fn length_codec_survives_every_split() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed);
        let encoder = LengthCodec::new(MAX);
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for _ in 0..rng.below(40) {
            let frame: Vec<u8> = (0..rng.below(MAX + 1)).map(|_| rng.next() as u8).collect();
            assert!(encoder.encode(&frame, &mut stream));
            want.push(Got::Frame(frame));
        }
        let mut codec = LengthCodec::new(MAX);
        assert_eq!(feed(&mut codec, &stream, &mut rng), want, "seed {seed}");
        assert_eq!(codec.buffered(), 0);
    }
}

#[test]
fn frames_whole_in_one_input_are_ranges_of_it_not_copies() {
    let mut stream = Vec::new();
    let length = LengthCodec::new(MAX);
    for frame in [&b"one"[..], b"", b"three"] {
        assert!(length.encode(frame, &mut stream));
    }
    let mut out = Vec::new();
    LengthCodec::new(MAX).decode(&stream, &mut out);
    assert_eq!(out, vec![Decoded::Span(4..7), Decoded::Span(11..11), Decoded::Span(15..20)]);
    out.clear();
    LineCodec::new(MAX).decode(b"one\r\n\nthree\n", &mut out);
    assert_eq!(out, vec![Decoded::Span(0..3), Decoded::Span(5..5), Decoded::Span(6..11)]);
}

#[test]
fn length_codec_refuses_a_huge_header_before_allocating() {
    let mut codec = LengthCodec::new(MAX);
    let mut out = Vec::new();
    // 4 GiB announced, split across reads: refused without reserving it.
    codec.decode(&[0xff, 0xff], &mut out);
    codec.decode(&[0xff, 0xff, 1, 2, 3], &mut out);
    assert_eq!(out, vec![Decoded::TooLong { len: u32::MAX as usize }]);
    assert_eq!(codec.buffered(), 0);
    // The stream cannot be resynchronised: nothing more comes out.
    codec.decode(&[0, 0, 0, 1, b'x'], &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn encoders_refuse_what_decoders_would_refuse() {
    let mut out = Vec::new();
    assert!(!LineCodec::new(4).encode(b"12345", &mut out));
    assert!(!LineCodec::new(10).encode(b"a\nb", &mut out));
    assert!(!LineCodec::new(10).encode(b"ab\r", &mut out));
    assert!(!LengthCodec::new(4).encode(b"12345", &mut out));
    assert!(out.is_empty());
    assert!(LineCodec::new(4).encode(b"1234", &mut out));
    assert!(LengthCodec::new(4).encode(b"", &mut out));
    assert_eq!(out, b"1234\n\0\0\0\0");
}

#[test]
fn length_codec_grows_a_large_frame_as_its_bytes_arrive() {
    // Past the first reserve (64 KiB) its buffer grows with the bytes, to exactly the frame.
    for seed in 1..=20u64 {
        let mut rng = Rng(seed);
        let frame: Vec<u8> = (0..200_000 + rng.below(300_000)).map(|_| rng.next() as u8).collect();
        let mut stream = Vec::new();
        assert!(LengthCodec::new(1 << 20).encode(&frame, &mut stream));
        assert!(LengthCodec::new(1 << 20).encode(b"next", &mut stream));
        let mut codec = LengthCodec::new(1 << 20);
        assert_eq!(feed(&mut codec, &stream, &mut rng), vec![Got::Frame(frame), Got::Frame(b"next".to_vec())], "seed {seed}");
        assert_eq!(codec.buffered(), 0);
    }
}

#[test]
fn a_length_header_alone_is_held_until_its_body_comes() {
    // A stream that ends here ends inside a frame: its header is held, as it came.
    let mut codec = LengthCodec::new(MAX);
    let mut out = Vec::new();
    decode(&mut codec, &[0, 0, 0, 3], &mut out);
    assert!(out.is_empty());
    assert_eq!(codec.buffered(), 4);
    assert_eq!(codec.pending(), [0, 0, 0, 3]);
    decode(&mut codec, b"abc", &mut out);
    assert_eq!(out, vec![Got::Frame(b"abc".to_vec())]);
    assert_eq!((codec.buffered(), codec.pending()), (0, vec![]));
}
