//! The bytes each message carries: a function of (connection, message
//! number, offset), so every echoed byte can be checked where it lands.
//! Byte `i` of a message is `start + i` (mod 256): checking is a memcmp
//! against a ramp, fast enough that the client keeps up at 16 KiB.

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
    for window in expected(conn, msg, 0, len) {
        buf.extend_from_slice(window);
    }
}

/// Checks `data` as the bytes of message `msg` from `offset` on; returns
/// how many differ.
pub fn mismatches(data: &[u8], conn: usize, msg: u64, offset: usize) -> u64 {
    data.chunks(256)
        .zip(expected(conn, msg, offset, data.len()))
        .map(|(got, want)| if got == want { 0 } else { got.iter().zip(want).filter(|(a, b)| a != b).count() as u64 })
        .sum()
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
        assert_eq!(mismatches(&m, 3, 10, 0), 1000, "another message never verifies");
        m[257] ^= 1;
        m[999] ^= 0x80;
        assert_eq!(mismatches(&m, 3, 9, 0), 2);
    }
}
