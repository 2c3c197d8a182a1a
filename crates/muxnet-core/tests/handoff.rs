//! Handing a connection from one reactor to another (a worker pool's
//! acceptor): the adopter reads what arrived meanwhile and what follows,
//! writes, and closes; a discarded one is closed; a ticket works once.

mod common;

use std::io::Read;
use std::net::Shutdown;

use common::*;
use muxnet_core::{discard_detached, BackendKind};

backend_tests!(detach_adopt_discard);

fn detach_adopt_discard(kind: BackendKind) {
    let mut acceptor = Harness::new(kind);
    let mut worker = Harness::new(kind);
    let (_, addr) = acceptor.listen("127.0.0.1:0");
    let mut peer = client(addr);
    let conn = acceptor.accept(1)[0];
    let ticket = acceptor.r.detach(conn).unwrap();
    assert!(acceptor.r.write(conn, b"x").is_err(), "the token is gone from the acceptor");
    // Sent before the adoption: no new edge announces it.
    send(&mut peer, b"early ");
    let adopted = worker.r.adopt(ticket).unwrap();
    assert!(worker.r.adopt(ticket).is_err(), "a ticket is adopted once");
    send(&mut peer, b"late");
    assert_eq!(worker.read_exact(adopted, 10), b"early late");
    assert_eq!(worker.r.write(adopted, b"reply").unwrap(), 0);
    let mut got = [0u8; 5];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"reply");
    peer.shutdown(Shutdown::Write).unwrap();
    assert!(worker.read_to_end(adopted, "the peer's FIN").is_empty());
    assert!(acceptor.collect_for(std::time::Duration::from_millis(50)).is_empty(), "the acceptor hears nothing of it");

    // Detached and never adopted: discarding closes it.
    let mut other = client(addr);
    let conn = acceptor.accept(1)[0];
    let ticket = acceptor.r.detach(conn).unwrap();
    discard_detached(ticket).unwrap();
    assert!(discard_detached(ticket).is_err());
    assert_eq!(other.read(&mut [0u8; 1]).unwrap(), 0, "the peer sees the close");
}
