//! What a reactor has done, counted as it happens, and what it holds now
//! (see [`crate::Reactor::stats`]). Plain integer adds on the paths that
//! already make a syscall: counting costs nothing measurable.

/// Calls of one kind of syscall that did something, and the bytes they moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCount {
    pub calls: u64,
    pub bytes: u64,
}

impl IoCount {
    pub(crate) fn add(&mut self, other: IoCount) {
        self.calls += other.calls;
        self.bytes += other.bytes;
    }

    pub(crate) fn one(&mut self, bytes: usize) {
        self.calls += 1;
        self.bytes += bytes as u64;
    }
}

/// Buckets of [`Stats::events_per_turn`]: turns with 0 events, 1, 2–3,
/// 4–7, …, 256–511, and 512 or more.
pub const EVENT_BUCKETS: usize = 11;

/// A reactor's counters since it was made, and its sockets now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Turns of the loop.
    pub turns: u64,
    /// Events reported, all turns.
    pub events: u64,
    /// Turns by their number of events (see [`EVENT_BUCKETS`]).
    pub events_per_turn: [u64; EVENT_BUCKETS],
    /// Waits on the backend (`epoll_wait`, `poll`, `select`).
    pub waits: u64,
    /// Connections accepted.
    pub accepts: u64,
    /// Times a listener stopped accepting because fds ran out (`EMFILE`):
    /// each retry that still finds none pauses, and counts, again.
    pub accept_pauses: u64,
    /// Stream reads that returned data or the end (bytes: what they read).
    pub reads: IoCount,
    /// Stream reads and datagram receives that found no input
    /// (`WouldBlock`): what proving a socket drained costs; a short read
    /// (a short `recvmmsg` batch on an unconnected UDP socket) skips it
    /// where edges allow.
    pub empty_reads: u64,
    /// Stream writes that the kernel took bytes from.
    pub writes: IoCount,
    /// Receive syscalls that returned datagrams (`recvmmsg` on Linux takes
    /// up to 64 in one call; bytes: the datagrams' payload).
    pub receives: IoCount,
    /// Send syscalls that sent datagrams (`sendmmsg` on Linux sends up to
    /// 64 in one call; bytes: the datagrams' payload).
    pub sends: IoCount,
    /// Datagrams received and sent: with `receives.calls` and
    /// `sends.calls`, the datagrams per syscall.
    pub datagrams_received: u64,
    pub datagrams_sent: u64,
    /// Bytes read from one side of a pipe and written to the other.
    pub relayed: u64,
    /// Of `relayed`, the bytes moved with `splice(2)` (Linux; see
    /// `Config::splice`), not copied through user space.
    pub spliced: u64,
    /// Kernel pipes made for splicing (a `pipe2` each; a drained pair's
    /// pipe is kept for the next splice, so under steady load this stays
    /// near the number of pairs splicing at once).
    pub kernel_pipes: u64,
    /// Sockets open now, by kind and state.
    pub listeners: u64,
    pub connections: u64,
    pub connecting: u64,
    /// Connections whose peer has ended (FIN received) or that have ended.
    pub half_closed: u64,
    pub piped: u64,
    pub datagram_sockets: u64,
    /// Bytes waiting in write queues now (the kernel refused them, or corked).
    pub queued_bytes: u64,
    /// Listeners paused by `EMFILE` now.
    pub paused_listeners: u64,
}

impl Stats {
    /// Counts one turn that reported `events` events.
    pub(crate) fn turn(&mut self, events: usize) {
        self.turns += 1;
        self.events += events as u64;
        let bucket = (usize::BITS - events.leading_zeros()) as usize;
        self.events_per_turn[bucket.min(EVENT_BUCKETS - 1)] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_fall_in_power_of_two_buckets() {
        let mut stats = Stats::default();
        for events in [0, 1, 2, 3, 4, 7, 8, 511, 512, 100_000] {
            stats.turn(events);
        }
        assert_eq!(stats.events_per_turn, [1, 1, 2, 2, 1, 0, 0, 0, 0, 1, 2]);
        assert_eq!(stats.turns, 10);
    }
}
