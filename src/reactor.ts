// The JS side of a native reactor: one per backend per thread. The binding
// calls `dispatch` once per reactor turn with a batch of event records; this
// fans them out to the handle registered under each token.
import { native, type NativeReactor } from './binding';
import { resolveBackend, type BackendName } from './options';

/** What a token's owner hears. Only the methods its kind needs are called. */
export interface Handle {
  onAccept?(token: number): void;
  onAcceptError?(errno: number): void;
  onConnect?(): void;
  onData?(chunk: Buffer): void;
  onEnd?(): void;
  onDrain?(): void;
  /** The socket is gone (token already free); `errno` 0 for an orderly close. */
  onClose?(errno: number): void;
  onMessage?(msg: Buffer, address: string, port: number): void;
}

const {
  RECORD_WORDS,
  EVENT_ACCEPT,
  EVENT_ACCEPT_ERROR,
  EVENT_CONNECT,
  EVENT_DATA,
  EVENT_END,
  EVENT_DRAIN,
  EVENT_CLOSE,
  EVENT_MESSAGE,
  EVENT_REACTOR_ERROR,
} = native;

export class Reactor {
  readonly native: NativeReactor;
  /** Writes now what the kernel takes; returns the bytes left queued, or a negative errno. */
  readonly write: (token: number, data: Uint8Array) => number;
  /** Sends one datagram (to `host:port`, or the connected peer); returns the bytes sent, or a negative errno. */
  readonly send: (token: number, data: Uint8Array, host?: string, port?: number) => number;
  readonly backend: BackendName;
  /** Handles by token; tokens are small integers reused after close. */
  private readonly handles: (Handle | undefined)[] = [];
  /** Handles that keep the process alive. */
  private refs = 0;

  constructor(backend: BackendName) {
    this.backend = backend;
    // MUXNET_WAKE=thread forces the waiter thread where libuv could watch
    // the poller's fd (to measure one against the other).
    const wake = process.env.MUXNET_WAKE;
    this.native = new native.Reactor(backend, (count, records, slab, peers) => this.dispatch(count, records, slab, peers), wake ? { wake } : undefined);
    this.write = this.native.writer();
    this.send = this.native.sender();
  }

  /** `'fd'` (libuv watches the poller) or `'thread'` (a waiter thread). */
  get wakeMode(): string {
    return this.native.wakeMode;
  }

  attach(token: number, handle: Handle): void {
    this.handles[token] = handle;
  }

  detach(token: number): void {
    this.handles[token] = undefined;
  }

  /** Closes a handle's socket now (RST instead of FIN if `reset`). */
  closeHandle(token: number, keepAlive: KeepAlive, reset = false): void {
    if (reset) this.native.resetSocket(token);
    else this.native.closeSocket(token);
    this.detach(token);
    keepAlive.release();
  }

  /** One more handle keeps the process alive. */
  ref(): void {
    if (this.refs++ === 0) this.native.setRef(true);
  }

  unref(): void {
    if (--this.refs === 0) this.native.setRef(false);
  }

  private dispatch(count: number, records: Int32Array, slab: Buffer, peers: string[] | undefined): void {
    const handles = this.handles;
    // A throwing handler must not cost the other connections their events:
    // finish the batch, then rethrow (it reaches 'uncaughtException').
    let thrown: unknown[] | undefined;
    for (let i = 0, at = 0; i < count; i++, at += RECORD_WORDS) {
      const kind = records[at];
      const token = records[at + 1];
      try {
        switch (kind) {
          case EVENT_DATA: {
            const offset = records[at + 2];
            handles[token]?.onData?.(slab.subarray(offset, offset + records[at + 3]));
            break;
          }
          case EVENT_ACCEPT:
            handles[records[at + 2]]?.onAccept?.(token);
            break;
          case EVENT_CLOSE: {
            const handle = handles[token];
            handles[token] = undefined;
            handle?.onClose?.(records[at + 2]);
            break;
          }
          case EVENT_END:
            handles[token]?.onEnd?.();
            break;
          case EVENT_DRAIN:
            handles[token]?.onDrain?.();
            break;
          case EVENT_CONNECT:
            handles[token]?.onConnect?.();
            break;
          case EVENT_MESSAGE: {
            const offset = records[at + 2];
            const msg = slab.subarray(offset, offset + records[at + 3]);
            handles[token]?.onMessage?.(msg, peers![records[at + 5]], records[at + 4]);
            break;
          }
          case EVENT_ACCEPT_ERROR:
            handles[token]?.onAcceptError?.(records[at + 2]);
            break;
          case EVENT_REACTOR_ERROR:
            throw new Error(`muxnet: the ${this.backend} reactor failed to wait for events (errno ${records[at + 2]})`);
        }
      } catch (err) {
        (thrown ??= []).push(err);
      }
    }
    if (thrown !== undefined) {
      for (const err of thrown.slice(1)) process.nextTick(() => { throw err; });
      throw thrown[0];
    }
  }
}

/**
 * Whether one handle (server, connection, UDP socket) keeps the process
 * alive, as `ref()`/`unref()` set it; its reactor counts the ones that do.
 * As with libuv, a handle that waits for nothing (a connection neither
 * reading nor writing) does not count, ref'd or not, and one with a request
 * in flight (connecting, writing) counts, unref'd or not (`setActivity`).
 * It may be made before the handle has a socket (`bind` comes later).
 */
export class KeepAlive {
  private wanted = true;
  private active = true;
  private requests = false;
  private counted = false;
  private released = false;
  private reactor: Reactor | undefined;

  constructor(reactor?: Reactor) {
    if (reactor) this.bind(reactor);
  }

  /** Whether the handle asked to keep the process alive. */
  get on(): boolean {
    return this.wanted;
  }

  bind(reactor: Reactor): void {
    this.reactor = reactor;
    this.released = false;
    this.sync();
  }

  set(on: boolean): void {
    this.wanted = on;
    this.sync();
  }

  /** Whether the handle waits for something (reading, writing, connecting), and whether a request is in flight (connecting, writing). */
  setActivity(active: boolean, requests: boolean): void {
    this.active = active;
    this.requests = requests;
    this.sync();
  }

  /** The handle closed: it no longer counts, whatever `set` says later. */
  release(): void {
    this.released = true;
    this.sync();
  }

  private sync(): void {
    const count = ((this.wanted && this.active) || this.requests) && !this.released && this.reactor !== undefined;
    if (count === this.counted) return;
    this.counted = count;
    if (count) this.reactor!.ref();
    else this.reactor!.unref();
  }
}

const reactors = new Map<BackendName, Reactor>();

/** This thread's reactor for `backend` (default: `$MUXNET_BACKEND` or mio). */
export function getReactor(backend?: unknown): Reactor {
  const name = resolveBackend(backend);
  let reactor = reactors.get(name);
  if (reactor === undefined) {
    reactor = new Reactor(name);
    reactors.set(name, reactor);
  }
  return reactor;
}
