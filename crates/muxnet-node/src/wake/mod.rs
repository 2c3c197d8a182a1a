//! How the JS thread learns that the backend has events, behind one small
//! trait: whatever fires calls [`OnReadable::on_readable`] on the JS
//! thread, which then runs a reactor turn.
//!
//! - [`fd_watch`] (Unix): a libuv `uv_poll_t` on Node's loop, watching the
//!   poller's own fd (epoll, kqueue), or the notify pipe of a waiter.
//! - [`waiter`]: a thread blocked in the backend (`poll`, `select`; IOCP),
//!   which notifies the JS thread and never touches a socket.
//! - [`thread_wake`] (Windows): the waiter's notification as a Node-API
//!   threadsafe function, since libuv cannot watch IOCP from an addon.
//!
//! Beside them, [`closing`] (Unix) calls back in libuv's closing phase,
//! where node:net's sockets emit `'close'`, and [`loop_phase`] (Unix) just
//! before and after each poll phase, where libuv runs its pending queue.
//!
//! Nothing here knows the reactor: the driver implements the trait.

#[cfg(unix)]
pub mod closing;
#[cfg(unix)]
pub mod fd_watch;
#[cfg(unix)]
pub mod loop_phase;
#[cfg(windows)]
pub mod thread_wake;
#[cfg(unix)]
mod uv;
#[cfg(unix)]
pub use uv::libuv_watches;
pub mod waiter;

/// What a wake-up calls, on the JS thread, when the backend may have events.
pub trait OnReadable {
    fn on_readable(&self);
}
