/**
 * A resilient client on the fast API: one object that stays connected.
 * It connects with a deadline, reconnects with exponential backoff and
 * jitter when the connection fails or goes silent, and keeps what you send
 * while it is down in a bounded queue, sent in order once it is back.
 * What does not fit is reported (`send` returns false, `'overflow'`), and
 * `'drain'` says when the queue has gone out, for a producer to wait on;
 * what is still queued when it gives up is handed back in `'closed'`.
 *
 * ```ts
 * import { connect } from 'muxnet/client';
 * const client = connect({ port: 7000, reconnect: { maxDelay: 5000 }, heartbeat: { interval: 10_000, timeout: 5000, message: 'PING\n' } });
 * client.on('reconnecting', ({ delay, cause }) => console.log(`retry in ${delay} ms: ${cause.message}`));
 * client.on('data', (chunk) => process.stdout.write(chunk));
 * client.send('hello\n');
 * ```
 *
 * Bytes handed to a connection that then breaks may or may not have
 * reached the peer (no transport can say); the queue carries across
 * reconnects only what was not yet handed over. A connection takes a
 * message only while nothing else waits in its queue, so what is in doubt
 * after a break is the last message handed over plus what the kernel's
 * send buffer still held.
 */
import { lookup as dnsLookup } from 'node:dns';
import { EventEmitter } from 'node:events';
import type { LookupFunction } from 'node:net';
import { isIP } from './builtins';
import { connect as fastConnect, type Connection } from './fast';
import { codedError, invalidArgType, invalidArgValue, systemError, uvErrno, type SystemError } from './errors';
import { resolveBackend, validateHost, validateInteger, validateObject, validatePort, type BackendName } from './options';

export interface ReconnectOptions {
  /** The first delay, in ms (default 100). */
  initialDelay?: number;
  /** No delay is longer, in ms (default 30 000). */
  maxDelay?: number;
  /** Each failed attempt multiplies the delay by this (default 2). */
  factor?: number;
  /** Up to this fraction of each delay is taken off at random, so many clients do not retry in step (0..1, default 0.2). */
  jitter?: number;
  /** Attempts after a failure before giving up (default: for ever). */
  maxRetries?: number;
  /**
   * A connection must stay open this long (ms, default 5 000) before the
   * backoff starts over: a server that accepts and drops at once is
   * retried with growing delays, and those count toward `maxRetries`.
   */
  minUptime?: number;
}

export interface HeartbeatOptions {
  /** Sent every `interval` ms while connected. */
  message: string | Uint8Array;
  interval: number;
  /** Some byte must arrive within this many ms of each heartbeat, or the connection is taken for dead. */
  timeout: number;
}

export interface ClientOptions {
  port?: number;
  /**
   * An IP address, `localhost` (127.0.0.1), or a host name: looked up at
   * each attempt (so a reconnect follows a name that moved), its addresses
   * tried in turn within `connectTimeout` (default 127.0.0.1).
   */
  host?: string;
  /** Looks a host name up, called with `{ all: true }` (default `dns.lookup`; node:net's option). */
  lookup?: LookupFunction | null;
  /**
   * Of a name's several addresses, each but the last is given up for the
   * next after this many ms (default 250, at least 10: node:net's
   * `autoSelectFamilyAttemptTimeout`): one that hangs (an IPv6 address
   * with no route) does not take the whole attempt.
   */
  addressTimeout?: number;
  /** A Unix-domain socket path instead of a port. */
  path?: string;
  backend?: BackendName;
  noDelay?: boolean;
  /** A connect attempt that takes longer fails with `ETIMEDOUT` (ms; default 10 000). */
  connectTimeout?: number;
  /**
   * No byte received and none handed to the kernel for this many ms fails
   * the connection with `ETIMEDOUT` (default: none). As with node:net's
   * `setTimeout`, bytes the kernel still holds for a slow reader do not count.
   */
  idleTimeout?: number;
  heartbeat?: HeartbeatOptions;
  /** `false`: no reconnect, the first failure closes the client. */
  reconnect?: ReconnectOptions | false;
  /** Bytes the send queue holds while disconnected or backed up (default 1 MiB). */
  queueLimit?: number;
}

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ReconnectingEvent {
  /** The wait before the next attempt, in ms. */
  delay: number;
  /** The attempt that comes next: 1 for the first retry after a failure. */
  attempt: number;
  /** Why the last connection or attempt ended. */
  cause: NodeJS.ErrnoException;
}

export interface ClosedEvent {
  /**
   * Why the client stopped: undefined after `destroy()`, and after `close()`
   * once the connection it ended has closed cleanly (else what broke it:
   * a reset, `ETIMEDOUT` of the `idleTimeout`).
   */
  cause?: NodeJS.ErrnoException;
  /** Messages still queued, never sent: yours to keep or log. */
  unsent: Buffer[];
}

export interface OverflowEvent {
  /** The message that did not fit. */
  data: Buffer;
  /** The bytes queued when it was refused. */
  queued: number;
  limit: number;
}

export interface Client {
  on(event: 'connecting', listener: (info: { attempt: number }) => void): this;
  on(event: 'open', listener: (conn: Connection) => void): this;
  /** `chunk` is a view of the read slab, as the fast API's `onData` gives: copy what you keep for long. */
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'reconnecting', listener: (info: ReconnectingEvent) => void): this;
  on(event: 'closed', listener: (info: ClosedEvent) => void): this;
  on(event: 'overflow', listener: (info: OverflowEvent) => void): this;
  on(event: 'drain', listener: () => void): this;
  once(event: 'connecting', listener: (info: { attempt: number }) => void): this;
  once(event: 'open', listener: (conn: Connection) => void): this;
  once(event: 'data', listener: (chunk: Buffer) => void): this;
  once(event: 'reconnecting', listener: (info: ReconnectingEvent) => void): this;
  once(event: 'closed', listener: (info: ClosedEvent) => void): this;
  once(event: 'overflow', listener: (info: OverflowEvent) => void): this;
  once(event: 'drain', listener: () => void): this;
}

interface Backoff {
  initialDelay: number;
  maxDelay: number;
  factor: number;
  jitter: number;
  maxRetries: number;
  minUptime: number;
}

function validateNumber(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) throw invalidArgType(name, 'of type number', value);
  if (value < min || value > max) throw invalidArgValue(name, value, `must be >= ${min} && <= ${max}`);
  return value;
}

const MAX_MS = 2 ** 31 - 1;

function validateBackoff(value: unknown): Backoff | undefined {
  if (value === false) return undefined;
  const o = validateObject(value, 'options.reconnect');
  const initialDelay = validateInteger(o.initialDelay, 'options.reconnect.initialDelay', 100, 0, MAX_MS);
  const maxDelay = validateInteger(o.maxDelay, 'options.reconnect.maxDelay', Math.max(30_000, initialDelay), initialDelay, MAX_MS);
  return {
    initialDelay,
    maxDelay,
    factor: validateNumber(o.factor, 'options.reconnect.factor', 2, 1, 1000),
    jitter: validateNumber(o.jitter, 'options.reconnect.jitter', 0.2, 0, 1),
    maxRetries: o.maxRetries === Infinity ? Infinity : validateInteger(o.maxRetries, 'options.reconnect.maxRetries', Infinity, 0, Number.MAX_SAFE_INTEGER),
    minUptime: validateInteger(o.minUptime, 'options.reconnect.minUptime', 5000, 0, MAX_MS),
  };
}

function validateHeartbeat(value: unknown): { message: Buffer; interval: number; timeout: number } | undefined {
  if (value === undefined) return undefined;
  const o = validateObject(value, 'options.heartbeat');
  const m = o.message;
  if (typeof m !== 'string' && !(m instanceof Uint8Array)) throw invalidArgType('options.heartbeat.message', 'of type string or an instance of Uint8Array', m);
  if (o.interval === undefined) throw invalidArgType('options.heartbeat.interval', 'of type number', o.interval);
  if (o.timeout === undefined) throw invalidArgType('options.heartbeat.timeout', 'of type number', o.timeout);
  return {
    message: Buffer.from(m),
    interval: validateInteger(o.interval, 'options.heartbeat.interval', 0, 1, MAX_MS),
    timeout: validateInteger(o.timeout, 'options.heartbeat.timeout', 0, 1, MAX_MS),
  };
}

/** `ETIMEDOUT` as Node shapes it, for a connect, a heartbeat or an idle connection to `to`. */
function timedOut(what: 'connect' | 'heartbeat' | 'idle', to: { host: string; port?: number; path?: string }): SystemError {
  return systemError(uvErrno('ETIMEDOUT'), what, to.path ?? to.host, to.port);
}

/**
 * The wait before retry `attempt` (1, 2, …) of a client with these
 * `reconnect` options (a field left out takes its default, as the client's):
 * `initialDelay × factor^(attempt-1)`, at most `maxDelay`, less up to
 * `jitter` of it at random (`random` in 0..1).
 */
export function backoffDelay(reconnect: ReconnectOptions, attempt: number, random: number = Math.random()): number {
  if (reconnect === null || typeof reconnect !== 'object') throw invalidArgType('reconnect', 'of type object', reconnect);
  if (attempt === undefined) throw invalidArgType('attempt', 'of type number', attempt);
  return delayFor(validateBackoff(reconnect)!, validateInteger(attempt, 'attempt', 1, 1, Number.MAX_SAFE_INTEGER), validateNumber(random, 'random', 0, 0, 1));
}

function delayFor(b: Backoff, attempt: number, random: number = Math.random()): number {
  // Past 2 ** 1024 the power is Infinity, and 0 * Infinity is NaN: no delay stays none.
  const base = b.initialDelay === 0 ? 0 : Math.min(b.maxDelay, b.initialDelay * b.factor ** (attempt - 1));
  return Math.round(base * (1 - b.jitter * random));
}

/** A write of `bytes` that `conn` takes: to an empty queue always, else within the queue's cap. */
function fitsQueue(conn: Connection, bytes: number): boolean {
  const queued = conn.bufferedAmount;
  return queued === 0 || queued + bytes <= conn.reactor.native.writeQueueCap;
}

/** See the module notes; made by `connect`. */
export class Client extends EventEmitter {
  private stateName: ClientState = 'connecting';
  private conn: Connection | undefined;
  /** After `close()` on an open connection: what it could not take, handed back in `'closed'` once it has closed. */
  private closingUnsent: Buffer[] | undefined;
  /** Failed attempts since a connection last stayed up `minUptime`. */
  private attempt = 0;
  /** When the current connection opened (ms since the epoch). */
  private openedAt = 0;
  /** `bufferedAmount` when the idle timer last fired with bytes queued. */
  private idleQueued = 0;
  /** Messages waiting, oldest at `queueHead` (see `dequeue`). */
  private readonly queue: Buffer[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  /** `send` queued or refused a message since the queue was last written out: `'drain'` is due. */
  private needDrain = false;
  private connectTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  /** The connection was dropped by us, for this reason. */
  private dropCause: Error | undefined;
  private readonly target: { port?: number; host: string; path?: string; backend: BackendName; noDelay: boolean };
  /** The host is a name, looked up with this at each attempt. */
  private readonly lookup: LookupFunction | undefined;
  private readonly addressTimeout: number;
  /** The lookup under way (an attempt that ran out waiting for it leaves it to the next), and the attempts it served. */
  private lookupTicket: object | undefined;
  private lookupUses = 0;
  /** The attempt under way waits for that lookup's answer. */
  private awaitingLookup = false;
  /** The address being dialled, and this attempt's others not tried yet. */
  private dialling = '';
  private untried: string[] = [];
  private addressTimer: NodeJS.Timeout | undefined;
  private readonly connectTimeout: number;
  private readonly idleTimeout: number;
  private readonly heartbeat: ReturnType<typeof validateHeartbeat>;
  private readonly backoff: Backoff | undefined;
  readonly queueLimit: number;

  /** @internal */
  constructor(options: ClientOptions) {
    super();
    const o = validateObject(options, 'options') as ClientOptions;
    const path = o.path;
    if (path !== undefined && (typeof path !== 'string' || path === '')) throw invalidArgValue('options.path', path, 'must be a non-empty path');
    const port = path === undefined ? validatePort(o.port, 'options.port', false) : undefined;
    const named = path === undefined && typeof o.host === 'string' && o.host !== '' && o.host !== 'localhost' && isIP(o.host.replace(/^\[(.*)\]$/, '$1')) === 0;
    if (o.lookup != null && typeof o.lookup !== 'function') throw invalidArgType('options.lookup', 'of type function', o.lookup);
    this.lookup = named ? (o.lookup ?? (dnsLookup as LookupFunction)) : undefined;
    this.addressTimeout = validateInteger(o.addressTimeout, 'options.addressTimeout', 250, 10, MAX_MS);
    // With a path, the host is not read (as node:net).
    const host = path !== undefined ? '' : named ? (o.host as string) : validateHost(o.host);
    this.target = { port, path, host, backend: resolveBackend(o.backend), noDelay: o.noDelay !== false };
    this.connectTimeout = validateInteger(o.connectTimeout, 'options.connectTimeout', 10_000, 1, MAX_MS);
    this.idleTimeout = validateInteger(o.idleTimeout, 'options.idleTimeout', 0, 0, MAX_MS);
    this.heartbeat = validateHeartbeat(o.heartbeat);
    this.backoff = validateBackoff(o.reconnect);
    this.queueLimit = validateInteger(o.queueLimit, 'options.queueLimit', 1 << 20, 0, Number.MAX_SAFE_INTEGER);
    // Listeners are added after `connect` returns: the first attempt starts next tick.
    process.nextTick(() => this.state === 'connecting' && this.open_());
  }

  get state(): ClientState {
    return this.stateName;
  }

  /** Bytes waiting in the client's queue (not yet handed to a connection). */
  get queued(): number {
    return this.queuedBytes;
  }

  /** The open connection, if any. */
  get connection(): Connection | undefined {
    return this.stateName === 'open' ? this.conn : undefined;
  }

  /**
   * Sends now if connected and not backed up, else queues. Returns false
   * if the message did not fit the queue: it is dropped, and `'overflow'`
   * says so (with the message). Not sent at once (queued or refused):
   * `'drain'` follows once the queue has all gone to the connection, as a
   * stream's does. After `close()`, throws `ERR_SOCKET_CLOSED`.
   */
  send(data: Uint8Array | string): boolean {
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) throw invalidArgType('data', 'of type string or an instance of Uint8Array', data);
    if (this.stateName === 'closed') throw codedError('Client is closed', 'ERR_SOCKET_CLOSED');
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    // Nothing to send: queued, empty messages took no room from queueLimit, without bound.
    if (buf.length === 0) return true;
    if (this.stateName === 'open' && this.queue.length === 0 && this.handOver(buf)) return true;
    this.needDrain = true;
    if (this.queuedBytes + buf.length > this.queueLimit) {
      this.emit('overflow', { data: buf, queued: this.queuedBytes, limit: this.queueLimit } satisfies OverflowEvent);
      return false;
    }
    // Copied: a caller's buffer may be reused before the connection is back.
    this.queue.push(typeof data === 'string' ? buf : Buffer.from(buf));
    this.queuedBytes += buf.length;
    return true;
  }

  /**
   * Stops for good: no more reconnects, `send` throws; the open connection
   * (if any) is ended after what the queue holds, and `'closed'` follows
   * once it has closed (what it was handed went out, and the peer closed
   * too, as node:net's `'close'` after `end()`), with the error that broke
   * it first if one did (`idleTimeout` passed with no byte received and none
   * handed to the kernel, as while open: `ETIMEDOUT`).
   * Without an open connection, `'closed'` follows on the next tick, with
   * no cause.
   */
  close(): void {
    if (this.stateName === 'closed') return;
    const conn = this.conn;
    if (conn && this.stateName === 'open') {
      // Whatever is still queued goes with the end, while the connection
      // takes it (the peer may have ended it) and within its write queue's
      // cap (a write past it would destroy the connection, and with it the
      // bytes queued before): the rest is handed back in 'closed'.
      while (this.queue.length > 0 && conn.writable && fitsQueue(conn, this.queue[this.queueHead].length)) {
        conn.write(this.queue[this.queueHead]);
        if (conn.closed) break;
        this.dequeue();
      }
      conn.end();
      this.stop();
      this.closingUnsent = this.takeQueue();
      // A peer that never closes is given up on after `idleTimeout`, as while open.
      this.touch();
      return;
    }
    conn?.destroy();
    this.finish(undefined);
  }

  /**
   * Stops for good, now: the connection (if any) is closed at once and
   * what was queued is handed back in `'closed'` (with no cause), on the
   * next tick. After `close()`, cuts short the connection's sending.
   */
  destroy(): void {
    // After close(): the connection still sending is closed now; its close says 'closed'.
    if (this.closingUnsent) return void this.conn?.destroy();
    if (this.stateName === 'closed') return;
    this.conn?.destroy();
    this.finish(undefined);
  }

  /** Hands `buf` to the connection; false if it is backed up (queue instead). */
  private handOver(buf: Buffer): boolean {
    const conn = this.conn!;
    // Ended (the peer's FIN ends it too) or backed up: it stays queued.
    if (!conn.writable || conn.bufferedAmount > 0) return false;
    conn.write(buf);
    // The write failed at once (a reset the reactor had not seen yet): the
    // kernel never had it, so it stays queued for the next connection.
    if (conn.closed) return false;
    this.touch();
    return true;
  }

  private flushQueue(): void {
    while (this.queue.length > 0) {
      if (this.stateName !== 'open' || !this.handOver(this.queue[this.queueHead])) return;
      this.dequeue();
    }
    if (!this.needDrain || this.stateName !== 'open') return;
    this.needDrain = false;
    this.emit('drain');
  }

  private open_(): void {
    this.stateName = 'connecting';
    try {
      this.emit('connecting', { attempt: this.attempt });
    } finally {
      // Even when a listener throws (to 'uncaughtException'): else the client
      // stays connecting with no deadline. One may have closed the client.
      if (this.stateName === 'connecting') this.dial();
    }
  }

  /** One attempt, under one deadline: the lookup (for a name), then each address in turn. */
  private dial(): void {
    this.dropCause = undefined;
    this.connectTimer = setTimeout(() => this.attemptTimedOut(), this.connectTimeout);
    const lookup = this.lookup;
    if (lookup === undefined) return this.dialNext([this.target.host]);
    this.awaitingLookup = true;
    // Still under way (a slow resolver outlasted the last attempt): its answer is this one's —
    // a lookup each retry piled up, each holding one of libuv's four threads — but for one
    // attempt only: one that never answers (a lookup of the user's that lost the request) is
    // asked again by the next.
    if (this.lookupTicket && this.lookupUses++ < 2) return;
    const ticket = {};
    this.lookupTicket = ticket;
    this.lookupUses = 1;
    const host = this.target.host;
    const answered = (err: Error | null, found?: unknown) => {
      if (this.lookupTicket !== ticket) return;
      this.lookupTicket = undefined;
      if (!this.awaitingLookup) return;
      this.awaitingLookup = false;
      // A list ({ all: true }), or one address as a lookup that ignores `all` gives it.
      const addresses = Array.isArray(found) ? found.map((a: { address?: unknown } | undefined) => String(a?.address)) : typeof found === 'string' ? [found] : [];
      if (!err && addresses.length === 0) err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { errno: -uvErrno('EAI_NONAME'), code: 'ENOTFOUND', syscall: 'getaddrinfo', hostname: host });
      if (err) return this.attemptFailed(err);
      this.dialNext(addresses);
    };
    try {
      lookup(host, { all: true }, answered);
    } catch (err) {
      // A lookup of the user's that throws fails the attempt, as one that calls back an error;
      // a throw after its answer came (a listener of ours it ran) is the listener's.
      if (this.lookupTicket !== ticket) throw err;
      answered(err as Error);
    }
  }

  /**
   * Connects to the first of `addresses` (or the path); the others are the
   * attempt's next, on a failed connect or after `addressTimeout`.
   */
  private dialNext(addresses: string[]): void {
    const t = this.target;
    const [host, ...rest] = addresses;
    this.untried = rest;
    this.dialling = host;
    clearTimeout(this.addressTimer);
    let conn: Connection;
    try {
      conn = fastConnect(t.path !== undefined ? { path: t.path, backend: t.backend } : { port: t.port, host, backend: t.backend, noDelay: t.noDelay }, {
        onOpen: () => this.onOpen(conn),
        onData: (_, chunk) => this.onData(chunk),
        onDrain: () => (this.touch(), this.flushQueue()),
        onClose: (_, err) => this.onClose(conn, err),
      });
    } catch (err) {
      // Refused at once (no socket file, no route, out of fds, a lookup's bad
      // address): a failed connect like any other, retried or reported — never
      // thrown from a timer.
      if (rest.length > 0) return this.dialNext(rest);
      return this.attemptFailed(err as Error);
    }
    this.conn = conn;
    if (rest.length > 0) this.addressTimer = setTimeout(() => this.nextAddress(conn), this.addressTimeout);
  }

  /** `conn`'s address took its `addressTimeout`: given up for the next (its close is no longer ours). */
  private nextAddress(conn: Connection): void {
    if (conn !== this.conn || this.stateName !== 'connecting') return;
    this.conn = undefined;
    conn.destroy();
    this.dialNext(this.untried);
  }

  /** The attempt's deadline passed: in its lookup, or connecting. */
  private attemptTimedOut(): void {
    if (this.conn) return this.drop(this.conn, timedOut('connect', { ...this.target, host: this.dialling }));
    this.attemptFailed(timedOut('connect', this.target));
  }

  /** The attempt failed with no connection open: retried or reported (a lookup under way is left to the next). */
  private attemptFailed(err: Error): void {
    clearTimeout(this.connectTimer);
    this.awaitingLookup = false;
    this.untried = [];
    this.lost(err);
  }

  private onOpen(conn: Connection): void {
    if (conn !== this.conn) return;
    clearTimeout(this.connectTimer);
    clearTimeout(this.addressTimer);
    this.untried = [];
    this.openedAt = Date.now();
    this.stateName = 'open';
    this.touch();
    if (this.heartbeat) {
      const hb = this.heartbeat;
      this.heartbeatTimer = setInterval(() => {
        // The heartbeat jumps the queue: it is about this connection. One
        // that would pass the cap is not sent (the answer is still awaited).
        if (conn.writable && fitsQueue(conn, hb.message.length)) conn.write(hb.message);
        this.deadline ??= setTimeout(() => this.drop(conn, timedOut('heartbeat', this.target)), hb.timeout);
      }, hb.interval);
    }
    try {
      this.emit('open', conn);
    } finally {
      // After the listeners (they may write ahead of the queue), even when one
      // throws: else what is queued, and every later send, waits for good.
      this.flushQueue();
    }
  }

  private onData(chunk: Buffer): void {
    // After close() the ended connection may still hear a reply: not emitted (the client is
    // closed), but its bytes keep the idle clock going, as while open.
    if (this.stateName === 'closed') return void (this.closingUnsent && this.touch());
    this.touch();
    clearTimeout(this.deadline);
    this.deadline = undefined;
    this.emit('data', chunk);
  }

  /** Some byte moved: the idle clock starts again. */
  private touch(): void {
    if (this.idleTimeout === 0) return;
    this.idleQueued = 0;
    if (this.idleTimer) this.idleTimer.refresh();
    else this.idleTimer = setTimeout(() => this.idle(), this.idleTimeout);
  }

  /** No data in and no drain for `idleTimeout`: dropped, unless queued bytes are still leaving. */
  private idle(): void {
    const conn = this.conn;
    if (!conn) return;
    const queued = conn.bufferedAmount;
    if (queued > 0 && queued !== this.idleQueued) {
      this.idleQueued = queued;
      return void this.idleTimer!.refresh();
    }
    this.drop(conn, timedOut('idle', this.target));
  }

  /** Gives up on a connection (silent, or too slow to connect): its close reports `cause`. */
  private drop(conn: Connection, cause: Error): void {
    if (conn !== this.conn || conn.closed) return;
    this.dropCause = cause;
    conn.destroy(cause);
  }

  private onClose(conn: Connection, err: Error | undefined): void {
    if (conn !== this.conn) return;
    this.conn = undefined;
    // An address of a name's that failed to connect: the next, within the attempt's deadline.
    if (this.stateName === 'connecting' && this.dropCause === undefined && this.untried.length > 0) return this.dialNext(this.untried);
    this.untried = [];
    this.stopTimers();
    const unsent = this.closingUnsent;
    this.closingUnsent = undefined;
    // Ended by close(): its bytes went out (or the cause says why not).
    if (unsent) return void this.emit('closed', { cause: this.dropCause ?? err, unsent } satisfies ClosedEvent);
    this.lost(this.dropCause ?? err);
  }

  /** The connection (or the attempt) is gone: retry after the backoff, or give up. */
  private lost(err: Error | undefined): void {
    if (this.stateName === 'closed') return;
    const cause = err ?? codedError('The peer closed the connection', 'ERR_SOCKET_CLOSED_BY_PEER');
    const b = this.backoff;
    if (b !== undefined && this.openedAt > 0 && Date.now() - this.openedAt >= b.minUptime) this.attempt = 0;
    this.openedAt = 0;
    if (b === undefined || this.attempt >= b.maxRetries) return this.finish(cause);
    this.attempt++;
    const delay = delayFor(b, this.attempt);
    this.stateName = 'reconnecting';
    // Set before the listeners: one that throws does not stop the retries, and
    // one that closes the client clears it.
    this.retryTimer = setTimeout(() => this.open_(), delay);
    this.emit('reconnecting', { delay, attempt: this.attempt, cause } satisfies ReconnectingEvent);
  }

  private stopTimers(): void {
    clearTimeout(this.connectTimer);
    clearTimeout(this.addressTimer);
    clearTimeout(this.idleTimer);
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.deadline);
    this.idleTimer = this.heartbeatTimer = this.deadline = undefined;
  }

  /** Closed for good: no more sends, timers or attempts. */
  private stop(): void {
    this.stopTimers();
    clearTimeout(this.retryTimer);
    this.awaitingLookup = false;
    this.untried = [];
    this.stateName = 'closed';
  }

  /**
   * Forgets the oldest queued message (it went to the connection). The
   * array is cut once half of it is spent, and when empty (so a non-empty
   * queue has its head in it): a `shift()` a message copied the whole
   * array, and a flush of 260 000 small messages blocked the loop 5 s.
   */
  private dequeue(): void {
    this.queuedBytes -= this.queue[this.queueHead++].length;
    if (this.queueHead * 2 < this.queue.length) return;
    this.queue.splice(0, this.queueHead);
    this.queueHead = 0;
  }

  /** Empties the queue: its messages, to hand back. */
  private takeQueue(): Buffer[] {
    this.queuedBytes = 0;
    const rest = this.queue.splice(this.queueHead);
    this.queue.length = this.queueHead = 0;
    return rest;
  }

  /**
   * Gives up (or closed with no open connection): `'closed'` on the next tick,
   * never inside the call that closed it (a `close(); await once(client,
   * 'closed')` would wait for ever), as node:net emits `'close'`.
   */
  private finish(cause: Error | undefined): void {
    this.stop();
    const unsent = this.takeQueue();
    process.nextTick(() => this.emit('closed', { cause, unsent } satisfies ClosedEvent));
  }
}

/** Starts a resilient client (see the module notes); the first attempt starts on the next tick. */
export function connect(options: ClientOptions): Client {
  return new Client(options);
}
