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

fn hold(fd: i32) {
    *HELD.lock().unwrap_or_else(PoisonError::into_inner).entry(fd).or_default() += 1;
}

/// A copy of `fd` closed; true if it was the last.
fn release(fd: i32) -> bool {
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

/// The given fds one reactor serves copies of. JavaScript lets each go when
/// its server or socket closes; what is left when the reactor shuts down
/// (a worker torn down with its sockets open) goes then.
#[derive(Default)]
pub struct Holds(Vec<i32>);

impl Holds {
    pub fn add(&mut self, fd: i32) {
        hold(fd);
        self.0.push(fd);
    }

    #[cfg(unix)]
    pub fn contains(&self, fd: i32) -> bool {
        self.0.contains(&fd)
    }

    /// True if no copy serves `fd` any more: the caller closes the number.
    pub fn remove(&mut self, fd: i32) -> bool {
        match self.0.iter().position(|&held| held == fd) {
            Some(at) => {
                self.0.swap_remove(at);
                release(fd)
            }
            None => false,
        }
    }

    /// Lets every hold go, closing the numbers no other copy serves.
    pub fn release_all(&mut self) {
        for fd in self.0.drain(..) {
            if release(fd) {
                close_given_fd(fd);
            }
        }
    }
}

/// Closes a given fd as node:net's handle would have (its last copy let go,
/// or a `listen({ fd })` that failed) — unless a copy still serves it on
/// some thread, or it is 0, 1 or 2, which libuv never closes. Closed here,
/// not with `fs.closeSync`, which warns in a worker. Returns 0, or the
/// negative errno of a failed close (a number its giver closed already is
/// no error: libuv's close ignores that too).
#[napi(catch_unwind)]
pub fn close_given_fd(fd: i32) -> i32 {
    // Held while closing: a thread taking a copy meanwhile finds the number still there.
    let held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    if fd <= 2 || held.contains_key(&fd) {
        return 0;
    }
    #[cfg(unix)]
    {
        // SAFETY: no copy serves the number any more and the caller gives it up: nothing of
        // muxnet's uses it after this.
        if unsafe { libc::close(fd) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EBADF) {
                return -crate::errno::errno_of(&e);
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_copy_to_close_lets_the_number_go_once() {
        // Numbers no real fd has: the test holds them alone.
        let (mut main, mut worker) = (Holds::default(), Holds::default());
        main.add(-7);
        worker.add(-7);
        assert!(!main.remove(-7), "the worker's copy still serves it");
        assert!(!main.remove(-7), "let go already: not twice");
        assert!(worker.remove(-7), "the last copy closed");
        worker.add(-8);
        worker.release_all();
        assert!(!worker.remove(-8), "let go with the reactor");
    }
}
