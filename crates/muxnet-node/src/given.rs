//! The fds given to muxnet (`listen({ fd })`, `new net.Socket({ fd })`,
//! dgram `bind({ fd })`) while a reactor serves a copy of one: its number
//! stays open, as node's handle owns it, so no file or socket opened
//! meanwhile gets that number, and another thread given it (systemd's
//! socket, listened on by each worker) finds the socket still there. Counted
//! for the whole process (one fd table for every thread): the last copy to
//! close lets the number go.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use napi_derive::napi;

static HELD: Mutex<BTreeMap<i32, u32>> = Mutex::new(BTreeMap::new());

/// One more copy of `fd` serves, on some thread.
#[napi(catch_unwind)]
pub fn hold_given_fd(fd: i32) {
    *HELD.lock().unwrap_or_else(PoisonError::into_inner).entry(fd).or_default() += 1;
}

/// A copy of `fd` closed; true if it was the last, and the caller closes
/// the number now.
#[napi(catch_unwind)]
pub fn release_given_fd(fd: i32) -> bool {
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    match held.get_mut(&fd) {
        Some(n) if *n > 1 => {
            *n -= 1;
            false
        }
        Some(_) => held.remove(&fd).is_some(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_copy_to_close_lets_the_number_go_once() {
        // A number no real fd has: the test holds it alone.
        let fd = -7;
        hold_given_fd(fd);
        hold_given_fd(fd);
        assert!(!release_given_fd(fd), "another thread's copy still serves it");
        assert!(release_given_fd(fd), "the last copy closed");
        assert!(!release_given_fd(fd), "let go already: not closed twice");
    }
}
