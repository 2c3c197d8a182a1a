//! muxnet-loadgen: the benchmark's load client. Drives an echo server over
//! loopback from one thread (mio), verifies every echoed byte, and prints
//! one JSON line: throughput, latency percentiles, errors, and, given the
//! server's pid, the server's CPU seconds and RSS over the measured window.
//!
//! ```text
//! muxnet-loadgen --port 7000 [--host 127.0.0.1] [--connections 100] [--payload 64]
//!                [--depth 1] [--warmup 1] [--duration 5] [--idle 0] [--sources 1] [--udp | --chat | --download]
//!                [--server-pid PID]
//! ```

mod args;
mod chat;
mod download;
mod pattern;
mod proc_stats;
mod tcp;
mod udp;

use std::time::{Duration, Instant};

use args::Args;

/// Latencies of the messages completed in the measured window, in µs.
#[derive(Default, Clone)]
pub struct Samples(Vec<u32>);

impl Samples {
    /// Bounded so a very long run cannot exhaust memory.
    const MAX: usize = 50_000_000;

    pub fn record(&mut self, latency: Duration) {
        if self.0.len() < Self::MAX {
            self.0.push(latency.as_micros().min(u32::MAX as u128) as u32);
        }
    }

    /// The `q` quantile (0..=1), or `None` without samples.
    pub fn quantile(&mut self, q: f64) -> Option<u32> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() - 1) as f64 * q).round() as usize;
        Some(self.0[i])
    }
}

/// When each phase ends.
#[derive(Clone, Copy)]
pub struct Clock {
    pub measure_from: Instant,
    pub measure_until: Instant,
    /// Hard stop, whatever the server does.
    pub deadline: Instant,
}

impl Clock {
    pub fn new(args: &Args) -> Clock {
        let now = Instant::now();
        let measure_from = now + args.warmup;
        let measure_until = measure_from + args.duration;
        Clock { measure_from, measure_until, deadline: measure_until + Duration::from_secs(10) }
    }

    /// Opens the measured window at `now` (later than planned: the
    /// connections took longer to open than the warm-up).
    pub fn start_at(&mut self, now: Instant) {
        let duration = self.measure_until - self.measure_from;
        *self = Clock { measure_from: now, measure_until: now + duration, deadline: now + duration + Duration::from_secs(10) };
    }

    pub fn measuring(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.measure_until
    }
}

/// What a run counted.
#[derive(Default)]
pub struct Tally {
    pub messages: u64,
    pub errors: u64,
    pub verification_errors: u64,
    pub lost: u64,
    pub samples: Samples,
    /// TCP: active connections that got no echo in the measured window.
    /// Their requests are in no sample: a server that serves some
    /// connections and starves others shows only the served in `samples`.
    pub starved: Option<u64>,
    /// TCP: active connections answered in the window whose oldest request
    /// had then waited, when it closed, half of it (a second at least): a
    /// server that stops answering a connection (none of them `starved`).
    pub stalled: Option<u64>,
    /// TCP: the age, when the window closed, of each request still waiting.
    pub waiting: Samples,
}

impl Tally {
    /// `samples` and the requests still waiting (at their age so far, a
    /// lower bound of their latency): percentiles a starved connection
    /// moves too.
    fn with_waiting(&self) -> Samples {
        let mut all = self.samples.clone();
        all.0.extend_from_slice(&self.waiting.0);
        all
    }
}

/// The measurement window's two edges, as a load mode meets them: `close`
/// comes before the mode lets its connections go.
pub trait Window {
    fn open(&mut self);
    fn close(&mut self);
}

fn json_num<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

fn main() {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("muxnet-loadgen: {e}\n{}", args::USAGE);
            std::process::exit(2);
        }
    };
    proc_stats::raise_fd_limit();
    let clock = Clock::new(&args);
    let mut probe = proc_stats::ServerProbe::new(args.server_pid, args.server_cpu);
    let run = if args.download {
        download::run
    } else if args.chat {
        chat::run
    } else if args.udp {
        udp::run
    } else {
        tcp::run
    };
    let mut tally = run(&args, clock, &mut probe);
    // A run that ended before its window (a failed connect) is read now.
    probe.close();
    let (server_cpu, core_other, rss) = (probe.cpu, probe.core_other, probe.rss_kb);
    let secs = args.duration.as_secs_f64();
    let msgs_per_s = tally.messages as f64 / secs;
    // A download's message is one byte; the echo modes' is a payload.
    let message_bytes = if args.download { 1 } else { args.payload };
    let per_cpu = server_cpu.filter(|&c| c > 0.0).map(|c| (tally.messages as f64 / c).round());
    let mut all = tally.with_waiting();
    println!(
        "{{\"mode\":\"{}\",\"connections\":{},\"idle\":{},\"payload\":{},\"depth\":{},\"duration_s\":{},\"messages\":{},\"msgs_per_s\":{:.0},\"mb_per_s\":{:.2},\
         \"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"starved\":{},\"stalled\":{},\"p99_waiting_us\":{},\"p999_waiting_us\":{},\"errors\":{},\"verification_errors\":{},\"lost\":{},\"server_cpu_s\":{},\"server_core_other_s\":{},\"msgs_per_server_cpu_s\":{},\"server_rss_kb\":{}}}",
        if args.download {
            "download"
        } else if args.chat {
            "chat"
        } else if args.udp {
            "udp"
        } else {
            "tcp"
        },
        args.connections,
        args.idle,
        args.payload,
        args.depth,
        secs,
        tally.messages,
        msgs_per_s,
        msgs_per_s * message_bytes as f64 / 1e6,
        json_num(tally.samples.quantile(0.5)),
        json_num(tally.samples.quantile(0.99)),
        json_num(tally.samples.quantile(0.999)),
        json_num(tally.starved),
        json_num(tally.stalled),
        json_num(tally.starved.and_then(|_| all.quantile(0.99))),
        json_num(tally.starved.and_then(|_| all.quantile(0.999))),
        tally.errors,
        tally.verification_errors,
        if args.udp { tally.lost.to_string() } else { "null".into() },
        json_num(server_cpu.map(|c| format!("{c:.3}"))),
        json_num(core_other.map(|c| format!("{c:.3}"))),
        json_num(per_cpu),
        json_num(rss),
    );
}
