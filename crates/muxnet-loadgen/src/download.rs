//! File-serving load: one download at a time of a file whose byte
//! `i` is `i mod 256` (the file server writes it so), each read checked
//! where it lands; a download that ends short of `payload` bytes is a
//! verification error. When one ends, the next starts. Each byte received in
//! the measured window is a "message", so msgs per server CPU-s is bytes per
//! server CPU-s.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::Duration;

use crate::args::Args;
use crate::pattern::is_ramp;
use crate::{Clock, Tally, Window};

/// One download to its end; bytes in the window go to `tally.messages`.
fn download(args: &Args, clock: &Clock, tally: &mut Tally, buf: &mut [u8], started: &mut bool, window: &mut dyn Window) -> io::Result<()> {
    let mut stream = TcpStream::connect(args.target)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut got = 0u64;
    loop {
        let now = std::time::Instant::now();
        // The window closes on time, mid-download: the server's CPU is read over the bytes counted.
        if now >= clock.measure_until {
            window.close();
            return Ok(());
        }
        if !*started && now >= clock.measure_from {
            *started = true;
            window.open();
        }
        let n = stream.read(buf)?;
        if n == 0 {
            if got != args.payload as u64 {
                tally.verification_errors += 1;
            }
            return Ok(());
        }
        if !is_ramp(&buf[..n], got) {
            tally.verification_errors += 1;
        }
        got += n as u64;
        if clock.measuring(now) {
            tally.messages += n as u64;
        }
    }
}

pub fn run(args: &Args, clock: Clock, window: &mut dyn Window) -> Tally {
    let mut tally = Tally::default();
    let mut buf = vec![0u8; 256 * 1024];
    let mut started = false;
    // One download at a time per run (the cell measures the server's cost per byte).
    while std::time::Instant::now() < clock.measure_until {
        if let Err(e) = download(args, &clock, &mut tally, &mut buf, &mut started, window) {
            eprintln!("muxnet-loadgen: download: {e}");
            tally.errors += 1;
            break;
        }
    }
    window.close();
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_checks_every_byte_where_it_lands() {
        let file: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        assert!(is_ramp(&file, 0));
        assert!(is_ramp(&file[700..4321], 700));
        assert!(!is_ramp(&file[700..4321], 701), "a read placed one byte off");
        let mut bad = file.clone();
        bad[4999] ^= 1;
        assert!(!is_ramp(&bad[300..], 300), "the last byte flipped");
    }
}
