//! What a backend reports, read straight from it (no reactor): urgent data
//! is not an end. A pipe side held for backpressure is watched for its
//! errors only and is watched no more once its peer has ended; an urgent
//! byte taken for an end would leave a later reset unseen.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::DEADLINE;
use muxnet_core::{Backend, BackendKind, Interest, Readiness, Socket, Stream, Token};
use socket2::SockRef;

backend_tests!(urgent_data_is_not_an_end);

/// Waits until the backend reports `token`; returns what it said (merged
/// over the waits of one poll, as the reactor does).
fn next_readiness(backend: &mut dyn Backend, token: Token, what: &str) -> Readiness {
    let start = Instant::now();
    let mut out = Vec::new();
    loop {
        out.clear();
        backend.wait(&mut out, Some(Duration::from_millis(50))).unwrap();
        if let Some(r) = out.iter().find(|r| r.token == token) {
            return *r;
        }
        assert!(start.elapsed() < DEADLINE, "[{}] no readiness: {what}", backend.name());
    }
}

/// A peer sends bytes with an urgent byte among them: readable, perhaps
/// `hup` (mio reads on past the mark), never `ended`. Then both directions
/// shut: `ended` where the backend can tell (mio, poll), never on select.
fn urgent_data_is_not_an_end(kind: BackendKind) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (ours, _) = listener.accept().unwrap();
    ours.set_nonblocking(true).unwrap();
    let mut socket = Socket::Stream(Stream::Tcp(::mio::net::TcpStream::from_std(ours)));
    let mut backend = kind.create().unwrap();
    let token = Token::from_bits(7);
    backend.register(&mut socket, token, Interest::READABLE).unwrap();
    peer.write_all(b"before").unwrap();
    SockRef::from(&peer).send_out_of_band(b"!").unwrap();
    peer.write_all(b"after").unwrap();
    let r = next_readiness(backend.as_mut(), token, "the urgent byte");
    assert!(r.readable && !r.ended && !r.error, "[{}] urgent data: {r:?}", kind.name());
    // Both ways shut: poll says POLLHUP, mio read-closed; select nothing.
    let Socket::Stream(Stream::Tcp(stream)) = &socket else { unreachable!() };
    stream.shutdown(Shutdown::Write).unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    let start = Instant::now();
    let ended = loop {
        let r = next_readiness(backend.as_mut(), token, "the peer's end");
        if r.ended || kind == BackendKind::Select || start.elapsed() > DEADLINE {
            break r.ended;
        }
    };
    assert_eq!(ended, kind != BackendKind::Select, "[{}] the peer's end", kind.name());
    backend.deregister(&mut socket).unwrap();
}
