//! The waiter thread, for backends with no fd libuv can watch (`poll`,
//! `select`; IOCP on Windows). The JS thread arms it with a
//! [`BlockingWait`]; the thread blocks there and, when something is ready,
//! writes a byte to a notify pipe that an `FdWatch` on Node's loop sees.
//! The JS thread then does the I/O itself and re-arms: the thread never
//! touches a socket, and there are no locks on the I/O path.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use muxnet_core::{BlockingWait, Wake};

pub struct Waiter {
    arm: Option<mpsc::Sender<Box<dyn BlockingWait>>>,
    thread: Option<JoinHandle<()>>,
    notify: UnixStream,
    /// Interrupts a `block` in progress (the backend's own waker).
    wake: Arc<dyn Wake>,
}

impl Waiter {
    pub fn spawn(wake: Arc<dyn Wake>) -> io::Result<Waiter> {
        let (notify, signal) = UnixStream::pair()?;
        notify.set_nonblocking(true)?;
        signal.set_nonblocking(true)?;
        let (arm, armed) = mpsc::channel::<Box<dyn BlockingWait>>();
        let thread = std::thread::Builder::new().name("muxnet-waiter".into()).spawn(move || {
            for mut wait in armed {
                // An error (an fd closed under the snapshot) is reported
                // like readiness: the JS thread's own wait sorts it out.
                let _ = wait.block(None);
                // A full pipe already says "ready".
                let _ = (&signal).write(&[1]);
            }
        })?;
        Ok(Waiter { arm: Some(arm), thread: Some(thread), notify, wake })
    }

    /// The fd that turns readable when the armed wait returned.
    pub fn notify_fd(&self) -> RawFd {
        self.notify.as_raw_fd()
    }

    /// Consumes the notification before the JS thread's turn.
    pub fn acknowledge(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.notify).read(&mut buf), Ok(n) if n > 0) {}
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
