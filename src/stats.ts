/**
 * What the reactors of this thread have done and hold now: `stats()` as
 * numbers, `metrics()` as the Prometheus text format for a scrape endpoint.
 *
 * ```ts
 * import { stats, metrics } from 'muxnet/fast';
 * const s = stats();            // this thread's reactor for $MUXNET_BACKEND or mio
 * console.log(s.writes.calls / s.turns, 'writes per turn');
 * http.createServer((req, res) => res.end(metrics())).listen(9100);
 * ```
 */
import type { ReactorStats } from './binding';
import { getReactor, openReactors } from './reactor';
import { outOfRange } from './errors';
import { validateType, type BackendName } from './options';

export type { IoCount, ReactorStats } from './binding';

/**
 * The counters of this thread's reactor for `backend` since it was made
 * (turns, events, syscalls that did something and the bytes they moved),
 * and its sockets now (by kind and state, bytes queued, slabs alive). One
 * pass over its sockets: meant for every few seconds, not every message.
 */
export function stats(backend?: BackendName): ReactorStats {
  return getReactor(backend).native.stats();
}

/**
 * On SIGUSR2, prints `muxnet stats <JSON>` (this thread's reactor for
 * `backend`): how the benchmark samples a server's counters before and
 * after a cell, to explain a figure (syscalls per message, events per turn).
 * @internal
 */
export function printStatsOnSignal(backend?: BackendName): void {
  process.on('SIGUSR2', () => console.log(`muxnet stats ${JSON.stringify(stats(backend))}`));
}

/** The longest delay `setInterval` keeps. */
const MAX_INTERVAL_MS = 2 ** 31 - 1;

/**
 * Every `seconds`, prints one line of what this thread's reactor for
 * `backend` did since the last: turns, events per turn, syscalls per event,
 * bytes each way, and what it holds now. Returns the (unref'd) interval;
 * `clearInterval` stops it. What `muxnet echo --stats` and `chat serve --stats` print.
 */
export function reportStats(label: string, backend: BackendName | undefined, seconds: number): NodeJS.Timeout {
  validateType(label, 'label', 'string');
  validateType(seconds, 'seconds', 'number');
  // setInterval takes at most 2^31-1 ms, and turns anything else (NaN, 0, too long) into 1 ms.
  if (!(seconds > 0 && seconds * 1000 <= MAX_INTERVAL_MS)) throw outOfRange('seconds', `> 0 && <= ${MAX_INTERVAL_MS / 1000}`, seconds);
  let last: ReactorStats = stats(backend);
  return setInterval(() => {
    const now = stats(backend);
    const turns = now.turns - last.turns;
    const events = now.events - last.events;
    const syscalls = ioSyscalls(now) - ioSyscalls(last);
    const per = (n: number, d: number) => (d > 0 ? (n / d).toFixed(2) : '-');
    const datagramsIn = now.datagramsReceived - last.datagramsReceived;
    const datagramsOut = now.datagramsSent - last.datagramsSent;
    console.log(
      `${label} stats: ${turns} turns, ${per(events, turns)} events/turn, ${per(syscalls, events)} syscalls/event, ` +
        `${now.reads.bytes - last.reads.bytes + now.receives.bytes - last.receives.bytes} B in, ` +
        `${now.writes.bytes - last.writes.bytes + now.sends.bytes - last.sends.bytes} B out; ` +
        `${now.connections} connections, ${now.queuedBytes} B queued, ${now.slabsAlive} slabs` +
        (datagramsIn + datagramsOut > 0
          ? `; datagrams: ${datagramsIn} in, ${per(datagramsIn, now.receives.calls - last.receives.calls)} per syscall, ` +
            `${datagramsOut} out, ${per(datagramsOut, now.sends.calls - last.sends.calls)} per syscall`
          : ''),
    );
    last = now;
  }, seconds * 1000).unref();
}

/**
 * The syscalls of the I/O path so far: waits, stream reads (those that
 * found nothing too) and writes, datagram receives and sends (a `recvmmsg`
 * or `sendmmsg` is one, for up to 64 datagrams).
 * @internal
 */
export function ioSyscalls(s: ReactorStats): number {
  return s.waits + s.reads.calls + s.emptyReads + s.writes.calls + s.receives.calls + s.sends.calls;
}

type Metric = [name: string, type: 'counter' | 'gauge', help: string, value: (s: ReactorStats) => number];

const METRICS: Metric[] = [
  ['muxnet_turns_total', 'counter', 'Turns of the reactor loop.', (s) => s.turns],
  ['muxnet_events_total', 'counter', 'Events reported to JavaScript.', (s) => s.events],
  ['muxnet_waits_total', 'counter', 'Waits on the readiness backend.', (s) => s.waits],
  ['muxnet_accepts_total', 'counter', 'Connections accepted.', (s) => s.accepts],
  ['muxnet_accept_pauses_total', 'counter', 'Times a listener paused because fds ran out (each retry still short counts again).', (s) => s.acceptPauses],
  ['muxnet_read_calls_total', 'counter', 'Stream reads that returned data or the end.', (s) => s.reads.calls],
  ['muxnet_read_bytes_total', 'counter', 'Bytes read from streams.', (s) => s.reads.bytes],
  ['muxnet_empty_reads_total', 'counter', 'Stream reads and datagram receives that found no input (WouldBlock).', (s) => s.emptyReads],
  ['muxnet_write_calls_total', 'counter', 'Stream writes the kernel took bytes from.', (s) => s.writes.calls],
  ['muxnet_write_bytes_total', 'counter', 'Bytes written to streams.', (s) => s.writes.bytes],
  ['muxnet_receive_calls_total', 'counter', 'Datagram receive syscalls (recvmmsg: up to 64 datagrams each).', (s) => s.receives.calls],
  ['muxnet_receive_bytes_total', 'counter', 'Bytes of datagrams received.', (s) => s.receives.bytes],
  ['muxnet_datagrams_received_total', 'counter', 'Datagrams received.', (s) => s.datagramsReceived],
  ['muxnet_send_calls_total', 'counter', 'Datagram send syscalls (sendmmsg: up to 64 datagrams each).', (s) => s.sends.calls],
  ['muxnet_send_bytes_total', 'counter', 'Bytes of datagrams sent.', (s) => s.sends.bytes],
  ['muxnet_datagrams_sent_total', 'counter', 'Datagrams sent.', (s) => s.datagramsSent],
  ['muxnet_relayed_bytes_total', 'counter', 'Bytes relayed between piped connections.', (s) => s.relayed],
  ['muxnet_spliced_bytes_total', 'counter', 'Bytes of those relayed moved with splice(2), not copied (Linux).', (s) => s.spliced],
  ['muxnet_kernel_pipes_total', 'counter', 'Kernel pipes made for splice(2) (Linux; kept and reused between bursts).', (s) => s.kernelPipes],
  ['muxnet_listeners', 'gauge', 'Listening sockets.', (s) => s.listeners],
  ['muxnet_paused_listeners', 'gauge', 'Listeners paused because fds ran out.', (s) => s.pausedListeners],
  ['muxnet_connections', 'gauge', 'Open connections.', (s) => s.connections],
  ['muxnet_connecting', 'gauge', 'Connections still connecting.', (s) => s.connecting],
  ['muxnet_half_closed', 'gauge', 'Connections ended in one direction.', (s) => s.halfClosed],
  ['muxnet_piped', 'gauge', 'Connections joined by pipe().', (s) => s.piped],
  ['muxnet_datagram_sockets', 'gauge', 'UDP sockets.', (s) => s.datagramSockets],
  ['muxnet_queued_bytes', 'gauge', 'Bytes waiting in write queues.', (s) => s.queuedBytes],
  ['muxnet_slabs_alive', 'gauge', 'Read slabs not yet collected.', (s) => s.slabsAlive],
];

/** Upper bounds of the events-per-turn buckets (the last is +Inf). */
const EVENT_BUCKET_BOUNDS = ['0', '1', '3', '7', '15', '31', '63', '127', '255', '511', '+Inf'];

/**
 * Every reactor of this thread, in the Prometheus text exposition format
 * (version 0.0.4), one series per backend: counters, gauges, and the
 * events-per-turn histogram.
 */
export function metrics(): string {
  const all = openReactors().map((r) => r.native.stats());
  const lines: string[] = [];
  for (const [name, type, help, value] of METRICS) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const s of all) lines.push(`${name}{backend="${s.backend}"} ${value(s)}`);
  }
  const histogram = 'muxnet_events_per_turn';
  lines.push(`# HELP ${histogram} Events reported by one turn.`, `# TYPE ${histogram} histogram`);
  for (const s of all) {
    let cumulative = 0;
    s.eventsPerTurn.forEach((n, i) => {
      cumulative += n;
      lines.push(`${histogram}_bucket{backend="${s.backend}",le="${EVENT_BUCKET_BOUNDS[i]}"} ${cumulative}`);
    });
    lines.push(`${histogram}_sum{backend="${s.backend}"} ${s.events}`, `${histogram}_count{backend="${s.backend}"} ${s.turns}`);
  }
  return `${lines.join('\n')}\n`;
}
