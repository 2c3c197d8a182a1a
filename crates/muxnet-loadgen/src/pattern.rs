//! The bytes each message carries: a function of (connection, message
//! number, offset), so every echoed byte can be checked where it lands.
//! A message opens with its connection's and its own number (so bytes
//! delivered to the wrong connection, or a message repeated or skipped,
//! never verify), then byte `i` is `start + i` (mod 256): checking is a
//! memcmp against a ramp, fast enough that the client keeps up at 16 KiB.

/// The connection's number (u32) and the message's (u64), little-endian.
const HEADER: usize = 12;

fn header(conn: usize, msg: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(&(conn as u32).to_le_bytes());
    h[4..].copy_from_slice(&msg.to_le_bytes());
    h
}

/// 0, 1, …, 255, 0, 1, …, 255: any 256-byte window of the pattern.
static RAMP: [u8; 512] = {
    let mut r = [0u8; 512];
    let mut i = 0;
    while i < 512 {
        r[i] = i as u8;
        i += 1;
    }
    r
};

fn start(conn: usize, msg: u64) -> u8 {
    (conn as u64).wrapping_mul(31).wrapping_add(msg.wrapping_mul(7)) as u8
}

/// The expected bytes from `offset`, in windows of at most 256.
fn expected(conn: usize, msg: u64, offset: usize, len: usize) -> impl Iterator<Item = &'static [u8]> {
    let first = start(conn, msg).wrapping_add(offset as u8) as usize;
    (0..len).step_by(256).map(move |at| &RAMP[first..first + (len - at).min(256)])
}

pub fn fill(buf: &mut Vec<u8>, conn: usize, msg: u64, len: usize) {
    let opening = len.min(HEADER);
    buf.extend_from_slice(&header(conn, msg)[..opening]);
    for window in expected(conn, msg, opening, len - opening) {
        buf.extend_from_slice(window);
    }
}

/// Checks `data` as the bytes of message `msg` from `offset` on; returns
/// how many differ.
pub fn mismatches(data: &[u8], conn: usize, msg: u64, offset: usize) -> u64 {
    let opening = data.len().min(HEADER.saturating_sub(offset));
    let (head, rest) = data.split_at(opening);
    let wrong_head = head.iter().zip(&header(conn, msg)[offset.min(HEADER)..]).filter(|(a, b)| a != b).count() as u64;
    wrong_head
        + rest
            .chunks(256)
            .zip(expected(conn, msg, offset + opening, rest.len()))
            .map(|(got, want)| if got == want { 0 } else { got.iter().zip(want).filter(|(a, b)| a != b).count() as u64 })
            .sum::<u64>()
}

/// Whether `data`, found at `offset` of a stream whose byte `i` is
/// `i % 256` (the file the download cells serve), is that stream there.
pub fn is_ramp(data: &[u8], offset: u64) -> bool {
    let first = (offset % 256) as usize;
    data.chunks(256).all(|window| window == &RAMP[first..first + window.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_any_changed_byte_and_differs_between_messages() {
        let mut m = Vec::new();
        fill(&mut m, 3, 9, 1000);
        assert_eq!(m.len(), 1000);
        assert_eq!(mismatches(&m, 3, 9, 0), 0);
        assert_eq!(mismatches(&m[100..], 3, 9, 100), 0);
        // Its number's low byte, then every byte of its ramp.
        assert_eq!(mismatches(&m, 3, 10, 0), 1 + (1000 - HEADER as u64), "another message never verifies");
        m[257] ^= 1;
        m[999] ^= 0x80;
        assert_eq!(mismatches(&m, 3, 9, 0), 2);
    }

    #[test]
    fn a_message_never_verifies_as_another_connections_or_number() {
        // Connections 256 apart once had the same bytes for every message.
        for (conn, msg) in [(3 + 256, 9), (3, 9 + 256 * 37), (3 + 1000, 9)] {
            let mut m = Vec::new();
            fill(&mut m, conn, msg, 64);
            assert!(mismatches(&m, 3, 9, 0) > 0, "conn {conn} msg {msg} passed as conn 3 msg 9");
        }
        // Checked from any offset, in pieces, as reads split it.
        let mut m = Vec::new();
        fill(&mut m, 70_000, 1 << 40, 300);
        let total: u64 = [0, 5, 12, 13, 299].windows(2).map(|w| mismatches(&m[w[0]..w[1]], 70_000, 1 << 40, w[0])).sum();
        assert_eq!(total, 0);
        assert_eq!(mismatches(&m[..HEADER], 70_001, 1 << 40, 0), 1, "one byte of the connection's number differs");
        // Shorter than the opening: what there is of it.
        let mut short = Vec::new();
        fill(&mut short, 1, 2, 8);
        assert_eq!(short.len(), 8);
        assert_eq!(mismatches(&short, 1, 2, 0), 0);
    }
}
