/** `net.Server` on the muxnet reactor, with node:net's events and forms. */
import { lookup as dnsLookup } from 'node:dns';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { getReactor, KeepAlive, type Handle, type Reactor } from '../reactor';
import { invalidArgType, systemError } from '../errors';
import { validatePort, type BackendName } from '../options';
import { Socket } from './socket';
import { unsupported } from './unsupported';

export interface ServerOptions {
  allowHalfOpen?: boolean;
  pauseOnConnect?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  /** muxnet: which reactor backend (default `$MUXNET_BACKEND` or mio). */
  backend?: BackendName;
}

export interface ListenOptions {
  port?: number | string;
  host?: string;
  backlog?: number;
  ipv6Only?: boolean;
  reusePort?: boolean;
  exclusive?: boolean;
  path?: string;
  fd?: number;
  signal?: unknown;
}

interface AddressInfo {
  address: string;
  family: string;
  port: number;
}

export class Server extends EventEmitter implements Handle {
  private readonly options: ServerOptions;
  private reactor: Reactor | undefined;
  private token = -1;
  private readonly keepAlive = new KeepAlive();
  private local: AddressInfo | null = null;
  private connections = 0;
  private closing = false;
  private retry: NodeJS.Timeout | undefined;
  maxConnections = Infinity;

  constructor(connectionListener?: (socket: Socket) => void);
  constructor(options?: ServerOptions, connectionListener?: (socket: Socket) => void);
  constructor(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void) {
    super();
    if (typeof options === 'function') {
      connectionListener = options;
      options = {};
    }
    if (options !== undefined && (options === null || typeof options !== 'object')) throw invalidArgType('options', 'of type object', options);
    this.options = { ...options };
    if (connectionListener) this.on('connection', connectionListener);
  }

  get listening(): boolean {
    return this.token >= 0;
  }

  address(): AddressInfo | null {
    return this.local ? { ...this.local } : null;
  }

  listen(port?: number | string, host?: string, backlog?: number, cb?: () => void): this;
  listen(port?: number | string, host?: string, cb?: () => void): this;
  listen(port?: number | string, cb?: () => void): this;
  listen(options: ListenOptions, cb?: () => void): this;
  listen(cb?: () => void): this;
  listen(...args: unknown[]): this {
    const last = args[args.length - 1];
    const cb = typeof last === 'function' ? (last as () => void) : undefined;
    const rest = cb ? args.slice(0, -1) : args;
    let opts: ListenOptions;
    if (rest[0] !== null && typeof rest[0] === 'object') opts = rest[0] as ListenOptions;
    else if (typeof rest[0] === 'string' && isNaN(Number(rest[0]))) opts = { path: rest[0] };
    else opts = { port: rest[0] as number | undefined, host: typeof rest[1] === 'string' ? rest[1] : undefined, backlog: rest.find((a, i) => i > 0 && typeof a === 'number') as number | undefined };
    if (opts.path !== undefined) throw unsupported('IPC servers (listen on a path)');
    if (opts.fd !== undefined) throw unsupported('listening on an fd handle');
    if (opts.signal !== undefined) throw unsupported('listen({ signal })');
    if (this.token >= 0) {
      const err = new Error('Listen method has been called more than once without closing.');
      Object.defineProperty(err, 'code', { value: 'ERR_SERVER_ALREADY_LISTEN', enumerable: true });
      throw err;
    }
    const port = validatePort(opts.port ?? 0);
    if (cb) this.once('listening', cb);
    const bind = (address: string | undefined) => this.bind(address, port, opts);
    if (opts.host === undefined || isIP(opts.host)) {
      process.nextTick(bind, opts.host);
    } else {
      dnsLookup(opts.host, (err, address) => (err ? this.emit('error', err) : bind(address)));
    }
    return this;
  }

  private bind(host: string | undefined, port: number, opts: ListenOptions): void {
    const reactor = getReactor(this.options.backend);
    const backlog = opts.backlog ?? 511;
    const listen = (address: string, ipv6Only: boolean) =>
      reactor.native.listen(address, port, backlog, opts.reusePort ?? false, ipv6Only, this.options.noDelay ?? false);
    let address = host ?? '::';
    let token = listen(address, opts.ipv6Only ?? false);
    if (token < 0 && host === undefined) {
      // No IPv6 here: Node falls back to IPv4's any-address.
      address = '0.0.0.0';
      token = listen(address, false);
    }
    if (token < 0) {
      this.emit('error', systemError(-token, 'listen', address, port));
      return;
    }
    this.reactor = reactor;
    this.token = token;
    this.local = reactor.native.localAddress(token);
    reactor.attach(token, this);
    this.keepAlive.bind(reactor);
    this.emit('listening');
  }

  close(cb?: (err?: Error) => void): this {
    if (cb) {
      if (this.token < 0) {
        this.once('close', () => {
          const err = new Error('Server is not running.');
          Object.defineProperty(err, 'code', { value: 'ERR_SERVER_NOT_RUNNING', enumerable: true });
          cb(err);
        });
      } else {
        this.once('close', () => cb());
      }
    }
    if (this.token >= 0) {
      this.reactor!.closeHandle(this.token, this.keepAlive);
      this.token = -1;
      clearTimeout(this.retry);
    }
    this.closing = true;
    this.maybeClosed();
    return this;
  }

  private maybeClosed(): void {
    if (this.closing && this.connections === 0 && this.token < 0) {
      this.closing = false;
      this.local = null;
      process.nextTick(() => this.emit('close'));
    }
  }

  getConnections(cb: (err: Error | null, count: number) => void): this {
    process.nextTick(cb, null, this.connections);
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
  onAccept(token: number): void {
    const reactor = this.reactor!;
    if (this.connections >= this.maxConnections) {
      reactor.native.closeSocket(token);
      this.emit('drop', { remoteAddress: undefined, remotePort: undefined });
      return;
    }
    this.connections++;
    const socket = Socket.accepted({
      reactor,
      token,
      allowHalfOpen: this.options.allowHalfOpen ?? false,
      paused: this.options.pauseOnConnect ?? false,
      onClose: () => {
        this.connections--;
        this.maybeClosed();
      },
    });
    if (this.options.keepAlive) socket.setKeepAlive(true, this.options.keepAliveInitialDelay);
    this.emit('connection', socket);
  }

  /** @internal */
  onAcceptError(errno: number): void {
    const err = systemError(errno, 'accept');
    if (err.code === 'EMFILE' || err.code === 'ENFILE') {
      clearTimeout(this.retry);
      this.retry = setTimeout(() => this.token >= 0 && this.reactor!.native.resumeAccept(this.token), 100).unref();
    }
    this.emit('error', err);
  }
}
