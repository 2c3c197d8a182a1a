/**
 * `net.Socket` on the muxnet reactor: a real `stream.Duplex` with node:net's
 * events, properties and error shapes. Node's lib/net.js is the spec.
 */
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import { Duplex } from 'node:stream';
import { getReactor, KeepAlive, type Handle, type Reactor } from '../reactor';
import { invalidArgType, systemError } from '../errors';
import { validatePort } from '../options';
import type { BackendName } from '../options';
import { unsupported } from './unsupported';

export interface SocketOptions {
  allowHalfOpen?: boolean;
  readable?: boolean;
  writable?: boolean;
  /** muxnet: which reactor backend (default `$MUXNET_BACKEND` or mio). */
  backend?: BackendName;
  fd?: unknown;
  onread?: unknown;
  signal?: unknown;
}

export interface SocketConnectOpts {
  port?: number | string;
  host?: string;
  localAddress?: string;
  localPort?: number;
  family?: number;
  lookup?: typeof dnsLookup;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  timeout?: number;
  path?: string;
  backend?: BackendName;
}

type Lookup = (host: string, opts: { family?: number }, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void) => void;

/** Options handed to a socket the server accepted. */
export interface AcceptedInit {
  reactor: Reactor;
  token: number;
  allowHalfOpen: boolean;
  /** `pauseOnConnect`: read nothing until `resume()`. */
  paused: boolean;
  onClose(): void;
}

export class Socket extends Duplex implements Handle {
  /** @internal */ reactor: Reactor | undefined;
  /** @internal */ token = -1;
  private readonly keepAlive = new KeepAlive();
  private connectingFlag = false;
  private remote: { address: string; family: string; port: number } | null = null;
  private local: { address: string; family: string; port: number } | null = null;
  private pendingWrite: ((err?: Error | null) => void) | undefined;
  /** We stopped reading because the readable buffer is full. */
  private nativePaused = false;
  private timeoutMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly backendName: BackendName | undefined;
  private onServerClose: (() => void) | undefined;
  private resetOnClose = false;
  /** Pre-connect `setNoDelay`/`setKeepAlive`, applied once connected. */
  private deferred: ((s: Socket) => void)[] = [];
  bytesRead = 0;
  private written = 0;

  constructor(options: SocketOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options);
    if (options.fd !== undefined) throw unsupported('net.Socket({ fd })');
    if (options.onread !== undefined) throw unsupported('net.Socket({ onread })');
    if (options.signal !== undefined) throw unsupported('net.Socket({ signal })');
    super({ allowHalfOpen: options.allowHalfOpen ?? false, emitClose: false, autoDestroy: true, decodeStrings: true });
    this.backendName = options.backend;
  }

  /** @internal Wraps a connection the server accepted. */
  static accepted(init: AcceptedInit): Socket {
    const s = new Socket({ allowHalfOpen: init.allowHalfOpen });
    s.bind(init.reactor, init.token);
    s.onServerClose = init.onClose;
    s.fetchAddresses();
    if (init.paused) {
      s.nativePaused = true;
      init.reactor.native.pause(init.token);
      s.pause();
    }
    return s;
  }

  private bind(reactor: Reactor, token: number): void {
    this.reactor = reactor;
    this.token = token;
    reactor.attach(token, this);
    this.keepAlive.bind(reactor);
  }

  private fetchAddresses(): void {
    this.remote = this.reactor!.native.remoteAddress(this.token);
    this.local = this.reactor!.native.localAddress(this.token);
  }

  get connecting(): boolean {
    return this.connectingFlag;
  }

  get pending(): boolean {
    return this.token < 0 || this.connectingFlag;
  }

  get readyState(): string {
    if (this.connectingFlag) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable && !this.writable) return 'readOnly';
    if (!this.readable && this.writable) return 'writeOnly';
    return 'closed';
  }

  get bytesWritten(): number {
    return this.written;
  }

  get remoteAddress(): string | undefined {
    return this.remote?.address;
  }

  get remotePort(): number | undefined {
    return this.remote?.port;
  }

  get remoteFamily(): string | undefined {
    return this.remote?.family;
  }

  get localAddress(): string | undefined {
    return this.local?.address;
  }

  get localPort(): number | undefined {
    return this.local?.port;
  }

  get localFamily(): string | undefined {
    return this.local?.family;
  }

  address(): { address: string; family: string; port: number } | Record<string, never> {
    return this.local ? { ...this.local } : {};
  }

  connect(options: SocketConnectOpts, listener?: () => void): this;
  connect(port: number | string, host?: string, listener?: () => void): this;
  connect(port: number | string, listener?: () => void): this;
  connect(...args: unknown[]): this {
    const [opts, listener] = normalizeConnectArgs(args);
    if (opts.path !== undefined) throw unsupported('IPC sockets (connect with { path })');
    if (this.token >= 0 || this.connectingFlag) {
      const err = new Error('Socket is already connected or connecting');
      Object.defineProperty(err, 'code', { value: 'ERR_SOCKET_CONNECTION_IN_PROGRESS', enumerable: true });
      throw err;
    }
    const port = validatePort(opts.port, 'Port', false);
    const host = opts.host ?? 'localhost';
    if (listener) this.once('connect', listener);
    if (opts.timeout) this.setTimeout(opts.timeout);
    if (opts.noDelay) this.setNoDelay(true);
    if (opts.keepAlive) this.setKeepAlive(true, opts.keepAliveInitialDelay);
    this.connectingFlag = true;
    const reactor = getReactor(opts.backend ?? this.backendName);
    const lookup: Lookup = (opts.lookup as Lookup | undefined) ?? (dnsLookup as unknown as Lookup);
    const start = (address: string) => {
      if (this.destroyed) return;
      const token = reactor.native.connect(address, port, opts.localAddress, opts.localPort);
      if (token < 0) {
        this.connectingFlag = false;
        this.destroy(systemError(-token, 'connect', address, port));
        return;
      }
      this.remote = { address, port, family: isIP(address) === 6 ? 'IPv6' : 'IPv4' };
      this.bind(reactor, token);
    };
    if (isIP(host)) {
      process.nextTick(start, host);
    } else {
      lookup(host, { family: opts.family }, (err, address, family) => {
        this.emit('lookup', err, address, family, host);
        if (err) {
          this.connectingFlag = false;
          this.destroy(err);
        } else {
          start(address);
        }
      });
    }
    return this;
  }

  setNoDelay(noDelay = true): this {
    if (this.token >= 0 && !this.connectingFlag) this.reactor!.native.setNoDelay(this.token, noDelay);
    else this.deferred.push((s) => s.setNoDelay(noDelay));
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    if (this.token >= 0 && !this.connectingFlag) this.reactor!.native.setKeepAlive(this.token, enable, initialDelay);
    else this.deferred.push((s) => s.setKeepAlive(enable, initialDelay));
    return this;
  }

  setTimeout(ms: number, callback?: () => void): this {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw invalidArgType('msecs', 'a non-negative number', ms);
    this.timeoutMs = ms;
    if (callback) {
      if (ms === 0) this.off('timeout', callback);
      else this.once('timeout', callback);
    }
    this.touch();
    return this;
  }

  /** Restarts the idle timer on activity, as node:net does. */
  private touch(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.timeoutMs > 0 && !this.destroyed) {
      this.timer = setTimeout(() => this.emit('timeout'), this.timeoutMs);
      if (!this.keepAlive.on) this.timer.unref();
    }
  }

  ref(): this {
    this.keepAlive.set(true);
    this.timer?.ref();
    return this;
  }

  unref(): this {
    this.keepAlive.set(false);
    this.timer?.unref();
    return this;
  }

  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /** Closes with RST instead of FIN (once connected, if connecting). */
  resetAndDestroy(): this {
    if (this.connectingFlag) {
      this.once('connect', () => this.resetAndDestroy());
      return this;
    }
    this.resetOnClose = true;
    return this.destroy();
  }

  // Reading stops when push() says the buffer is full (a paused socket
  // fills it) and starts again when the stream asks for more: the peer
  // meets TCP backpressure, as with node:net.
  override _read(): void {
    if (this.nativePaused && this.token >= 0) {
      this.nativePaused = false;
      this.reactor!.native.resume(this.token);
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.connectingFlag || this.token < 0) {
      // node:net queues writes made before the connection is up.
      this.once('connect', () => this._write(chunk, _encoding, cb));
      return;
    }
    const queued = this.reactor!.write(this.token, chunk);
    if (queued < 0) {
      cb(systemError(-queued, 'write'));
      return;
    }
    this.written += chunk.length;
    this.touch();
    if (queued === 0) cb();
    else this.pendingWrite = cb;
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    // cork()/uncork(): everything in one write(2).
    this._write(Buffer.concat(chunks.map((c) => c.chunk)), 'binary', cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.connectingFlag || this.token < 0) {
      this.once('connect', () => this._final(cb));
      return;
    }
    const r = this.reactor!.native.shutdown(this.token);
    cb(r < 0 ? systemError(-r, 'shutdown') : null);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    clearTimeout(this.timer);
    this.connectingFlag = false;
    if (this.token >= 0) this.reactor!.closeHandle(this.token, this.keepAlive, this.resetOnClose);
    this.onServerClose?.();
    this.onServerClose = undefined;
    const pending = this.pendingWrite;
    this.pendingWrite = undefined;
    pending?.(err ?? null);
    cb(err);
    // node:net emits 'close' from the handle's close callback, a loop turn later.
    setImmediate(() => this.emit('close', err !== null && err !== undefined));
  }

  /** @internal */
  onConnect(): void {
    this.connectingFlag = false;
    this.fetchAddresses();
    for (const apply of this.deferred.splice(0)) apply(this);
    this.touch();
    this.emit('connect');
    this.emit('ready');
  }

  /** @internal */
  onData(chunk: Buffer): void {
    this.bytesRead += chunk.length;
    this.touch();
    // The slab view is ours to keep: no copy.
    if (!this.push(chunk) && !this.nativePaused && this.token >= 0) {
      this.nativePaused = true;
      this.reactor!.native.pause(this.token);
    }
  }

  /** @internal */
  onEnd(): void {
    this.push(null);
  }

  /** @internal */
  onDrain(): void {
    const cb = this.pendingWrite;
    this.pendingWrite = undefined;
    cb?.();
  }

  /** @internal The reactor closed the socket (its token is already free). */
  onClose(errno: number): void {
    const wasConnecting = this.connectingFlag;
    this.token = -1;
    this.keepAlive.release();
    if (errno === 0) {
      // Orderly: both directions are done. Let 'end' surface first.
      if (this.readableEnded || this.readableLength === 0) this.destroy();
      else this.once('end', () => this.destroy());
      return;
    }
    const r = this.remote;
    this.destroy(wasConnecting && r ? systemError(errno, 'connect', r.address, r.port) : systemError(errno, 'read'));
  }
}

/** node:net's `normalizeArgs`: (options[, cb]) | (port[, host][, cb]) | (path[, cb]). */
export function normalizeConnectArgs(args: unknown[]): [SocketConnectOpts, (() => void) | undefined] {
  const last = args[args.length - 1];
  const cb = typeof last === 'function' ? (last as () => void) : undefined;
  const rest = cb ? args.slice(0, -1) : args;
  const [first, second] = rest;
  if (first !== null && typeof first === 'object') return [first as SocketConnectOpts, cb];
  if (typeof first === 'string' && isNaN(Number(first))) return [{ path: first }, cb];
  return [{ port: first as number | string, host: typeof second === 'string' ? second : undefined }, cb];
}
