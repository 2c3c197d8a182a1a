//! Handing a connection to another reactor (another thread): the acceptor
//! of a worker pool on a platform with no `SO_REUSEPORT` balancing. The
//! socket object itself waits in a process-wide table under a ticket, so
//! no raw fd crosses threads and only what was detached can be adopted.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::{gone, Entry, Kind, Reactor};
use crate::backend::Token;
use crate::connection::Connection;
use crate::socket::{Socket, Stream};

/// Detached connections by ticket, until a reactor adopts or discards them.
fn parked() -> &'static Mutex<HashMap<u64, Stream>> {
    static PARKED: OnceLock<Mutex<HashMap<u64, Stream>>> = OnceLock::new();
    PARKED.get_or_init(Default::default)
}

static NEXT_TICKET: AtomicU64 = AtomicU64::new(1);

/// `fd` is a detached connection's, waiting for its adopter.
#[cfg(unix)]
pub(super) fn parked_holds_fd(fd: std::os::fd::RawFd) -> bool {
    parked().lock().unwrap_or_else(PoisonError::into_inner).values().any(|s| s.raw_fd() == fd)
}

fn not_parked() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no detached connection has this ticket")
}

impl Reactor {
    /// Takes an idle connection out of this reactor without closing it and
    /// returns the ticket another reactor adopts it by. Idle: connected,
    /// open both ways, not paused, not piped, nothing queued (a
    /// just-accepted connection is): the adopting reactor starts it afresh.
    pub fn detach(&mut self, token: Token) -> io::Result<u64> {
        match self.entries.get(token) {
            Some(Entry { socket: Socket::Stream(_), kind: Kind::Stream(c), .. })
                if c.pipe().is_none()
                    && c.output_idle()
                    && !c.connecting
                    && !c.paused
                    && !c.read_closed
                    && !c.ending
                    && !c.write_closed => {}
            Some(_) => return Err(io::Error::new(io::ErrorKind::InvalidInput, "only an idle connection can be detached")),
            None => return Err(gone(&self.closed_in_turn, token)),
        }
        let Some(mut entry) = self.entries.remove(token) else { return Err(gone(&self.closed_in_turn, token)) };
        if entry.registered.is_some() {
            // Left registered, its readiness would name a stale token here:
            // ignored, as a closed socket's is.
            let _ = self.backend.deregister(&mut entry.socket);
            self.interest_changes += 1;
        }
        // Checked above; the arm keeps a mistake from being a panic.
        let Socket::Stream(stream) = entry.socket else { return Err(io::Error::from(io::ErrorKind::InvalidInput)) };
        let ticket = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
        parked().lock().unwrap_or_else(PoisonError::into_inner).insert(ticket, stream);
        Ok(ticket)
    }

    /// Adopts the connection detached under `ticket` (by any reactor of the
    /// process); input that arrived meanwhile is read on the next turn.
    pub fn adopt(&mut self, ticket: u64) -> io::Result<Token> {
        let stream = parked().lock().unwrap_or_else(PoisonError::into_inner).remove(&ticket).ok_or_else(not_parked)?;
        let token = self.insert(Socket::Stream(stream), Kind::Stream(Connection::default()))?;
        self.carry.push(token);
        Ok(token)
    }
}

/// Closes a detached connection nobody will adopt (its adopter is gone).
pub fn discard_detached(ticket: u64) -> io::Result<()> {
    parked().lock().unwrap_or_else(PoisonError::into_inner).remove(&ticket).map(drop).ok_or_else(not_parked)
}
