//! The pure-Rust reference proxy: muxnet-core's `pipe()` with no
//! JavaScript at all, the ceiling the proxy cells measure `muxnet/proxy`
//! and the node:net proxy against. Each client is joined to a new
//! connection to the upstream at once (no balancing, no failover: what is
//! left when those and Node are taken away).
//!
//! ```text
//! cargo run --release --example proxy-reference -- [--host 127.0.0.1] [--port 0] [--splice] -- UPSTREAM COMMAND...
//! ```
//! Starts `UPSTREAM COMMAND` (a server that prints `listening on tcp HOST:PORT`;
//! on Linux it is killed when this process dies), then prints `listening on tcp
//! HOST:PORT` once it forwards to it; runs until killed.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};

use muxnet_core::{BackendKind, BindOptions, Config, Event, PipeOptions, Reactor, ReadSpace, Token};

struct Args {
    host: IpAddr,
    port: u16,
    splice: bool,
    upstream: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { host: [127, 0, 0, 1].into(), port: 0, splice: false, upstream: Vec::new() };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--splice" => args.splice = true,
            "--" => args.upstream = it.by_ref().collect(),
            "--host" | "--port" => {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                if flag == "--host" {
                    args.host = value.parse().map_err(|_| format!("bad host (an IP address): {value}"))?;
                } else {
                    args.port = value.parse().map_err(|_| format!("bad port: {value}"))?;
                }
            }
            _ => return Err(format!("unknown option: {flag}")),
        }
    }
    if args.upstream.is_empty() {
        return Err("no upstream command after --".into());
    }
    Ok(args)
}

/// Starts the upstream server and returns where it listens.
fn start_upstream(argv: &[String]) -> Result<SocketAddr, String> {
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::piped());
    die_with_this_process(&mut command);
    let mut child = command.spawn().map_err(|e| format!("start {}: {e}", argv[0]))?;
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("the upstream exited before listening".into());
        }
        if let Some(addr) = line.split("listening on tcp ").nth(1).and_then(|rest| rest.split_whitespace().next()) {
            let addr = addr.parse().map_err(|_| format!("the upstream's address: {addr}"))?;
            // The rest of its output (a line of counts every few seconds) is read
            // and dropped: held unread, the pipe would fill and block its writes.
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            return Ok(addr);
        }
    }
}

/// Linux: the upstream is killed with this process however it dies (the
/// bench stops it with SIGTERM, then SIGKILL). Elsewhere it outlives a killed proxy.
#[cfg(target_os = "linux")]
fn die_with_this_process(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl(2) is async-signal-safe, and the closure touches no
    // memory of the parent, as `pre_exec` requires between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_this_process(_command: &mut Command) {}

/// Joins the client `conn` to a new connection to `upstream` (still
/// connecting: what the client sends waits in its queue).
fn join_upstream(reactor: &mut Reactor, conn: Token, upstream: SocketAddr, options: PipeOptions) -> std::io::Result<()> {
    let up = reactor.connect(upstream, None)?;
    let joined = reactor.set_no_delay(up, true).and_then(|()| reactor.pipe_with(conn, up, options));
    if joined.is_err() {
        let _ = reactor.close(up);
    }
    joined
}

fn main() {
    let fail = |e: String| -> ! {
        eprintln!("proxy-reference: {e}");
        std::process::exit(2);
    };
    let args = parse_args().unwrap_or_else(|e| fail(e));
    let upstream = start_upstream(&args.upstream).unwrap_or_else(|e| fail(e));
    let mut reactor = Reactor::new(BackendKind::Mio, Config::default()).expect("create reactor");
    let listener =
        reactor.listen(&BindOptions::new(SocketAddr::new(args.host, args.port)), true).unwrap_or_else(|e| fail(format!("bind: {e}")));
    println!("listening on tcp {} (upstream {upstream})", reactor.local_addr(listener).expect("local address"));

    let options = PipeOptions { splice: args.splice };
    // Piped connections raise no `Data`: the slab only has to exist.
    let mut slab = vec![0u8; 64 * 1024];
    let mut events = Vec::new();
    loop {
        events.clear();
        reactor.turn(&mut ReadSpace::new(&mut slab, 0), &mut events, None).expect("reactor turn");
        for event in &events {
            match *event {
                Event::Accept { conn, .. } => {
                    if let Err(e) = join_upstream(&mut reactor, conn, upstream, options) {
                        eprintln!("proxy-reference: upstream: {e}");
                        let _ = reactor.close(conn);
                    }
                }
                Event::AcceptError { ref error, .. } => eprintln!("proxy-reference: accept: {error}"),
                // A pair closes itself: an end is passed on, an error resets the partner.
                _ => {}
            }
        }
    }
}
