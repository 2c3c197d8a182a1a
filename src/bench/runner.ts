/**
 * Runs the matrix: each server in its own process (pinned to one core where
 * there are two), the native load client against it cell by cell (pinned to
 * the other), one JSON line back per cell.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { ioSyscalls, type ReactorStats } from '../stats';
import path from 'node:path';
import type { Cell } from './cells';
import type { ServerSpec } from './servers';

/** What muxnet-loadgen prints (one JSON line). */
export interface Load {
  /** The measured window, in seconds. */
  duration_s: number;
  messages: number;
  msgs_per_s: number;
  mb_per_s: number;
  p50_us: number | null;
  p99_us: number | null;
  p999_us: number | null;
  /** TCP: active connections that got no echo in the window (in no latency sample). */
  starved?: number | null;
  /** TCP: active connections answered in the window, then with a request unanswered, when it closed, for half of it (a second at least). */
  stalled?: number | null;
  /** TCP: p99 / p99.9 with each request still waiting at the window's end counted at its age. */
  p99_waiting_us?: number | null;
  p999_waiting_us?: number | null;
  /** Connections that failed (connect, reset, …). */
  errors: number;
  /** What the load client said of them on stderr, its last lines (added by the runner). */
  said?: string;
  verification_errors: number;
  lost?: number | null;
  server_cpu_s: number | null;
  /** Seconds the server's CPU spent on anything else in the window (other processes, steal), where it is pinned. */
  server_core_other_s?: number | null;
  msgs_per_server_cpu_s: number | null;
  server_rss_kb: number | null;
}

export interface Result {
  server: string;
  label: string;
  wake: string;
  cell: string;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  load?: Load;
  /** Server RSS before the cell's connections opened. */
  rssBeforeKb?: number;
  /** (RSS with the idle connections − RSS before) / idle connections. */
  bytesPerIdle?: number;
  /** Idle connections the cell held: fewer than it asks for where the fd limit is lower (see `capped`). */
  idleHeld?: number;
  /** Why `idleHeld` is less than the cell's count. */
  capped?: string;
  /** Over the rounds: this result is the median one of `ok`. */
  rounds?: { ok: number; of: number; msgsPerS: number[] };
  /** What the server's reactor did during the cell (muxnet servers). */
  reactor?: ReactorDelta;
  /** CPU seconds over the load client's whole run, of the server and of the Redis behind it (the cross-server chat). */
  redisCpu?: { server: number; redis: number };
}

/** A muxnet server's reactor counters over one cell. */
export interface ReactorDelta {
  turns: number;
  events: number;
  /** Waits, reads, writes, datagrams received and sent: the syscalls of the I/O path. */
  syscalls: number;
  writes: number;
}

/** The counters that moved between two samples. */
function delta(before: ReactorStats, after: ReactorStats): ReactorDelta {
  return {
    turns: after.turns - before.turns,
    events: after.events - before.events,
    syscalls: ioSyscalls(after) - ioSyscalls(before),
    writes: after.writes.calls - before.writes.calls,
  };
}

export interface RunOptions {
  host: string;
  warmup: number;
  duration: number;
  /** The whole matrix runs this many times; each cell reports its median round. */
  rounds: number;
  onProgress(line: string): void;
}

export const loadgenBinary = path.join(__dirname, '..', '..', 'target', 'release', 'muxnet-loadgen');

/**
 * `taskset -c N`: the server on one CPU, the load client on another, where
 * taskset exists and this process may run on two. The pair is the first two
 * CPUs of this process's affinity, kept in `MUXNET_BENCH_CPUS` for the
 * processes it starts: a server's own helpers (the proxy's upstream, the chat
 * cluster's Redis) go beside the load client, and a server pinned to one CPU
 * would find no second one in its own affinity.
 */
export interface Pinning {
  /** `taskset -c N` for the server, or nothing. */
  server: string[];
  /** `taskset -c M` for the load client, or nothing. */
  client: string[];
  note: string;
}

export function pinning(): Pinning {
  let affinity: string;
  try {
    affinity = cpuAffinity(process.pid);
  } catch {
    return { server: [], client: [], note: 'taskset not found: no pinning' };
  }
  const cpus = parseCpuList(process.env.MUXNET_BENCH_CPUS ?? affinity);
  if (cpus.length < 2) return { server: [], client: [], note: 'one CPU: no pinning' };
  const [server, client] = cpus;
  process.env.MUXNET_BENCH_CPUS = `${server},${client}`;
  return {
    server: ['taskset', '-c', String(server)],
    client: ['taskset', '-c', String(client)],
    note: `server pinned to CPU ${server}, load client to CPU ${client} (taskset)`,
  };
}

/** The CPUs process `pid` may run on, as taskset lists them (`0,2-3`); throws without taskset. */
export function cpuAffinity(pid: number): string {
  return execFileSync('taskset', ['-pc', String(pid)], { encoding: 'utf8' }).split(':').pop()!.trim();
}

/** A CPU list as taskset prints it (`0,2-3`), in order. */
function parseCpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`not a CPU list (like 0,1 or 2-3): '${list.trim()}'`);
    for (let cpu = Number(m[1]); cpu <= Number(m[2] ?? m[1]); cpu++) cpus.push(cpu);
  }
  return cpus;
}

/**
 * The hard limit on open files (`ulimit -Hn`): the most connections one
 * process can hold. Infinity where there is no such limit (Windows) or it
 * is unlimited.
 */
export function fdHardLimit(): number {
  if (process.platform === 'win32') return Infinity;
  try {
    const n = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) ? n : Infinity;
  } catch {
    return Infinity;
  }
}

/** Fds a server or the load client needs besides its connections (stdio, poller, pipes, libuv's). */
const FD_RESERVE = 100;

/** Loopback connections per source address: below Linux's ~28 000 ephemeral ports. */
const PORTS_PER_SOURCE = 25_000;

/**
 * The idle connections a cell can hold under the fd limit (the load client
 * holds one fd per connection, a server one, a proxy two: client side and
 * upstream side), and why fewer if so.
 */
export function idleCapacity(cell: Cell, fdLimit: number): { idle: number; capped?: string } {
  const fdsPerConnection = cell.servers === 'proxy' ? 2 : 1;
  const room = Math.floor((fdLimit - FD_RESERVE) / fdsPerConnection) - cell.connections;
  if (cell.idle <= room) return { idle: cell.idle };
  return { idle: Math.max(0, room), capped: `${cell.idle} idle asked, ${Math.max(0, room)} held: the hard fd limit (ulimit -Hn) is ${fdLimit}` };
}

/** Source addresses for `connections` loopback connections (127.0.0.1 … 127.0.0.N, IPv4 only). */
function sourcesFor(connections: number, host: string): number {
  return host.startsWith('127.') ? Math.min(255, Math.ceil(connections / PORTS_PER_SOURCE)) : 1;
}

/**
 * The command that starts a server with its soft fd limit raised to the
 * hard one (Node does it for itself; the Rust reference does not).
 */
function withFdLimit(argv: string[]): string[] {
  if (process.platform === 'win32') return argv;
  return ['sh', '-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', ...argv];
}

/** User + system CPU seconds of `pid` from /proc (Linux; USER_HZ is 100 there); NaN elsewhere. */
function cpuSeconds(pid: number): number {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return NaN;
  // The fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const text = readFileSync(stat, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resident memory from /proc (Linux); NaN where there is no /proc. */
function rssKb(pid: number): number {
  const status = `/proc/${pid}/status`;
  if (!existsSync(status)) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(status, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const children = new Set<ChildProcess>();
/** `killAll()` was called: the run is stopping. */
let stopping = false;

/**
 * Stops every process the benchmark started (also on Ctrl-C, SIGTERM or an
 * error): SIGTERM first, so each cleans up after itself (the proxy server
 * stops its upstream, the file server removes its 256 MiB file), then
 * SIGKILL for any still running a second later.
 */
export async function killAll(): Promise<void> {
  stopping = true;
  const running = [...children];
  for (const child of running) child.kill('SIGTERM');
  const exits = running.map((child) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve))));
  await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
  for (const child of children) child.kill('SIGKILL');
  children.clear();
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  // What a cell under way starts while the run stops ends before it has begun.
  if (stopping) child.kill('SIGTERM');
  return child;
}

interface Started {
  child: ChildProcess;
  pid: number;
  port: number;
  stop(): Promise<void>;
  /** Its reactor's counters now (SIGUSR2), if it is a muxnet server. */
  sample(): Promise<ReactorStats | undefined>;
  /** The Redis it runs with (`redis pid N` in its listening line), if any. */
  redisPid?: number;
  /** How it ended, with the end of its stderr, if it has exited. */
  exited(): string | undefined;
}

/** Starts a server and waits for its `listening on` line. */
function startServer(spec: ServerSpec, protocol: 'tcp' | 'udp', host: string, pin: string[]): Promise<Started> {
  const { cmd, args, env } = spec.command(protocol, host);
  // `sh` and `taskset` exec: the pid is the server's own.
  const argv = withFdLimit([...pin, cmd, ...args]);
  const child = track(spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${spec.label}: not listening after 10 s\n${out}`));
    }, 10_000);
    const onOutput = (d: Buffer) => {
      out += d;
      const m = /listening on (?:tcp |udp )?\[?[^\]\s]+?\]?:(\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', onOutput);
      child.stderr!.resume();
      const lines = statsLines(child);
      const stop = () =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done();
          child.once('exit', () => done());
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), 3000).unref();
        });
      const sample = async () => {
        if (!spec.stats || child.exitCode !== null) return undefined;
        const next = lines.next();
        child.kill('SIGUSR2');
        return next;
      };
      const exited = () => {
        if (child.exitCode === null && child.signalCode === null) return undefined;
        const tail = lastLines(out);
        return `the server exited (${child.signalCode ?? `code ${child.exitCode}`})${tail ? `: ${tail}` : ''}`;
      };
      const redis = /redis pid (\d+)/.exec(out);
      resolve({ child, pid: child.pid!, port: Number(m[1]), stop, sample, redisPid: redis ? Number(redis[1]) : undefined, exited });
    };
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${spec.label}: exited (${code}) before listening\n${out}`));
    });
  });
}

/** A child's last three lines of output on one line: what it said before it failed. */
function lastLines(output: string): string {
  return output.trim().split('\n').slice(-3).join(' / ');
}

/** The `muxnet stats {…}` lines a server prints on SIGUSR2, one at a time. */
function statsLines(child: ChildProcess): { next(): Promise<ReactorStats | undefined> } {
  let buffered = '';
  let waiting: ((s: ReactorStats | undefined) => void) | undefined;
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.startsWith('muxnet stats ') && waiting) {
        waiting(JSON.parse(line.slice('muxnet stats '.length)) as ReactorStats);
        waiting = undefined;
      }
    }
  });
  return {
    next: () =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 2000);
        waiting = (s) => {
          clearTimeout(timer);
          resolve(s);
        };
      }),
  };
}

/**
 * Runs the load client for one cell (`taskset` execs, so `pid` is the server
 * itself), with `idle` idle connections, pinned by `pin.client`; it measures
 * what else used the server's CPU where `pin.server` pins it.
 */
function runLoad(cell: Cell, idle: number, host: string, port: number, pid: number, opts: RunOptions, pin: Pinning): Promise<Load> {
  const args = [
    loadgenBinary,
    '--host', host,
    '--port', String(port),
    '--connections', String(cell.connections),
    '--payload', String(cell.payload),
    '--depth', String(cell.depth),
    '--idle', String(idle),
    '--sources', String(sourcesFor(cell.connections + idle, host)),
    '--warmup', String(opts.warmup),
    '--duration', String(opts.duration),
    '--server-pid', String(pid),
    ...(pin.server.length > 0 ? ['--server-cpu', pin.server[2]] : []),
    ...(cell.protocol === 'udp' ? ['--udp'] : []),
    ...(cell.group === 'chat' ? ['--chat'] : []),
    ...(cell.group === 'file' ? ['--download'] : []),
  ];
  const argv = [...pin.client, ...args];
  const child = track(spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        if (code !== 0) throw new Error(`exit ${code}`);
        const load = JSON.parse(line) as Load;
        // Why connections failed, in the load client's words (its last lines).
        if (load.errors > 0 && err.trim()) load.said = lastLines(err);
        resolve(load);
      } catch (e) {
        reject(new Error(`load client failed (${(e as Error).message}): ${lastLines(err)}`));
      }
    });
  });
}

/**
 * Why a cell's figures cannot stand, if they cannot: a server that answers
 * wrong bytes is fast at nothing worth measuring. (Connection errors have a
 * column; connections starved or stalled, which an overloaded server can
 * leave and node:net does at 10 000, a note under the table.)
 */
export function unsound(load: Load): string | undefined {
  if (load.verification_errors > 0) return `${load.verification_errors} bytes came back wrong, out of place or more than were sent`;
  return undefined;
}

/**
 * Runs every cell against every server, `opts.rounds` times over; results in
 * matrix order. A shared machine has slow spells that last seconds to
 * minutes: whole rounds, rather than back-to-back repeats, spread them over
 * different servers, each round starting one server further along (so a
 * spell that comes at the same time in every round lands on a different
 * server each time), and the median round of each cell leaves them out.
 */
export async function runMatrix(specs: ServerSpec[], allCells: Cell[], opts: RunOptions): Promise<Result[]> {
  const rounds: Result[][] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    const tag = opts.rounds > 1 ? `round ${round}/${opts.rounds} ` : '';
    const shift = (round - 1) % specs.length;
    const order = [...specs.slice(shift), ...specs.slice(0, shift)];
    rounds.push(await runRound(order, allCells, { ...opts, onProgress: (line) => opts.onProgress(`${tag}${line}`) }));
  }
  const memoryCells = new Set(allCells.filter((c) => c.group === 'memory').map((c) => c.id));
  const same = (a: Result) => (b: Result) => a.server === b.server && a.cell === b.cell;
  return rounds[0].map((first) => median(rounds.map((results) => results.find(same(first))!), first, memoryCells.has(first.cell)));
}

/**
 * The median of a cell's ok rounds (by msgs/s, or, for a memory cell, by
 * bytes per idle connection: an idle-scaling cell holds idle connections
 * too, but what it reports is throughput). Latency percentiles and CPU
 * cost are each the median of the rounds' own: a slow spell of the VM that
 * lands in one round's tail moves the figure no more than it moves msgs/s.
 */
export function median(all: Result[], first: Result, byMemory: boolean): Result {
  const key = (r: Result) => (byMemory ? r.bytesPerIdle : r.load?.msgs_per_s) ?? 0;
  const ok = all.filter((r) => r.status === 'ok').sort((a, b) => key(a) - key(b));
  if (ok.length === 0) return first;
  const mid = ok[(ok.length - 1) >> 1];
  const rounds = { ok: ok.length, of: all.length, msgsPerS: ok.map((r) => r.load?.msgs_per_s ?? 0) };
  if (mid.load === undefined) return { ...mid, rounds };
  const loads = ok.map((r) => r.load!);
  const load = { ...mid.load };
  for (const field of ['p50_us', 'p99_us', 'p999_us', 'p99_waiting_us', 'p999_waiting_us', 'msgs_per_server_cpu_s'] as const) {
    load[field] = middle(loads.map((l) => l[field] ?? null));
  }
  return { ...mid, load, rounds };
}

/**
 * The median of the known values, or null. For an even count (a round
 * failed), the mean of the two middles: the lower alone flatters a latency.
 */
function middle(values: (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
  if (known.length === 0) return null;
  const half = known.length >> 1;
  return known.length % 2 === 1 ? known[half] : (known[half - 1] + known[half]) / 2;
}

async function runRound(specs: ServerSpec[], allCells: Cell[], opts: RunOptions): Promise<Result[]> {
  const pin = pinning();
  const fdLimit = fdHardLimit();
  const results: Result[] = [];
  // Each cell names the servers that run it (echo, chat, proxy or file).
  const cellsFor = (spec: ServerSpec) => allCells.filter((c) => c.servers === spec.kind);
  const total = specs.reduce((n, spec) => n + cellsFor(spec).length, 0);
  let done = 0;
  for (const spec of specs) {
    const base = { server: spec.id, label: spec.label, wake: spec.wake };
    const skip = (cell: Cell, reason: string) => {
      results.push({ ...base, cell: cell.id, status: 'skipped', reason });
      done++;
    };
    for (const protocol of ['tcp', 'udp'] as const) {
      const mine = cellsFor(spec).filter((c) => c.protocol === protocol);
      if (mine.length === 0) continue;
      if (spec.unavailable) {
        mine.forEach((c) => skip(c, spec.unavailable!));
        continue;
      }
      if (protocol === 'udp' && !spec.udp) {
        mine.forEach((c) => skip(c, 'no UDP server'));
        continue;
      }
      if (protocol === 'tcp' && spec.udpOnly) {
        mine.forEach((c) => skip(c, 'no TCP server'));
        continue;
      }
      let server: Started | undefined;
      try {
        for (const cell of mine) {
          if (spec.limit && cell.connections + cell.idle > spec.limit.connections) {
            skip(cell, spec.limit.reason);
            continue;
          }
          opts.onProgress(`[${done + 1}/${total}] ${spec.label} (${spec.wake}) · ${cell.id}`);
          // A fresh server per memory cell, so its baseline is clean.
          if (server && cell.group === 'memory') {
            await server.stop();
            server = undefined;
          }
          server ??= await startServer(spec, protocol, opts.host, pin.server);
          if (cell.group === 'memory') {
            // The baseline is taken warm: the cell's traffic without its idle connections
            // first, so the code pages, JIT code and heap sizing its first traffic brings
            // (about 3.5 MB for a Node server) are not counted against the connections.
            await runLoad(cell, 0, opts.host, server.port, server.pid, { ...opts, warmup: 0, duration: Math.min(opts.duration, 0.5) }, pin);
          }
          const rssBeforeKb = rssKb(server.pid);
          const { idle, capped } = idleCapacity(cell, fdLimit);
          try {
            const before = await server.sample();
            const cpuBefore = server.redisPid ? [cpuSeconds(server.pid), cpuSeconds(server.redisPid)] : [];
            const load = await runLoad(cell, idle, opts.host, server.port, server.pid, opts, pin);
            const fault = server.exited() ?? unsound(load);
            if (fault) throw new Error(fault);
            // Both over the same span: the load client's whole run (joins, warm-up, measurement).
            const redisCpu = server.redisPid ? { server: cpuSeconds(server.pid) - cpuBefore[0], redis: cpuSeconds(server.redisPid) - cpuBefore[1] } : undefined;
            const after = await server.sample();
            const bytesPerIdle = idle > 0 && load.server_rss_kb !== null ? ((load.server_rss_kb - rssBeforeKb) * 1024) / idle : undefined;
            const reactor = before && after ? delta(before, after) : undefined;
            results.push({ ...base, cell: cell.id, status: 'ok', load, rssBeforeKb, bytesPerIdle, idleHeld: idle, capped, reactor, redisCpu });
          } catch (e) {
            results.push({ ...base, cell: cell.id, status: 'failed', reason: (e as Error).message });
            // A server that failed a cell is restarted for the next one.
            await server.stop();
            server = undefined;
          }
          done++;
        }
      } catch (e) {
        for (const cell of mine.filter((c) => !results.some((r) => r.server === spec.id && r.cell === c.id))) {
          results.push({ ...base, cell: cell.id, status: 'failed', reason: (e as Error).message.split('\n')[0] });
          done++;
        }
      } finally {
        await server?.stop();
      }
    }
  }
  return results;
}
