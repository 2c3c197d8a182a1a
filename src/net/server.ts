/** `net.Server` on the muxnet reactor, with node:net's events and forms. */
import { AsyncResource } from 'node:async_hooks';
import dns from 'node:dns';
import { EventEmitter } from 'node:events';
import { chmodSync, statSync } from 'node:fs';
import type { BlockList } from 'node:net';
import { getDefaultHighWaterMark } from 'node:stream';
import { isIP } from '../builtins';
import { answerAsOwner, askPrimary, PrimaryLink, sharedWithPrimary, UV_IPV6ONLY, type HandedSocket, type PrimaryQuery } from '../cluster';
import { serverListen, serverSocket } from '../diagnostics';
import { AcceptRetry, KeepAlive, kOnAccept, kOnAcceptError, openReactor, ownCallbacks, type Handle, type Reactor } from '../reactor';
import { codedError, invalidArgType, invalidArgValue, invalidIpAddress, systemError, uvErrno } from '../errors';
import { nodeFrom, uvFrom } from '../versions';
import { REUSE_PORT_OPTION, isBlocked, isPipeName, onAbort, pipeName, resolveBackend, validateAbortSignal, validateBlockList, validatePort, validateType, type BackendName } from '../options';
import { fdKind, giveUp, givenFd, INHERIT_LISTENER, INHERIT_STREAM, NOT_A_SOCKET_FOR_US, takeFd } from '../fds';
import { Socket } from './socket';
import { adopt, isBoundSocket, type Adopted, type BoundSocket } from './bound';
import { unsupported } from './unsupported';
import { handOver, type CountsHanded, type HandedConnections, type Handover, type HandsOver } from '../handoff';
import { moveToThread, notTransferable, type Movable, type Move } from '../threads';
import { adoptable } from './callable';
import {
  kAcceptNoDelay, kAdopted, kBind, kBindPath, kBlockList, kClosing, kGeneration, kHanded, kHandedClosing, kHandedTo,
  kListenBound, kListenFailed, kListenFd, kListenViaPrimary, kListenerUp, kLive, kLocal, kLookupAndBind, kLoopRef,
  kMaybeClosed, kOnHanded, kOptions, kPipeName, kPrimary, kReactor, kRetry, kSocketClosed, kToken, kUnlisten,
} from '../symbols';
import { nextTick } from '../schedule';

export interface ServerOptions {
  allowHalfOpen?: boolean | undefined;
  pauseOnConnect?: boolean | undefined;
  noDelay?: boolean | undefined;
  keepAlive?: boolean | undefined;
  keepAliveInitialDelay?: number | undefined;
  /** The readable and writable high-water mark of each accepted socket (default: the streams' default); a negative one is the default. */
  highWaterMark?: number | undefined;
  /** Node 24's: a peer whose address it holds is closed unseen, with no 'connection' (accepted on Node 20 too). */
  blockList?: BlockList | undefined;
  /** muxnet: which reactor backend (default `$MUXNET_BACKEND` or mio). */
  backend?: BackendName | undefined;
}

export interface ListenOptions {
  port?: number | string | null | undefined;
  host?: string | undefined;
  backlog?: number | undefined;
  ipv6Only?: boolean | undefined;
  reusePort?: boolean | undefined;
  exclusive?: boolean | undefined;
  /** A Unix-domain socket path (IPC; on Linux a leading `'\0'` names an abstract socket). */
  path?: string | undefined;
  /** Make the socket file readable / writable by all users (IPC). */
  readableAll?: boolean | undefined;
  writableAll?: boolean | undefined;
  fd?: number | undefined;
  /** Node 24's `net.BoundSocket`, adopted (as `listen(bound)`): the other options are not read. */
  handle?: BoundSocket | undefined;
  /** Aborting it closes the server. */
  signal?: AbortSignal | undefined;
}

interface LookupAddress {
  address: string;
  family: number;
}

/** A listen call's options once checked: the backlog as the binding takes it. */
type Listening = ListenOptions & { backlog: number };

interface AddressInfo {
  address: string;
  family: string;
  port: number;
}

/** libuv 1.51 made uv_pipe_chmod an fchmod to the exact mode (libuv#4749); before, it added the bits. */
const UV_CHMOD_EXACT = uvFrom(51);


/** Node 21 made `maxConnections = 0` refuse every connection; before, 0 meant no limit (nodejs/node#48276). */
const ZERO_MAX_REFUSES = nodeFrom([21, 0]);

/** Node 22.8 made listen(port, host) ask dns.lookup for every address (nodejs/node#54264); before, for one. */
const LISTEN_LOOKS_UP_ALL = nodeFrom([22, 8]);

/** What `_handle` is while a server listens (see there). */
const LISTENING_HANDLE = Object.freeze({});

export class Server extends adoptable(EventEmitter) implements Handle, HandsOver, CountsHanded, Movable {
  private readonly [kOptions]: ServerOptions;
  private [kReactor]: Reactor | undefined;
  private [kToken] = -1;
  /** In a cluster worker: what the primary listens with for us (its shared socket's handle, or the round-robin stand-in). */
  private [kPrimary]: PrimaryLink | undefined;
  /** Whether it holds the event loop open (ref/unref). */
  private readonly [kLoopRef] = new KeepAlive();
  /** The address, or the path of an IPC server. */
  private [kLocal]: AddressInfo | string | null = null;
  /** node:net's `_pipeName`: the path last given to listen(), its address() whenever no handle answers (failed, closed). */
  private [kPipeName]: string | undefined;
  /** Its connections open in this process. */
  private [kLive] = 0;
  /**
   * @deprecated Gone from Node's runtime (DEP0020), yet still in @types/node's
   * `net.Server`: declared, never set, as there, so that a muxnet Server is a
   * net.Server to TypeScript. `getConnections()` counts.
   */
  declare connections: number;
  /** Its connections handed to other processes, counted there (one list per child; see ../handoff). */
  private readonly [kHanded]: HandedConnections[] = [];
  /** Children not yet done closing its connections they hold, after close(). */
  private [kHandedClosing] = 0;
  private [kClosing] = false;
  private readonly [kRetry] = new AcceptRetry();
  private readonly [kBlockList]: BlockList | undefined;
  /** What the listener was made from, let go with it: an adopted `net.BoundSocket` of a Unix-domain path (see ./bound), a given fd (see ../fds). */
  private [kAdopted]: Pick<Adopted, 'release'> | undefined;
  /** Counts listen() and close() calls: a host lookup answered after either binds nothing. */
  private [kGeneration] = 0;
  maxConnections = Infinity;
  /** node:net's, from the options, read at each accept (set later, they count from the next connection). */
  allowHalfOpen: boolean;
  pauseOnConnect: boolean;
  noDelay: boolean;
  keepAlive: boolean;
  /** In whole seconds, as node:net keeps it. */
  keepAliveInitialDelay: number;
  /** The noDelay it listened with, which the reactor gives each connection it accepts (`TCP_NODELAY`). */
  private [kAcceptNoDelay] = false;
  /** What each accepted socket gets as its readable and writable high-water mark, as node:net's. */
  highWaterMark: number;
  /** node:net's `family:address:port` of the listen call (the requested port, 0 for any). */
  _connectionKey: string | undefined;

  constructor(connectionListener?: (socket: Socket) => void);
  constructor(options?: ServerOptions, connectionListener?: (socket: Socket) => void);
  constructor(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void) {
    super();
    if (typeof options === 'function') {
      connectionListener = options;
      options = {};
    }
    // As node:net: null is no options.
    if (options != null && typeof options !== 'object') throw invalidArgType('options', 'of type object', options);
    this[kOptions] = { ...options };
    // A bad backend is said now, not from a later tick.
    if (this[kOptions].backend !== undefined) resolveBackend(this[kOptions].backend);
    if (this[kOptions].keepAliveInitialDelay !== undefined) validateType(this[kOptions].keepAliveInitialDelay, 'options.keepAliveInitialDelay', 'number');
    // As node:net reads them.
    this.allowHalfOpen = this[kOptions].allowHalfOpen || false;
    this.pauseOnConnect = Boolean(this[kOptions].pauseOnConnect);
    this.noDelay = Boolean(this[kOptions].noDelay);
    this.keepAlive = Boolean(this[kOptions].keepAlive);
    this.keepAliveInitialDelay = ~~((this[kOptions].keepAliveInitialDelay as number) / 1000);
    this[kBlockList] = validateBlockList(this[kOptions].blockList, 'options.blockList');
    const hwm = this[kOptions].highWaterMark;
    if (hwm !== undefined) validateType(hwm, 'options.highWaterMark', 'number');
    this.highWaterMark = hwm === undefined || hwm < 0 ? getDefaultHighWaterMark(false) : hwm;
    // As node:net: a listener that is no function is ignored.
    if (typeof connectionListener === 'function') this.on('connection', connectionListener);
  }

  /** node:net's count of open connections (node:cluster reads it, as some apps do). */
  get _connections(): number {
    return this[kLive];
  }

  // Assignable, as node:net's plain field (and, as there, the count close() and maxConnections read).
  set _connections(value: number) {
    this[kLive] = value;
  }

  /** node:net's name for the children counting its handed connections (their lists: some code reads it). */
  get _workers(): readonly HandedConnections[] {
    return this[kHanded];
  }

  get listening(): boolean {
    return this[kToken] >= 0 || this[kPrimary] !== undefined;
  }

  /**
   * node:net's libuv handle, which code reads to tell a listening server
   * (supertest's and mysql2's tests close one only `if (server._handle)`).
   * There is none: an object while it listens, null otherwise, as node:net's;
   * assigning it changes nothing.
   */
  get _handle(): object | null {
    return this.listening ? LISTENING_HANDLE : null;
  }

  set _handle(_ignored: unknown) {}

  /** `{ address, family, port }`, or the path of an IPC server, as node:net's. */
  address(): AddressInfo | string | null {
    if (this[kLocal] === null) return this[kPipeName] ?? null;
    return typeof this[kLocal] === 'object' ? { ...this[kLocal] } : this[kLocal];
  }

  listen(port?: number | string | null, host?: string, backlog?: number, cb?: () => void): this;
  listen(port?: number | string | null, host?: string, cb?: () => void): this;
  listen(port?: number | string | null, backlog?: number, cb?: () => void): this;
  listen(port?: number | string | null, cb?: () => void): this;
  listen(options: ListenOptions, cb?: () => void): this;
  listen(bound: BoundSocket, backlog?: number, cb?: () => void): this;
  listen(bound: BoundSocket, cb?: () => void): this;
  listen(cb?: () => void): this;
  listen(...args: unknown[]): this {
    const last = args[args.length - 1];
    const cb = typeof last === 'function' ? (last as () => void) : undefined;
    const rest = cb ? args.slice(0, -1) : args;
    let opts: ListenOptions;
    const optionsGiven = rest[0] !== null && typeof rest[0] === 'object';
    if (optionsGiven) opts = { ...(rest[0] as ListenOptions) };
    else if (isPipeName(rest[0])) opts = { path: rest[0] };
    else opts = typeof rest[1] === 'string' ? { port: rest[0] as number | undefined, host: rest[1] } : { port: rest[0] as number | undefined };
    if (this.listening) throw codedError('Listen method has been called more than once without closing.', 'ERR_SERVER_ALREADY_LISTEN');
    if (serverListen.hasSubscribers) serverListen.asyncStart.publish({ server: this, options: optionsGiven ? rest[0] : opts });
    this[kGeneration]++;
    if (cb) this.once('listening', cb);
    // (handle, backlog), (path, backlog), (port, backlog) or (port, host, backlog), read as node:net reads them.
    const backlogArg = backlogOf(rest[1]) || backlogOf(rest[2]);
    // As node:net, a BoundSocket's server reads only the backlog argument, none of the options.
    const bound = isBoundSocket(rest[0]) ? rest[0] : isBoundSocket(opts.handle) ? opts.handle : undefined;
    if (bound) {
      this[kListenBound](adopt(bound), backlogInt(backlogArg));
      return this;
    }
    // node:net's other handle forms hand it another server's or socket's libuv handle, which
    // it takes over; the reactor cannot take a socket that libuv watches.
    const given = rest[0] as { _handle?: unknown; handle?: unknown } | undefined;
    if (optionsGiven && (given instanceof Server || given instanceof Socket || '_handle' in given! || given!.handle != null)) {
      throw unsupported('server.listen(handle) with a server, a socket or a handle (give { fd }, a port or a path)');
    }
    // listen(), listen(null), listen(cb), listen({ port: undefined }): any free port.
    if (rest.length === 0 || (opts.port === undefined && 'port' in opts) || opts.port === null) opts.port = 0;
    const signal = validateAbortSignal(opts.signal, 'options.signal');
    if (signal) onAbort(this, signal, () => this.close());
    const backlog = backlogInt(opts.backlog || backlogArg);
    if (typeof opts.fd === 'number' && opts.fd >= 0) {
      this[kListenFd](opts.fd, backlog);
      return this;
    }
    if (typeof opts.port === 'number' || typeof opts.port === 'string') {
      const port = validatePort(opts.port, 'options.port');
      if (!opts.host) {
        // As node:net: bound when listen() returns, 'listening' (or the error) on the next tick.
        this[kBind](undefined, port, { ...opts, backlog });
      } else {
        this[kLookupAndBind](opts.host, port, { ...opts, backlog });
      }
      return this;
    }
    // As node:net: a path that is no string, or a number, is no path (`{ path: 1 }` made a file named 1).
    if (opts.path && isPipeName(opts.path)) {
      // An abstract name has no file whose mode could change; node:net's message shows the options as given.
      if (opts.path.startsWith('\0') && (opts.readableAll || opts.writableAll)) {
        throw invalidArgValue('options', optionsGiven ? rest[0] : opts, 'can not set readableAll or writableAllt to true when path is abstract unix socket');
      }
      this[kBindPath](opts.path, { ...opts, backlog });
      return this;
    }
    if (!('port' in opts || 'path' in opts)) throw invalidArgValue('options', opts, 'must have the property "port" or "path"');
    throw invalidArgValue('options', opts, 'is invalid');
  }

  /**
   * Listens on a stream socket someone else made — bound, or listening
   * already (systemd's socket activation, a parent's socket) — as node:net
   * does, in this process even in a cluster worker. Not a stream socket:
   * 'error' on the next tick, as node:net's — `ENOTSOCK` for a pipe,
   * `EINVAL` for anything else (no fd, a file, a terminal, a UDP socket).
   * A failure on a stream socket or a FIFO closes the fd, as node:net's.
   */
  private [kListenFd](fd: number, backlog: number): void {
    const reactor = openReactor(this[kOptions].backend);
    if (typeof reactor === 'number') {
      this[kListenFailed](systemError(-reactor, 'listen', null), true);
      return;
    }
    const token = takeFd(reactor, fd, INHERIT_LISTENER, backlog, (this[kAcceptNoDelay] = this.noDelay));
    if (token < 0) {
      const kind = fdKind(reactor, fd);
      // node:net opens a TCP or PIPE fd (a Unix-domain socket, a FIFO) as its handle before
      // listen(), and closes that handle, the fd with it (but 0-2), when listen() fails; another
      // kind it refuses first (EINVAL), leaving the fd to the caller; and one of its own handles'
      // fds it refuses too (EEXIST: libuv watches it), leaving it to that handle.
      if ((kind === 'TCP' || kind === 'PIPE') && token !== -uvErrno('EEXIST')) giveUp(fd);
      const errno = NOT_A_SOCKET_FOR_US.includes(-token) && kind !== 'PIPE' ? uvErrno('EINVAL') : -token;
      this[kListenFailed](systemError(errno, 'listen', null), true);
      return;
    }
    this[kAdopted] = givenFd(fd, reactor);
    // A Unix-domain one has no address(), as node:net's (a pipe it did not bind has no name).
    const local = reactor.native.localPath(token) === null ? reactor.native.localAddress(token) : null;
    this[kListenerUp](reactor, token, local, 'null:null:null');
  }

  /**
   * Listens on an adopted `net.BoundSocket`, here even in a cluster worker,
   * as node:net's. Its own address is the server's (the path of a
   * Unix-domain one, whose file goes when the server closes).
   */
  private [kListenBound](adopted: Adopted, backlog: number): void {
    const reactor = openReactor(this[kOptions].backend);
    const token = typeof reactor === 'number' ? reactor : reactor.native.inherit(adopted.fd, INHERIT_LISTENER, backlog, (this[kAcceptNoDelay] = this.noDelay), false);
    if (typeof reactor === 'number' || token < 0) {
      adopted.release();
      this[kListenFailed](systemError(-token, 'listen'), true);
      return;
    }
    if (adopted.path === undefined) adopted.release();
    else this[kAdopted] = adopted;
    this[kListenerUp](reactor, token, adopted.path ?? reactor.native.localAddress(token), '-1:null:-1');
  }

  /**
   * Listens on the first address the host resolves to that is not IPv6
   * link-local (one needs a scope to bind), else on the first, as Node 22.8
   * on does (before, on the one address asked for). A close() or another
   * listen() before the answer makes it stale.
   */
  private [kLookupAndBind](host: string, port: number, opts: Listening): void {
    const generation = this[kGeneration];
    const answered = (err: Error | null, found: LookupAddress[] | string) => {
      if (generation !== this[kGeneration]) return;
      // A replaced dns.lookup may answer with one address whatever it is asked.
      const addresses = err ? [] : typeof found === 'string' ? [found] : found.map((a) => a.address);
      const address = addresses.find((a) => !isLinkLocal(a)) ?? addresses[0];
      if (address !== undefined) this[kBind](address, port, opts);
      else this.emit('error', err ?? invalidIpAddress(address));
    };
    // Read at each call, as node:net does: a dns.lookup replaced later is the one asked, with node:net's arguments.
    if (LISTEN_LOOKS_UP_ALL) dns.lookup(host, { all: true }, answered);
    else dns.lookup(host, answered);
  }

  /** An IPC server on a Unix-domain path, bound when listen() returns, as for a port. */
  private [kBindPath](path: string, opts: Listening): void {
    this[kPipeName] = path;
    if (sharedWithPrimary(opts.exclusive)) {
      const { backlog, readableAll, writableAll } = opts;
      this[kListenViaPrimary]({ address: path, port: -1, addressType: -1, backlog, readableAll, writableAll }, `-1:${path}:-1`);
      return;
    }
    const reactor = openReactor(this[kOptions].backend);
    const token = typeof reactor === 'number' ? reactor : reactor.native.listenUnix(pipeName(path), opts.backlog);
    if (typeof reactor === 'number' || token < 0) {
      // As libuv's pipe bind: a directory that is not there is EACCES (Windows' answer).
      this[kListenFailed](systemError(token === -uvErrno('ENOENT') ? uvErrno('EACCES') : -token, 'listen', path, -1), true);
      return;
    }
    // As node:net: only `true` asks (a truthy non-boolean is ignored).
    if (opts.readableAll === true || opts.writableAll === true) {
      const mode = (opts.readableAll === true ? 0o444 : 0) | (opts.writableAll === true ? 0o222 : 0);
      try {
        // libuv >= 1.51 (Node 24: libuv#4749) fchmods the socket to exactly this mode; before, chmod added the bits.
        chmodSync(path, UV_CHMOD_EXACT ? mode : statSync(path).mode | mode);
      } catch (err) {
        // Not listening after all: the socket (and its file) go, and the error is thrown.
        reactor.native.closeSocket(token);
        throw err;
      }
    }
    // An abstract name may have been padded (see pipeName): the name given, as node:net's.
    this[kListenerUp](reactor, token, path.startsWith('\0') ? path : (reactor.native.localPath(token) ?? path), `-1:${path}:-1`);
  }

  /** A bind or listen that failed: the tracing channel hears it at once, 'error' follows (on the next tick when `later`, as node:net's). */
  private [kListenFailed](err: Error, later = false): void {
    if (serverListen.hasSubscribers) serverListen.error.publish({ server: this, error: err });
    if (later) nextTick(() => this.emit('error', err));
    else this.emit('error', err);
  }

  /** The listener is up: attach it, and say so on the next tick (not if close() came first). */
  private [kListenerUp](reactor: Reactor, token: number, local: AddressInfo | string | null, key: string): void {
    this[kReactor] = reactor;
    this[kToken] = token;
    this[kLocal] = local;
    this._connectionKey = key;
    // Its connections in the async context of its listen(), as node:net's.
    reactor.attach(token, this, new AsyncResource('MUXNET_SERVER'));
    this[kLoopRef].bind(reactor);
    if (serverListen.hasSubscribers) serverListen.asyncEnd.publish({ server: this });
    nextTick(() => this[kToken] === token && this.emit('listening'));
  }

  private [kBind](host: string | undefined, port: number, opts: Listening): void {
    const { backlog } = opts;
    // As node:net's getFlags: only `true` asks (a truthy non-boolean is ignored, and is no bool for the binding).
    // With `reusePort`, Node hands the listen flags (`ipv6Only` too) to a listen with no host;
    // before, node:net ignores `ipv6Only` without a host.
    const reusePort = opts.reusePort === true && REUSE_PORT_OPTION;
    const ipv6Only = opts.ipv6Only === true && (host !== undefined || REUSE_PORT_OPTION);
    // `reusePort`: each worker binds its own socket of the port, as node:net's.
    if (sharedWithPrimary(opts.exclusive || reusePort)) {
      // As node:net asks: no host is `null` of type 4 (the primary listens on the any-address).
      const addressType = host === undefined ? 4 : (isIP(host) as 4 | 6);
      const flags = ipv6Only ? UV_IPV6ONLY : 0;
      this[kListenViaPrimary]({ address: host ?? null, port, addressType, flags, backlog }, `${addressType}:${host ?? null}:${port}`);
      return;
    }
    // No fd left for the reactor (made on first use) fails the listen, as no fd for the socket does.
    const reactor = openReactor(this[kOptions].backend);
    const listen = (address: string, v6Only: boolean) =>
      typeof reactor === 'number' ? reactor : reactor.native.listen(address, port, backlog, reusePort, v6Only, (this[kAcceptNoDelay] = this.noDelay));
    let address = host ?? '::';
    let token = listen(address, ipv6Only);
    // As libuv, whose bind() keeps EADDRINUSE for listen(): a port taken on '::' is an error, not a reason to fall back.
    if (token < 0 && host === undefined && -token !== uvErrno('EADDRINUSE')) {
      // No IPv6 here: Node falls back to IPv4's any-address.
      address = '0.0.0.0';
      token = listen(address, false);
    }
    if (typeof reactor === 'number' || token < 0) {
      this[kListenFailed](systemError(-token, 'listen', address, port), true);
      return;
    }
    this[kListenerUp](reactor, token, reactor.native.localAddress(token), `${isIP(address)}:${address}:${port}`);
  }

  /**
   * In a cluster worker (see ../cluster): listens on a copy of the socket
   * the primary shares, or takes the connections its round-robin hands
   * over. Errors and 'listening' as node:net's in a worker.
   */
  private [kListenViaPrimary](query: PrimaryQuery, key: string): void {
    const generation = this[kGeneration];
    askPrimary(this, query, (errno, handle) => {
      if (generation !== this[kGeneration]) return handle?.close();
      // As node:net checks: a port the primary could not bind may end up another (a failed bind, then listen).
      const out: { address?: string; family?: string; port?: number } = {};
      const named = !errno && handle?.getsockname?.(out) === 0;
      if (named && query.port > 0 && out.port !== query.port) errno = -uvErrno('EADDRINUSE');
      if (errno || !handle) {
        handle?.close();
        this[kListenFailed](systemError(-errno, 'bind', query.address, query.port));
        return;
      }
      const reactor = openReactor(this[kOptions].backend);
      if (typeof reactor === 'number') {
        handle.close();
        this[kListenFailed](systemError(-reactor, 'listen', query.address, query.port));
        return;
      }
      const primary = (this[kPrimary] = new PrimaryLink(handle, (cb) => this.close(cb)));
      // unref() before listen() holds for the handle the primary gave too.
      if (!this[kLoopRef].on) handle.unref?.();
      if (handle.fd === undefined) {
        // Round-robin: the primary listens and hands each connection over.
        handle.onconnection = (err, connection) => this[kOnHanded](err, connection);
        answerAsOwner(handle, this);
        this[kReactor] = reactor;
        this[kLocal] = query.port < 0 ? query.address : named ? { address: out.address!, family: out.family!, port: out.port! } : null;
        this._connectionKey = key;
        nextTick(() => this[kPrimary] === primary && this.emit('listening'));
        return;
      }
      // Shared: listen on a copy; the primary's handle is closed with the server.
      const token = reactor.native.inherit(handle.fd, INHERIT_LISTENER, query.backlog ?? 511, (this[kAcceptNoDelay] = this.noDelay), true);
      if (token < 0) {
        this[kPrimary] = undefined;
        primary.release();
        this[kListenFailed](systemError(-token, 'listen', query.address, query.port));
        return;
      }
      this[kListenerUp](reactor, token, query.port < 0 ? query.address : reactor.native.localAddress(token), key);
    });
  }

  /** A connection the primary's round-robin accepted for this worker: served from a copy, as if accepted here. */
  private [kOnHanded](errno: number, connection: HandedSocket): void {
    const token = errno ? errno : this[kReactor]!.native.inherit(connection.fd ?? -1, INHERIT_STREAM, 0, this[kAcceptNoDelay], false);
    connection.close();
    if (token < 0) this[kOnAcceptError](-token);
    // In this message's context, as node's handle for it is made.
    else this[kOnAccept](token, new AsyncResource('MUXNET_SOCKET'));
  }

  /** @internal A copy of its listening socket for another process (see ../handoff); this one listens on. */
  [handOver](): Handover {
    if (this[kToken] < 0) return undefined;
    return { fd: this[kReactor]!.native.duplicate(this[kToken]), kind: typeof this[kLocal] === 'string' ? 'unix-server' : 'server' };
  }

  /**
   * Moved to a worker thread (see ../threads): a TCP server listening here
   * (not through a cluster primary) only, as node:net's. It accepts nothing
   * here from the copy on (see `Move`).
   */
  [moveToThread](): Move {
    const token = this[kToken];
    if (token < 0 || this[kPrimary] !== undefined || this[kLocal] === null || typeof this[kLocal] !== 'object') throw notTransferable('net.Server');
    const native = this[kReactor]!.native;
    const fd = native.duplicate(token);
    if (fd < 0) throw systemError(-fd, 'dup');
    native.holdAccept(token, true);
    const { allowHalfOpen, pauseOnConnect, noDelay, keepAlive } = this;
    const keepAliveInitialDelay = this.keepAliveInitialDelay * 1000;
    // Moved, it listens no more here and says nothing, as node:net's; its close() says 'close'.
    const options = { allowHalfOpen, pauseOnConnect, noDelay, keepAlive, keepAliveInitialDelay };
    return { fd, kind: 'server', options, moved: () => this[kUnlisten](), kept: () => native.holdAccept(token, false) };
  }

  /** Stops listening here (closed, or moved to a thread). */
  private [kUnlisten](): void {
    if (this[kToken] >= 0) {
      this[kReactor]!.closeHandle(this[kToken], this[kLoopRef]);
      this[kReactor]!.closeTurn();
      this[kToken] = -1;
      this[kRetry].cancel();
    }
    this[kAdopted]?.release();
    this[kAdopted] = undefined;
    this[kLocal] = null;
  }

  close(cb?: (err?: Error) => void): this {
    this[kGeneration]++;
    if (typeof cb === 'function') {
      if (!this.listening) this.once('close', () => cb(codedError('Server is not running.', 'ERR_SERVER_NOT_RUNNING')));
      else this.once('close', () => cb());
    }
    this[kUnlisten]();
    // The primary hears of it (and a round-robin stops handing connections over).
    this[kPrimary]?.release();
    this[kPrimary] = undefined;
    // As node:net's: 'close' waits for the connections handed to children to close there too.
    if (!this[kClosing] && this[kHanded].length > 0) {
      this[kHandedClosing] = this[kHanded].length;
      for (const list of this[kHanded]) {
        list.close(() => {
          this[kHandedClosing]--;
          this[kMaybeClosed]();
        });
      }
    }
    this[kClosing] = true;
    this[kMaybeClosed]();
    return this;
  }

  /** @internal (../handoff) A child was handed connections of this server: it counts them from now on. */
  [kHandedTo](list: HandedConnections): void {
    this[kHanded].push(list);
    list.once('exit', () => {
      const at = this[kHanded].indexOf(list);
      if (at >= 0) this[kHanded].splice(at, 1);
    });
  }

  /** @internal One of its connections closed. */
  [kSocketClosed](): void {
    this[kLive]--;
    this[kMaybeClosed]();
  }

  private [kMaybeClosed](): void {
    if (this[kClosing] && this[kLive] === 0 && this[kHandedClosing] === 0 && !this.listening) {
      this[kClosing] = false;
      nextTick(() => this.emit('close'));
    }
  }

  /** `await using server = …`: closes it, as node:net's server does. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.listening) return;
    await new Promise<void>((resolve, reject) => this.close((err) => (err ? reject(err) : resolve())));
  }

  /** With `captureRejections`, a rejected 'connection' handler destroys that socket, as in node:net. */
  [EventEmitter.captureRejectionSymbol](err: Error, event: string, socket?: Socket): void {
    if (event === 'connection') socket!.destroy(err);
    else this.emit('error', err);
  }

  getConnections(cb: (err: Error | null, count: number) => void): this {
    if (this[kHanded].length === 0) {
      nextTick(cb, null, this[kLive]);
      return this;
    }
    // Its own, and those each child it handed connections to still holds (node:net asks them too).
    let left = this[kHanded].length;
    let total = this[kLive];
    for (const list of this[kHanded]) {
      list.getConnections((err, count) => {
        if (left <= 0) return;
        if (err) {
          left = 0;
          return nextTick(cb, err);
        }
        total += count;
        if (--left === 0) nextTick(cb, null, total);
      });
    }
    return this;
  }

  ref(): this {
    this[kLoopRef].set(true);
    // The round-robin stand-in keeps the worker alive itself.
    this[kPrimary]?.handle.ref?.();
    return this;
  }

  unref(): this {
    this[kLoopRef].set(false);
    this[kPrimary]?.handle.unref?.();
    return this;
  }

  /** @internal `scope`: the connection's async context (see the reactor's `Handle`). */
  [kOnAccept](token: number, scope?: AsyncResource): void {
    const reactor = this[kReactor]!;
    const max = this.maxConnections;
    if ((ZERO_MAX_REFUSES ? max != null : max) && this[kLive] >= max) {
      const local = reactor.native.localAddress(token);
      const remote = reactor.native.remoteAddress(token);
      reactor.native.closeSocket(token);
      // node:net's Pipe handle has no getsockname/getpeername: 'drop' comes with no argument.
      if (typeof this[kLocal] === 'string' || (local === null && remote === null)) {
        this.emit('drop');
        return;
      }
      // A null-prototype object, as node:net's.
      this.emit('drop', {
        __proto__: null,
        localAddress: local?.address,
        localPort: local?.port,
        localFamily: local?.family,
        remoteAddress: remote?.address,
        remotePort: remote?.port,
        remoteFamily: remote?.family,
      });
      return;
    }
    const remote = this[kBlockList] && reactor.native.remoteAddress(token);
    if (remote && isBlocked(this[kBlockList], remote.address)) {
      reactor.native.closeSocket(token);
      return;
    }
    this[kLive]++;
    // noDelay changed since the listen: node:net reads it at each accept.
    if (this.noDelay !== this[kAcceptNoDelay] && typeof this[kLocal] !== 'string') reactor.native.setNoDelay(token, this.noDelay);
    const socket = Socket.accepted({
      server: this,
      reactor,
      token,
      allowHalfOpen: this.allowHalfOpen,
      paused: this.pauseOnConnect,
      highWaterMark: this.highWaterMark,
      noDelay: this.noDelay,
      scope,
    });
    if (this.keepAlive) socket.setKeepAlive(true, this.keepAliveInitialDelay * 1000);
    this.emit('connection', socket);
    if (serverSocket.hasSubscribers) serverSocket.publish({ socket });
  }

  /** @internal */
  [kOnAcceptError](errno: number): void {
    const err = systemError(errno, 'accept');
    this[kRetry].failed(err, this[kReactor]!, this[kToken], () => this[kToken] >= 0);
    // Out of fds, node:net says nothing (libuv closes the waiting connections), so no app
    // listens for it: accepting pauses and resumes by itself, the peers wait in the backlog.
    if (err.code !== 'EMFILE' && err.code !== 'ENFILE') this.emit('error', err);
  }
}
// Its connections are handed out each in a callback of its own, as node:net's.
ownCallbacks(Server);

/**
 * As node:net, which hands `backlog || 511` to its binding as an int32:
 * coerced here, so a value that is no number (or a Symbol's TypeError)
 * meets the same fate before a lookup.
 */
function backlogInt(backlog: unknown): number {
  return (+(backlog || 511)) | 0;
}

/** node:net's `toNumber` for a backlog given as an argument: a number >= 0, else false. */
function backlogOf(value: unknown): number | false {
  const n = Number(value);
  return n >= 0 ? n : false;
}

/** An IPv6 link-local address (fe80::/10), with or without a zone. */
function isLinkLocal(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}
