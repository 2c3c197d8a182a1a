//! The pure-Rust reference echo server: muxnet-core with no JavaScript, the
//! line the benchmark measures everything else against.
//!
//! ```text
//! cargo run --release --example echo-reference -- [--port 7000] [--host 127.0.0.1] [--backend mio|poll|select] [--udp]
//! ```
//! Prints `listening on tcp|udp HOST:PORT (backend)` once ready; runs until killed.

use std::net::{IpAddr, SocketAddr};

use muxnet_core::{BackendKind, BindOptions, Config, Event, Reactor, ReadSpace, Token};

struct Args {
    host: IpAddr,
    port: u16,
    backend: BackendKind,
    udp: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { host: [127, 0, 0, 1].into(), port: 7000, backend: BackendKind::Mio, udp: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--udp" {
            args.udp = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => args.port = value.parse().map_err(|_| format!("bad port: {value}"))?,
            "--host" => args.host = value.parse().map_err(|_| format!("bad host (an IP address): {value}"))?,
            "--backend" => args.backend = BackendKind::from_name(&value).ok_or_else(|| format!("unknown backend: {value}"))?,
            _ => return Err(format!("unknown option: {flag}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("echo-reference: {e}");
        std::process::exit(2);
    });
    let mut reactor = Reactor::new(args.backend, Config::default()).expect("create reactor");
    let bind = BindOptions::new(SocketAddr::new(args.host, args.port));
    let server = if args.udp { reactor.udp_bind(&bind) } else { reactor.listen(&bind, true) }.unwrap_or_else(|e| {
        eprintln!("echo-reference: bind {}:{}: {e}", args.host, args.port);
        std::process::exit(1);
    });
    let addr = reactor.local_addr(server).expect("local address");
    println!("listening on {} {addr} ({})", if args.udp { "udp" } else { "tcp" }, args.backend.name());

    // Data is echoed within the turn that read it, so the slab is reused
    // from the start every turn.
    let mut slab = vec![0u8; 1 << 20];
    let mut events = Vec::new();
    let mut sent = Vec::new();
    loop {
        events.clear();
        reactor.turn(&mut ReadSpace::new(&mut slab, 0), &mut events, None).expect("reactor turn");
        for event in &events {
            match *event {
                Event::Data { conn, offset, len } => echo(&mut reactor, conn, &slab[offset..offset + len]),
                // Echoes leave together after the batch, one `sendmmsg` per
                // socket; a full send buffer drops them, as UDP may.
                Event::Message { socket, offset, len, from } => {
                    let _ = reactor.send_later(socket, &slab[offset..offset + len], Some(from));
                }
                Event::End { conn, .. } => {
                    let _ = reactor.shutdown(conn);
                }
                Event::Drain { conn } => {
                    let _ = reactor.resume(conn);
                }
                Event::AcceptError { ref error, .. } => eprintln!("echo-reference: accept: {error}"),
                _ => {}
            }
        }
        if reactor.queued_sends() > 0 {
            reactor.flush_sends(&mut sent);
        }
    }
}

fn echo(reactor: &mut Reactor, conn: Token, data: &[u8]) {
    match reactor.write(conn, data) {
        // Stop reading from a peer that does not read its echoes.
        Ok(queued) if queued > 0 => {
            let _ = reactor.pause(conn);
        }
        Ok(_) => {}
        Err(_) => {
            let _ = reactor.close(conn);
        }
    }
}
