//! The waiter thread, for backends with no fd libuv can watch (`poll`,
//! `select`; IOCP on Windows). The JS thread arms it with a
//! [`BlockingWait`]; the thread blocks there and, when something is ready,
//! calls `notify` (a pipe write that a libuv watch sees, or a threadsafe
//! function on Windows). The JS thread then does the I/O itself and
//! re-arms: the thread never touches a socket, and the I/O path takes no
//! lock.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use muxnet_core::{BlockingWait, Wake};

pub struct Waiter {
    arm: Option<mpsc::Sender<Box<dyn BlockingWait>>>,
    thread: Option<JoinHandle<()>>,
    /// Interrupts a `block` in progress (the backend's own waker).
    wake: Arc<dyn Wake>,
}

impl Waiter {
    pub fn spawn(wake: Arc<dyn Wake>, notify: Box<dyn Fn() + Send>) -> std::io::Result<Waiter> {
        let (arm, armed) = mpsc::channel::<Box<dyn BlockingWait>>();
        let thread = std::thread::Builder::new().name("muxnet-waiter".into()).spawn(move || {
            for mut wait in armed {
                // An error (an fd closed under the snapshot) is reported
                // like readiness: the JS thread's own wait sorts it out.
                let _ = wait.block(None);
                notify();
            }
        })?;
        Ok(Waiter { arm: Some(arm), thread: Some(thread), wake })
    }

    pub fn arm(&self, wait: Box<dyn BlockingWait>) {
        if let Some(arm) = &self.arm {
            // Fails only if the thread is gone, which `Drop` alone causes.
            let _ = arm.send(wait);
        }
    }

    /// Makes an armed wait return now (its snapshot is stale).
    pub fn interrupt(&self) {
        let _ = self.wake.wake();
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
