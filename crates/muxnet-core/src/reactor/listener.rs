//! Listeners: accepting within a budget, and pausing on `EMFILE`/`ENFILE`
//! (Windows: `WSAEMFILE`/`WSAENOBUFS`) until a socket closes.

use std::io;

use super::{Entry, Event, Kind, Reactor, Shared};
use crate::backend::Token;
use crate::connection::Connection;
use crate::socket::{self, BindOptions, Listener, Socket, Stream};

/// No descriptor left for the accept: `EMFILE`/`ENFILE`; on Windows
/// `WSAEMFILE` and `WSAENOBUFS` (no socket left), as Winsock numbers them.
fn is_fd_exhaustion(e: &io::Error) -> bool {
    #[cfg(unix)]
    let codes = [libc::EMFILE, libc::ENFILE];
    #[cfg(windows)]
    let codes = [10024 /* WSAEMFILE */, socket::os_errno::ENOBUFS];
    e.raw_os_error().is_some_and(|code| codes.contains(&code))
}

/// Accepts one connection; TCP ones get `TCP_NODELAY` if `no_delay`, else
/// keep the listener's (as libuv, which only ever turns it on: an inherited
/// listener's `TCP_NODELAY` passes to its connections).
fn accept(listener: &Listener, no_delay: bool) -> io::Result<Stream> {
    match listener {
        Listener::Tcp(l) => {
            let (stream, _) = l.accept()?;
            // A failure here only costs latency.
            if no_delay {
                let _ = stream.set_nodelay(true);
            }
            Ok(Stream::Tcp(stream))
        }
        #[cfg(unix)]
        Listener::Unix { listener, .. } => Ok(Stream::Unix(listener.accept()?.0)),
    }
}

impl Reactor {
    /// Binds and listens; accepted connections get `TCP_NODELAY` if `no_delay`.
    pub fn listen(&mut self, opts: &BindOptions, no_delay: bool) -> io::Result<Token> {
        let listener = socket::tcp_listen(opts)?;
        self.insert(
            Socket::Listener(Listener::Tcp(listener)),
            Kind::Listener { no_delay, accept_paused: false, held: false, shared: Shared::No },
        )
    }

    /// Listens on a Unix-domain path (IPC); the socket file is removed when
    /// the listener closes. On Linux a leading NUL byte names an abstract
    /// socket.
    #[cfg(unix)]
    pub fn listen_unix(&mut self, path: &str, backlog: i32) -> io::Result<Token> {
        let listener = socket::unix_listen(path, backlog)?;
        self.insert(Socket::Listener(listener), Kind::Listener { no_delay: false, accept_paused: false, held: false, shared: Shared::No })
    }

    /// Starts accepting again on a listener paused by `EMFILE`/`ENFILE`.
    pub fn resume_accept(&mut self, token: Token) -> io::Result<()> {
        if let Kind::Listener { accept_paused, .. } = &mut self.entry(token)?.kind {
            if *accept_paused {
                *accept_paused = false;
                self.paused_listeners.remove(&token);
                self.sync_interest(token)?;
                self.carry.push(token);
            }
        }
        Ok(())
    }

    /// Holds accepting (`on`) or lets it go on: while held, pending
    /// connections wait in the kernel's backlog, un-accepted. Independent of
    /// the `EMFILE` pause; a serial server holds between connections.
    pub fn hold_accept(&mut self, token: Token, on: bool) -> io::Result<()> {
        let Kind::Listener { held, .. } = &mut self.entry(token)?.kind else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a listener"));
        };
        if *held == on {
            return Ok(());
        }
        *held = on;
        self.sync_interest(token)?;
        if !on {
            // Connections that queued while held raise no new edge.
            self.carry.push(token);
        }
        Ok(())
    }

    /// A closed fd is room for an accept that failed with `EMFILE`. Only
    /// the paused listeners are visited: closing stays O(1).
    pub(super) fn resume_paused_listeners(&mut self) {
        if self.paused_listeners.is_empty() {
            return;
        }
        let paused: Vec<Token> = self.paused_listeners.iter().copied().collect();
        for token in paused {
            let _ = self.resume_accept(token);
        }
    }

    pub(super) fn accept(&mut self, token: Token, no_delay: bool, shared: Shared, events: &mut Vec<Event>) {
        // The connection kept for want of a watchable fd goes first, on the lowest fd free now.
        #[cfg(unix)]
        if let Some(stream) = self.unwatchable.remove(&token) {
            if !self.admit(token, stream.on_lowest_fd(), events) {
                return;
            }
        }
        let budget = if shared == Shared::Yes { 1 } else { self.accept_allowance };
        for _ in 0..budget {
            let Ok(Entry { socket: Socket::Listener(listener), .. }) = self.entry(token) else { return };
            match accept(listener, no_delay) {
                Ok(stream) => {
                    self.counters.accepts += 1;
                    if !self.admit(token, stream, events) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The peer gave up before we got to it: nothing to report.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                // Windows says so with WSAECONNRESET too, which libuv skips alike.
                #[cfg(windows)]
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                Err(error) => {
                    // Out of fds: paused until a close makes room or the owner's
                    // retry. On Windows any other error pauses too: mio re-arms a
                    // socket only on WouldBlock, and carried every turn a lasting
                    // error would spin; the owner's retry resumes it.
                    if is_fd_exhaustion(&error) || cfg!(windows) {
                        self.pause_accepting(token);
                    }
                    events.push(Event::AcceptError { listener: token, error });
                    return;
                }
            }
        }
        self.accepts_capped = true;
        self.carry.push(token);
    }

    /// Takes in an accepted connection; false if it had to wait instead:
    /// one on an fd the backend cannot watch (`select`: past `FD_SETSIZE`)
    /// is kept and its listener paused, as for `EMFILE`, and reported each
    /// time, as `EMFILE` is: the room may come from a close the reactor does
    /// not see (another fd of the process), which the owner's retry finds.
    fn admit(&mut self, listener: Token, stream: Stream, events: &mut Vec<Event>) -> bool {
        #[cfg(unix)]
        if let Err(error) = self.backend.can_watch(stream.raw_fd()) {
            self.unwatchable.insert(listener, stream);
            self.pause_accepting(listener);
            events.push(Event::AcceptError { listener, error });
            return false;
        }
        // Registered once the owner has handled this turn's events (see `register_accepted`).
        let conn = self.insert_unregistered(Socket::Stream(stream), Kind::Stream(Connection::default()));
        events.push(Event::Accept { listener, conn });
        true
    }

    /// Level-triggered backends would report the same pending connection
    /// forever: stop listening for it until an fd is free.
    fn pause_accepting(&mut self, token: Token) {
        if let Ok(Entry { kind: Kind::Listener { accept_paused, .. }, .. }) = self.entry(token) {
            *accept_paused = true;
            self.paused_listeners.insert(token);
            self.counters.accept_pauses += 1;
        }
        let _ = self.sync_interest(token);
    }
}
