//! The panic barrier. A panic must never unwind into Node (that aborts
//! the process): `#[napi(catch_unwind)]` guards every napi-rs entry point,
//! and [`catch`] every hand-written one (the hot calls, libuv callbacks,
//! the env cleanup hook). A caught panic becomes a JS error; the reactor
//! stays usable (no `RefCell` borrow outlives the unwinding).

use std::any::Any;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};

/// The error code of a caught panic, as JavaScript sees it.
pub const PANIC_CODE: &str = "ERR_MUXNET_PANIC";

/// Runs `f`; a panic comes back as its message.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    // Unwind safety: a panic leaves at worst a half-finished operation on
    // one socket; every borrow is released by the unwinding itself.
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| format!("muxnet internal error (a bug): {}", message(&*payload)))
}

fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "panic"
    }
}

/// A line on stderr for what has no JS caller to tell; never panics
/// itself (a closed stderr makes `eprintln!` panic).
pub fn warn(line: &str) {
    let _ = writeln!(std::io::stderr(), "muxnet: {line}");
}

/// Set by the test hook `Reactor.injectPanic`: where the next panic goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Injected {
    /// In the next binding call on the reactor.
    Call,
    /// In the next reactor turn (a libuv callback).
    Turn,
}

impl Injected {
    pub fn from_name(name: &str) -> Option<Injected> {
        match name {
            "call" => Some(Injected::Call),
            "turn" => Some(Injected::Turn),
            _ => None,
        }
    }
}
