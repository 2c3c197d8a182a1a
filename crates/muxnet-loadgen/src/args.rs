//! Command-line options.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub const USAGE: &str = "usage: muxnet-loadgen --port N [--host IP] [--connections N] [--payload BYTES] [--depth N] \
[--warmup S] [--duration S] [--idle N] [--sources N] [--udp | --chat | --download] [--server-pid PID [--server-cpu N]]";

#[derive(Debug)]
pub struct Args {
    pub target: SocketAddr,
    pub connections: usize,
    pub payload: usize,
    /// Messages in flight per connection.
    pub depth: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Connections opened and kept silent for the whole run.
    pub idle: usize,
    /// TCP connections come from 127.0.0.1 … 127.0.0.N: one source address
    /// has only the ephemeral range of ports (~28 000 on Linux).
    pub sources: u8,
    pub udp: bool,
    /// Chat fan-out: `connections` members and one sender (see chat.rs).
    pub chat: bool,
    /// Downloads of a `payload`-byte file (see download.rs).
    pub download: bool,
    pub server_pid: Option<u32>,
    /// The CPU the server is pinned to: what else ran there in the window is measured.
    pub server_cpu: Option<usize>,
}

fn seconds(v: &str) -> Result<Duration, String> {
    v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64).ok_or_else(|| format!("bad seconds: {v}"))
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
}

pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let mut port = None;
    let mut a = Args {
        target: SocketAddr::new(host, 0),
        connections: 100,
        payload: 64,
        depth: 1,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(5),
        idle: 0,
        sources: 1,
        udp: false,
        chat: false,
        download: false,
        server_pid: None,
        server_cpu: None,
    };
    while let Some(flag) = it.next() {
        if flag == "--udp" || flag == "--chat" || flag == "--download" {
            a.udp |= flag == "--udp";
            a.chat |= flag == "--chat";
            a.download |= flag == "--download";
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--host" => host = v.parse().map_err(|_| format!("--host takes an IP address: {v}"))?,
            "--port" => port = Some(number::<u16>(&flag, &v)?),
            "--connections" => a.connections = number(&flag, &v)?,
            "--payload" => a.payload = number(&flag, &v)?,
            "--depth" => a.depth = number(&flag, &v)?,
            "--warmup" => a.warmup = seconds(&v)?,
            "--duration" => a.duration = seconds(&v)?,
            "--idle" => a.idle = number(&flag, &v)?,
            "--sources" => a.sources = number(&flag, &v)?,
            "--server-pid" => a.server_pid = Some(number(&flag, &v)?),
            "--server-cpu" => a.server_cpu = Some(number(&flag, &v)?),
            _ => return Err(format!("unknown option: {flag}")),
        }
    }
    a.target = SocketAddr::new(host, port.ok_or("--port is required")?);
    if a.payload == 0 || a.depth == 0 || a.duration.is_zero() {
        return Err("--payload, --depth and --duration must be > 0".into());
    }
    let ipv4_loopback = matches!(a.target.ip(), IpAddr::V4(ip) if ip.is_loopback());
    if a.sources == 0 || (a.sources > 1 && !ipv4_loopback) {
        return Err("--sources takes 1 to 255, and more than 1 only toward an IPv4 loopback address".into());
    }
    if [a.udp, a.chat, a.download].iter().filter(|&&m| m).count() > 1 {
        return Err("--udp, --chat and --download exclude each other".into());
    }
    if a.server_cpu.is_some() && a.server_pid.is_none() {
        return Err("--server-cpu goes with --server-pid".into());
    }
    if a.udp && a.payload > 65_000 {
        return Err("--payload for --udp must fit a datagram (<= 65000)".into());
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_and_rejects() {
        let a = args("--port 7000 --host ::1 --connections 10 --payload 16384 --depth 16 --duration 0.5 --udp").unwrap();
        assert_eq!(a.target, "[::1]:7000".parse().unwrap());
        assert_eq!((a.connections, a.payload, a.depth, a.udp), (10, 16384, 16, true));
        assert_eq!(a.duration, Duration::from_millis(500));
        assert!(args("--connections 10").unwrap_err().contains("--port"));
        assert!(args("--port 70000").is_err());
        assert!(args("--port 1 --bogus 2").unwrap_err().contains("unknown option"));
        assert!(args("--port 1 --depth 0").is_err());
        assert_eq!(args("--port 1 --sources 4").unwrap().sources, 4);
        assert!(args("--port 1 --sources 0").is_err());
        assert!(args("--port 1 --host ::1 --sources 2").is_err());
        assert!(args("--port 1 --host 10.0.0.1 --sources 2").is_err());
        assert_eq!(args("--port 1 --server-pid 9 --server-cpu 3").unwrap().server_cpu, Some(3));
        assert!(args("--port 1 --server-cpu 3").unwrap_err().contains("--server-pid"));
    }
}
