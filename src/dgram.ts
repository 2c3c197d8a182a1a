/**
 * The drop-in `node:dgram`: `require('muxnet/dgram')` in place of
 * `require('dgram')`. UDP sockets on the muxnet reactor with node:dgram's
 * events, argument forms and errors; multicast, broadcast, TTL and buffer
 * sizes throw `ERR_MUXNET_UNSUPPORTED`.
 */
import { lookup as dnsLookup } from 'node:dns';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { constants } from 'node:os';
import { getReactor, KeepAlive, type Handle, type Reactor } from './reactor';
import { codedError, invalidArgType, systemError } from './errors';
import { validatePort, type BackendName } from './options';
import { unsupported } from './net/unsupported';

export type SocketType = 'udp4' | 'udp6';

export interface SocketOptions {
  type: SocketType;
  reuseAddr?: boolean;
  ipv6Only?: boolean;
  lookup?: typeof dnsLookup;
  /** muxnet: which reactor backend (default `$MUXNET_BACKEND` or mio). */
  backend?: BackendName;
  recvBufferSize?: number;
  sendBufferSize?: number;
  signal?: unknown;
}

export interface RemoteInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  size: number;
}

export interface BindOptions {
  port?: number;
  address?: string;
  exclusive?: boolean;
  fd?: number;
}

type Callback = (err: Error | null, bytes?: number) => void;
type Lookup = (host: string, opts: { family: number }, cb: (err: NodeJS.ErrnoException | null, address: string) => void) => void;

export class Socket extends EventEmitter implements Handle {
  readonly type: SocketType;
  private readonly options: SocketOptions;
  private reactor: Reactor | undefined;
  private token = -1;
  private readonly keepAlive = new KeepAlive();
  private binding = false;
  private closed = false;
  private connected: { address: string; port: number } | undefined;
  /** Sends issued before the implicit bind finished. */
  private queue: (() => void)[] = [];

  constructor(options: SocketOptions) {
    super();
    for (const key of ['recvBufferSize', 'sendBufferSize', 'signal'] as const) {
      if (options[key] !== undefined) throw unsupported(`dgram.createSocket({ ${key} })`);
    }
    this.type = options.type;
    this.options = options;
  }

  private get family(): 4 | 6 {
    return this.type === 'udp6' ? 6 : 4;
  }

  private resolve(host: string | undefined, cb: (err: Error | null, address: string) => void): void {
    const target = host ?? (this.family === 6 ? '::1' : '127.0.0.1');
    if (isIP(target)) return process.nextTick(cb, null, target);
    const lookup = (this.options.lookup as Lookup | undefined) ?? (dnsLookup as unknown as Lookup);
    lookup(target, { family: this.family }, (err, address) => cb(err, address));
  }

  bind(port?: number, address?: string, callback?: () => void): this;
  bind(port?: number, callback?: () => void): this;
  bind(options: BindOptions, callback?: () => void): this;
  bind(callback?: () => void): this;
  bind(...args: unknown[]): this {
    const last = args[args.length - 1];
    const cb = typeof last === 'function' ? (last as () => void) : undefined;
    const rest = cb ? args.slice(0, -1) : args;
    const opts: BindOptions = rest[0] !== null && typeof rest[0] === 'object' ? (rest[0] as BindOptions) : { port: rest[0] as number | undefined, address: rest[1] as string | undefined };
    if (opts.fd !== undefined) throw unsupported('binding a dgram socket to an fd');
    if (this.closed) throw codedError('Not running', 'ERR_SOCKET_DGRAM_NOT_RUNNING');
    if (this.token >= 0 || this.binding) throw codedError('Socket is already bound', 'ERR_SOCKET_ALREADY_BOUND');
    const port = validatePort(opts.port ?? 0, 'port');
    if (cb) this.once('listening', cb);
    this.binding = true;
    const any = this.family === 6 ? '::' : '0.0.0.0';
    this.resolve(opts.address ?? any, (err, address) => {
      this.binding = false;
      if (err) {
        this.emit('error', err);
        return;
      }
      const reactor = getReactor(this.options.backend);
      const token = reactor.native.udpBind(address, port, this.options.reuseAddr ?? false, this.options.ipv6Only ?? false);
      if (token < 0) {
        this.emit('error', systemError(-token, 'bind', address, port));
        return;
      }
      this.reactor = reactor;
      this.token = token;
      reactor.attach(token, this);
      this.keepAlive.bind(reactor);
      this.emit('listening');
      for (const send of this.queue.splice(0)) send();
    });
    return this;
  }

  /** Runs `action` once bound, binding to an ephemeral port first if needed (as node:dgram does). */
  private whenBound(action: () => void): void {
    if (this.token >= 0) return action();
    this.queue.push(action);
    if (!this.binding) this.bind(0);
  }

  send(msg: Buffer | string | Uint8Array | readonly (Buffer | string | Uint8Array)[], offset: number, length: number, port?: number, address?: string, callback?: Callback): void;
  send(msg: Buffer | string | Uint8Array | readonly (Buffer | string | Uint8Array)[], port?: number, address?: string, callback?: Callback): void;
  send(msg: Buffer | string | Uint8Array | readonly (Buffer | string | Uint8Array)[], port?: number, callback?: Callback): void;
  send(msg: Buffer | string | Uint8Array | readonly (Buffer | string | Uint8Array)[], callback?: Callback): void;
  send(msg: unknown, ...args: unknown[]): void {
    const last = args[args.length - 1];
    const cb = typeof last === 'function' ? (last as Callback) : undefined;
    const rest = cb ? args.slice(0, -1) : args;
    let data = toBuffer(msg);
    // (msg, offset, length, port, address) when the next two are numbers and msg is not an array.
    if (!Array.isArray(msg) && typeof rest[0] === 'number' && typeof rest[1] === 'number' && rest.length >= 2 && (rest.length > 2 || this.connected)) {
      const [offset, length] = rest as [number, number];
      if (offset < 0 || offset > data.length) throw Object.assign(new RangeError(`The value of "offset" is out of range. Received ${offset}`), { code: 'ERR_OUT_OF_RANGE' });
      if (length < 0 || offset + length > data.length) throw Object.assign(new RangeError(`The value of "length" is out of range. Received ${length}`), { code: 'ERR_OUT_OF_RANGE' });
      data = data.subarray(offset, offset + length);
      rest.splice(0, 2);
    }
    const [port, address] = rest as [number | undefined, string | undefined];
    if (this.connected && port !== undefined) throw codedError('Already connected', 'ERR_SOCKET_DGRAM_IS_CONNECTED');
    if (!this.connected && port === undefined) throw codedError('Destination port is missing', 'ERR_SOCKET_BAD_PORT');
    const finish = (err: Error | null, bytes?: number) => {
      if (cb) process.nextTick(cb, err, bytes);
      else if (err) process.nextTick(() => this.emit('error', err));
    };
    if (this.connected) {
      this.whenBound(() => {
        const r = this.reactor!.send(this.token, data);
        finish(r < 0 ? systemError(-r, 'send', this.connected?.address, this.connected?.port) : null, r < 0 ? undefined : r);
      });
      return;
    }
    const p = validatePort(port, 'Port', false);
    this.resolve(address, (err, host) => {
      if (err) return finish(err);
      this.whenBound(() => {
        const r = this.reactor!.send(this.token, data, host, p);
        finish(r < 0 ? systemError(-r, 'send', host, p) : null, r < 0 ? undefined : r);
      });
    });
  }

  connect(port: number, address?: string, callback?: () => void): void;
  connect(port: number, callback?: () => void): void;
  connect(port: number, address?: string | (() => void), callback?: () => void): void {
    if (typeof address === 'function') {
      callback = address;
      address = undefined;
    }
    if (this.connected) throw codedError('Already connected', 'ERR_SOCKET_DGRAM_IS_CONNECTED');
    const p = validatePort(port, 'Port', false);
    if (callback) this.once('connect', callback);
    this.resolve(address, (err, host) => {
      if (err) {
        this.emit('error', err);
        return;
      }
      this.whenBound(() => {
        const r = this.reactor!.native.udpConnect(this.token, host, p);
        if (r < 0) {
          this.emit('error', systemError(-r, 'connect', host, p));
          return;
        }
        this.connected = { address: host, port: p };
        this.emit('connect');
      });
    });
  }

  disconnect(): void {
    if (!this.connected) throw codedError('Not connected', 'ERR_SOCKET_DGRAM_NOT_CONNECTED');
    const r = this.reactor!.native.udpDisconnect(this.token);
    if (r < 0) throw systemError(-r, 'connect');
    this.connected = undefined;
  }

  remoteAddress(): { address: string; family: string; port: number } {
    if (!this.connected) throw codedError('Not connected', 'ERR_SOCKET_DGRAM_NOT_CONNECTED');
    return { address: this.connected.address, family: isIP(this.connected.address) === 6 ? 'IPv6' : 'IPv4', port: this.connected.port };
  }

  address(): { address: string; family: string; port: number } {
    const local = this.token >= 0 ? this.reactor!.native.localAddress(this.token) : null;
    // node:dgram asks the kernel, which knows no such socket yet.
    if (!local) throw systemError(constants.errno.EBADF, 'getsockname');
    return local;
  }

  close(callback?: () => void): this {
    if (this.closed) throw codedError('Not running', 'ERR_SOCKET_DGRAM_NOT_RUNNING');
    this.closed = true;
    if (callback) this.once('close', callback);
    if (this.token >= 0) {
      this.reactor!.closeHandle(this.token, this.keepAlive);
      this.token = -1;
    }
    this.queue = [];
    process.nextTick(() => this.emit('close'));
    return this;
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
  onMessage(msg: Buffer, address: string, port: number): void {
    this.emit('message', msg, { address, family: isIP(address) === 6 ? 'IPv6' : 'IPv4', port, size: msg.length } satisfies RemoteInfo);
  }
}

for (const name of ['setBroadcast', 'setTTL', 'setMulticastTTL', 'setMulticastLoopback', 'setMulticastInterface', 'addMembership', 'dropMembership', 'addSourceSpecificMembership', 'dropSourceSpecificMembership', 'setRecvBufferSize', 'setSendBufferSize', 'getRecvBufferSize', 'getSendBufferSize'] as const) {
  Object.defineProperty(Socket.prototype, name, {
    value() {
      throw unsupported(`dgram socket.${name}()`);
    },
  });
}

function toBuffer(msg: unknown): Buffer {
  if (Array.isArray(msg)) return Buffer.concat(msg.map(toBuffer));
  if (typeof msg === 'string') return Buffer.from(msg);
  if (msg instanceof Uint8Array) return Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
  throw invalidArgType('buffer', 'of type string or an instance of Buffer or Uint8Array', msg);
}

export function createSocket(type: SocketType | SocketOptions, callback?: (msg: Buffer, rinfo: RemoteInfo) => void): Socket {
  const options: SocketOptions = typeof type === 'string' ? { type } : type;
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options);
  if (options.type !== 'udp4' && options.type !== 'udp6') {
    throw Object.assign(new TypeError('Bad socket type specified. Valid types are: udp4, udp6'), { code: 'ERR_SOCKET_BAD_TYPE' });
  }
  const socket = new Socket(options);
  if (callback) socket.on('message', callback);
  return socket;
}
