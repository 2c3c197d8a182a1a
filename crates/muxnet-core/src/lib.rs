//! muxnet-core: a single-threaded, readiness-based socket reactor.
//!
//! A [`Reactor`] owns non-blocking TCP and UDP sockets and one [`Backend`]
//! (mio's epoll/kqueue/IOCP, `poll(2)` or `select(2)`). Each
//! [`Reactor::turn`] waits for readiness, performs every ready accept,
//! connect, read and flush, and reports the outcome as a batch of
//! [`Event`]s, with received bytes placed in a caller-owned slab. The
//! owner (a Rust program, or the Node binding) reacts by calling
//! [`Reactor::write`], [`Reactor::shutdown`], [`Reactor::close`], ….
//!
//! No Node here: this crate is tested with `cargo test` over loopback.

pub mod backend;
pub mod codec;
mod connection;
mod file;
mod reactor;
mod socket;
#[cfg(target_os = "linux")]
mod splice;
pub mod stats;
mod token;
mod udp_batch;

pub use backend::{Backend, BackendKind, Blockable, BlockingWait, FdLimitError, Interest, Pollable, RawHandle, Readiness, Token, Wake};
#[cfg(unix)]
pub use backend::{PipeWaker, SelfPipe};
pub use connection::WRITE_TURN;
pub use reactor::{discard_detached, Config, Event, PipeOptions, Reactor, ReadSpace, LEAN_READ, SLOW_BATCH};
#[cfg(unix)]
pub use socket::{never_connected, socket_kind};
pub use socket::{Address, BindOptions, KeepAlive, Listener, Membership, MulticastInterface, Peer, Socket, SocketBuffer, Stream};
pub use stats::Stats;
