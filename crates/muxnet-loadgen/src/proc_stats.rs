//! The server's CPU time and memory from /proc, what else ran on its CPU,
//! and our own fd limit.

use crate::Window;

/// utime + stime of `pid`, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// Seconds CPU `cpu` has been busy since boot (user, nice, system, irq,
/// softirq, and steal: time the hypervisor gave to someone else).
pub fn core_busy_seconds(cpu: usize) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let name = format!("cpu{cpu}");
    let line = stat.lines().find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    let ticks: Vec<f64> = line.split_whitespace().skip(1).map(|t| t.parse().unwrap_or(0.0)).collect();
    // user nice system idle iowait irq softirq steal (guest time is in user already).
    let busy = [0, 1, 2, 5, 6, 7].iter().map(|&i| ticks.get(i).copied().unwrap_or(0.0)).sum::<f64>();
    Some(busy / clock_ticks())
}

pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The server's CPU time and memory over the measurement window, read as
/// the window opens and as it closes, while every connection is still held:
/// read after the load's sockets are dropped, the memory and CPU would count
/// the server at work on thousands of closes.
pub struct ServerProbe {
    pid: Option<u32>,
    /// The CPU the server is pinned to, if it is.
    core: Option<usize>,
    cpu_at_open: Option<f64>,
    core_at_open: Option<f64>,
    closed: bool,
    /// Server CPU seconds inside the window.
    pub cpu: Option<f64>,
    /// Seconds its CPU was busy with anything but the server inside the
    /// window: other processes, the hypervisor's steal. Its figures hold
    /// only where this is small.
    pub core_other: Option<f64>,
    /// Server RSS as the window closed.
    pub rss_kb: Option<u64>,
}

impl ServerProbe {
    pub fn new(pid: Option<u32>, core: Option<usize>) -> ServerProbe {
        ServerProbe { pid, core, cpu_at_open: None, core_at_open: None, closed: false, cpu: None, core_other: None, rss_kb: None }
    }
}

impl Window for ServerProbe {
    fn open(&mut self) {
        self.cpu_at_open = self.pid.and_then(cpu_seconds);
        self.core_at_open = self.core.and_then(core_busy_seconds);
    }

    /// Reads the window's end; only the first call counts.
    fn close(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        if let Some(pid) = self.pid {
            self.cpu = self.cpu_at_open.zip(cpu_seconds(pid)).map(|(start, end)| end - start);
            let busy = self.core_at_open.zip(self.core.and_then(core_busy_seconds)).map(|(start, end)| end - start);
            // Ticks are counted apart (per process, per CPU): a tick of difference is noise.
            self.core_other = busy.zip(self.cpu).map(|(busy, server)| (busy - server).max(0.0));
            self.rss_kb = rss_kb(pid);
        }
    }
}

/// 10 000 connections need more fds than the usual soft limit.
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid, writable rlimit for both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

// What they read is Linux's /proc.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id();
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(rss_kb(me).unwrap() > 100);
        assert!(cpu_seconds(u32::MAX).is_none());
    }

    #[test]
    fn probe_reads_the_window_once() {
        let me = std::process::id();
        let mut probe = ServerProbe::new(Some(me), None);
        probe.close();
        // Closed before it opened: memory, but no CPU span.
        assert!(probe.cpu.is_none() && probe.rss_kb.unwrap() > 100);
        let mut probe = ServerProbe::new(Some(me), None);
        probe.open();
        // Spin until our own CPU time moves on (a tick is 10 ms; a loaded machine may not run us).
        let start = cpu_seconds(me).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while cpu_seconds(me).unwrap() <= start && std::time::Instant::now() < deadline {}
        probe.close();
        let cpu = probe.cpu.unwrap();
        assert!(cpu > 0.0);
        probe.close();
        assert_eq!(probe.cpu, Some(cpu));
    }

    #[test]
    fn a_core_busy_with_another_process_is_told() {
        // This thread spins; the probe watches a process that sleeps, on every CPU in turn
        // until one shows the spin. The thread is pinned to the CPU probed: left free, a
        // loaded machine moved it to the other core at each turn (CI, 2026-12-06).
        let mut sleeper = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut seen = Vec::new();
        for cpu in 0..cpus {
            // SAFETY: a zeroed cpu_set_t is an empty set, CPU_SET writes inside it, and
            // sched_setaffinity(0, …) only reads it to pin the calling thread.
            let pinned = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
            };
            // (A CPU this process may not run on: nothing to spin there.)
            if !pinned {
                continue;
            }
            let mut probe = ServerProbe::new(Some(sleeper.id()), Some(cpu));
            probe.open();
            let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
            // SAFETY: sched_getcpu takes nothing and only reads the calling thread's CPU.
            let mut on = unsafe { libc::sched_getcpu() };
            while std::time::Instant::now() < until {
                // SAFETY: as above.
                on = unsafe { libc::sched_getcpu() };
            }
            probe.close();
            seen.push((cpu, on, probe.core_other.unwrap()));
        }
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        // The CPU it ended on was busy with it for most of the last 300 ms (not with the sleeper).
        assert!(seen.iter().any(|&(cpu, on, other)| on == cpu as i32 && other > 0.1), "{seen:?}");
    }
}
