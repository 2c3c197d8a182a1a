// `workers` mode: N worker threads, each serving the handler module on its
// own reactor, all listening on one port with SO_REUSEPORT (the kernel
// spreads the connections). A worker that dies is reported and replaced.
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { codedError, invalidArgType } from '../errors';
import { validateInteger } from '../options';
import type { SocketAddress } from '../fast';
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
  | { type: 'ready'; port: number }
  | { type: 'failed'; error: SerializedError }
  | { type: 'error'; error: SerializedError; remoteAddress: string | undefined };

/** What a worker is started with. */
export interface WorkerSetup {
  handler: { module: string; export: string | undefined };
  options: ServeOptions & { port: number };
  mode: ServeMode;
  highWaterMark: number | undefined;
}

export interface SerializedError {
  name: string;
  message: string;
  stack: string | undefined;
  code: unknown;
}

export function serializeError(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message, stack: e.stack, code: (e as { code?: unknown }).code };
}

export function deserializeError(s: SerializedError): Error {
  const err = new Error(s.message);
  err.name = s.name;
  err.stack = s.stack;
  if (s.code !== undefined) Object.defineProperty(err, 'code', { value: s.code, enumerable: true, writable: true, configurable: true });
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
}

export class WorkerPool {
  private readonly slots: Slot[];
  private readonly setup: WorkerSetup;
  private host = '127.0.0.1';
  private stopping = false;
  private readonly exits = new Set<Promise<void>>();

  constructor(
    private readonly server: Server,
    ref: HandlerModule,
    options: ServeOptions,
  ) {
    if (process.platform !== 'linux') {
      throw codedError(
        `muxnet/server: workers need SO_REUSEPORT load balancing (Linux); the acceptor that hands fds to workers on ${process.platform} is not implemented`,
        'ERR_MUXNET_UNSUPPORTED',
      );
    }
    if (options.path !== undefined) throw codedError('muxnet/server: workers listen on a port, not a path', 'ERR_MUXNET_UNSUPPORTED');
    const count = options.workers === 'auto' ? availableParallelism() : validateInteger(options.workers, 'options.workers', 1, 1, 1024);
    this.slots = Array.from({ length: count }, (_, index) => ({ index, worker: undefined, threadId: 0, restarts: 0, failures: 0, listening: false, timer: undefined }));
    const { onError: _onError, workers: _workers, mode, highWaterMark, ...listen } = options;
    this.setup = {
      handler: { module: modulePath(ref), export: ref.export },
      options: { ...listen, port: listen.port ?? 0, reusePort: true },
      mode: mode ?? 'reactor',
      highWaterMark,
    };
  }

  /** Starts the first worker (it picks the port when 0), then the others on that port. */
  async start(): Promise<void> {
    try {
      const [first, ...rest] = this.slots;
      const ready = await this.spawn(first);
      this.setup.options.port = ready.port;
      this.host = this.setup.options.host ?? '127.0.0.1';
      await Promise.all(rest.map((slot) => this.spawn(slot)));
    } catch (err) {
      await this.close(0);
      throw err;
    }
  }

  address(): SocketAddress | null {
    if (this.stopping) return null;
    return { address: this.host, family: this.host.includes(':') ? 'IPv6' : 'IPv4', port: this.setup.options.port };
  }

  info(): WorkerInfo[] {
    return this.slots.map(({ index, threadId, restarts, listening }) => ({ index, threadId, restarts, listening }));
  }

  /** Runs a worker in `slot`; resolves when it listens, rejects if it fails first. */
  private spawn(slot: Slot): Promise<{ port: number }> {
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
          resolve({ port: m.port });
        } else if (m.type === 'failed') {
          crash = deserializeError(m.error);
        } else {
          this.server.report(deserializeError(m.error), { threadId, remoteAddress: m.remoteAddress, worker: slot.index });
        }
      });
      worker.on('error', (err) => (crash = err));
      const exited = new Promise<void>((done) =>
        worker.once('exit', (code) => {
          this.exits.delete(exited);
          slot.worker = undefined;
          slot.listening = false;
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
    for (const slot of this.slots) {
      clearTimeout(slot.timer);
      slot.worker?.postMessage({ type: 'close', timeout });
    }
    const exits = [...this.exits];
    const late = setTimeout(() => {
      for (const slot of this.slots) void slot.worker?.terminate();
    }, timeout + EXIT_GRACE_MS);
    await Promise.all(exits);
    clearTimeout(late);
  }
}
