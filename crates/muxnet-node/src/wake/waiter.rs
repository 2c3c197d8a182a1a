//! The waiter thread, for backends with no fd libuv can watch (`poll`,
//! `select`; IOCP on Windows). The JS thread arms it with a
//! [`BlockingWait`]; the thread blocks there and, when something is ready,
//! calls `notify` (a pipe write that a libuv watch sees, or a threadsafe
//! function on Windows). The JS thread then does the I/O itself and
//! re-arms: the thread never touches a socket, and the I/O path takes no
//! lock.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use muxnet_core::{BlockingWait, Wake};

pub struct Waiter {
    arm: Option<mpsc::Sender<Armed>>,
    thread: Option<JoinHandle<()>>,
    /// Interrupts a `block` in progress (the backend's own waker).
    wake: Arc<dyn Wake>,
    /// Whether the thread is inside `block`, told when it comes out.
    blocking: Arc<(Mutex<bool>, Condvar)>,
}

/// A snapshot to block on, and the longest to block (`None`: until ready).
type Armed = (Box<dyn BlockingWait>, Option<Duration>);

/// How long [`Waiter::leave_block`] waits at most: an interrupted wait
/// returns at once, so this bounds only a thread the OS does not run.
const LEAVE_BLOCK_LIMIT: Duration = Duration::from_secs(1);

impl Waiter {
    pub fn spawn(wake: Arc<dyn Wake>, notify: Box<dyn Fn() + Send>) -> std::io::Result<Waiter> {
        let (arm, armed) = mpsc::channel::<Armed>();
        let blocking = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = blocking.clone();
        let thread = std::thread::Builder::new().name("muxnet-waiter".into()).spawn(move || {
            let set = |on: bool| {
                // A poisoned flag still holds a bool; nothing panics while holding it.
                *flag.0.lock().unwrap_or_else(|e| e.into_inner()) = on;
                flag.1.notify_all();
            };
            for (mut wait, limit) in armed {
                set(true);
                // An error (an fd closed under the snapshot) is reported
                // like readiness, and so is the limit passing: the JS
                // thread's own wait sorts it out.
                let _ = wait.block(limit);
                // Told before it says it is out: one out of `leave_block`
                // has its notification on the way to libuv already.
                notify();
                set(false);
            }
        })?;
        Ok(Waiter { arm: Some(arm), thread: Some(thread), wake, blocking })
    }

    pub fn arm(&self, wait: Box<dyn BlockingWait>, limit: Option<Duration>) {
        if let Some(arm) = &self.arm {
            // Fails only if the thread is gone, which `Drop` alone causes.
            let _ = arm.send((wait, limit));
        }
    }

    /// Makes an armed wait return now (its snapshot is stale).
    pub fn interrupt(&self) {
        let _ = self.wake.wake();
    }

    /// Interrupts a `block` in progress and returns once the thread is out
    /// of it, its notification written. poll(2) and select(2) hold every
    /// file they watch until they return, so a socket closed meanwhile
    /// stays open in the kernel: a listener keeps its port (another
    /// process's bind of it fails with `EADDRINUSE`), a connection its FIN.
    /// A wait armed after this sees the descriptor closed and holds nothing.
    pub fn leave_block(&self) {
        let (lock, out) = &*self.blocking;
        let blocking = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !*blocking {
            return;
        }
        self.interrupt();
        drop(out.wait_timeout_while(blocking, LEAVE_BLOCK_LIMIT, |blocking| *blocking));
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        drop(self.arm.take());
        self.interrupt();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
