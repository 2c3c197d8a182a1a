// `workers` mode: N worker threads, each serving the handler module on its
// own reactor. Connections reach them one of two ways: each worker listens
// on the port with SO_REUSEPORT and the kernel spreads them (Linux), or this
// thread accepts and transfers each to the next worker, round-robin (the fd
// table is per process; the socket moves by ticket, see `transfer()` in
// muxnet/fast). Datagrams only the first way: each worker binds the port
// with SO_REUSEPORT and Linux spreads them by sender; a relay through this
// thread could not reply from the port the client wrote to, so elsewhere
// it is ERR_MUXNET_UNSUPPORTED. A worker that dies is reported and replaced.
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { codedError, invalidArgType, invalidArgValue } from '../errors';
import { validateInteger } from '../options';
import { bind, discardTransfer, listen, type Connection, type Server as FastServer, type SocketAddress } from '../fast';
import { MAX_TIMEOUT_MS } from './drain';
import type { HandlerModule } from './handlers';
import type { Server, ServeMode, ServeOptions } from './index';

export interface WorkerInfo {
  index: number;
  /** The worker's `threadId` (a restarted worker has a new one). */
  threadId: number;
  /** How often this worker was replaced after a crash. */
  restarts: number;
  /** It listens (false while a replacement starts). */
  listening: boolean;
}

/** What a worker posts to the main thread. */
export type WorkerMessage =
  | { type: 'ready'; address: SocketAddress | string | null }
  /** Every ticket up to `upTo` sent to this worker has been adopted. */
  | { type: 'adopted'; upTo: number }
  | { type: 'failed'; error: SerializedError }
  | { type: 'error'; error: SerializedError; remoteAddress: string | undefined; connection: boolean | undefined };

/** What a worker is started with. */
export interface WorkerSetup {
  handler: { module: string; export: string | undefined };
  options: ServeOptions & { port: number };
  mode: ServeMode;
  highWaterMark: number | undefined;
  /** Whether the worker listens (SO_REUSEPORT) or is handed connections. */
  listening: boolean;
}

/** What the main thread posts to a worker. */
export type PoolMessage =
  | { type: 'close'; timeout: number }
  | { type: 'adopt'; ticket: number }
  /** The acceptor's address, which a worker it feeds serves (its handlers' `this.server.address()`). */
  | { type: 'served'; address: SocketAddress | string | null };

export type Distribute = 'reuseport' | 'acceptor';

export interface SerializedError {
  name: string;
  message: string;
  stack: string | undefined;
  /** The error's own fields of plain values: code, errno, syscall, address, port, … */
  fields: Record<string, string | number | boolean | null>;
}

export function serializeError(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  const fields: SerializedError['fields'] = {};
  for (const [key, value] of Object.entries(e)) {
    if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) fields[key] = value as string | number | boolean | null;
  }
  return { name: e.name, message: e.message, stack: e.stack, fields };
}

export function deserializeError(s: SerializedError): Error {
  const err = Object.assign(new Error(s.message), s.fields);
  err.name = s.name;
  err.stack = s.stack;
  return err;
}

function modulePath(ref: HandlerModule): string {
  const { module } = ref;
  if (module instanceof URL || (typeof module === 'string' && module.startsWith('file:'))) return fileURLToPath(module);
  if (typeof module !== 'string' || module === '') throw invalidArgType('handler.module', 'a path or a file: URL', module);
  return path.resolve(module);
}

/** The class a handler module exports (`export`, else `default`, else the module itself). */
export function loadHandler(ref: HandlerModule): unknown {
  if (ref.export !== undefined && typeof ref.export !== 'string') throw invalidArgType('handler.export', 'of type string', ref.export);
  const exports = require(modulePath(ref)) as Record<string, unknown>;
  if (ref.export !== undefined) return exports[ref.export];
  return exports.default ?? exports;
}

/** The first restart of a worker that keeps dying comes at once, later ones back off to this. */
const MAX_RESTART_DELAY_MS = 5000;
/** How long past the close timeout a worker may take to exit before it is terminated. */
const EXIT_GRACE_MS = 2000;

interface Slot {
  index: number;
  worker: Worker | undefined;
  threadId: number;
  restarts: number;
  /** Crashes since it was last up. */
  failures: number;
  listening: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Tickets transferred to it and not yet adopted, oldest first. */
  outstanding: number[];
}

export class WorkerPool {
  private readonly slots: Slot[];
  private readonly setup: WorkerSetup;
  /** With SO_REUSEPORT: the first worker's listener's address, which all share. */
  private shared: SocketAddress | string | null = null;
  private stopping = false;
  private readonly distribute: Distribute;
  private readonly listenOptions: ServeOptions;
  /** The acceptor (`distribute: 'acceptor'`), and the worker it hands to next. */
  private acceptor: FastServer | undefined;
  private next = 0;
  private readonly exits = new Set<Promise<void>>();
  private readonly datagrams: boolean;

  constructor(
    private readonly server: Server,
    ref: HandlerModule,
    options: ServeOptions,
    datagrams: boolean,
  ) {
    const distribute = options.distribute ?? (process.platform === 'linux' ? 'reuseport' : 'acceptor');
    if (distribute !== 'reuseport' && distribute !== 'acceptor') throw invalidArgValue('options.distribute', distribute, "must be 'reuseport' or 'acceptor'");
    if (datagrams && (distribute !== 'reuseport' || process.platform !== 'linux')) {
      throw codedError(`muxnet/server: datagram workers need SO_REUSEPORT balancing (Linux), not ${distribute} on ${process.platform}`, 'ERR_MUXNET_UNSUPPORTED');
    }
    if (distribute === 'reuseport' && process.platform !== 'linux') {
      throw codedError(`muxnet/server: SO_REUSEPORT does not balance connections on ${process.platform}; use distribute: 'acceptor'`, 'ERR_MUXNET_UNSUPPORTED');
    }
    this.distribute = distribute;
    this.datagrams = datagrams;
    if (options.path !== undefined && distribute === 'reuseport') throw codedError("muxnet/server: SO_REUSEPORT workers listen on a port, not a path; use distribute: 'acceptor'", 'ERR_MUXNET_UNSUPPORTED');
    this.listenOptions = options;
    const count = options.workers === 'auto' ? availableParallelism() : validateInteger(options.workers, 'options.workers', 1, 1, 1024);
    this.slots = Array.from({ length: count }, (_, index) => ({ index, worker: undefined, threadId: 0, restarts: 0, failures: 0, listening: false, timer: undefined, outstanding: [] }));
    const { onError: _onError, workers: _workers, distribute: _distribute, mode, highWaterMark, ...listenOptions } = options;
    this.setup = {
      handler: { module: modulePath(ref), export: ref.export },
      options: { ...listenOptions, port: listenOptions.port ?? 0, reusePort: true },
      mode: mode ?? 'reactor',
      highWaterMark,
      listening: distribute === 'reuseport',
    };
  }

  /**
   * Starts the workers: with SO_REUSEPORT the first picks the port (when
   * 0) and the others join it; with an acceptor, this thread listens once
   * they are up.
   */
  async start(): Promise<void> {
    try {
      if (this.distribute === 'acceptor') {
        await Promise.all(this.slots.map((slot) => this.spawn(slot)));
        const { port, host, path: unixPath, backlog, backend, noDelay } = this.listenOptions;
        this.acceptor = listen({ port, host, path: unixPath, backlog, backend, noDelay }, {
          onOpen: (conn) => this.handOff(conn),
          // EMFILE and the like, reported as a reactor-mode server reports them.
          onError: (err) => this.server.report(err, {}),
        });
        for (const slot of this.slots) this.tellServed(slot);
        return;
      }
      const [first, ...rest] = this.slots;
      this.refuseHeldPort();
      this.shared = await this.spawn(first);
      // The others join the port it picked.
      this.setup.options.port = (this.shared as SocketAddress).port;
      await Promise.all(rest.map((slot) => this.spawn(slot)));
    } catch (err) {
      await this.close(0);
      throw err;
    }
  }

  /**
   * With SO_REUSEPORT a second server of this user's on the port (a double
   * start, an old one still up) joined it without a word and took a share
   * of its clients: a port already held is refused here with the
   * `EADDRINUSE` one server's listen gives, unless `reusePort: true` (or
   * for datagrams `reuseAddr: true`) asked for sharing. Bound and closed at once, without SO_REUSEPORT (nor
   * SO_REUSEADDR for UDP, which lets datagram sockets share a port too).
   * Two servers starting at the same moment can still both pass.
   */
  private refuseHeldPort(): void {
    const { port, host, backend, reusePort, reuseAddr } = this.listenOptions;
    // Sharing asked for: SO_REUSEPORT, or (datagrams) SO_REUSEADDR, as multicast receivers do.
    if (!port || reusePort || (this.datagrams && reuseAddr)) return;
    if (this.datagrams) bind({ port, host, backend }, {}).close();
    else listen({ port, host, backend }, {}).close();
  }

  /** Transfers an accepted connection to the next listening worker. */
  private handOff(conn: Connection): void {
    for (let tried = 0; tried < this.slots.length; tried++) {
      const slot = this.slots[this.next];
      this.next = (this.next + 1) % this.slots.length;
      if (!slot.listening || !slot.worker) continue;
      let ticket: number;
      try {
        ticket = conn.transfer();
      } catch {
        // Reset by the peer before it could move: nothing to serve.
        return conn.destroy();
      }
      slot.outstanding.push(ticket);
      slot.worker.postMessage({ type: 'adopt', ticket } satisfies PoolMessage);
      return;
    }
    // Every worker is restarting: the client retries.
    conn.destroy();
  }

  address(): SocketAddress | string | null {
    if (this.stopping) return null;
    return this.acceptor ? this.acceptor.address() : this.shared;
  }

  /** Tells a worker the acceptor feeds what it serves, before any connection is handed to it. */
  private tellServed(slot: Slot): void {
    if (this.acceptor) slot.worker?.postMessage({ type: 'served', address: this.acceptor.address() } satisfies PoolMessage);
  }

  info(): WorkerInfo[] {
    return this.slots.map(({ index, threadId, restarts, listening }) => ({ index, threadId, restarts, listening }));
  }

  /** Runs a worker in `slot`; resolves when it listens, rejects if it fails first. */
  private spawn(slot: Slot): Promise<SocketAddress | string | null> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: this.setup });
      slot.worker = worker;
      const threadId = (slot.threadId = worker.threadId);
      let up = false;
      let crash: Error | undefined;
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') {
          up = slot.listening = true;
          slot.failures = 0;
          // A replacement, with the acceptor up: told before its first connection.
          this.tellServed(slot);
          resolve(m.address);
        } else if (m.type === 'adopted') {
          while (slot.outstanding.length > 0 && slot.outstanding[0] <= m.upTo) slot.outstanding.shift();
        } else if (m.type === 'failed') {
          crash = deserializeError(m.error);
        } else {
          this.server.report(deserializeError(m.error), { threadId, remoteAddress: m.remoteAddress, worker: slot.index, connection: m.connection });
        }
      });
      worker.on('error', (err) => (crash = err));
      const exited = new Promise<void>((done) =>
        worker.once('exit', (code) => {
          this.exits.delete(exited);
          slot.worker = undefined;
          slot.listening = false;
          // Transferred to it, never adopted: nobody else will close them.
          for (const ticket of slot.outstanding.splice(0)) discardTransfer(ticket);
          done();
          if (this.stopping) return reject(crash ?? codedError('muxnet/server: closed while starting', 'ERR_MUXNET_SERVER_CLOSED'));
          const err = crash ?? codedError(`muxnet/server: worker ${slot.index} exited with code ${code}`, 'ERR_MUXNET_WORKER_EXIT');
          // A worker that never listened, at start: the server fails.
          if (!up && slot.restarts === 0 && slot.failures === 0) return reject(err);
          this.server.report(err, { threadId, worker: slot.index, restarting: true });
          this.restart(slot);
        }),
      );
      this.exits.add(exited);
    });
  }

  private restart(slot: Slot): void {
    const delay = slot.failures === 0 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 100 * 2 ** slot.failures);
    slot.failures++;
    slot.restarts++;
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      // Its failure to start again is reported on its exit, like a crash.
      this.spawn(slot).catch(() => {});
    }, delay);
  }

  /** Asks every worker to close its server gracefully; terminates the ones that take too long. */
  async close(timeout: number): Promise<void> {
    this.stopping = true;
    this.acceptor?.close();
    for (const slot of this.slots) {
      clearTimeout(slot.timer);
      slot.worker?.postMessage({ type: 'close', timeout } satisfies PoolMessage);
    }
    const exits = [...this.exits];
    // Capped: past 2^31 - 1 ms setTimeout fires at once (every worker was terminated mid-request).
    const late = setTimeout(() => {
      for (const slot of this.slots) void slot.worker?.terminate();
    }, Math.min(timeout + EXIT_GRACE_MS, MAX_TIMEOUT_MS));
    await Promise.all(exits);
    clearTimeout(late);
  }
}
