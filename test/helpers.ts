// Shared test helpers: real sockets only, every wait bounded.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import dns from 'node:dns';
import { once } from 'node:events';
import { existsSync, fstatSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { BACKENDS } from '../src/options';
import { getReactor } from '../src/reactor';

export { BACKENDS };

/**
 * Where this process's open fds are listed: /proc on Linux, /dev/fd on
 * macOS and the BSDs. The suite runs on those (the release workflow's
 * test matrix); Windows has neither.
 */
const FD_DIR = existsSync('/proc/self/fd') ? '/proc/self/fd' : '/dev/fd';

/** Socket fds this process has open. */
export function socketFds(): number {
  let n = 0;
  for (const fd of readdirSync(FD_DIR)) {
    try {
      if (fstatSync(Number(fd)).isSocket()) n++;
    } catch {
      // closed while listing (the listing's own fd among them)
    }
  }
  return n;
}

export function openFds(): number {
  return readdirSync(FD_DIR).length;
}

/** mulberry32: numbers in [0, 1), small and seeded: the same sequence for the same seed, so a failing seed replays. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `size` bytes that depend on `seed`, so a body is checked byte for byte. */
export const pattern = (seed: number, size: number) => {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
};

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `pred` until true; fails with `what` after `ms`. */
export async function waitFor(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * Checks that the enclosing describe block gives back every socket fd its
 * tests took: counted before them (after making the backend's reactor,
 * whose own fds stay for the process), waited for after them.
 */
export function expectSocketFdsBack(backend?: string): void {
  let before = 0;
  beforeAll(() => {
    // Without one named, the default ($MUXNET_BACKEND's): poll's and select's hold socket fds of their own.
    getReactor(backend);
    before = socketFds();
  });
  afterAll(() => waitFor(() => socketFds() <= before, `socket fds back to ${before}`));
}

/** A node:net server that records, per connection, every byte it got. */
export async function sink() {
  const got: Buffer[][] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    const mine: Buffer[] = [];
    got.push(mine);
    sockets.push(s);
    s.on('data', (d) => mine.push(d));
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  return { got, port: (server.address() as net.AddressInfo).port, close };
}

/**
 * A port free a moment ago, for a program that binds it itself (a daemon's
 * listener, a connect's `localPort`). Never a "down" peer: see downPort.
 */
export async function freePort(): Promise<number> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * A port nothing listens on, below Linux's ephemeral range (32768 up): a
 * port just freed there could be handed to the next listen or connect on
 * port 0, this test's own or another's, and the "down" peer would answer.
 * `udp`: no datagram socket holds it (the kernel answers ICMP port unreachable).
 */
export async function downPort(kind: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const down = await new Promise<boolean>((resolve) => {
      if (kind === 'udp') {
        const probe = dgram.createSocket('udp4');
        probe.on('error', () => resolve(false));
        probe.bind(port, '127.0.0.1', () => probe.close(() => resolve(true)));
        return;
      }
      const probe = net.connect(port, '127.0.0.1', () => {
        probe.destroy();
        resolve(false);
      });
      probe.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    });
    if (down) return port;
  }
  throw new Error('no free port below the ephemeral range');
}

/**
 * A port where a connect hangs (Linux): a listener in another process that
 * never accepts, its queue filled, so the kernel drops later SYNs — the
 * connect neither completes nor fails. `close()` kills it.
 */
export async function hangingPort(host = '127.0.0.1'): Promise<{ port: number; close(): void }> {
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'never-accepts.js'), host], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = Number(await new Promise<string>((r) => child.stdout!.once('data', (d) => r(String(d)))));
  const fillers = Array.from({ length: 4 }, () => net.connect(port, host).on('error', () => {}));
  await new Promise((r) => setTimeout(r, 200));
  return {
    port,
    close() {
      for (const f of fillers) f.destroy();
      child.kill('SIGKILL');
    },
  };
}

/** Connects a node:net client and resolves once connected. */
export function netConnect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    sock.once('connect', () => resolve(sock));
    sock.once('error', reject);
  });
}

/**
 * Streams `total` random bytes of its own through an echo from `sock`;
 * resolves with the hash of what it sent and of what came back.
 */
export function streamThrough(sock: net.Socket, total: number): Promise<{ sent: string; got: string }> {
  return new Promise((resolve, reject) => {
    const sent = createHash('sha256');
    const got = createHash('sha256');
    let received = 0;
    let written = 0;
    sock.on('data', (d: Buffer) => {
      got.update(d);
      received += d.length;
      if (received === total) resolve({ sent: sent.digest('hex'), got: got.digest('hex') });
    });
    sock.on('error', reject);
    const pump = () => {
      while (written < total) {
        const chunk = randomBytes(Math.min(total - written, 1 + Math.floor(Math.random() * 65536)));
        sent.update(chunk);
        written += chunk.length;
        if (!sock.write(chunk)) return void sock.once('drain', pump);
      }
    };
    pump();
  });
}

/** `n` node:net clients, connected 100 at a time. */
export async function netClients(port: number, n: number): Promise<net.Socket[]> {
  const all: net.Socket[] = [];
  for (let i = 0; i < n; i += 100) all.push(...(await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => netConnect(port)))));
  return all;
}

/**
 * Through the echo server at `port`: 20 clients stream 2 MiB each way
 * while `leaving` others, connected beside them with bytes in flight,
 * reset in one tick. Fails unless each of the 20 gets back exactly its own
 * bytes and the server (`open()`: its open connections) closes the reset
 * ones. Returns the 20, still open.
 */
export async function resetWhileStreaming(port: number, leaving: number, open: () => number): Promise<net.Socket[]> {
  const streaming = await netClients(port, 20);
  const doomed = await netClients(port, leaving);
  for (const d of doomed) {
    d.on('error', () => {});
    d.write(randomBytes(1000));
  }
  await waitFor(() => open() === 20 + leaving, 'every connection');
  const results = Promise.all(streaming.map((s) => streamThrough(s, 2 << 20)));
  await sleep(10);
  // All in one tick: the resets reach the server together.
  for (const d of doomed) d.resetAndDestroy();
  for (const [i, { sent, got }] of (await results).entries()) {
    if (got !== sent) throw new Error(`streaming client ${i} got bytes that are not its own`);
  }
  await waitFor(() => open() === 20, `the ${leaving} reset connections to close (${open()} open)`);
  return streaming;
}

/** The memory `chunks` keep alive: the size of each distinct buffer they are views of. */
export function backingBytes(chunks: Uint8Array[]): number {
  return [...new Set(chunks.map((c) => c.buffer))].reduce((sum, b) => sum + b.byteLength, 0);
}

/** Sends `data` and reads until `data.length` bytes came back. */
export function roundTrip(sock: net.Socket, data: Buffer, ms = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('error', done);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(() => done(new Error(`echo timed out after ${got}/${data.length} bytes`)), ms);
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= data.length) done();
    };
    sock.on('data', onData);
    sock.once('error', done);
    sock.write(data);
  });
}

/** A node:dgram client on IPv4 loopback: what it received, as strings; `send` resolves once sent. */
export interface UdpClient {
  socket: dgram.Socket;
  got: string[];
  send(msg: string, port: number): Promise<void>;
}

export async function udpClient(): Promise<UdpClient> {
  const socket = dgram.createSocket('udp4');
  const got: string[] = [];
  socket.on('message', (m) => got.push(String(m)));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const send = (msg: string, port: number) => new Promise<void>((resolve, reject) => socket.send(msg, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  return { socket, got, send };
}

/** Ends the socket and resolves when it is fully closed. */
export function closeSocket(sock: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (sock.destroyed) return resolve();
    sock.once('close', () => resolve());
    sock.end();
  });
}

/**
 * What the chat announcement lines among `lines` say, one entry per event:
 * `TIME * a joined lobby; b quit` gives `a joined lobby` and `b quit`.
 */
export function announcements(lines: string[]): string[] {
  return lines.flatMap((l) => /^\S+ \* (.+)$/.exec(l)?.[1].split('; ') ?? []);
}

/** The built CLI (`npm run build:ts` makes it). */
export const CLI = path.join(__dirname, '..', 'dist', 'cli.js');

/** A CLI process: what it printed so far (stdout and stderr), and its exit code once it exits. */
export interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `muxnet ...args` as its own process; SIGKILLed after `killAfterMs` if it is still running then. */
export function runCli(args: string[], killAfterMs?: number): Running {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  if (killAfterMs !== undefined) {
    const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    void exited.then(() => clearTimeout(killer));
  }
  return { child, output: () => out, exited };
}

/** Starts `muxnet ...args` and resolves once it printed where it listens (`listening on tcp|udp HOST:PORT `). */
export function startCli(args: string[]): Promise<Running & { host: string; port: number }> {
  const run = runCli(args, 20_000);
  return new Promise((resolve, reject) => {
    run.child.stdout!.on('data', () => {
      const m = /listening on (tcp|udp) \[?([^\]\s]+?)\]?:(\d+) /.exec(run.output());
      if (m) resolve({ ...run, host: m[2], port: Number(m[3]) });
    });
    void run.exited.then((code) => reject(new Error(`exited ${code} before listening:\n${run.output()}`)));
  });
}

/**
 * Whether this process may send a datagram from a forged source port
 * (Linux, root for a raw socket, and python3 to open one).
 */
export const CAN_SPOOF_UDP = (() => {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  try {
    execFileSync('python3', ['-c', ''], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * Sends `payload` to 127.0.0.1:`port` from source port 0, which no socket
 * can bind: what a hostile host forges with a raw socket.
 */
export function sendFromPortZero(port: number, payload: string): void {
  sendForged(port, payload, '127.0.0.1', 0);
}

/**
 * Sends `payload` to 127.0.0.1:`port` as if from `address`:`sourcePort`
 * (a broadcast address, say, that no host sends from): a raw socket that
 * writes the IP header too. On loopback the kernel delivers it as it is.
 */
export function sendForged(port: number, payload: string, address: string, sourcePort: number): void {
  const script = `
import socket, struct, sys
port, payload, source, sport = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3], int(sys.argv[4])
udp = struct.pack('!HHHH', sport, port, 8 + len(payload), 0) + payload
# IPv4, a 20-byte header, TTL 64, UDP (no UDP checksum); the kernel fills in the header checksum and the id.
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0, socket.inet_aton(source), socket.inet_aton('127.0.0.1'))
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
raw.sendto(ip + udp, ('127.0.0.1', 0))
`;
  execFileSync('python3', ['-c', script, String(port), payload, address, String(sourcePort)]);
}

/**
 * A TCP socket's options as the kernel holds them: `keepAlive` is
 * SO_KEEPALIVE, then TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT (seconds,
 * seconds, probes); `noDelay` is TCP_NODELAY (0 or 1). Read by python3 from a
 * copy of its fd (the socket goes as the child's fd 3, as node:net and muxnet
 * hand a socket to a child's stdio).
 */
export async function tcpOptionsOf(socket: net.Socket): Promise<{ keepAlive: number[]; noDelay: number }> {
  const script = `
import socket
s = socket.socket(fileno=3)
print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE), *(s.getsockopt(socket.IPPROTO_TCP, o) for o in (socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL, socket.TCP_KEEPCNT)))
s.detach()
`;
  const child = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit', socket] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`python3 exited ${code}: ${out}`);
  const [noDelay, ...keepAlive] = out.trim().split(' ').map(Number);
  return { keepAlive, noDelay: noDelay! };
}

/**
 * Moves `chunk`'s ArrayBuffer away, as a transfer to another thread does: the
 * text that arrived, or undefined where Node refuses to move a pool marked
 * untransferable (`DataCloneError`, from Node 21; Node 20 copies it instead).
 */
export function moveAway(chunk: Buffer): string | undefined {
  try {
    const moved = structuredClone(chunk, { transfer: [chunk.buffer as ArrayBuffer] });
    return Buffer.from(moved.buffer, moved.byteOffset, moved.byteLength).toString();
  } catch (err) {
    if ((err as Error).name !== 'DataCloneError') throw err;
    return undefined;
  }
}

/**
 * Writes `chunk` to `sock` for as long as it takes it, again at each
 * `'drain'`, until it is destroyed; returns a count of the bytes handed to
 * `write()` so far.
 */
export function flood(sock: net.Socket, chunk: Buffer): () => number {
  let written = 0;
  const pump = () => {
    while (!sock.destroyed) {
      written += chunk.length;
      if (!sock.write(chunk)) return void sock.once('drain', pump);
    }
  };
  pump();
  return () => written;
}

/**
 * Runs test/fixtures/`name` with `args` in a node of its own (`nodeArgs`
 * its flags, `env` added to this process's); resolves with the JSON of the
 * last line it printed, or rejects with its output.
 */
export function fixtureJson<T = Record<string, unknown>>(
  name: string,
  args: string[] = [],
  { env = {}, timeout = 30_000, nodeArgs = [] }: { env?: Record<string, string>; timeout?: number; nodeArgs?: string[] } = {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...nodeArgs, path.join(__dirname, 'fixtures', name), ...args], { timeout, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop() ?? ''));
      } catch {
        reject(new Error(`${name} ${args.join(' ')}: ${err?.message ?? ''}\n${stdout}\n${stderr}`));
      }
    });
  });
}

/**
 * A host name other than `localhost` that this machine resolves to
 * 127.0.0.1, where the test servers listen (its own name, often; Debian
 * gives it 127.0.1.1), for commands that take names; undefined if none.
 */
export async function loopbackName(): Promise<string | undefined> {
  for (const name of [os.hostname(), 'localhost.localdomain']) {
    const found = await dns.promises.lookup(name).catch(() => undefined);
    if (found?.address === '127.0.0.1') return name;
  }
  return undefined;
}

/** The string-named members (own and inherited) `made` has and `reference` lacks, sorted. */
export function membersBeyond(made: object, reference: object): string[] {
  const names = (o: object) => {
    const all = new Set<string>();
    for (let p: object | null = o; p; p = Object.getPrototypeOf(p)) for (const k of Object.getOwnPropertyNames(p)) all.add(k);
    return all;
  };
  const known = names(reference);
  return [...names(made)].filter((k) => !known.has(k)).sort();
}

/** How V8 names the frame of a plain function listening on `emitter` (`Socket.<anonymous>`: by the receiver's constructor). */
export function listenerFrame(emitter: NodeJS.EventEmitter, event: string): string | undefined {
  let line = '';
  emitter.once(event, function () {
    line = (new Error().stack ?? '').split('\n')[1] ?? '';
  });
  emitter.emit(event);
  return /at (\S+)/.exec(line)?.[1];
}
