/**
 * The drop-in `node:dgram`: `require('muxnet/dgram')` in place of
 * `require('dgram')`. UDP sockets on the muxnet reactor with node:dgram's
 * states, events and their order, argument checks and errors; Node's
 * lib/dgram.js is the spec, with its socket options (broadcast, TTL,
 * multicast, buffer sizes) and IPv6 zones (`fe80::1%eth0`).
 */
// Imported, not the globals: those are accessors on globalThis, a call at every use on a hot path.
import type * as Dgram from 'node:dgram';
import { AsyncResource } from 'node:async_hooks';
import { Buffer } from 'node:buffer';
import dns, { type LookupOneOptions } from 'node:dns';
import { EventEmitter } from 'node:events';
import type { BlockList } from 'node:net';
import process from 'node:process';
import { deprecate } from 'node:util';
import { isArrayBufferView } from 'node:util/types';
import { isIP, nodeDgram } from './builtins';
import type { NativeReactor } from './binding';
import { askPrimary, PrimaryLink, sharedWithPrimary, UV_IPV6ONLY, UV_UDP_REUSEADDR } from './cluster';
import { udpSocket } from './diagnostics';
import { eventsDispatched, getReactor, KeepAlive, kOnMessage, kOnReceiveError, openReactor, ownCallbacks, retained, SEND_QUEUED, udpBufferSize, type Handle, type Reactor, type SendSettler } from './reactor';
import { bufferOutOfBounds, coded, invalidArgType, invalidArgValue, ipBlocked, missingArgs, systemError, uvErrno } from './errors';
import { REUSE_PORT_OPTION, isBlocked, resolveBackend, validateBlockList, validateBufferSize, validateInteger, validateObject, validatePort, validateType, type BackendName } from './options';
import { fdKind, givenFd, INHERIT_DATAGRAM, takeFdOrThrow } from './fds';
import { handOver, installHandoff, type Handover, type HandsOver } from './handoff';
import { adoptable, callable } from './net/callable';
import { ownDefault } from './interop';
import { nodeFrom } from './versions';
import {
  kAfterQueue, kApplyBufferSizes, kBackend, kBindFd, kBindImplicitly, kBindState, kBindTo, kBindViaPrimary, kBlocks,
  kBound, kBufferSize, kBufferSizes, kCancelOutbox, kCheck, kCloseAfterQueuedJobs, kCloseOnAbort, kClosed,
  kClosingToken, kConnectState, kConnectTo, kEnqueue, kFlush, kGiven, kHealthCheck,
  kHold, kIpv6Only, kKeepAlive, kLateBelow, kListening, kLookup, kLookups, kMembership,
  kNative, kOutbox, kOutboxBytes, kOwnSocket, kPending, kPrimary, kReactor, kReceiveBlockList,
  kReceiving, kResolve, kRetry, kReuseAddr, kReusePort, kRoute, kRouted, kRunning, kScheduleFlush,
  kScope, kSendBlockList, kSettle, kSettlingBytes, kSettlingCount, kSourceMembership, kSpeaks, kStartConnect, kToken,
  kTransmit,
} from './symbols';
import { nextTick, setImmediate, clearImmediate, queueMicrotask } from './schedule';

export type SocketType = 'udp4' | 'udp6';

/** How a socket resolves host names: `dns.lookup(hostname, family, callback)` by default. */
export type LookupFunction = (
  hostname: string,
  family: number,
  callback: (err: NodeJS.ErrnoException | null, address: string, family?: number) => void,
) => void;
/**
 * A lookup as @types/node types node:dgram's, with dns.lookup's options for
 * the second argument; node:dgram passes the family there (a number), and so
 * does muxnet: taken too, so that code typed for node:dgram compiles.
 */
type LookupTypedAsNodes = (
  hostname: string,
  options: LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
) => void;

export interface SocketOptions {
  type: SocketType;
  reuseAddr?: boolean | undefined;
  /** SO_REUSEPORT (Linux, FreeBSD, DragonFly; elsewhere ENOTSUP): sockets of one port share its datagrams (Node 22.12+/23.1+; before, ignored as by node:dgram). */
  reusePort?: boolean | undefined;
  ipv6Only?: boolean | undefined;
  /** Node 24: sends and connects to an address this holds fail with `ERR_IP_BLOCKED`. */
  sendBlockList?: BlockList | undefined;
  /** Node 24: datagrams from an address this holds are dropped. */
  receiveBlockList?: BlockList | undefined;
  lookup?: LookupFunction | LookupTypedAsNodes | undefined;
  /** Closes the socket when aborted. */
  signal?: AbortSignal | undefined;
  /** muxnet: which reactor backend (default `$MUXNET_BACKEND` or mio). */
  backend?: BackendName | undefined;
  recvBufferSize?: number | undefined;
  sendBufferSize?: number | undefined;
}

export interface RemoteInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  size: number;
}

export interface AddressInfo {
  address: string;
  family: string;
  port: number;
}

export interface BindOptions {
  port?: number | undefined;
  address?: string | undefined;
  exclusive?: boolean | undefined;
  fd?: number | undefined;
}

/**
 * A send's callback. `bytes` is undefined with an error, as node:dgram's, yet
 * typed as @types/node types it: so a muxnet socket is a dgram.Socket to TypeScript.
 */
export type SendCallback = (err: Error | null, bytes: number) => void;
/** What a send's callback is called with. */
type SendDone = (err: Error | null, bytes?: number) => void;
/** Node 24's `bindSync` options. */
export interface BindSyncOptions {
  port?: number | undefined;
  address?: string | undefined;
}
/** Called on 'connect', or with the error when the connect failed. */
export type ConnectCallback = (err?: Error) => void;
// A view of a plain ArrayBuffer (the read slab's, or its own), typed as @types/node types node:dgram's.
export type MessageListener = (msg: Buffer<ArrayBuffer>, rinfo: RemoteInfo) => void;
/** What `send` takes: a string or any `ArrayBufferView`, or a list of them. */
export type SendData = string | NodeJS.ArrayBufferView | readonly (string | NodeJS.ArrayBufferView)[];

const enum BindState {
  Unbound,
  Binding,
  Bound,
}

const enum ConnectState {
  Disconnected,
  Connecting,
  Connected,
}

/** A datagram the kernel refused for now (its send buffer was full). */
interface Outgoing {
  data: Buffer;
  /** The resolved destination; none on a connected socket. */
  ip: string | undefined;
  port: number | undefined;
  /** The destination as the caller gave it (null too), for errors. */
  address: string | null | undefined;
  callback: SendDone | undefined;
  /** The reactors' event being handled when it was sent (see `close`). */
  event: number;
  /** A list of more pieces than `IOV_MAX`: refused `EMSGSIZE` where libuv's `sendmsg` is, on Unix. */
  tooManyPieces: boolean;
}

/**
 * dns.lookup as Node ships it — its source calls getaddrinfo — or none when
 * a wrapper was patched in before this module loaded (a tracer's preload):
 * only Node's own answers an address without asking anyone, so only then
 * is the call skipped (see `[kResolve]`). One patched in later is called like any other.
 */
const builtinLookup: unknown = Function.prototype.toString.call(dns.lookup).includes('getaddrinfo') ? dns.lookup : undefined;

/**
 * Node 24.19 and 26.5 (nodejs/node#64133): a socket made with no `lookup`
 * reads dns.lookup at each call, not when it is made, and answers an
 * address of its own family itself, asking no lookup.
 */
const LOOKUP_READ_AT_CALL = nodeFrom([24, 19], [26, 5]);

const BUFFER_TYPES = 'of type string or an instance of Buffer, TypedArray, or DataView';
// libuv's numbers, as the binding reports them (not the C runtime's, on Windows).
const [EAGAIN, EBADF, EBUSY, ECANCELED, EINVAL, EISCONN, EMSGSIZE, ENOTCONN] = ['EAGAIN', 'EBADF', 'EBUSY', 'ECANCELED', 'EINVAL', 'EISCONN', 'EMSGSIZE', 'ENOTCONN'].map(uvErrno);
/** The most pieces one `sendmsg` takes (`IOV_MAX`): libuv hands a list's pieces to it as they are. */
const IOV_MAX = 1024;
/** Rounds of ticks and microtasks a `close()` in a batch waits for the earlier messages' replies (see `[kCloseAfterQueuedJobs]`). */
const CLOSE_HOPS = 4;
/** Node's `--test-udp-no-try-send`: every datagram waits for the next turn. */
const NO_TRY_SEND = process.execArgv.includes('--test-udp-no-try-send');

class UdpSocket extends adoptable(EventEmitter) implements Handle, HandsOver {
  readonly type: SocketType;
  /** None: dns.lookup as it is at each call (see `LOOKUP_READ_AT_CALL`). */
  private readonly [kLookup]: LookupFunction | undefined;
  private readonly [kBackend]: BackendName;
  private readonly [kReuseAddr]: boolean;
  private readonly [kReusePort]: boolean;
  private readonly [kSendBlockList]: BlockList | undefined;
  private readonly [kReceiveBlockList]: BlockList | undefined;
  private readonly [kIpv6Only]: boolean;
  /** `recvBufferSize`/`sendBufferSize`: set once bound, before 'listening'. */
  private readonly [kBufferSizes]: { recv: number; send: number };
  private [kReactor]: Reactor | undefined;
  private [kToken] = -1;
  /** In a cluster worker: the handle of the socket the primary shares (closed with this one, which tells the primary). */
  private [kPrimary]: PrimaryLink | undefined;
  /** Bound on a given fd, whose number stays open until this closes (see ./fds). */
  private [kGiven]: { release(): void } | undefined;
  private readonly [kKeepAlive] = new KeepAlive();
  /** False once closed (node:dgram: the handle is gone). */
  private [kRunning] = true;
  private [kBindState] = BindState.Unbound;
  /** Bound and not stopped by the deprecated `_stopReceiving()`: 'message' is emitted. */
  private [kReceiving] = false;
  private [kConnectState] = ConnectState.Disconnected;
  /** What waits for the bind to finish (sends, connect, close), in call order. */
  private [kPending]: (() => void)[] | undefined;
  /** Datagrams waiting for room in the send buffer, in order. */
  private [kOutbox]: Outgoing[] = [];
  private [kOutboxBytes] = 0;
  /** Datagrams sent from the outbox whose callbacks have not run yet: libuv counts them as queued until then. */
  private [kSettlingCount] = 0;
  private [kSettlingBytes] = 0;
  private [kRetry]: NodeJS.Immediate | undefined;
  /** Sends whose destination is being resolved. */
  private [kLookups] = 0;
  /** After a `close()` in a batch of events: the socket, still open until its queued jobs have run, and the sends that may still use it (made in events below `[kLateBelow]`). */
  private [kClosingToken] = -1;
  private [kLateBelow] = 0;

  /** Its events' async context: node:dgram makes its handle in createSocket(). */
  private readonly [kScope] = new AsyncResource('MUXNET_UDP');

  constructor(type: SocketType | SocketOptions, listener?: MessageListener) {
    super();
    let options: Partial<SocketOptions> = {};
    if (type !== null && typeof type === 'object') {
      options = type;
      for (const key of ['recvBufferSize', 'sendBufferSize'] as const) {
        if (options[key]) validateInteger(options[key], `options.${key}`, 0, 0, 0xffffffff);
      }
    }
    this[kBufferSizes] = { recv: options.recvBufferSize || 0, send: options.sendBufferSize || 0 };
    // Checked before the type and lookup, in node:dgram's order.
    this[kReceiveBlockList] = validateBlockList(options.receiveBlockList, 'options.receiveBlockList');
    this[kSendBlockList] = validateBlockList(options.sendBlockList, 'options.sendBlockList');
    if (options.lookup !== undefined && typeof options.lookup !== 'function') {
      throw invalidArgType('lookup', 'of type function', options.lookup);
    }
    const kind: unknown = typeof type === 'object' && type !== null ? type.type : type;
    if (kind !== 'udp4' && kind !== 'udp6') {
      throw coded(new TypeError('Bad socket type specified. Valid types are: udp4, udp6'), 'ERR_SOCKET_BAD_TYPE');
    }
    this.type = kind;
    // Read now, as node:dgram before 24.19 does: a dns.lookup patched in before this is used.
    this[kLookup] = (options.lookup ?? (LOOKUP_READ_AT_CALL ? undefined : dns.lookup)) as LookupFunction | undefined;
    this[kBackend] = resolveBackend(options.backend);
    this[kReuseAddr] = !!options.reuseAddr;
    this[kReusePort] = !!options.reusePort && REUSE_PORT_OPTION;
    this[kIpv6Only] = !!options.ipv6Only;
    if (typeof listener === 'function') this.on('message', listener);
    if (options.signal !== undefined) this[kCloseOnAbort](options.signal);
    if (udpSocket.hasSubscribers) udpSocket.publish({ socket: this });
  }

  private [kCloseOnAbort](signal: unknown): void {
    if (signal === null || typeof signal !== 'object' || !('aborted' in signal)) {
      throw invalidArgType('options.signal', 'an instance of AbortSignal', signal);
    }
    const onAbort = () => {
      if (this[kRunning]) this.close();
    };
    const abortable = signal as AbortSignal;
    if (abortable.aborted) return onAbort();
    abortable.addEventListener('abort', onAbort, { once: true });
    this.once('close', () => abortable.removeEventListener('abort', onAbort));
  }

  /** Resolves `address` with the socket's lookup; empty means the loopback. */
  private [kResolve]<T>(address: string | null | undefined, cb: (err: Error | null, ip: string, context: T) => void, context: T): void {
    const family = this.type === 'udp6' ? 6 : 4;
    const host = address || (family === 6 ? '::1' : '127.0.0.1');
    const lookup = this[kLookup] ?? (dns.lookup as LookupFunction);
    const hostFamily = ipFamily(host);
    // What dns.lookup does with an address (answer it on the next tick),
    // without its argument checks and a second isIP per datagram; and
    // what node:dgram's own default does from 24.19 with one of the socket's family.
    if (hostFamily !== 0 && (lookup === builtinLookup || (this[kLookup] === undefined && hostFamily === family))) {
      // In a batch, once this event's listener returns (see atEventEnd): node's tick runs before the next event.
      if (!this[kReactor]?.atEventEnd(cb, null, host, context)) nextTick(cb, null, host, context);
    } else lookup(host, family, (err, ip) => cb(err, ip, context));
  }

  /** Whether `sendBlockList` holds `ip`. */
  private [kBlocks](ip: string): boolean {
    return isBlocked(this[kSendBlockList], ip);
  }

  /** Whether `ip` is of the socket's family: node:dgram's udp4 takes no IPv6 address, udp6 no IPv4 one (`EINVAL`). */
  private [kSpeaks](ip: string): boolean {
    return ipFamily(ip) === (this.type === 'udp6' ? 6 : 4);
  }

  private [kHealthCheck](): void {
    if (!this[kRunning]) throw coded(new Error('Not running'), 'ERR_SOCKET_DGRAM_NOT_RUNNING');
  }

  bind(port?: number, address?: string, callback?: () => void): this;
  bind(port?: number, callback?: () => void): this;
  bind(options: BindOptions, callback?: () => void): this;
  bind(callback?: () => void): this;
  bind(...args: unknown[]): this {
    this[kHealthCheck]();
    if (this[kBindState] !== BindState.Unbound) throw alreadyBound();
    const [first, second] = args;
    const options = first !== null && typeof first === 'object' ? (first as BindOptions) : undefined;
    // As node:dgram: an int32 fd above 0 is opened; another is ignored.
    if (options !== undefined && Number.isInteger(options.fd) && options.fd! > 0 && options.fd! < 2 ** 31) return this[kBindFd](options.fd!, args[args.length - 1]);
    this[kBindState] = BindState.Binding;
    const cb = args[args.length - 1];
    if (typeof cb === 'function') {
      // Gone again if the bind fails: a later bind brings its own callback.
      const onListening = () => {
        forget();
        cb.call(this);
      };
      const forget = () => {
        this.off('error', forget);
        this.off('listening', onListening);
      };
      this.on('error', forget);
      this.on('listening', onListening);
    }
    const port = options !== undefined ? options.port : first;
    let address = options !== undefined ? options.address : typeof second === 'function' ? undefined : (second as string | undefined);
    if (!address) address = this.type === 'udp4' ? '0.0.0.0' : '::';
    // As dns.lookup refuses it for node:dgram (a Symbol or an object made isIP throw its own TypeError).
    if (this[kLookup] === builtinLookup && typeof address !== 'string') throw invalidArgType('hostname', 'of type string', address);
    this[kResolve](address, (lookupErr, ip) => {
      if (!this[kRunning]) return;
      // `reusePort`: each worker binds its own socket of the port, as node:dgram's.
      if (!lookupErr && sharedWithPrimary(options?.exclusive || this[kReusePort])) return this[kBindViaPrimary](ip, port);
      if (lookupErr) {
        // Unbound again, as after a failed bind: a send binds implicitly, a bind may be retried.
        this[kBindState] = BindState.Unbound;
        this.emit('error', lookupErr);
        return;
      }
      const err = this[kBindTo](ip, port);
      if (err) {
        this.emit('error', err);
        return;
      }
      this[kListening]();
    }, undefined);
    return this;
  }

  /**
   * `bind({ fd })`: a bound UDP socket someone else made (a parent's,
   * systemd's), received on from now on; 'listening' at once, as
   * node:dgram emits it (in this process, even in a cluster worker).
   * Another kind of fd throws `ERR_INVALID_FD_TYPE`, as node:dgram's.
   */
  private [kBindFd](fd: number, cb: unknown): this {
    // A socket that has one already (a failed bind's, a group's) takes no other: libuv's EBUSY, once the fd is known to be UDP.
    if (this[kToken] >= 0) {
      const what = fdKind(this[kReactor]!, fd);
      if (what !== 'UDP') throw coded(new TypeError(`Unsupported fd type: ${what}`), 'ERR_INVALID_FD_TYPE');
      throw systemError(EBUSY, 'open');
    }
    const { reactor, token } = takeFdOrThrow(this[kBackend], fd, INHERIT_DATAGRAM);
    this[kGiven] = givenFd(fd, reactor);
    if (typeof cb === 'function') this.once('listening', cb as () => void);
    this[kBound](reactor, token);
    this[kListening]();
    return this;
  }

  private [kListening](): void {
    // As node:dgram: a size the kernel refuses throws here, from the bind's callback.
    this[kApplyBufferSizes]();
    this.emit('listening');
  }

  /** In a cluster worker (see ./cluster): receives on a copy of the socket the primary binds for every worker. */
  private [kBindViaPrimary](ip: string, port: unknown): void {
    const flags = (this[kReuseAddr] ? UV_UDP_REUSEADDR : 0) | (this[kIpv6Only] ? UV_IPV6ONLY : 0);
    askPrimary(this, { address: ip, port: port as number, addressType: this.type, fd: -1, flags }, (errno, handle) => {
      if (!this[kRunning]) return handle?.close();
      const reactor = errno || !handle ? errno || -EINVAL : openReactor(this[kBackend]);
      const token = typeof reactor === 'number' ? reactor : reactor.native.inherit(handle!.fd ?? -1, INHERIT_DATAGRAM, 0, false, true);
      if (token < 0) {
        handle?.close();
        this[kBindState] = BindState.Unbound;
        this.emit('error', hostPortError(-token, 'bind', ip, port));
        return;
      }
      // As node:dgram's handle from the primary replaces its own: a failed bind's socket closes.
      if (this[kToken] >= 0) this[kReactor]!.closeHandle(this[kToken]);
      this[kPrimary] = new PrimaryLink(handle!, (cb) => this.close(cb));
      // Only a holder of the primary's socket: the reactor's copy keeps the process alive, or not (ref/unref).
      handle!.unref?.();
      this[kBound](reactor as Reactor, token);
      this[kListening]();
    });
  }

  /**
   * Node 24's `bindSync`: binds now, to an address given as a number (no
   * lookup), throws what fails, and returns the address bound;
   * 'listening' follows on the next tick.
   */
  bindSync(options: BindSyncOptions = {}): AddressInfo {
    this[kHealthCheck]();
    const { port, address } = validateObject(options, 'options') as { port?: unknown; address?: unknown };
    if (this[kBindState] !== BindState.Unbound) throw alreadyBound();
    const p = validatePort(port ?? 0, 'options.port');
    const ip = address ? numericAddress(address, 'options.address', 'bindSync') : this.type === 'udp4' ? '0.0.0.0' : '::';
    this[kBindState] = BindState.Binding;
    const err = this[kBindTo](ip, p);
    if (err) throw err;
    this[kApplyBufferSizes]();
    nextTick(() => this.emit('listening'));
    return this.address();
  }

  /**
   * Binds the socket to `ip` (resolved) as libuv binds it: the socket is
   * made first if it has none, and stays when the bind fails (its options
   * can be set, `address()` is the any-address and port 0, and a later
   * bind binds it); one a group's join bound already is the kernel's
   * `EINVAL`. The error, with the socket unbound again, if that fails.
   */
  private [kBindTo](ip: string, port: unknown): Error | undefined {
    // Refused before a socket is made, as libuv refuses them: an address of the other family,
    // IPV6_V6ONLY for IPv4 (a udp4 socket's `ipv6Only`).
    const refused = !this[kSpeaks](ip) || (this[kIpv6Only] && this.type === 'udp4') ? -EINVAL : this[kOwnSocket](this.type === 'udp6');
    // The kernel takes the port as node:dgram hands it over: a uint32 cut to 16 bits.
    const r = refused || this[kReactor]!.native.udpBindSocket(this[kToken], ip, (Number(port || 0) >>> 0) & 0xffff, this[kReuseAddr], this[kReusePort], this[kIpv6Only]);
    if (r < 0) {
      this[kBindState] = BindState.Unbound;
      return hostPortError(-r, 'bind', ip, port);
    }
    this[kBound](this[kReactor]!, this[kToken]);
    return undefined;
  }

  /**
   * Makes the socket's own UDP socket (IPv6 if `ipv6`), unbound, unless it
   * has one: 0, or a negative errno (no fd left for it, or for the
   * reactor made with the first one).
   */
  private [kOwnSocket](ipv6: boolean): number {
    if (this[kToken] >= 0) return 0;
    const reactor = openReactor(this[kBackend]);
    const token = typeof reactor === 'number' ? reactor : reactor.udpSocket(ipv6);
    if (token < 0) return token;
    this[kReactor] = reactor as Reactor;
    this[kToken] = token;
    return 0;
  }

  private [kBound](reactor: Reactor, token: number): void {
    this[kReactor] = reactor;
    this[kToken] = token;
    reactor.attach(token, this, this[kScope]);
    this[kKeepAlive].bind(reactor);
    this[kBindState] = BindState.Bound;
    this[kReceiving] = true;
  }

  /** The buffer sizes `createSocket` asked for, once bound (a size the kernel refuses throws). */
  private [kApplyBufferSizes](): void {
    if (this[kBufferSizes].recv) this[kBufferSize](this[kBufferSizes].recv, true);
    if (this[kBufferSizes].send) this[kBufferSize](this[kBufferSizes].send, false);
  }

  /** Runs `action` once the bind in progress has finished (dropped if it fails). */
  private [kEnqueue](action: () => void): void {
    if (this[kPending] === undefined) {
      this[kPending] = [];
      const onError = () => {
        this.off('listening', onListening);
        this[kPending] = undefined;
      };
      const onListening = () => {
        this.off(EventEmitter.errorMonitor, onError);
        const pending = this[kPending]!;
        this[kPending] = undefined;
        for (const run of pending) run();
      };
      this.once(EventEmitter.errorMonitor, onError);
      this.once('listening', onListening);
    }
    this[kPending].push(action);
  }

  /** Binds to an ephemeral port unless bound: the implicit bind of `send`/`connect`. */
  private [kBindImplicitly](): void {
    if (this[kBindState] === BindState.Unbound) this.bind({ port: 0, exclusive: true });
  }

  connect(port: number, address?: string, callback?: ConnectCallback): void;
  connect(port: number, callback?: ConnectCallback): void;
  connect(port: number, address?: string | ConnectCallback, callback?: ConnectCallback): void {
    const p = validatePort(port, 'Port', false);
    if (typeof address === 'function') {
      callback = address;
      address = '';
    } else if (address === undefined) {
      address = '';
    }
    validateType(address, 'address', 'string');
    if (this[kConnectState] !== ConnectState.Disconnected) throw alreadyConnected();
    this[kConnectState] = ConnectState.Connecting;
    // Closed: node:dgram throws here too (a TypeError from its handle, gone),
    // once it has marked the socket connecting: a second connect() is
    // ERR_SOCKET_DGRAM_IS_CONNECTED.
    this[kHealthCheck]();
    this[kBindImplicitly]();
    const start = () => this[kStartConnect](p, address as string, callback);
    if (this[kBindState] !== BindState.Bound) this[kEnqueue](start);
    else start();
  }

  private [kStartConnect](port: number, address: string, callback: ConnectCallback | undefined): void {
    if (callback) this.once('connect', callback);
    this[kResolve](address, (lookupErr, ip) => {
      if (!this[kRunning]) return;
      const err = lookupErr ?? this[kConnectTo](ip, port, address);
      if (!err) return;
      this[kConnectState] = ConnectState.Disconnected;
      nextTick(() => {
        if (!callback) {
          this.emit('error', err);
          return;
        }
        this.off('connect', callback);
        callback(err);
      });
    }, undefined);
  }

  /**
   * Connects the bound socket to `ip` (resolved; `named` as the caller gave
   * it, for errors) and says 'connect' on the next tick; the error if not.
   */
  private [kConnectTo](ip: string, port: number, named: string): Error | undefined {
    // libuv refuses a second connect (a lookup that answered twice): EISCONN.
    if (this[kConnectState] === ConnectState.Connected) return hostPortError(EISCONN, 'connect', named, port);
    if (this[kBlocks](ip)) return ipBlocked(ip);
    // Datagrams queued in this batch leave first, to where they were sent.
    this[kReactor]!.flushSends();
    const r = this[kSpeaks](ip) ? this[kReactor]!.native.udpConnect(this[kToken], ip, port) : -EINVAL;
    if (r < 0) return hostPortError(-r, 'connect', named, port);
    this[kConnectState] = ConnectState.Connected;
    nextTick(() => this.emit('connect'));
    return undefined;
  }

  /**
   * Node 24's `connectSync`: connects now, to an address given as a number
   * (no lookup; none is the loopback), binding first if unbound, and
   * throws what fails; 'connect' follows on the next tick.
   */
  connectSync(port: number, address?: string): void {
    this[kHealthCheck]();
    const p = validatePort(port, 'Port', false);
    if (this[kConnectState] !== ConnectState.Disconnected) throw alreadyConnected();
    const ip = address === undefined || address === null || address === '' ? (this.type === 'udp4' ? '127.0.0.1' : '::1') : numericAddress(address, 'address', 'connectSync');
    if (this[kBindState] === BindState.Unbound) this.bindSync();
    else if (this[kBindState] !== BindState.Bound) throw alreadyBound();
    const err = this[kConnectTo](ip, p, ip);
    if (err) throw err;
  }

  disconnect(): void {
    if (this[kConnectState] !== ConnectState.Connected) throw notConnected();
    this[kHealthCheck]();
    this[kReactor]!.flushSends();
    const r = this[kReactor]!.native.udpDisconnect(this[kToken]);
    if (r < 0) throw systemError(-r, 'connect');
    this[kConnectState] = ConnectState.Disconnected;
  }

  /** The old `send(buffer, offset, length, port, address[, callback])`, every argument required. */
  sendto(buffer: SendData, offset: number, length: number, port: number, address: string, callback?: SendCallback): void {
    validateType(offset, 'offset', 'number');
    validateType(length, 'length', 'number');
    validateType(port, 'port', 'number');
    validateType(address, 'address', 'string');
    this.send(buffer, offset, length, port, address, callback);
  }

  send(msg: SendData, offset: number, length: number, port?: number, address?: string | null, callback?: SendCallback): void;
  send(msg: SendData, offset: number, length: number, port?: number, callback?: SendCallback): void;
  send(msg: SendData, offset: number, length: number, callback?: SendCallback): void;
  send(msg: SendData, port?: number, address?: string | null, callback?: SendCallback): void;
  send(msg: SendData, port?: number, callback?: SendCallback): void;
  send(msg: SendData, callback?: SendCallback): void;
  send(buffer: unknown, offset?: unknown, length?: unknown, port?: unknown, address?: unknown, callback?: unknown): void {
    const connected = this[kConnectState] === ConnectState.Connected;
    // Which form this is, decided as node:dgram decides it.
    if (!connected) {
      if (address || (port && typeof port !== 'function')) {
        buffer = sliceBuffer(buffer, offset, length);
      } else {
        [callback, port, address] = [port, offset, length];
      }
    } else {
      if (typeof length === 'number') {
        buffer = sliceBuffer(buffer, offset, length);
        if (typeof port === 'function') [callback, port] = [port, null];
      } else {
        callback = offset;
      }
      if (port || address) throw alreadyConnected();
    }
    const data = toDatagram(buffer);
    const p = connected ? undefined : validatePort(port, 'Port', false);
    if (typeof address === 'function') {
      callback = address;
      address = undefined;
    } else if (address !== null && address !== undefined) {
      validateType(address, 'address', 'string');
    }
    // In the async context of the send, as node:dgram's (its send request is made here): settled
    // after a batch, it would run in the reactor's. A resource and a closure, not
    // `AsyncResource.bind`: 10 µs a call on Node 20 (it defines a deprecated getter on each bound
    // function), a tenth of the CPU of an echo answering many peers.
    const scope = typeof callback === 'function' ? new AsyncResource('MUXNET_UDP_SEND') : undefined;
    const cb = scope && ((err: Error | null, bytes?: number) => scope.runInAsyncScope(callback as SendDone, null, err, bytes));
    this[kHealthCheck]();
    this[kBindImplicitly]();
    const tooManyPieces = Array.isArray(buffer) && buffer.length > IOV_MAX && process.platform !== 'win32';
    const out: Outgoing = { data, ip: undefined, port: p, address: connected ? undefined : (address as string | null | undefined), callback: cb, event: eventsDispatched(), tooManyPieces };
    if (this[kBindState] !== BindState.Bound) this[kEnqueue](() => this[kRoute](out, connected));
    else this[kRoute](out, connected);
  }

  /** Sends `out` once its destination is resolved (a connected socket's at once). */
  private [kRoute](out: Outgoing, connected: boolean): void {
    if (connected) return this[kTransmit](out);
    this[kLookups]++;
    this[kResolve](out.address, this[kRouted], out);
  }

  /** A send's destination resolved (one function per socket: a closure per datagram was garbage to collect). */
  private readonly [kRouted] = (err: Error | null, ip: string, out: Outgoing): void => {
    this[kLookups]--;
    if (!err) {
      out.ip = ip;
      return this[kTransmit](out);
    }
    if (out.callback) nextTick(out.callback, err);
    else nextTick(() => this.emit('error', err));
  };

  /** Sends now, or after the datagrams already waiting; a closed socket drops it. */
  private [kTransmit](out: Outgoing): void {
    // Once closed, only a reply of the batch's earlier messages still goes (see `close`).
    const token = this[kRunning] ? this[kToken] : out.event < this[kLateBelow] ? this[kClosingToken] : -1;
    if (token < 0) return;
    const { ip, callback } = out;
    if (ip !== undefined && this[kBlocks](ip)) {
      // As node:dgram: only a callback hears of it, in its place among the batch's.
      if (callback) this[kReactor]!.settleInTurn(() => nextTick(callback, ipBlocked(ip)), 0);
      return;
    }
    // Refused as libuv refuses them: an address of the other family; an address at all once the
    // socket is connected (it connected after this send was asked for: its lookup ran later).
    const refused = out.tooManyPieces ? -EMSGSIZE : ip === undefined ? 0 : !this[kSpeaks](ip) ? -EINVAL : this[kConnectState] === ConnectState.Connected ? -EISCONN : 0;
    if (!refused && (this[kOutbox].length > 0 || NO_TRY_SEND)) return this[kHold](out);
    const r = refused || this[kReactor]!.sendDatagram(token, out.data, ip, out.port, this[kAfterQueue], out);
    if (r === SEND_QUEUED) return;
    if (r === -EAGAIN) return this[kHold](out);
    // Sent or refused at once (connected; too long, wrong family): its callback keeps its place among the batch's.
    this[kReactor]!.settleInTurn(this[kAfterQueue], r, ip, out.port, out);
  }

  /**
   * A datagram queued in a batch has left, or failed: a full send buffer
   * keeps it for the next turn (unless the socket is closing: cancelled).
   */
  private readonly [kAfterQueue]: SendSettler = (result, _host, _port, context) => {
    const out = context as Outgoing;
    if (result !== -EAGAIN) return this[kSettle](out, result);
    if (this[kRunning]) this[kHold](out);
    else this[kSettle](out, -ECANCELED);
  };

  /** Tells a send's callback, next tick, how it went (node:dgram has no 'error' for sends). */
  private [kSettle](out: Outgoing, result: number, release?: () => void): void {
    const { callback } = out;
    if (callback === undefined) {
      if (release) nextTick(release);
      return;
    }
    const err = result < 0 ? hostPortError(-result, 'send', out.address, out.port) : null;
    nextTick(() => {
      release?.();
      if (err) callback(err);
      else callback(null, result);
    });
  }

  private [kHold](out: Outgoing): void {
    this[kOutbox].push(out);
    this[kOutboxBytes] += out.data.length;
    this[kScheduleFlush]();
  }

  private [kScheduleFlush](): void {
    if (this[kRetry] !== undefined) return;
    this[kRetry] = setImmediate(() => this[kFlush]());
    if (!this[kKeepAlive].on) this[kRetry].unref();
  }

  /** Next turn: sends what waits, in order, until the kernel refuses again. */
  private [kFlush](): void {
    this[kRetry] = undefined;
    while (this[kOutbox].length > 0) {
      const out = this[kOutbox][0];
      const r = this[kReactor]!.send(this[kToken], out.data, out.ip, out.port);
      if (r === -EAGAIN) return this[kScheduleFlush]();
      this[kOutbox].shift();
      const size = out.data.length;
      this[kOutboxBytes] -= size;
      // As libuv: still counted by getSendQueueSize/Count until its own callback runs.
      this[kSettlingCount]++;
      this[kSettlingBytes] += size;
      this[kSettle](out, r, () => {
        this[kSettlingCount]--;
        this[kSettlingBytes] -= size;
      });
    }
  }

  /** Bytes waiting for room in the send buffer. */
  getSendQueueSize(): number {
    this[kHealthCheck]();
    return this[kOutboxBytes] + this[kSettlingBytes];
  }

  /** Datagrams waiting for room in the send buffer. */
  getSendQueueCount(): number {
    this[kHealthCheck]();
    return this[kOutbox].length + this[kSettlingCount];
  }

  /** @internal A copy of its socket for another process (see ./handoff); this one receives on. */
  [handOver](): Handover {
    if (this[kToken] < 0) return undefined;
    return { fd: this[kReactor]!.native.duplicate(this[kToken]), kind: this.type };
  }

  close(callback?: () => void): this {
    if (typeof callback === 'function') this.on('close', callback);
    if (this[kPending] !== undefined) {
      // After the bind and what waits for it, as node:dgram does.
      this[kPending].push(() => this.close());
      return this;
    }
    this[kHealthCheck]();
    this[kRunning] = false;
    this[kReceiving] = false;
    // The primary hears of it; this socket's own copy closes below.
    this[kPrimary]?.release();
    this[kPrimary] = undefined;
    this[kGiven]?.release();
    this[kGiven] = undefined;
    if (this[kToken] >= 0 && this[kLookups] > 0 && this[kReactor]!.inBatch) {
      // node:dgram emits each datagram's 'message' on its own, and ticks and
      // microtasks run between them: the replies to the batch's earlier
      // events (this socket's messages or another's), still being resolved,
      // would have left before this close. They still go (those the current
      // event's handler sent do not, as in node).
      this[kClosingToken] = this[kToken];
      this[kLateBelow] = eventsDispatched();
      // What left already in node:dgram is called back before 'close', as below.
      this[kReactor]!.flushSends();
      this[kToken] = -1;
      // 'close' too waits: node:dgram had called those replies back before it.
      this[kCloseAfterQueuedJobs](CLOSE_HOPS);
      return this;
    }
    if (this[kToken] >= 0) this[kReactor]!.closeHandle(this[kToken], this[kKeepAlive]);
    this[kToken] = -1;
    this[kClosed]();
    return this;
  }

  /** The socket is closed: 'close' on the next tick, then what waited in the outbox fails. */
  private [kClosed](): void {
    // node:dgram's handle, made with the socket, costs its close a loop
    // turn even if it was never bound ('beforeExit' comes again).
    if (this[kReactor] !== undefined) this[kReactor].closeTurn();
    else setImmediate(() => {});
    nextTick(() => this.emit('close'));
    this[kCancelOutbox]();
  }

  /**
   * Closes the socket of a `close()` in a batch (and emits 'close') once
   * the jobs queued so far have run: the ticks, then the microtasks (a lookup that answers through
   * a promise, however many awaits deep), again while lookups are pending,
   * at most `hops` times — a real DNS query, answered on a later turn of
   * the loop, would find node:dgram's socket closed too.
   */
  private [kCloseAfterQueuedJobs](hops: number): void {
    nextTick(() =>
      queueMicrotask(() => {
        if (this[kLookups] > 0 && hops > 1) return this[kCloseAfterQueuedJobs](hops - 1);
        // A tick queued from a microtask runs once every microtask has.
        nextTick(() => {
          this[kReactor]!.closeHandle(this[kClosingToken], this[kKeepAlive]);
          this[kClosingToken] = -1;
          this[kClosed]();
        });
      }),
    );
  }

  /** `await using`: closes the socket unless it is closed already. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this[kRunning]) await new Promise<void>((resolve) => this.close(resolve));
  }

  /** A closed socket's waiting datagrams fail with `ECANCELED`, after 'close'. */
  private [kCancelOutbox](): void {
    if (this[kRetry] !== undefined) clearImmediate(this[kRetry]);
    this[kRetry] = undefined;
    for (const out of this[kOutbox]) this[kSettle](out, -ECANCELED);
    this[kOutbox] = [];
    this[kOutboxBytes] = 0;
  }

  address(): AddressInfo {
    this[kHealthCheck]();
    const local = this[kToken] >= 0 ? this[kReactor]!.native.localAddress(this[kToken]) : null;
    // node:dgram asks the kernel, which knows no such socket before the bind.
    if (!local) throw systemError(EBADF, 'getsockname');
    return local;
  }

  remoteAddress(): AddressInfo {
    this[kHealthCheck]();
    if (this[kConnectState] !== ConnectState.Connected) throw notConnected();
    const remote = this[kReactor]!.native.remoteAddress(this[kToken]);
    if (!remote) throw systemError(ENOTCONN, 'getpeername');
    return remote;
  }

  ref(): this {
    this[kKeepAlive].set(true);
    this[kRetry]?.ref();
    return this;
  }

  unref(): this {
    this[kKeepAlive].set(false);
    this[kRetry]?.unref();
    return this;
  }

  /**
   * The native reactor for a socket option: the socket's own once it has a
   * socket; before, its backend's, where token -1 names none (`EBADF`, as
   * node:dgram says). Datagrams queued in this batch leave first, under the
   * old option.
   */
  private get [kNative](): NativeReactor {
    const reactor = this[kReactor] ?? getReactor(this[kBackend]);
    reactor.flushSends();
    return reactor.native;
  }

  /** Throws Node's error for a socket option call that returned a negative errno. */
  private [kCheck](syscall: string, result: number): void {
    if (result < 0) throw systemError(-result, syscall);
  }

  setBroadcast(flag: boolean): void {
    this[kHealthCheck]();
    this[kCheck]('setBroadcast', this[kNative].udpSetBroadcast(this[kToken], !!flag));
  }

  /** Sets the unicast TTL (1 to 255; as Node, a number is cut to an int32 first) and returns `ttl`. */
  setTTL(ttl: number): number {
    validateType(ttl, 'ttl', 'number');
    this[kHealthCheck]();
    this[kCheck]('setTTL', this[kNative].udpSetTtl(this[kToken], ttl | 0));
    return ttl;
  }

  /** Sets the multicast TTL (0 to 255) and returns `ttl`. */
  setMulticastTTL(ttl: number): number {
    validateType(ttl, 'ttl', 'number');
    this[kHealthCheck]();
    this[kCheck]('setMulticastTTL', this[kNative].udpSetMulticastTtl(this[kToken], ttl | 0));
    return ttl;
  }

  /** Whether the socket hears its own multicast; returns `flag`, as node:dgram does. */
  setMulticastLoopback<T>(flag: T): T {
    this[kHealthCheck]();
    this[kCheck]('setMulticastLoopback', this[kNative].udpSetMulticastLoopback(this[kToken], !!flag));
    return flag;
  }

  /** The interface multicast leaves from: an IPv4 address, or IPv6 with its `%zone` (`::%eth0`). */
  setMulticastInterface(interfaceAddress: string): void {
    this[kHealthCheck]();
    validateType(interfaceAddress, 'interfaceAddress', 'string');
    this[kCheck]('setMulticastInterface', this[kNative].udpSetMulticastInterface(this[kToken], interfaceAddress));
  }

  addMembership(multicastAddress: string, interfaceAddress?: string): void {
    this[kMembership]('addMembership', true, multicastAddress, undefined, interfaceAddress);
  }

  dropMembership(multicastAddress: string, interfaceAddress?: string): void {
    this[kMembership]('dropMembership', false, multicastAddress, undefined, interfaceAddress);
  }

  addSourceSpecificMembership(sourceAddress: string, groupAddress: string, interfaceAddress?: string): void {
    this[kSourceMembership]('addSourceSpecificMembership', true, sourceAddress, groupAddress, interfaceAddress);
  }

  dropSourceSpecificMembership(sourceAddress: string, groupAddress: string, interfaceAddress?: string): void {
    this[kSourceMembership]('dropSourceSpecificMembership', false, sourceAddress, groupAddress, interfaceAddress);
  }

  private [kSourceMembership](syscall: string, join: boolean, source: unknown, group: unknown, iface: unknown): void {
    this[kHealthCheck]();
    validateType(source, 'sourceAddress', 'string');
    validateType(group, 'groupAddress', 'string');
    this[kMembership](syscall, join, group, source as string, iface);
  }

  /**
   * Joins or leaves a group as libuv does: the addresses are checked (`EINVAL`), then a socket
   * without one gets one bound to the group family's any-address and port 0, which node:dgram
   * neither reads from nor lets `bind` again (`EINVAL`); one that has a socket (a failed bind's,
   * unbound) keeps it as it is; then the kernel is asked.
   */
  private [kMembership](syscall: string, join: boolean, group: unknown, source: string | undefined, iface: unknown): void {
    this[kHealthCheck]();
    // Only add/dropMembership check for a missing group; the source-specific calls hand '' to libuv (EINVAL).
    if (!group && source === undefined) throw missingArgs('multicastAddress');
    const family = isIP(String(group));
    if (family === 0 || (source !== undefined && isIP(source) !== family)) throw systemError(EINVAL, syscall);
    if (this[kToken] < 0) {
      this[kCheck](syscall, this[kOwnSocket](family === 6));
      this[kCheck](syscall, this[kReactor]!.native.udpBindSocket(this[kToken], family === 4 ? '0.0.0.0' : '::', 0, true, false, false));
    }
    const where = iface === undefined || iface === null ? undefined : String(iface);
    this[kCheck](syscall, this[kNative].udpMembership(this[kToken], join, String(group), source, where));
  }

  setRecvBufferSize(size: number): void {
    this[kBufferSize](size, true);
  }

  setSendBufferSize(size: number): void {
    this[kBufferSize](size, false);
  }

  /** The receive buffer's size as the kernel reports it (Linux: twice what was set). */
  getRecvBufferSize(): number {
    return this[kBufferSize](0, true);
  }

  /** The send buffer's size as the kernel reports it (Linux: twice what was set). */
  getSendBufferSize(): number {
    return this[kBufferSize](0, false);
  }

  /** Sets (`size` > 0) or reads a buffer's size, with node:dgram's errors. */
  private [kBufferSize](size: unknown, recv: boolean): number {
    validateBufferSize(size);
    this[kHealthCheck]();
    return udpBufferSize(this[kNative], this[kToken], size, recv);
  }

  /** @internal */
  [kOnReceiveError](errno: number): void {
    this.emit('error', systemError(errno, 'recvmsg'));
  }

  /**
   * @internal The sender's text comes from the kernel's address: IPv6 has colons, IPv4 none (no regex per datagram).
   * A message is a copy (see `retained()`), as listeners keep node:dgram's:
   * a view of the read slab would keep the whole slab alive for a listener
   * that keeps one message in a hundred. Copying a datagram costs little
   * beside its delivery.
   */
  [kOnMessage](msg: Buffer, address: string, port: number): void {
    if (!this[kReceiving] || isBlocked(this[kReceiveBlockList], address)) return;
    this.emit('message', retained(msg), { address, family: address.includes(':') ? 'IPv6' : 'IPv4', port, size: msg.length } satisfies RemoteInfo);
  }

  // node:dgram's private members, deprecated since Node 12 (DEP0112) but
  // still read by old code: the same names, the same warning. There is no
  // libuv handle here; `_handle` is an object while the socket runs, null
  // once closed, and assigning these has no effect on muxnet's state.
  static {
    const deprecated = (name: string, get: (s: UdpSocket) => unknown) => {
      const message = `Socket.prototype.${name} is deprecated`;
      Object.defineProperty(UdpSocket.prototype, name, {
        configurable: true,
        get: deprecate(function (this: UdpSocket) {
          return get(this);
        }, message, 'DEP0112'),
        set: deprecate(() => {}, message, 'DEP0112'),
      });
    };
    deprecated('_handle', (s) => (s[kRunning] ? { token: s[kToken] } : null));
    deprecated('_receiving', (s) => s[kReceiving]);
    deprecated('_bindState', (s) => s[kBindState]);
    deprecated('_queue', (s) => s[kPending]);
    deprecated('_reuseAddr', (s) => s[kReuseAddr]);
    const methods: Record<string, (this: UdpSocket) => void> = {
      _healthCheck(this: UdpSocket) {
        this[kHealthCheck]();
      },
      _stopReceiving(this: UdpSocket) {
        this[kReceiving] = false;
      },
    };
    for (const [name, method] of Object.entries(methods)) {
      Object.defineProperty(UdpSocket.prototype, name, {
        configurable: true,
        writable: true,
        value: deprecate(method, `Socket.prototype.${name}() is deprecated`, 'DEP0112'),
      });
    }
  }
}
/*
 * Each datagram is a callback of its own, as node:dgram's: the ticks and
 * promise jobs a listener queues run before the next (a library's close()
 * from a tick leaves the rest unheard, where a batch emitted in one go had
 * node-coap answer every one with an RST, and its peer each RST with three
 * datagrams), and a listener's throw is heard before the next datagram.
 */
ownCallbacks(UdpSocket);

/** What a muxnet UDP socket has beyond @types/node 20's `dgram.Socket`: Node 24's methods. */
export interface SocketExtras {
  bindSync(options?: BindSyncOptions): AddressInfo;
  connectSync(port: number, address?: string): void;
}
/** A UDP socket muxnet makes (`createSocket()`): node:dgram's to TypeScript (see `net.SocketConstructor`), with its extras. */
export type MuxnetSocket = Dgram.Socket & SocketExtras;
/**
 * `dgram.Socket`'s constructor, with node's statics: as node:dgram's, an
 * ES5-style subclass initialises itself with `dgram.Socket.call(this, type)`.
 */
export type SocketConstructor = {
  new (type: SocketType | SocketOptions, listener?: MessageListener): MuxnetSocket;
  // node:dgram's typings' form (so that this is a `typeof dgram.Socket`); as there, no type throws ERR_SOCKET_BAD_TYPE.
  new (...args: ConstructorParameters<typeof nodeDgram.Socket>): MuxnetSocket;
  (type: SocketType | SocketOptions, listener?: MessageListener): MuxnetSocket;
  readonly prototype: MuxnetSocket;
  // node's statics, not its construct signature (see net.SocketConstructor).
} & Pick<typeof nodeDgram.Socket, keyof typeof nodeDgram.Socket>;
// Named as node:dgram's class (its `name`, what inspect() labels a socket with).
Object.defineProperty(UdpSocket, 'name', { value: 'Socket' });
// (node's typings' form is one the class refuses, as node's does at run time: asserted.)
// node:dgram's sockets pass its `instanceof`, as node:net's pass net's (code checks what another module made).
export const Socket = callable(UdpSocket, 'Socket', 2, nodeDgram.Socket) as unknown as SocketConstructor;
export type Socket = Dgram.Socket;

/** `text` if it is an IP address; the sync calls do no lookup. */
function numericAddress(text: unknown, name: string, call: string): string {
  validateType(text, name, 'string');
  if (ipFamily(text as string) === 0) throw invalidArgValue(name, text, `must be a numeric IP address; ${call} does not perform DNS resolution`);
  return text as string;
}

function notConnected(): Error {
  return coded(new Error('Not connected'), 'ERR_SOCKET_DGRAM_NOT_CONNECTED');
}

function alreadyConnected(): Error {
  return coded(new Error('Already connected'), 'ERR_SOCKET_DGRAM_IS_CONNECTED');
}

function alreadyBound(): Error {
  return coded(new Error('Socket is already bound'), 'ERR_SOCKET_ALREADY_BOUND');
}

/**
 * As node:dgram's errors name a destination (its `exceptionWithHostPort`):
 * `address:port` for a port above 0 (whatever the address: `undefined:9`
 * for a send given none), else the address if any; `address` always set,
 * `port` as given (a bind's `'7x'` too) if truthy.
 */
function hostPortError(errno: number, syscall: string, address: string | null | undefined, port: unknown): Error {
  const { errno: code, code: name, message } = systemError(errno, syscall);
  const where = port && (port as number) > 0 ? ` ${address}:${String(port)}` : address ? ` ${address}` : '';
  const err = Object.assign(new Error(`${message}${where}`), { errno: code, code: name, syscall, address });
  return port ? Object.assign(err, { port }) : err;
}

/** `buffer[offset, offset + length)` as a Buffer over the same memory. */
function sliceBuffer(buffer: unknown, offset: unknown, length: unknown): Buffer {
  const view = typeof buffer === 'string' ? Buffer.from(buffer) : buffer;
  if (!isArrayBufferView(view)) throw invalidArgType('buffer', BUFFER_TYPES, buffer);
  // As node:dgram: a BigInt offset or length throws (mixing BigInt with a number).
  const start = (offset as number) >>> 0;
  const size = (length as number) >>> 0;
  if (start > view.byteLength) throw bufferOutOfBounds('offset');
  if (start + size > view.byteLength) throw bufferOutOfBounds('length');
  return Buffer.from(view.buffer, view.byteOffset + start, size);
}

/** The datagram: strings encoded as UTF-8, a view shared, a list's pieces joined. */
function toDatagram(buffer: unknown): Buffer {
  if (!Array.isArray(buffer)) {
    if (typeof buffer !== 'string' && !isArrayBufferView(buffer)) throw invalidArgType('buffer', BUFFER_TYPES, buffer);
    return asBuffer(buffer);
  }
  // An index loop, not every(): a hole in a sparse list is a bad piece, as node:dgram's fixBufferList finds.
  for (let i = 0; i < buffer.length; i++) {
    if (typeof buffer[i] !== 'string' && !isArrayBufferView(buffer[i])) throw invalidArgType('buffer list arguments', BUFFER_TYPES, buffer);
  }
  return buffer.length === 1 ? asBuffer(buffer[0]) : Buffer.concat(buffer.map(asBuffer));
}

function asBuffer(piece: string | NodeJS.ArrayBufferView): Buffer {
  if (typeof piece === 'string') return Buffer.from(piece);
  if (Buffer.isBuffer(piece)) return piece;
  // A view of a transferred (detached) buffer is empty, as node:dgram sends it; Buffer.from would throw.
  return piece.byteLength === 0 ? Buffer.alloc(0) : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
}

/**
 * `isIP(text)`, remembering the last answer: a server replies to the
 * address each 'message' gave it, and its peers mostly share one (a
 * regex per datagram was ~3 % of a UDP echo server's CPU).
 */
let lastIp = '';
let lastFamily = 0;
function ipFamily(text: string): number {
  if (text !== lastIp) {
    lastFamily = isIP(text);
    lastIp = text;
  }
  return lastFamily;
}

// Its sockets go through `subprocess.send()` as node:dgram's do.
installHandoff();

export function createSocket(type: SocketType | SocketOptions, listener?: MessageListener): MuxnetSocket {
  return new UdpSocket(type, listener);
}

// Compiled CommonJS only (under vitest's ESM transform there is no `module`).
if (typeof module === 'object') ownDefault(module.exports);
