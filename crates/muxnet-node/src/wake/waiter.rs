//! The waiter thread, for backends with no fd libuv can watch (`poll`,
//! `select`; IOCP on Windows). The JS thread arms it with a
//! [`BlockingWait`]; the thread blocks there and, when something is ready,
//! calls `notify` (a pipe write that a libuv watch sees, or a threadsafe
//! function on Windows). The JS thread then does the I/O itself and
//! re-arms: the thread never touches a socket, and the I/O path takes no
//! lock.

use std::cell::Cell;
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
    /// How many waits were armed.
    armed: Cell<u64>,
    /// Where the thread is, told when it comes out of a wait.
    progress: Arc<(Mutex<Progress>, Condvar)>,
}

#[derive(Default)]
struct Progress {
    /// Inside `block`.
    blocking: bool,
    /// Waits done, their notifications written.
    done: u64,
}

/// A snapshot to block on, and the longest to block (`None`: until ready).
type Armed = (Box<dyn BlockingWait>, Option<Duration>);

/// How long [`Waiter::leave_block`] waits at most: an interrupted wait
/// returns at once, so this bounds only a thread the OS does not run.
const LEAVE_BLOCK_LIMIT: Duration = Duration::from_secs(1);

impl Waiter {
    pub fn spawn(wake: Arc<dyn Wake>, notify: Box<dyn Fn() + Send>) -> std::io::Result<Waiter> {
        let (arm, armed) = mpsc::channel::<Armed>();
        let progress = Arc::new((Mutex::new(Progress::default()), Condvar::new()));
        let told = progress.clone();
        let thread = std::thread::Builder::new().name("muxnet-waiter".into()).spawn(move || {
            let set = |change: &dyn Fn(&mut Progress)| {
                // A poisoned lock still holds its counts; nothing panics while holding it.
                change(&mut told.0.lock().unwrap_or_else(|e| e.into_inner()));
                told.1.notify_all();
            };
            for (mut wait, limit) in armed {
                set(&|p| p.blocking = true);
                // An error (an fd closed under the snapshot) is reported
                // like readiness, and so is the limit passing: the JS
                // thread's own wait sorts it out.
                let _ = wait.block(limit);
                // Told before it says it is out: one out of `leave_block`
                // has its notification on the way to libuv already.
                notify();
                set(&|p| {
                    p.blocking = false;
                    p.done += 1;
                });
            }
        })?;
        Ok(Waiter { arm: Some(arm), thread: Some(thread), wake, armed: Cell::new(0), progress })
    }

    pub fn arm(&self, wait: Box<dyn BlockingWait>, limit: Option<Duration>) {
        if let Some(arm) = &self.arm {
            // Fails only if the thread is gone, which `Drop` alone causes.
            if arm.send((wait, limit)).is_ok() {
                self.armed.set(self.armed.get() + 1);
            }
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
        self.come_out(&|p| p.blocking);
    }

    /// [`Waiter::leave_block`] for every wait armed, a wait the thread has
    /// not taken up yet included: its notification written when this
    /// returns, though the OS had not run the thread since it was armed.
    pub fn finish_waits(&self) {
        let armed = self.armed.get();
        self.come_out(&|p| p.done < armed);
    }

    /// Interrupts the thread while `busy` says it is in a wait that counts,
    /// and returns once it is out of it.
    fn come_out(&self, busy: &dyn Fn(&Progress) -> bool) {
        let (lock, out) = &*self.progress;
        let progress = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !busy(&progress) {
            return;
        }
        self.interrupt();
        drop(out.wait_timeout_while(progress, LEAVE_BLOCK_LIMIT, |p| busy(p)));
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
