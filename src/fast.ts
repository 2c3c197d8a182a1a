/**
 * The fast API: callbacks instead of streams, one handler object per server
 * (no closure or EventEmitter per connection), writes that go straight to
 * the kernel. For hot paths; `import net from 'muxnet'` is the drop-in layer.
 *
 * ```ts
 * import { listen } from 'muxnet/fast';
 * const server = listen({ port: 7000 }, {
 *   onData(conn, chunk) { conn.write(chunk); },
 * });
 * ```
 *
 * Differences from `node:net`, on purpose:
 * - `listen`, `connect` and `bind` take IP addresses (or `localhost`), and
 *   errors known at once (`EADDRINUSE`, bad options) are thrown, not emitted.
 * - A chunk passed to `onData` is a view of a shared read slab: keep it as
 *   long as you like (it is never overwritten), but copy it if you need to
 *   modify it without others seeing, or to move it to another thread (the
 *   slab is untransferable).
 * - Accepted sockets have `TCP_NODELAY` on unless `noDelay: false`.
 */
// Imported, not the globals: those are accessors on globalThis, a call at every use on a hot path.
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { AcceptRetry, getReactor, KeepAlive, kOnAccept, kOnAcceptError, kOnClose, kOnConnect, kOnData, kOnDrain, kOnEnd, kOnFileSent, kOnMessage, kOnReceiveError, openReactor, udpBufferSize, type Handle, type Reactor, type SendSettler } from './reactor';
import { ErrorThrottle, codedError, invalidArgType, invalidArgValue, outOfRange, socketClosed, systemError, uvErrno, type SystemError } from './errors';
import {
  resolveBackend,
  toBytes,
  validateBoolean,
  validateBufferSize,
  validateHost,
  validateInteger,
  validateObject,
  validatePort,
  validateType,
  type BackendName,
} from './options';
import { native, type SocketAddress } from './binding';
import { nextTick } from './schedule';
import * as fs from 'node:fs';

const EAGAIN = uvErrno('EAGAIN');
const ENOBUFS = uvErrno('ENOBUFS');

export type { BackendName } from './options';
export type { SocketAddress } from './binding';
export { BACKENDS } from './options';
export { metrics, reportStats, stats, type IoCount, type ReactorStats } from './stats';

export interface ConnectionHandlers<T = unknown> {
  /** The connection is established (accepted, or connect completed). */
  onOpen?(conn: Connection<T>): void;
  onData?(conn: Connection<T>, chunk: Buffer): void;
  /** Everything queued has been sent: `write` returned false before. */
  onDrain?(conn: Connection<T>): void;
  /** The peer sent FIN. Unless `allowHalfOpen`, `end()` follows by itself. */
  onEnd?(conn: Connection<T>): void;
  /** The socket is closed; `err` says why, if not an orderly close (a system error's `code`, `syscall`, …). */
  onClose?(conn: Connection<T>, err?: NodeJS.ErrnoException): void;
}

export interface ServerHandlers<T = unknown> extends ConnectionHandlers<T> {
  /** `accept` failed (`EMFILE`, …); accepting resumes by itself. */
  onError?(err: Error, server: Server<T>): void;
}

export interface SendFileOptions {
  /** Where in the file to start (default 0). */
  offset?: number;
  /** How many bytes to send (default: to the end of the file). */
  length?: number;
}

export interface PipeOptions {
  /**
   * Linux: relay bulk input (reads of 8 KiB or more) with `splice(2)`
   * through a kernel pipe per direction instead of copying it through
   * user space; small chunks are still copied. Ignored elsewhere. Saves
   * the relaying process CPU, but on one host it costs the peers more
   * than it saves (see README, Proxy). Default: `MUXNET_SPLICE=1` in the
   * environment turns it on for every pipe; otherwise off.
   */
  splice?: boolean;
}

/** A `sendFile` waiting for its file to be sent. */
interface PendingFile {
  resolve(sent: number): void;
  reject(err: Error): void;
}

/**
 * The `sendFile` calls of each connection sending files, in the order
 * their files are sent: kept here rather than in a slot of every
 * connection (few ever send a file).
 */
const sendingFiles = new WeakMap<Connection<unknown>, PendingFile[]>();

const writeAfterEnd = () => codedError('write after end', 'ERR_STREAM_WRITE_AFTER_END');

export interface ListenOptions {
  port?: number;
  host?: string;
  /**
   * A Unix-domain socket path to listen on instead of a port (IPC; on
   * Linux a leading `'\0'` names an abstract socket). The file is removed
   * when the server closes.
   */
  path?: string;
  backlog?: number;
  reusePort?: boolean;
  ipv6Only?: boolean;
  /** `TCP_NODELAY` on accepted sockets (default true). */
  noDelay?: boolean;
  allowHalfOpen?: boolean;
  backend?: BackendName;
}

export interface ConnectOptions {
  /** Required unless `path` is given. */
  port?: number;
  host?: string;
  /** A Unix-domain socket path to connect to instead of a port. */
  path?: string;
  localAddress?: string;
  localPort?: number;
  noDelay?: boolean;
  allowHalfOpen?: boolean;
  backend?: BackendName;
}

/** Where an outgoing connection goes: `host:port`, or a path (`port` undefined). */
interface Target {
  host: string;
  port?: number;
}

/**
 * Every handler given must be a function: a peer triggers the first call,
 * and a bad one must fail here, not kill the process then.
 */
function checkHandlers(handlers: unknown, name: string, names: readonly string[]): void {
  const given = validateObject(handlers, name);
  for (const key of names) {
    const handler = given[key];
    if (handler !== undefined && typeof handler !== 'function') throw invalidArgType(`${name}.${key}`, 'of type function', handler);
  }
}

/** A Unix-domain path: a non-empty string. */
function validatePath(path: unknown, name: string): string {
  if (typeof path !== 'string') throw invalidArgType(name, 'of type string', path);
  if (path === '') throw invalidArgValue(name, path, 'must be a non-empty path');
  return path;
}

const CONNECTION_HANDLERS = ['onOpen', 'onData', 'onDrain', 'onEnd', 'onClose'] as const;
const SERVER_HANDLERS = [...CONNECTION_HANDLERS, 'onError'] as const;
const DATAGRAM_HANDLERS = ['onMessage', 'onSendError'] as const;

/**
 * What the connections of one server (or of one `connect()`) share. It is
 * kept once, not copied into each connection: an idle connection costs
 * only its own few slots (see `Connection`).
 */
interface Origin<T> {
  readonly reactor: Reactor;
  readonly handlers: ConnectionHandlers<T>;
  readonly allowHalfOpen: boolean;
  readonly server: Server<T> | undefined;
  /** Where an outgoing connection goes. */
  readonly target: Target | undefined;
}

/** A connection's state bits, in one small integer rather than a slot each. */
const CONNECTING = 1;
const ENDING = 2;
const CLOSED = 4;
/** `ref()`ed (the default): while open, it keeps the process alive. */
const REF = 8;
/** Closed by `destroy()`: what was still queued was discarded. */
const DESTROYED = 16;
/** Its peer sent FIN (`onEnd` ran). */
const PEER_ENDED = 32;
/** `pause()`d: it waits for nothing of its own, and holds the process only while it owes bytes (as node:net's). */
const PAUSED = 64;
/** Bytes (or a FIN) queued in Rust for the kernel, until `onDrain`: it holds the process, `unref()`ed or not. */
const OWING = 128;
/** It counts now in its reactor's ref count (see `sync`). */
const COUNTED = 256;

/** What only a connection `pipe()` joined needs. */
interface Piped {
  /** The connection it is joined to, while both are open. */
  partner: Connection<unknown> | undefined;
  /** `bytesRelayed` as it was when the connection closed. */
  relayedAtClose: number;
}

/**
 * One TCP connection, accepted by a `Server` or made by `connect`.
 *
 * Thousands of them sit idle in a busy server, so each is kept small: six
 * slots, what its server shares in one `Origin`, its flags in one integer,
 * pipe state and the peer's address only once asked for.
 */
export class Connection<T = unknown> implements Handle {
  /** Free for the application: per-connection state without a Map. */
  data: T | undefined;
  readonly token: number;
  private readonly origin: Origin<T>;
  private flags: number;
  private remote: SocketAddress | null | undefined;
  private piped: Piped | undefined;

  /** @internal */
  constructor(origin: Origin<T>, token: number) {
    this.data = undefined;
    this.token = token;
    this.origin = origin;
    // It keeps the process alive while it waits for its peer (not paused) unless unref()ed, and
    // while it connects or owes bytes whatever unref() says, as node:net's requests in flight
    // (what `KeepAlive` tracks for the other handles, without an object: see `sync`).
    this.flags = origin.target !== undefined ? CONNECTING | REF | COUNTED : REF | COUNTED;
    this.remote = undefined;
    this.piped = undefined;
    origin.reactor.attach(token, this);
    origin.reactor.ref();
  }

  /** @internal `ref()`ed and not paused: it holds the process, owing or not. */
  get waitsRefd(): boolean {
    return (this.flags & (REF | PAUSED)) === REF;
  }

  /**
   * Counts this connection in its reactor's ref count while it is open and
   * either connecting, owing bytes or a file to the kernel, or `ref()`ed and
   * not paused. Until 2026-12-05 an `unref()`ed one let the process exit
   * with its queue dropped — the peer saw an orderly FIN after ~4 MB of 64
   * MiB — or before it connected; a paused one held the process for ever.
   */
  private sync(): void {
    const f = this.flags;
    const counts = !(f & CLOSED) && ((f & (CONNECTING | OWING)) !== 0 || this.waitsRefd || sendingFiles.has(this));
    if (counts === ((f & COUNTED) !== 0)) return;
    this.flags ^= COUNTED;
    if (counts) this.origin.reactor.ref();
    else this.origin.reactor.unref();
  }

  /** The server that accepted it (undefined for an outgoing connection). */
  get server(): Server<T> | undefined {
    return this.origin.server;
  }

  get reactor(): Reactor {
    return this.origin.reactor;
  }

  get closed(): boolean {
    return (this.flags & CLOSED) !== 0;
  }

  /** `write()` is still allowed: neither closed nor `end()`ed. */
  get writable(): boolean {
    return (this.flags & (CLOSED | ENDING)) === 0;
  }

  /**
   * Closed by `destroy()` or `reset()` (here, or by the layer for a failed write): bytes
   * still queued then were discarded. False after a close the peer or the
   * reactor made, where a clean close sent everything queued.
   */
  get destroyed(): boolean {
    return (this.flags & DESTROYED) !== 0;
  }

  /** Bytes queued in Rust that the kernel has not taken yet. */
  get bufferedAmount(): number {
    return this.closed ? 0 : Math.max(0, this.origin.reactor.native.queued(this.token));
  }

  private remoteInfo(): SocketAddress | null {
    if (this.remote === undefined) {
      this.remote = this.flags & (CLOSED | CONNECTING) ? null : this.origin.reactor.native.remoteAddress(this.token);
    }
    const t = this.origin.target;
    // A Unix-domain connection has no remote address, as in node:net.
    if (this.remote !== null || t?.port === undefined) return this.remote ?? null;
    return { address: t.host, port: t.port, family: t.host.includes(':') ? 'IPv6' : 'IPv4' };
  }

  get remoteAddress(): string | undefined {
    return this.remoteInfo()?.address;
  }

  get remotePort(): number | undefined {
    return this.remoteInfo()?.port;
  }

  get remoteFamily(): string | undefined {
    return this.remoteInfo()?.family;
  }

  /**
   * The local end, `{ address, family, port }`; null once closed, and on a Unix-domain
   * connection (its ends have no address: node:net's `address()` is `{}` there; the
   * server's `address()` gives the path).
   */
  address(): SocketAddress | null {
    return this.closed ? null : this.origin.reactor.native.localAddress(this.token);
  }

  /**
   * Sends now what the kernel takes and queues the rest in Rust, sent at
   * most 1 MiB a turn. Returns false when bytes were queued: wait for
   * `onDrain` before writing more.
   */
  write(data: Uint8Array | string): boolean {
    // A bad argument is named first, in any state, as node:net's write() does.
    const bytes = toBytes(data, 'data');
    if (this.flags & (CLOSED | ENDING)) throw this.flags & CLOSED ? socketClosed() : writeAfterEnd();
    const queued = this.origin.reactor.write(this.token, bytes);
    if (queued < 0) {
      this.destroy(systemError(-queued, 'write'));
      return false;
    }
    if (queued === 0) return true;
    this.flags |= OWING;
    this.sync();
    return false;
  }

  /**
   * Sends a file (a path, or an open fd the caller keeps) after the bytes
   * written so far; what is written later goes after it. The kernel copies
   * the file to the socket where it can (`sendfile` on Linux, macOS,
   * FreeBSD); elsewhere, and for a file it refuses (a pipe, a FIFO, some
   * special files), a read/write loop in Rust does. Either way the file is
   * never read whole into memory and the socket's backpressure is
   * respected. A pipe or FIFO is sent until its writer closes it (or
   * `length` bytes), never blocking the thread while it is empty; it has
   * no offsets (`ESPIPE` if one is given). Resolves with the bytes sent
   * (fewer than `length` if the file is shorter); rejects if the
   * connection closes first (an error sending closes it).
   *
   * ```ts
   * const sent = await conn.sendFile('/var/www/big.iso', { offset: 0 });
   * ```
   */
  sendFile(file: string | number, options: SendFileOptions = {}): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (typeof file !== 'string' && typeof file !== 'number') throw invalidArgType('file', 'of type string or number', file);
      const opts = validateObject(options, 'options') as SendFileOptions;
      const offset = validateInteger(opts.offset, 'options.offset', 0, 0, Number.MAX_SAFE_INTEGER);
      const length = validateInteger(opts.length, 'options.length', -1, 0, Number.MAX_SAFE_INTEGER);
      if (this.flags & (CLOSED | ENDING)) throw this.flags & CLOSED ? socketClosed() : writeAfterEnd();
      // Node's fds on Windows are the C runtime's, not handles the reactor could send from.
      if (typeof file === 'number' && process.platform === 'win32') throw codedError('muxnet does not support sendFile with an fd on Windows yet (give a path)', 'ERR_MUXNET_UNSUPPORTED');
      // O_NONBLOCK: a FIFO opens at once instead of waiting for its writer (reads wait in the reactor).
      const fd = typeof file === 'number' ? validateInteger(file, 'file', 0, 0, 2 ** 31 - 1) : fs.openSync(file, process.platform === 'win32' ? 'r' : fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      try {
        const stat = fs.fstatSync(fd);
        // Windows reads regular files only; Unix pipes, FIFOs and devices too.
        if (stat.isDirectory() || (process.platform === 'win32' && !stat.isFile())) throw invalidArgValue('file', file, process.platform === 'win32' ? 'must be a regular file' : 'must not be a directory');
        const r = this.origin.reactor.native.sendFile(this.token, fd, typeof file === 'string' ? file : '', offset, length);
        if (r < 0) throw systemError(-r, 'sendfile');
      } finally {
        // The reactor holds its own duplicate.
        if (typeof file === 'string') fs.closeSync(fd);
      }
      const pending = sendingFiles.get(this);
      if (pending) pending.push({ resolve, reject });
      else sendingFiles.set(this, [{ resolve, reject }]);
      this.sync();
    });
  }

  /** Half-closes after the queued bytes (optionally writing `data` first). */
  end(data?: Uint8Array | string): void {
    // Data after the end is refused as `write()` refuses it, not dropped.
    if (data !== undefined) this.write(data);
    if (this.flags & (CLOSED | ENDING)) return;
    this.flags |= ENDING;
    const r = this.origin.reactor.native.shutdown(this.token);
    if (r < 0) this.destroy(systemError(-r, 'shutdown'));
    // The FIN waits for what is queued (a broadcast's bytes too): owed till then.
    else this.owe();
  }

  /**
   * @internal Bytes queued now hold the process (see `sync`) until the
   * `Drain` that this asks for: those a broadcast corked, or the queue an
   * `end()` waits behind.
   */
  owe(): void {
    if (this.origin.reactor.native.armDrain(this.token) <= 0) return;
    this.flags |= OWING;
    this.sync();
  }

  /**
   * Joins this connection to `other` in the reactor: from now on what
   * either receives is written to the other in Rust, with no `onData` and
   * no JavaScript per chunk. Backpressure holds one side's reading while
   * the other's queue is full; an end of input is passed on as `end()`; an
   * error on one side resets the other and both get `onClose(conn, err)`.
   * While joined, `allowHalfOpen: false` does not end a side whose peer
   * ended: the pipe passes that end on, and the partner may still reply.
   * `destroy()` on one side unjoins the other, which then gets `onData`
   * again (and, if its peer has ended, is ended then). A connection still
   * connecting may be joined (what its partner sends waits for it). Both
   * must belong to the same reactor (backend).
   *
   * ```ts
   * listen({ port: 8000 }, { onOpen(client) { client.pipe(connect({ port: 9000 }, {})); } });
   * ```
   */
  pipe(other: Connection<unknown>, options?: PipeOptions): void {
    if (!(other instanceof Connection)) throw invalidArgType('other', 'an instance of Connection', other);
    const opts = validateObject(options, 'options') as PipeOptions;
    const splice = opts.splice === undefined ? undefined : validateBoolean(opts.splice, 'options.splice', false);
    const reactor = this.origin.reactor;
    if (other.reactor !== reactor) throw invalidArgValue('other', other.reactor.backend, `must be on the same backend as this connection (${reactor.backend})`);
    if (this.closed || other.closed) throw socketClosed();
    const r = reactor.native.pipe(this.token, other.token, splice);
    if (r < 0) throw systemError(-r, 'pipe');
    (this.piped ??= { partner: undefined, relayedAtClose: 0 }).partner = other;
    (other.piped ??= { partner: undefined, relayedAtClose: 0 }).partner = this;
  }

  /** Bytes this connection received and passed to its `pipe()` partner, in Rust. */
  get bytesRelayed(): number {
    const piped = this.piped;
    if (piped === undefined) return 0;
    if (!this.closed) piped.relayedAtClose = Math.max(0, this.origin.reactor.native.relayed(this.token));
    return piped.relayedAtClose;
  }

  /** Closes now, dropping queued bytes; `onClose` follows on the next tick. */
  destroy(err?: Error): void {
    this.closeNow(err, false);
  }

  /**
   * Closes now with a reset, dropping queued bytes, as node:net's
   * `resetAndDestroy()`: the peer's reads fail with `ECONNRESET`, so a
   * peer cut off mid-stream cannot take it for an orderly end (a
   * Unix-domain connection has no reset: closed as by `destroy()`).
   * `onClose` follows on the next tick.
   */
  reset(): void {
    this.closeNow(undefined, true);
  }

  private closeNow(err: Error | undefined, reset: boolean): void {
    if (this.closed) return;
    // What only the open socket knows (its peer, its counts) first.
    this.closed_(err);
    this.flags |= DESTROYED;
    this.origin.reactor.closeHandle(this.token, undefined, reset);
    nextTick(() => this.origin.handlers.onClose?.(this, err));
  }

  /**
   * Hands this connection to another thread: returns a ticket that
   * `adopt(ticket, handlers)` there turns into a `Connection` of that
   * thread's reactor (or `discardTransfer(ticket)` closes). Only an idle
   * connection moves — connected, not piped, nothing queued, as one is in
   * `onOpen` after an accept. Bytes the reactor read for it that this batch
   * has still to hand to `onData` (a batch can hold several reads of one
   * connection, after a `resume()`) would be lost: that throws `EBUSY`, and
   * a later batch may move it. This object is closed after, with no `onClose`.
   */
  transfer(): number {
    if (this.closed) throw socketClosed();
    if (this.origin.reactor.delivering(this.token)) throw systemError(uvErrno('EBUSY'), 'transfer');
    // What only the reactor that holds the socket knows, first.
    this.remoteInfo();
    const reactor = this.origin.reactor;
    const ticket = reactor.native.detach(this.token);
    if (ticket < 0) throw systemError(-ticket, 'transfer');
    this.closed_();
    reactor.detach(this.token);
    return ticket;
  }

  /**
   * Stops reading: the kernel buffer fills and the peer slows down. What the
   * reactor read already in the batch being handled still comes to `onData`
   * (a batch can hold several reads of one connection, after a `resume()`).
   */
  pause(): void {
    if (this.closed) return;
    this.origin.reactor.native.pause(this.token);
    this.flags |= PAUSED;
    this.owe();
    this.sync();
  }

  resume(): void {
    if (this.closed) return;
    this.origin.reactor.native.resume(this.token);
    this.flags &= ~PAUSED;
    this.sync();
  }

  // Set on the socket at once, connecting or not: the kernel keeps the options through the
  // connect (until 2026-12-04 a call before onOpen was dropped, where node:net applies it).
  setNoDelay(noDelay = true): this {
    const on = validateBoolean(noDelay, 'noDelay', true);
    if (!(this.flags & CLOSED)) this.origin.reactor.native.setNoDelay(this.token, on);
    return this;
  }

  /**
   * TCP keep-alive as node:net sets it: the first probe after
   * `initialDelayMs` idle (whole seconds; under a second, the system's
   * delay, two hours on Linux), then one a second; ten unanswered drop the
   * connection (`onClose` with `ETIMEDOUT`).
   */
  setKeepAlive(enable = false, initialDelayMs = 0): this {
    const on = validateBoolean(enable, 'enable', false);
    const delay = validateInteger(initialDelayMs, 'initialDelayMs', 0, 0, 2 ** 32 - 1);
    if (!(this.flags & CLOSED)) this.origin.reactor.native.setKeepAlive(this.token, on, Math.trunc(delay / 1000), 1, 10);
    return this;
  }

  /**
   * Whether this connection keeps the process alive while it waits for its
   * peer (default true). Unref'd, it still does while it connects or has
   * bytes or a file queued for the kernel, as node:net's does while a
   * request is in flight; paused, only then.
   */
  ref(): this {
    this.flags |= REF;
    this.sync();
    return this;
  }

  unref(): this {
    this.flags &= ~REF;
    // What is queued already (a broadcast's bytes) holds it now.
    if (!this.closed) this.owe();
    this.sync();
    return this;
  }

  private closed_(err?: Error): void {
    if (this.remote === undefined && !(this.flags & CONNECTING)) this.remoteInfo();
    // Until the next turn the reactor still knows a socket it closed (only
    // a piped one has anything to tell: no native call per close otherwise).
    if (this.piped !== undefined) void this.bytesRelayed;
    this.flags |= CLOSED;
    this.sync();
    if (this.origin.server) this.origin.server.connections--;
    // The reactor unjoins the partner when one side closes.
    const partner = this.piped?.partner;
    if (partner !== undefined) {
      partner.piped!.partner = undefined;
      this.piped!.partner = undefined;
      // Its own end, passed over while it was piped, is due now: else it
      // stays half-open with no one left to end it.
      if (partner.flags & PEER_ENDED && !partner.origin.allowHalfOpen) partner.end();
    }
    // Files not sent by now never will be.
    const files = sendingFiles.get(this);
    if (files !== undefined) {
      sendingFiles.delete(this);
      for (const f of files) f.reject(err ?? socketClosed());
    }
  }

  /** @internal */
  [kOnConnect](): void {
    this.flags &= ~CONNECTING;
    this.sync();
    this.origin.handlers.onOpen?.(this);
  }

  /** @internal */
  [kOnData](chunk: Buffer): void {
    this.origin.handlers.onData?.(this, chunk);
  }

  /** @internal */
  [kOnDrain](): void {
    // Stale: a write after it in this batch queued again (the reactor reads, then flushes,
    // then hands the batch over). Asked again, a Drain comes once those bytes are out too.
    if (this.origin.reactor.native.armDrain(this.token) > 0) return;
    this.flags &= ~OWING;
    this.sync();
    this.origin.handlers.onDrain?.(this);
  }

  /** @internal */
  [kOnFileSent](sent: number): void {
    const files = sendingFiles.get(this);
    files?.shift()?.resolve(sent);
    if (files?.length === 0) {
      sendingFiles.delete(this);
      this.sync();
    }
  }

  /** @internal */
  [kOnEnd](): void {
    this.flags |= PEER_ENDED;
    try {
      this.origin.handlers.onEnd?.(this);
    } finally {
      // Even when the handler throws (to 'uncaughtException'): else the
      // connection stays half-open until the peer gives up.
      // A piped connection's end is passed on by the pipe (also one read
      // before the join); its partner may still send (a half-close through
      // a proxy).
      if (!this.origin.allowHalfOpen && this.piped?.partner === undefined) this.end();
    }
  }

  /** @internal */
  [kOnClose](errno: number, syscall: 'read' | 'write'): void {
    const wasConnecting = (this.flags & CONNECTING) !== 0;
    let err: Error | undefined;
    const target = this.origin.target;
    if (errno !== 0) {
      err = wasConnecting && target ? systemError(errno, 'connect', target.host, target.port) : systemError(errno, syscall);
    }
    this.closed_(err);
    this.origin.handlers.onClose?.(this, err);
  }
}

/** A listening TCP socket; each accepted connection gets the handlers. */
export class Server<T = unknown> implements Handle {
  readonly reactor: Reactor;
  readonly token: number;
  /** Open connections accepted by this server. */
  connections = 0;
  private readonly handlers: ServerHandlers<T>;
  /** What its connections share. */
  private readonly origin: Origin<T>;
  /** The address, or the path of a Unix-domain server. */
  private readonly local: SocketAddress | string;
  private listening = true;
  private readonly keepAlive: KeepAlive;
  private readonly retry = new AcceptRetry();
  /** Accept errors warned of (no `onError`). */
  private warned: ErrorThrottle | undefined;

  /** @internal */
  constructor(reactor: Reactor, token: number, handlers: ServerHandlers<T>, allowHalfOpen: boolean) {
    this.reactor = reactor;
    this.token = token;
    this.handlers = handlers;
    this.origin = { reactor, handlers, allowHalfOpen, server: this, target: undefined };
    this.local = reactor.native.localAddress(token) ?? reactor.native.localPath(token) ?? '';
    reactor.attach(token, this);
    this.keepAlive = new KeepAlive(reactor);
  }

  /** The port (NaN for a Unix-domain server: see `address()`). */
  get port(): number {
    return typeof this.local === 'string' ? NaN : this.local.port;
  }

  /** `{ address, family, port }`, or the path of a Unix-domain server, as node:net's. */
  address(): SocketAddress | string | null {
    if (!this.listening) return null;
    return typeof this.local === 'string' ? this.local : { ...this.local };
  }

  get backend(): BackendName {
    return this.reactor.backend;
  }

  /** Stops accepting; open connections stay until they close. */
  close(): void {
    if (!this.listening) return;
    this.listening = false;
    this.retry.cancel();
    this.reactor.closeHandle(this.token, this.keepAlive);
  }

  /**
   * Stops accepting until `resumeAccepting()`: new clients wait in the
   * kernel's backlog (their connect completes there), and no `onOpen` runs.
   * Connections accepted in the same reactor turn are still delivered.
   */
  pauseAccepting(): void {
    this.holdAccept(true);
  }

  resumeAccepting(): void {
    this.holdAccept(false);
  }

  private holdAccept(on: boolean): void {
    if (!this.listening) return;
    const r = this.reactor.native.holdAccept(this.token, on);
    if (r < 0) throw systemError(-r, 'listen');
  }

  ref(): this {
    this.keepAlive.set(true);
    return this;
  }

  unref(): this {
    this.keepAlive.set(false);
    return this;
  }

  /** @internal */
  [kOnAccept](token: number): void {
    const conn = new Connection<T>(this.origin, token);
    this.connections++;
    this.handlers.onOpen?.(conn);
  }

  /** @internal */
  [kOnAcceptError](errno: number): void {
    const err = systemError(errno, 'accept');
    this.retry.failed(err, this.reactor, this.token, () => this.listening);
    if (this.handlers.onError) return this.handlers.onError(err, this);
    const since = (this.warned ??= new ErrorThrottle()).say(err.code);
    if (since === undefined) return;
    const more = since ? ` (${since} more since the last warning)` : '';
    process.emitWarning(`muxnet: ${err.message}${more}`, { code: err.code });
  }
}

/** A Unix-domain `path`, or a TCP `port` and `host`: given both, one would be ignored without a word. */
function checkPathAlone(opts: { port?: unknown; host?: unknown }): void {
  for (const name of ['port', 'host'] as const) {
    if (opts[name] !== undefined) throw invalidArgValue(`options.${name}`, opts[name], 'cannot be given with options.path');
  }
}

/**
 * The backend's reactor, made on first use; the system's refusal to make
 * one (no fd left) is thrown as the call's own error: `bind EMFILE 127.0.0.1:7000`.
 */
function reactorFor(backend: unknown, syscall: string, address: string, port?: number): Reactor {
  const reactor = openReactor(resolveBackend(backend));
  if (typeof reactor === 'number') throw systemError(-reactor, syscall, address, port);
  return reactor;
}

/** Listens for TCP connections. Throws at once if the address is taken. */
export function listen<T = unknown>(options: ListenOptions, handlers: ServerHandlers<T>): Server<T> {
  const opts = validateObject(options, 'options') as ListenOptions;
  checkHandlers(handlers, 'handlers', SERVER_HANDLERS);
  if (opts.path !== undefined) {
    checkPathAlone(opts);
    const path = validatePath(opts.path, 'options.path');
    const backlog = validateInteger(opts.backlog, 'options.backlog', 511, 0, 2 ** 31 - 1);
    const allowHalfOpen = validateBoolean(opts.allowHalfOpen, 'options.allowHalfOpen', false);
    const reactor = reactorFor(opts.backend, 'listen', path);
    const token = reactor.native.listenUnix(path, backlog);
    if (token < 0) throw systemError(-token, 'listen', path);
    return new Server<T>(reactor, token, handlers, allowHalfOpen);
  }
  const port = validatePort(opts.port ?? 0);
  const host = validateHost(opts.host);
  const backlog = validateInteger(opts.backlog, 'options.backlog', 511, 0, 2 ** 31 - 1);
  const reusePort = validateBoolean(opts.reusePort, 'options.reusePort', false);
  const ipv6Only = validateBoolean(opts.ipv6Only, 'options.ipv6Only', false);
  const noDelay = validateBoolean(opts.noDelay, 'options.noDelay', true);
  const allowHalfOpen = validateBoolean(opts.allowHalfOpen, 'options.allowHalfOpen', false);
  const reactor = reactorFor(opts.backend, 'listen', host, port);
  const token = reactor.native.listen(host, port, backlog, reusePort, ipv6Only, noDelay);
  if (token < 0) throw systemError(-token, 'listen', host, port);
  return new Server<T>(reactor, token, handlers, allowHalfOpen);
}

/**
 * Connects over TCP, or to a Unix-domain path. Returns the connection at
 * once; `onOpen` says it is established, or `onClose(conn, err)` that it
 * failed (`ECONNREFUSED`, …). Writes made before `onOpen` are queued. What
 * fails in the call itself is thrown (a local address that cannot be
 * bound; any failure of a Unix-domain connect, which completes at once).
 */
export function connect<T = unknown>(options: ConnectOptions, handlers: ConnectionHandlers<T>): Connection<T> {
  const opts = validateObject(options, 'options') as unknown as ConnectOptions;
  checkHandlers(handlers, 'handlers', CONNECTION_HANDLERS);
  if (opts.path !== undefined) {
    checkPathAlone(opts);
    const path = validatePath(opts.path, 'options.path');
    const allowHalfOpen = validateBoolean(opts.allowHalfOpen, 'options.allowHalfOpen', false);
    const reactor = reactorFor(opts.backend, 'connect', path);
    const token = reactor.native.connectUnix(path);
    if (token < 0) throw systemError(-token, 'connect', path);
    return new Connection<T>({ reactor, handlers, allowHalfOpen, server: undefined, target: { host: path } }, token);
  }
  const port = validatePort(opts.port, 'options.port', false);
  const host = validateHost(opts.host);
  const localAddress = opts.localAddress === undefined ? undefined : validateHost(opts.localAddress, 'options.localAddress');
  const localPort = opts.localPort === undefined ? undefined : validatePort(opts.localPort, 'options.localPort');
  const noDelay = validateBoolean(opts.noDelay, 'options.noDelay', true);
  const allowHalfOpen = validateBoolean(opts.allowHalfOpen, 'options.allowHalfOpen', false);
  const reactor = reactorFor(opts.backend, 'connect', host, port);
  const local = localAddress ?? (localPort !== undefined ? (host.includes(':') ? '::' : '0.0.0.0') : undefined);
  const token = reactor.native.connect(host, port, local, localPort);
  if (token < 0) throw systemError(-token, 'connect', host, port);
  if (noDelay) reactor.native.setNoDelay(token, true);
  return new Connection<T>({ reactor, handlers, allowHalfOpen, server: undefined, target: { host, port } }, token);
}

export interface AdoptOptions {
  allowHalfOpen?: boolean;
  backend?: BackendName;
}

/**
 * Takes over a connection another thread of this process `transfer()`ed:
 * it joins this thread's reactor with `handlers` (no `onOpen`: it is open).
 * A ticket is adopted once; an unknown one throws `EBADF`.
 */
export function adopt<T = unknown>(ticket: number, handlers: ConnectionHandlers<T>, options?: AdoptOptions): Connection<T> {
  validateType(ticket, 'ticket', 'number');
  const id = validateInteger(ticket, 'ticket', 0, 1, Number.MAX_SAFE_INTEGER);
  checkHandlers(handlers, 'handlers', CONNECTION_HANDLERS);
  const opts = validateObject(options, 'options') as AdoptOptions;
  const allowHalfOpen = validateBoolean(opts.allowHalfOpen, 'options.allowHalfOpen', false);
  const reactor = getReactor(resolveBackend(opts.backend));
  const token = reactor.native.adopt(id);
  if (token < 0) throw systemError(-token, 'adopt');
  return new Connection<T>({ reactor, handlers, allowHalfOpen, server: undefined, target: undefined }, token);
}

/**
 * Closes a transferred connection nobody will adopt (its thread is gone);
 * false if the ticket was adopted or unknown. The tickets are process-wide:
 * any reactor (`backend`) of any thread may do it.
 */
export function discardTransfer(ticket: number, backend?: BackendName): boolean {
  validateType(ticket, 'ticket', 'number');
  const id = validateInteger(ticket, 'ticket', 0, 1, Number.MAX_SAFE_INTEGER);
  return getReactor(resolveBackend(backend)).native.discardDetached(id) === 0;
}

export interface RemoteInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  size: number;
}

export interface DatagramHandlers {
  /** `msg` is a view of the shared read slab (see the module notes). */
  onMessage?(msg: Buffer, rinfo: RemoteInfo, socket: UdpSocket): void;
  /**
   * A datagram sent from a handler (queued, see `UdpSocket.send`) failed
   * when the batch's datagrams left: `err` has its `code` (`EMSGSIZE`,
   * `ECONNREFUSED`, `EAGAIN` for a full send buffer: dropped), `syscall`
   * `'send'`, and the `address`/`port` it was sent to. Without this
   * handler a full buffer drops the datagram, as UDP may, and any other
   * error is thrown as `send()` would have thrown it.
   */
  onSendError?(err: SystemError, socket: UdpSocket): void;
}

export interface BindOptions {
  port?: number;
  host?: string;
  reuseAddr?: boolean;
  /**
   * `SO_REUSEPORT`: several sockets, one per thread or process, bind the
   * port; Linux spreads the datagrams over them by sender (FreeBSD and
   * DragonFly balance too). Elsewhere, macOS and Windows included, binding
   * throws `ENOTSUP`, as libuv's `reusePort`.
   */
  reusePort?: boolean;
  ipv6Only?: boolean;
  /**
   * `SO_RCVBUF` / `SO_SNDBUF` in bytes, set once bound (see
   * `setRecvBufferSize`): what a burst may queue before the kernel drops.
   */
  recvBufferSize?: number;
  sendBufferSize?: number;
  backend?: BackendName;
}

/** A bound UDP socket. */
export class UdpSocket implements Handle {
  readonly reactor: Reactor;
  readonly token: number;
  private readonly handlers: DatagramHandlers;
  private closedFlag = false;
  private readonly keepAlive: KeepAlive;

  /** @internal */
  constructor(reactor: Reactor, token: number, handlers: DatagramHandlers) {
    this.reactor = reactor;
    this.token = token;
    this.handlers = handlers;
    reactor.attach(token, this);
    this.keepAlive = new KeepAlive(reactor);
  }

  address(): SocketAddress | null {
    return this.closedFlag ? null : this.reactor.native.localAddress(this.token);
  }

  /**
   * Sets `SO_RCVBUF`: how many bytes of datagrams the kernel holds for this
   * socket between reads; past it, it drops them. Linux doubles the figure
   * (bookkeeping) and caps it at `net.core.rmem_max` (unprivileged).
   * Errors as node:dgram's (`ERR_SOCKET_BAD_BUFFER_SIZE`, `ERR_SOCKET_BUFFER_SIZE`).
   */
  setRecvBufferSize(size: number): void {
    this.bufferSize(size, true);
  }

  /** Sets `SO_SNDBUF`: what may wait to leave before a send finds no room (`EAGAIN`: dropped). */
  setSendBufferSize(size: number): void {
    this.bufferSize(size, false);
  }

  /** `SO_RCVBUF` as the kernel reports it (Linux: twice what was set). */
  getRecvBufferSize(): number {
    return this.bufferSize(0, true);
  }

  getSendBufferSize(): number {
    return this.bufferSize(0, false);
  }

  /** Sets (`size` > 0) or reads (0) a buffer's size. */
  private bufferSize(size: unknown, recv: boolean): number {
    validateBufferSize(size);
    if (this.closedFlag) throw socketClosed();
    return udpBufferSize(this.reactor.native, this.token, size, recv);
  }

  /** The connected peer, if `connect` was called. */
  remoteAddress(): SocketAddress | null {
    return this.closedFlag ? null : this.reactor.native.remoteAddress(this.token);
  }

  /**
   * Sends one datagram. With no `port`, sends to the connected peer.
   * Called from a handler (inside a batch of events, or a tick it
   * queued), the datagram is queued and leaves with the batch's others
   * after it, in one `sendmmsg(2)` per socket on Linux (in order, each its
   * own datagram); elsewhere it leaves at once. Returns false if the kernel's send
   * buffer is full at once (the datagram is dropped, as UDP may); a
   * queued datagram that fails later goes to `onSendError`. Errors known
   * at once (a bad address, `EMSGSIZE` outside a batch) are thrown.
   */
  send(data: Uint8Array | string, port?: number, host?: string): boolean {
    const buf = toBytes(data, 'data');
    const p = port === undefined ? undefined : validatePort(port, 'port', false);
    if (host !== undefined && host !== null && typeof host !== 'string') throw invalidArgType('address', 'of type string', host);
    if (this.closedFlag) throw socketClosed();
    if (p === undefined) return this.sent(this.refusal() || this.reactor.sendDatagram(this.token, buf, undefined, undefined, this.settler()));
    const h = host === undefined || host === null ? this.loopback() : this.checkedHost(host, p);
    return this.sent(this.refusal() || this.reactor.sendDatagram(this.token, buf, h, p, this.settler()), h, p);
  }

  /** An error the reactor's read took from the socket (see `onReceiveError`), as a negative errno, once; else 0. */
  private refusal(): number {
    const errno = this.receiveErrno;
    this.receiveErrno = 0;
    return -errno;
  }

  /**
   * The error a read found pending on the socket: the peer's ICMP refusal
   * of an earlier datagram (`ECONNREFUSED`: nothing listens at its port),
   * reported for a connected socket only. The kernel gives it to the next
   * send or receive, whichever comes first; the reactor receives first,
   * so it is kept here for the next `send`, which the kernel would have failed.
   */
  private receiveErrno = 0;

  /** The last host `send` checked, and what it became: a server replies to few peers' addresses, checked once each run. */
  private lastHost: [given: string, checked: string] | undefined;

  private checkedHost(host: string, port: number): string {
    if (this.lastHost?.[0] === host) return this.lastHost[1];
    // The loopback asked only for 'localhost': it is a native call, and a server replies to many addresses.
    const checked = host === 'localhost' ? this.loopback() : validateHost(host, 'address');
    // Refused now, as the kernel refuses a direct send: a queued one would fail only after the handler.
    if (checked.includes(':') && this.address()?.family === 'IPv4') throw systemError(uvErrno('EAFNOSUPPORT'), 'send', checked, port);
    this.lastHost = [host, checked];
    return checked;
  }

  /** Who hears a queued datagram's result: `onSendError`, or nobody. */
  private settler(): SendSettler {
    return this.handlers.onSendError === undefined ? this.settleUnheard : this.settleHeard;
  }

  /** No `onSendError`: a full buffer drops the datagram; another error is thrown, as `send()` would. */
  private readonly settleUnheard: SendSettler = (r, host, port) => {
    // Named as the one thrown at once and the one onSendError gets (it named no destination).
    if (r < 0 && -r !== EAGAIN && -r !== ENOBUFS) throw systemError(-r, 'send', host, port);
  };

  private readonly settleHeard: SendSettler = (r, host, port) => {
    if (r < 0) this.handlers.onSendError!(systemError(-r, 'send', host, port), this);
  };

  /** Where a send with no host goes, as node:dgram does: loopback of the socket's family. */
  private loopback(): string {
    return this.address()?.family === 'IPv6' ? '::1' : '127.0.0.1';
  }

  private sent(r: number, host?: string, port?: number): boolean {
    if (r >= 0) return true; // sent, or SEND_QUEUED
    if (-r === EAGAIN || -r === ENOBUFS) return false;
    throw systemError(-r, 'send', host, port);
  }

  /**
   * Stops reading: datagrams wait in the kernel's receive buffer (what
   * overflows it is dropped there, as UDP may) until `resume()`. Those
   * received in the batch being delivered still arrive.
   */
  pause(): void {
    if (!this.closedFlag) this.reactor.native.pause(this.token);
  }

  resume(): void {
    if (!this.closedFlag) this.reactor.native.resume(this.token);
  }

  /** Fixes the peer: `send(data)` goes there and only its datagrams arrive. */
  connect(port: number, host?: string): void {
    if (this.closedFlag) throw socketClosed();
    const p = validatePort(port, 'port', false);
    const h = validateHost(host, 'address', this.loopback());
    // Datagrams queued in this batch leave first, to where they were sent.
    this.reactor.flushSends();
    const r = this.reactor.native.udpConnect(this.token, h, p);
    if (r < 0) throw systemError(-r, 'connect', h, p);
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.reactor.closeHandle(this.token, this.keepAlive);
  }

  ref(): this {
    this.keepAlive.set(true);
    return this;
  }

  unref(): this {
    this.keepAlive.set(false);
    return this;
  }

  /** @internal */
  [kOnReceiveError](errno: number): void {
    this.receiveErrno = errno;
  }

  /** @internal */
  [kOnMessage](msg: Buffer, address: string, port: number): void {
    const family = address.includes(':') ? 'IPv6' : 'IPv4';
    this.handlers.onMessage?.(msg, { address, family, port, size: msg.length }, this);
  }
}

/** Binds a UDP socket. Throws at once if the address is taken. */
export function bind(options: BindOptions, handlers: DatagramHandlers): UdpSocket {
  const opts = validateObject(options, 'options') as BindOptions;
  checkHandlers(handlers, 'handlers', DATAGRAM_HANDLERS);
  const port = validatePort(opts.port ?? 0);
  const host = validateHost(opts.host);
  const reuseAddr = validateBoolean(opts.reuseAddr, 'options.reuseAddr', false);
  const reusePort = validateBoolean(opts.reusePort, 'options.reusePort', false);
  const ipv6Only = validateBoolean(opts.ipv6Only, 'options.ipv6Only', false);
  const reactor = reactorFor(opts.backend, 'bind', host, port);
  const sizes = [opts.recvBufferSize, opts.sendBufferSize].map((size, i) => validateInteger(size, `options.${i === 0 ? 'recv' : 'send'}BufferSize`, 0, 0, 2 ** 31 - 1));
  const token = reactor.udpBind(host, port, reuseAddr, reusePort, ipv6Only);
  if (token < 0) throw systemError(-token, 'bind', host, port);
  const socket = new UdpSocket(reactor, token, handlers);
  try {
    if (sizes[0]) socket.setRecvBufferSize(sizes[0]);
    if (sizes[1]) socket.setSendBufferSize(sizes[1]);
  } catch (err) {
    socket.close();
    throw err;
  }
  return socket;
}

/** The largest `slowCap` and `maxFrame` the native side takes. */
const MAX_U32 = 0xffffffff;

/**
 * Writes `data` to every connection in `connections` with one native call
 * per reactor: a chat room's fan-out, whatever its size. The writes are
 * corked: each connection gets one send for everything broadcast to it in
 * this batch of events (a timer's broadcast goes out on the next turn).
 * Connections that no longer take writes (closed, or `end()`ed) are
 * skipped. Returns the connections that need attention: the write failed
 * (the connection's close follows), or more than `slowCap` bytes now wait in
 * its queue after the kernel refused some (a member too slow to keep up;
 * `destroy()` it, or stop sending to it). What this batch corked counts only
 * once its send was tried: a member that stopped reading is flagged by the
 * first broadcast of a later batch; within one, the 16 MiB cap bounds it.
 */
export function broadcast<T>(connections: Iterable<Connection<T>>, data: Uint8Array | string, slowCap = Infinity): Connection<T>[] {
  // A typed array iterates numbers (and throws V8's own error once detached): never Connections.
  if (typeof (connections as Partial<Iterable<unknown>> | null | undefined)?.[Symbol.iterator] !== 'function' || ArrayBuffer.isView(connections)) {
    throw invalidArgType('connections', 'an iterable of Connection', connections);
  }
  if (typeof slowCap !== 'number' || !(slowCap >= 0)) throw invalidArgValue('slowCap', slowCap, 'must be a number >= 0');
  const buf = toBytes(data, 'data');
  const cap = Math.floor(slowCap);
  const byReactor = new Map<Reactor, Connection<T>[]>();
  // Checked before anything is sent: a bad member fails the whole call, not half of it.
  for (const conn of connections) {
    if (!(conn instanceof Connection)) throw invalidArgType('connections', 'an iterable of Connection', conn);
    if (!conn.writable) continue;
    const group = byReactor.get(conn.reactor);
    if (group) group.push(conn);
    else byReactor.set(conn.reactor, [conn]);
  }
  const attention: Connection<T>[] = [];
  for (const [reactor, conns] of byReactor) {
    // Pairs: a token, then 0 (slow) or the errno its write was refused with.
    const flagged = reactor.native.broadcast(Float64Array.from(conns, (c) => c.token), buf, cap);
    // What an unref()ed or paused member holds only while it owes (see `sync`): its corked bytes.
    for (const conn of conns) if (!conn.waitsRefd) conn.owe();
    if (flagged.length === 0) continue;
    const byToken = new Map(conns.map((c) => [c.token, c]));
    for (let i = 0; i < flagged.length; i += 2) {
      const conn = byToken.get(flagged[i])!;
      attention.push(conn);
      // As a refused write(): the connection closes, rather than go on with a gap in its stream.
      if (flagged[i + 1] < 0) conn.destroy(systemError(-flagged[i + 1], 'write'));
    }
  }
  return attention;
}

/**
 * How a byte stream is cut into messages: `'line'` (each ends with `\n`;
 * `\r\n` is accepted) or `'length'` (a 4-byte big-endian length, then that
 * many bytes).
 */
export type Framing = 'line' | 'length';

function validateFraming(framing: unknown): Framing {
  if (framing !== 'line' && framing !== 'length') throw invalidArgValue('framing', framing, "must be 'line' or 'length'");
  return framing;
}

export interface DecodedFrames {
  /** Whole frames, in order, without their delimiter or header. */
  frames: Buffer[];
  /** Frames dropped because they were longer than `maxFrame`. */
  tooLong: number;
  /**
   * Where the first dropped frame stood in the stream: `frames.slice(0,
   * tooLongAt)` came before it (`-1`: none was dropped). A reader that
   * stops at a bad frame takes only those; `'line'` frames after it are
   * in `frames` too.
   */
  tooLongAt: number;
}

/**
 * Splits a byte stream into frames, in Rust: one native call per chunk,
 * however many frames it completes or however they were split. A frame
 * longer than `maxFrame` bytes is dropped before its bytes are buffered and
 * counted in `tooLong`; a length-prefixed stream stops decoding after one
 * (its framing is lost).
 *
 * ```ts
 * const decoder = new FrameDecoder('line', 4096);
 * onData(conn, chunk) { for (const line of decoder.push(chunk).frames) … }
 * ```
 */
export class FrameDecoder {
  private readonly codec: InstanceType<typeof native.FrameDecoder>;

  constructor(framing: Framing, maxFrame: number) {
    if (maxFrame === undefined) throw invalidArgType('maxFrame', 'an integer', maxFrame);
    this.codec = new native.FrameDecoder(validateFraming(framing), validateInteger(maxFrame, 'maxFrame', 0, 1, MAX_U32));
  }

  /**
   * Takes the next chunk of the stream; returns the frames it completed.
   * A frame that lies whole in `chunk` is a view of it, not a copy (a read
   * slab's views are never overwritten; copy a frame if you will modify
   * `chunk`); one split across chunks is a Buffer of its own.
   */
  push(chunk: Uint8Array): DecodedFrames {
    if (!(chunk instanceof Uint8Array)) throw invalidArgType('chunk', 'an instance of Buffer or Uint8Array', chunk);
    const { spans, assembled, tooLong, tooLongAt } = this.codec.push(chunk);
    // An empty chunk holds no frame's bytes (and a detached one's buffer cannot be viewed).
    const bytes = Buffer.isBuffer(chunk) ? chunk : chunk.byteLength === 0 ? Buffer.alloc(0) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const frames: Buffer[] = [];
    for (let i = 0; i < spans.length; i += 2) {
      frames.push(spans[i] < 0 ? assembled[spans[i + 1]] : bytes.subarray(spans[i], spans[i + 1]));
    }
    return { frames, tooLong, tooLongAt };
  }

  /** Bytes held for a frame not yet complete (a length header included). */
  get buffered(): number {
    return this.codec.buffered;
  }

  /**
   * A copy of those bytes as they came in: the stream from the end of the
   * last frame `push()` returned. What a reader that stops decoding hands
   * on (to a parser of another protocol, or back to the stream).
   */
  pending(): Buffer {
    return this.codec.pending();
  }

  /**
   * Bytes of a `'line'` frame already past `maxFrame`, dropped as they
   * arrive (0 when none is): it is counted in `tooLong` only when its
   * newline comes, so a reader that stops at a bad frame can stop now.
   */
  get dropping(): number {
    return this.codec.dropping;
  }
}

/**
 * One frame's bytes: `payload` and a `\n` (`'line'`), or a 4-byte
 * big-endian length and `payload` (`'length'`). Throws if `payload` is
 * longer than `maxFrame`, or holds a `\n` (or ends in `\r`, which would
 * be read back as part of a `\r\n` line end) for `'line'`.
 */
export function encodeFrame(framing: Framing, payload: Uint8Array | string, maxFrame = MAX_U32): Buffer {
  const kind = validateFraming(framing);
  const limit = validateInteger(maxFrame, 'maxFrame', MAX_U32, 1, MAX_U32);
  const bytes = toBytes(payload, 'payload');
  if (bytes.byteLength > limit) throw outOfRange('payload.byteLength', `<= maxFrame (${limit})`, bytes.byteLength);
  // An empty payload holds no '\n' (and a detached one would throw from includes()).
  if (kind === 'line' && bytes.byteLength > 0 && bytes.includes(0x0a)) throw invalidArgValue('payload', payload, "must not hold a '\\n' in 'line' framing");
  // Read back as part of a '\r\n' line end, it would be lost.
  if (kind === 'line' && bytes.byteLength > 0 && bytes[bytes.byteLength - 1] === 0x0d) throw invalidArgValue('payload', payload, "must not end in '\\r' in 'line' framing (read as part of a '\\r\\n' line end)");
  return native.encodeFrame(kind, limit, bytes);
}
