/**
 * `net.Socket` on the muxnet reactor: a real `stream.Duplex` with node:net's
 * events, properties and error shapes. Node's lib/net.js is the spec.
 */
// Imported, not the globals: those are accessors on globalThis, a call at every use on a hot path.
import { AsyncResource } from 'node:async_hooks';
import { Buffer } from 'node:buffer';
import { ADDRCONFIG, lookup as dnsLookup } from 'node:dns';
import type { BlockList, LookupFunction, SocketReadyState } from 'node:net';
import process from 'node:process';
import { Duplex, Writable, type DuplexOptions } from 'node:stream';
import { isIP, nodeNet } from '../builtins';
import { EVERY_CONNECT_PUBLISHES, clientSocket } from '../diagnostics';
import { heldCopy, KeepAlive, kOnClose, kOnConnect, kOnData, kOnDrain, kOnEnd, kReadOn, openReactor, ownCallbacks, retained, type Handle, type Reactor } from '../reactor';
import { abortError, coded, codedError, uvErrno, invalidAddressFamily, invalidArgType, invalidArgValue, invalidIpAddress, ipBlocked, missingArgs, socketClosed, systemError } from '../errors';
import { isBlocked, isPipeName, onAbort, pipeName, timerDuration, validateAbortSignal, validateBlockList, validateBoolean, validateInteger, validatePort, validateType } from '../options';
import { nodeFrom, uvFrom } from '../versions';
import type { BackendName } from '../options';
import { givenFd, INHERIT_STREAM, NOT_CONNECTED, takeFdOrThrow, unconnectedFd } from '../fds';
import type { Server } from './server';
import { handOver, usedAsStdio, type Handover, type HandsOver } from '../handoff';
import { adopt, isBoundSocket, type Adopted, type BoundSocket } from './bound';
import { moveToThread, notTransferable, type Movable, type Move } from '../threads';
import {
  kApplyKeepAlive, kAttemptFailed, kAttempted, kAttempts, kBackendName, kBind, kBlockList, kBusyEnd, kConnectAgain,
  kConnectPath, kConnectingFlag, kConnects, kCountedBy, kDataBatch, kDeliver, kDeliverQueued, kDial, kDialAgain,
  kDispatched, kEndDeferred, kEndedByPeer, kEofPending, kErrorDeferred, kErrorWait, kFailedHandle,
  kFetchAddresses, kFinishWrite, kFromBound, kGiven, kHandedOver, kHandleClosed, kHasHandle, kHoldBack, kKeepAlive,
  kKeepAliveProbe, kLastQueued, kLeanReads, kUnhanded, kLocal, kNativePaused, kNoDelay, kOnTimeout, kOnread, kOpenFd, kOpened,
  kPeerBeforeFin, kPeerFin, kPeerKept, kPeerName, kPendingData, kPendingWrite, kQueueDeliver, kQueueRelease, kReactor,
  kReadArmed, kReadBegun, kReadBuffer, kReadRest, kReadsNothing, kReleaseQueued, kRemote, kReset, kResetOnClose, kScope, kShared, kSockName,
  kSocketClosed, kStalled, kStalledEof, kStalledError, kStartReading, kStopReading, kSyncActive, kSyncLeanReads, kTimer, kToken, kTos, kTouch,
  kUnixDomain, kUnread, kWriteOut, kWritePiece, kStreamWrap, kReadToWrap, kTakeBuffered, kFlowingBeforePause, kPausedBeforePause,
} from '../symbols';
import { adoptable } from './callable';
import { lendTcpMethods } from './js-stream';
import { nextTick, setImmediate, setTimeout, clearTimeout } from '../schedule';
import { native } from '../binding';

/** node:net's `onread`: bytes land in your buffer and go to `callback`, not to 'data'. */
export interface OnReadOptions {
  /** The buffer to read into, or a function giving one for each read. */
  buffer: Uint8Array | (() => Uint8Array);
  /** `nread` bytes are at the start of `buf`; returning false pauses the socket. */
  callback(this: Socket, nread: number, buf: Uint8Array): boolean | void;
}

export interface SocketOptions extends DuplexOptions {
  allowHalfOpen?: boolean | undefined;
  /** node:net's: whether the socket starts readable / writable (as a Duplex's, before it connects). */
  readable?: boolean | undefined;
  writable?: boolean | undefined;
  /** Applied once connected, as `setNoDelay(true)` (not to a socket made on an `fd`, as node:net). */
  noDelay?: boolean | undefined;
  /** Applied once connected, as `setKeepAlive(true, keepAliveInitialDelay)` (not to a socket made on an `fd`). */
  keepAlive?: boolean | undefined;
  keepAliveInitialDelay?: number | undefined;
  /** muxnet: which reactor backend (default `$MUXNET_BACKEND` or mio). */
  backend?: BackendName | undefined;
  fd?: unknown | undefined;
  /** Node 24's `net.BoundSocket`, adopted: `connect()` leaves from its address (`fd` is then not read). */
  handle?: BoundSocket | undefined;
  onread?: OnReadOptions | undefined;
  /** Node 24's: connecting to an address it holds fails with `ERR_IP_BLOCKED` (accepted on Node 20 too). */
  blockList?: BlockList | undefined;
  /** Node 24.22's: the type-of-service byte, set once connected (see `setTypeOfService`). */
  typeOfService?: number | undefined;
}

export interface SocketConnectOpts {
  port?: number | string | undefined;
  host?: string | undefined;
  localAddress?: string | undefined;
  localPort?: number | undefined;
  family?: number | string | undefined;
  hints?: number | undefined;
  lookup?: LookupFunction | undefined;
  /** These three and `timeout` are `net.connect()`'s, which makes the socket with them; `Socket#connect` reads none, as node:net's. */
  noDelay?: boolean | undefined;
  keepAlive?: boolean | undefined;
  keepAliveInitialDelay?: number | undefined;
  /** Node 24.22's: the type-of-service byte, set once connected. */
  typeOfService?: number | undefined;
  timeout?: number | undefined;
  /** Happy eyeballs: try every address the lookup gives (default `net.getDefaultAutoSelectFamily()`). */
  autoSelectFamily?: boolean | undefined;
  autoSelectFamilyAttemptTimeout?: number | undefined;
  /** IPC is not supported yet; `null` (as http.Agent passes it) means TCP. */
  path?: string | null | undefined;
  backend?: BackendName | undefined;
}

interface LookupAddress {
  address: string;
  family: number;
}
type Lookup = (
  host: string,
  opts: { family?: number | string; hints: number; all?: boolean },
  cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void;

/** Options handed to a socket the server accepted. */
export interface AcceptedInit {
  server: Server;
  reactor: Reactor;
  token: number;
  allowHalfOpen: boolean;
  /** `pauseOnConnect`: read nothing until `resume()`. */
  paused: boolean;
  /** The server's `highWaterMark`, both ways. */
  highWaterMark: number;
  /** It has `TCP_NODELAY` (the server's `noDelay`, set at the accept). */
  noDelay: boolean;
  /** Its events' async context, if it has one of its own (see the reactor's `Handle`). */
  scope: AsyncResource | undefined;
}

/**
 * A socket made on an adopted `net.BoundSocket`: node's handle until it
 * connects (a Unix-domain one's until it closes: see `Adopted.release`),
 * and the source path of a Unix-domain one, its `localAddress` from then
 * on. As node:net's, it stays a BoundSocket's socket once destroyed: no
 * `localAddress`/`localPort` options, no happy eyeballs.
 */
interface FromBound {
  adopted: Adopted | undefined;
  readonly path: string | undefined;
}

/** The addresses `connect()` tries in turn (happy eyeballs), and how it went. */
interface Attempts {
  /** The `connect()` call they serve (see `Socket.connects`). */
  connect: number;
  /** Or the negative errno of why it could not be made (no fd left): each attempt fails with it. */
  reactor: Reactor | number;
  /** Each with the family its lookup gave (node:net dials that family's way). */
  addresses: LookupAddress[];
  /** autoSelectFamily over several addresses (node:net's connect-multiple path, whose events differ a little). */
  multiple: boolean;
  port: number;
  localAddress: string | undefined;
  localPort: number | undefined;
  timeoutMs: number;
  errors: Error[];
  timer?: NodeJS.Timeout;
}

/** A type-of-service byte, with node:net's errors (NaN and undefined are no number either). */
function validateTypeOfService(tos: unknown, name = 'options.typeOfService'): number {
  if (typeof tos !== 'number' || Number.isNaN(tos)) throw invalidArgType(name, 'of type number', tos);
  return validateInteger(tos, name, 0, 0, 255);
}

/**
 * The local address an attempt binds, as node:net picks it: a localPort
 * alone (or with `localAddress: ''`) binds the any-address of the
 * destination's family; neither binds nothing.
 */
function localAddressFor(attempts: Attempts, v6: boolean): string | undefined {
  return attempts.localAddress || (attempts.localPort ? (v6 ? '::' : '0.0.0.0') : undefined);
}

/**
 * A failed attempt, as node:net words it: from a bound local address and
 * port, the error names them too (`… - Local (address:port)`).
 */
function connectError(errno: number, attempts: Attempts, address: string, port: number): Error {
  const localAddress = localAddressFor(attempts, isIP(address) === 6);
  const { localPort } = attempts;
  if (!localAddress || !localPort) return systemError(errno, 'connect', address, port);
  return Object.assign(systemError(errno, 'connect', address, port, `${localAddress}:${localPort}`), { localAddress, localPort });
}

/** The most libuv reads at a time, so the longest 'data' chunk node:net emits. */
const NODE_READ_SIZE = 64 * 1024;

/** What follows the piece of `chunk` at `at` (a view; none past the last piece). */
function restAfter(chunk: Buffer, at: number): Buffer | undefined {
  return at + NODE_READ_SIZE < chunk.length ? chunk.subarray(at + NODE_READ_SIZE) : undefined;
}

/**
 * The most buffers libuv writes in one writev(2) (Linux's IOV_MAX): node:net's
 * writev of more (writes buffered while one was in flight) finishes in a later
 * loop turn even when the kernel takes every byte at once.
 */
const LIBUV_IOV_MAX = 1024;
/** node:net of Node 21.0 through 24.22 (seen on each major and 22's minors), not 20.20's: see `_final`. */
const END_FINISHES_UNCONNECTED = nodeFrom([21, 0]);
/**
 * Both directions shut (this end's FIN out and the peer's in, a Unix-domain peer closed, or the
 * peer's reset), the kernel says hang-up (POLLHUP), and libuv before 1.52 takes the EOF in the
 * read callback of the bytes before it; libuv#4997 (1.52, Node 24) reads on as for any other
 * input, so the EOF comes a loop turn later, or never, a reset read first. So bytes, the peer's
 * FIN and then its reset in one batch, a write queued: node:net of Node 20.20 through 23.11 emits
 * 'end' before the write's error, 24.22's does not (see `onClose`).
 */
const HANG_UP_ENDS_WITH_BYTES = !uvFrom(52);
/**
 * Node 22.9 (nodejs/node#54032) calls a write that closing the handle
 * cancelled back with `write ECANCELED`; before, with no error.
 */
const CANCELLED_WRITE_FAILS = nodeFrom([22, 9]);
/**
 * Node 20.20's node:net, its buffer full (libuv reading no more), meets the
 * peer's reset only once resumed, after the bytes the kernel still held:
 * they are read, then 'error'. Node 22.23's and 24's drop them (seen on those three).
 */
const RESET_AFTER_HELD_BYTES = !nodeFrom([22, 0]);
/**
 * Node 20's Writable passes a string written as `'buffer'` on to node:net's
 * handle, which throws `Second argument must be a buffer`; Node 24's refuses
 * the encoding itself (ERR_UNKNOWN_ENCODING), as muxnet's Duplex then does.
 * @internal
 */
export const STRING_AS_BUFFER_REACHES_HANDLE = (() => {
  try {
    new Writable({ decodeStrings: false, write: (_chunk, _encoding, cb) => cb() }).write('x', 'buffer' as BufferEncoding);
    return true;
  } catch {
    return false;
  }
})();

/**
 * Node 24.19 takes `setKeepAlive({ enable, initialDelay, interval, count })`,
 * and an interval and a count after the delay (libuv's uv_tcp_keepalive_ex).
 * Before, libuv probed every second, ten times. (Other release lines unverified.)
 */
const KEEPALIVE_PROBES_SET = nodeFrom([24, 19]);

/** `setKeepAlive()`'s options object (Node 24.19+). */
export interface SetKeepAliveOptions {
  enable?: boolean | undefined;
  /** Milliseconds idle before the first probe (whole seconds count; under one, the system's). */
  initialDelay?: number | undefined;
  /** Milliseconds between probes (whole seconds; default one). */
  interval?: number | undefined;
  /** Probes unanswered before the connection is dropped (default ten). */
  count?: number | undefined;
}

/** What node:net hands its handle: whole seconds (`~~`), or libuv's 1 s and 10 probes where none are given. */
interface KeepAliveProbe {
  enable: boolean;
  delay: number;
  interval: number;
  count: number;
}

const uint32Or = (value: unknown, fallback: number): number => (typeof value === 'number' && value >>> 0 === value ? value : fallback);

function keepAliveProbe(enable: unknown, initialDelay: number | undefined, interval: number | undefined, count: unknown): KeepAliveProbe {
  return {
    enable: Boolean(enable),
    delay: ~~((initialDelay as number) / 1000),
    // An interval or count that is no uint32 (a string count, -1) is libuv's default, as node:net's binding reads them.
    interval: interval === undefined ? 1 : uint32Or(~~(interval / 1000), 1),
    count: uint32Or(count, 10),
  };
}

export class Socket extends adoptable(Duplex) implements Handle, HandsOver, Movable {
  /** @internal */ [kReactor]: Reactor | undefined;
  /** @internal The reactor's token, -1 when the socket has no connection (never a stale one). */
  [kToken] = -1;
  /**
   * Its events' async context: made where node:net makes its libuv handle,
   * in `connect()` (before any lookup: a lookup's callback may run in
   * another request's) or with an fd. None for an accepted connection: its
   * events run in the reactor's, the context of no request, as node's.
   */
  private [kScope]: AsyncResource | undefined;
  private readonly [kKeepAlive] = new KeepAlive();
  private [kConnectingFlag] = false;
  /** A Unix-domain connection (node:net's Pipe handle): connect() again and resetAndDestroy() differ. */
  private [kUnixDomain] = false;
  /**
   * `connect()` calls so far: a lookup, a deferred dial or a retry made for
   * an earlier one (the socket was destroyed and connected again meanwhile)
   * sees the count has moved on and connects nothing.
   */
  private [kConnects] = 0;
  /** connect() was called or the server accepted it: node:net's socket has a handle until destroyed. */
  private [kOpened] = false;
  /** The reactor closed the connection in order (both directions done). */
  private [kHandleClosed] = false;
  /** While 'connectionAttemptFailed' is heard for a connect's one address: node:net's handle is still there. */
  private [kFailedHandle] = false;
  /**
   * The reactor closed the connection with an error this socket reports
   * later (see `onClose`): node:net's handle is still there until then
   * (a write fails with EPIPE, `resetAndDestroy()` closes quietly).
   */
  private [kErrorDeferred] = false;
  /** The peer's FIN came. */
  private [kPeerFin] = false;
  /** The reactor's batch that last brought bytes (see `onEnd`). */
  private [kDataBatch] = -1;
  /** The FIN came with bytes in one batch: `onEnd` waits for the next turn's read. */
  private [kEndDeferred] = false;
  /** The peer ended a socket that is not half-open: writes fail with EPIPE. */
  private [kEndedByPeer] = false;
  private [kAttempts]: Attempts | undefined;
  private [kRemote]: { address: string; family: string; port: number } | null = null;
  /** `[kRemote]` was read from the connection: it stays readable (see `[kPeerName]`). */
  private [kPeerKept] = false;
  /**
   * `[kRemote]` was read just before this end's FIN went out: node:net's handle
   * shuts down later, in a loop turn after end(), and answers until then.
   */
  private [kPeerBeforeFin] = false;
  private [kLocal]: { address: string; family: string; port: number } | null = null;
  private [kPendingWrite]: ((err?: Error | null) => void) | undefined;
  /** A write waiting for the connection (bytesWritten counts it). */
  private [kPendingData]: Buffer | undefined;
  /** We stopped reading: the readable buffer is full, or the socket is paused. */
  private [kNativePaused] = false;
  private [kTimer]: NodeJS.Timeout | undefined;
  /**
   * node:net's `kLastWriteQueueSize`: the bytes of a write left going out,
   * then what its queue held when the idle timer last looked; 0 once done.
   * Kept across setTimeout() calls, as there, and (as there) past a write
   * cancelled by a close: a reconnected socket's first timeout comes a
   * period late, never not at all.
   */
  private [kLastQueued] = 0;
  /** The bytes of a write in progress not yet handed to the reactor (see `[kWritePiece]`). */
  private [kUnhanded] = 0;
  private readonly [kBackendName]: BackendName | undefined;
  /** The server that counts it among its connections, until it closes (a field, not a closure per socket). */
  private [kCountedBy]: Server | undefined;
  private [kResetOnClose] = false;
  /** Given to another process (see `handOver`): nothing more to give. */
  private [kHandedOver] = false;
  /**
   * Its socket may be held elsewhere too (opened from an fd, given to another
   * process, kept or not, or as a child's stdio): a close ends this copy
   * alone, as node:net's. So no reset over unread bytes (see `_destroy`):
   * SO_LINGER is the socket's, and the other holder's close would reset.
   */
  private [kShared] = false;
  private [kNoDelay]: boolean;
  /** What `setKeepAlive()` asked for; none yet: off (no object per socket until then). */
  private [kKeepAliveProbe]: KeepAliveProbe | undefined;
  /** The type of service asked for (see `setTypeOfService`); set again once connected. */
  private [kTos]: number | undefined;
  /** Made on an adopted `net.BoundSocket` (see `FromBound`): undefined for any other socket. */
  private [kFromBound]: FromBound | undefined;
  /** Made on a connected socket's given fd, whose number stays open until this closes (see ../fds). */
  private [kGiven]: { release(): void } | undefined;
  /** The server that accepted it (node:net also names it `_server`). */
  server: Server | undefined;
  _server: Server | undefined;
  /** The idle timeout `setTimeout()` set, in ms. */
  timeout: number | undefined;
  /** Behind `autoSelectFamilyAttemptedAddresses`. */
  private [kAttempted]: string[] | undefined;
  bytesRead = 0;
  private [kDispatched] = 0;
  private readonly [kOnread]: OnReadOptions | undefined;
  private readonly [kBlockList]: BlockList | undefined;
  /** onread: bytes that arrived while paused, and an EOF behind them. */
  private [kUnread]: Buffer | undefined;
  /** The reactor's read behind the 64 KiB piece being handed out (see `[kOnData]`), until the ticks after it have run (`[kReadOn]`). */
  private [kReadRest]: Buffer | undefined;
  private [kEofPending] = false;
  /** onread: a deliver() queued for the next tick (by resume(), or a callback that threw). */
  private [kDeliverQueued] = false;
  /**
   * node:net starts reading from a 'connect' listener of its own, added
   * when the stream first asks for data while connecting (behind the
   * user's listeners added before), or after 'ready'. `[kReadArmed]`: that
   * listener is waiting; `[kReadBegun]`: it ran. A listener that throws before
   * either leaves node:net's socket never reading until asked again: what
   * the reactor read meanwhile waits in `[kStalled]` (an EOF in `[kStalledEof]`:
   * whether it came in a hang-up, see `[kOnEnd]`; undefined if none);
   * so does the rest of a reactor read past a full buffer (see onData).
   */
  private [kReadArmed] = false;
  private [kReadBegun] = false;
  private [kStalled]: Buffer[] | undefined;
  private [kStalledEof]: boolean | undefined;
  /** A reset that waits behind them (Node 20, see `RESET_AFTER_HELD_BYTES`). */
  private [kStalledError]: NodeJS.ErrnoException | undefined;
  /** The reactor reads the connection 64 KiB a turn (see `[kSyncLeanReads]`). */
  private [kLeanReads] = false;
  /** `release` queued for the next tick. */
  private [kReleaseQueued] = false;
  /**
   * Node's `JSStreamSocket` reading this socket (TLS or http2 over it): its
   * `'data'` listener, called with what the socket reads, and whether it
   * holds the reads back (see `on()`).
   */
  private [kStreamWrap]: StreamWrap | undefined;
  /**
   * The stream's flowing state before the last pause() (the wrapper's first
   * act: undone, see `on()`); two fields, not an object made at every pause().
   */
  private [kFlowingBeforePause]: boolean | null | undefined;
  private [kPausedBeforePause] = false;

  constructor(options: SocketOptions | number = {}) {
    // The legacy form, as node:net takes it.
    options = typeof options === 'number' ? { fd: options } : { ...options };
    if (options.objectMode) throw invalidArgValue('options.objectMode', options.objectMode, 'is not supported');
    if (options.readableObjectMode || options.writableObjectMode) {
      const name = options.readableObjectMode ? 'readableObjectMode' : 'writableObjectMode';
      throw invalidArgValue(`options.${name}`, options[name], 'is not supported');
    }
    // As node:net: a falsy signal is none.
    const signal = options.signal ? validateAbortSignal(options.signal, 'options.signal') : undefined;
    const blockList = validateBlockList(options.blockList, 'options.blockList');
    // As node:net (a connect's options are the socket's too): checked here, not at the first keep-alive probe.
    if (options.keepAliveInitialDelay !== undefined) validateType(options.keepAliveInitialDelay, 'options.keepAliveInitialDelay', 'number');
    super({ ...options, signal: undefined, allowHalfOpen: Boolean(options.allowHalfOpen), emitClose: false, autoDestroy: true, decodeStrings: false });
    // As node:net: an aborted signal destroys the socket with an AbortError.
    if (signal) onAbort(this, signal, () => this.destroy(abortError(signal.reason)));
    this[kBackendName] = options.backend;
    this[kBlockList] = blockList;
    this[kNoDelay] = Boolean(options.noDelay);
    // As node:net: noDelay and keepAlive are the constructor's (net.connect passes its options here), set once connected.
    if (options.keepAlive) this[kKeepAliveProbe] = keepAliveProbe(true, options.keepAliveInitialDelay, undefined, undefined);
    // Node 24.22's option: set once connected, as setTypeOfService() before a connection.
    if (options.typeOfService !== undefined) this[kTos] = validateTypeOfService(options.typeOfService);
    // As node:net, an onread that does not fit is ignored.
    const { onread } = options;
    if (onread !== null && typeof onread === 'object' && (onread.buffer instanceof Uint8Array || typeof onread.buffer === 'function') && typeof onread.callback === 'function') {
      this[kOnread] = onread;
    }
    // One function for every socket: no closure per connection.
    this.on('end', peerEnded);
    if (isBoundSocket(options.handle)) {
      const adopted = adopt(options.handle);
      this[kFromBound] = { adopted, path: adopted.path };
    } else if (options.fd !== undefined) this[kOpenFd](options.fd);
  }

  /**
   * `new Socket({ fd })`: a connected stream socket someone else made (a
   * parent process's, systemd's), served from now on and read at once, as
   * node:net does. Another kind of fd throws `ERR_INVALID_FD_TYPE`, as
   * node:net's; a pipe or FIFO (node:net takes those too) `ERR_MUXNET_UNSUPPORTED`.
   */
  private [kOpenFd](fd: unknown): void {
    const n = validateInteger(fd, 'fd', 0, 0, 2 ** 31 - 1);
    // As node:net, its options are left as its maker set them (noDelay and keepAlive apply on connecting).
    const { reactor, token } = takeFdOrThrow(this[kBackendName], n, INHERIT_STREAM);
    this[kShared] = true;
    if (token === NOT_CONNECTED) {
      // Bound (or not) and not connected: connect() goes out from it, as from an adopted BoundSocket.
      this[kFromBound] = { adopted: unconnectedFd(n, reactor), path: undefined };
      return;
    }
    this[kOpened] = true;
    this[kGiven] = givenFd(n, reactor);
    this[kScope] = new AsyncResource('MUXNET_SOCKET');
    this[kBind](reactor, token);
    this[kFetchAddresses]();
    this[kUnixDomain] = this[kLocal] === null;
    if (this[kReadsNothing]()) this[kStopReading]();
  }

  /** @internal Wraps a connection the server accepted. */
  static accepted(init: AcceptedInit): Socket {
    const s = new Socket({ allowHalfOpen: init.allowHalfOpen, readableHighWaterMark: init.highWaterMark, writableHighWaterMark: init.highWaterMark, noDelay: init.noDelay });
    s[kOpened] = true;
    s.server = s._server = init.server;
    s[kScope] = init.scope;
    s[kBind](init.reactor, init.token);
    s[kCountedBy] = init.server;
    s[kFetchAddresses]();
    s[kUnixDomain] = s[kLocal] === null;
    if (init.paused) {
      s.pause();
      s[kStopReading]();
    }
    return s;
  }

  private [kBind](reactor: Reactor, token: number): void {
    this[kReactor] = reactor;
    this[kToken] = token;
    reactor.attach(token, this, this[kScope]);
    // A new connection reads the full turn: one paused before it (or reading into onread) is
    // made lean now; one not flowing yet, if nothing starts it flowing before its first read —
    // the listener this event goes to ('connection'), or this tick — as node:net's reads stop
    // at its high-water mark for a socket nobody reads (handed to a child unread, a full turn
    // taken from the kernel was lost with it, 3 times node:net's).
    this[kLeanReads] = false;
    if (this[kOnread] || this.readableFlowing === false) this[kSyncLeanReads]();
    else if (this.readableFlowing === null && !reactor.atEventEnd(Socket.leanUnlessFlowing, this, 0, 0)) nextTick(Socket.leanUnlessFlowing, this);
    this[kKeepAlive].bind(reactor);
    this[kSyncActive]();
  }

  /** This end's address, once connected (the peer's is read when asked, see `[kPeerName]`). */
  private [kFetchAddresses](): void {
    this[kLocal] = this[kReactor]!.native.localAddress(this[kToken]);
  }

  /**
   * As libuv: a connection neither reading nor writing does not hold the
   * process; one connecting or writing does, even unref'd. After the peer's
   * FIN nothing more can be read: libuv stops reading at the EOF.
   */
  private [kSyncActive](): void {
    const writing = this[kPendingWrite] !== undefined;
    this[kKeepAlive].setActivity((!this[kNativePaused] && !this[kPeerFin]) || writing, this[kConnectingFlag] || writing);
  }

  private [kStopReading](): void {
    if (this[kNativePaused]) return;
    this[kNativePaused] = true;
    if (this[kToken] >= 0) this[kReactor]!.native.pause(this[kToken]);
    this[kSyncActive]();
  }

  private [kStartReading](): void {
    if (!this[kNativePaused]) return;
    this[kNativePaused] = false;
    if (this[kToken] >= 0) this[kReactor]!.native.resume(this[kToken]);
    this[kSyncActive]();
  }

  /** onread: hands what arrived to the callback, a buffer at a time, until paused; then the EOF. */
  private [kDeliver](): void {
    const { callback } = this[kOnread]!;
    // A callback that destroys the socket hears nothing more (node:net stops reading).
    while (this[kUnread] !== undefined && !this[kNativePaused] && !this.destroyed) {
      const buf = this[kReadBuffer]();
      if (buf === undefined) return;
      const n = Math.min(buf.length, this[kUnread].length);
      buf.set(this[kUnread].subarray(0, n));
      this[kUnread] = n < this[kUnread].length ? this[kUnread].subarray(n) : undefined;
      this.bytesRead += n;
      let keep: unknown;
      try {
        keep = callback.call(this, n, buf);
        // The callback's ticks run before the next read's, as libuv's reads are callbacks of their own.
        if (this[kUnread] !== undefined && keep !== false && this[kReactor]!.readOnAfterTicks(this)) return;
      } catch (err) {
        // The rest comes as libuv's next read would, not with the peer's next bytes: after the
        // ticks (the throw reported first), or on a tick outside an event.
        if (this[kUnread] !== undefined) {
          this[kUnread] = heldCopy(this[kUnread]);
          if (this[kReactor]!.readOnAfterTicks(this)) throw err;
        }
        this[kQueueDeliver]();
        throw err;
      }
      if (keep === false) this[kStopReading]();
    }
    if (this[kUnread] === undefined && this[kEofPending] && !this[kNativePaused] && !this.destroyed) {
      this[kEofPending] = false;
      // libuv asks for a buffer for the read that finds the EOF too.
      if (this[kReadBuffer]() === undefined) return;
      this.push(null);
      this.read(0);
    }
  }

  /** onread: the buffer for the next read; none (the socket destroyed) if it holds no byte, which libuv cannot read into. */
  private [kReadBuffer](): Uint8Array | undefined {
    const { buffer } = this[kOnread]!;
    const buf = typeof buffer === 'function' ? buffer() : buffer;
    if (buf.length > 0) return buf;
    this.destroy(systemError(uvErrno('ENOBUFS'), 'read'));
    return undefined;
  }

  /**
   * TLS or http2 over this socket (`tls.connect({ socket })`,
   * `new tls.TLSSocket(socket)`) goes through Node's `JSStreamSocket`, as
   * over any stream without a libuv handle; node:net's TLS takes a
   * connected socket's handle instead, and the socket's own stream hears
   * none of its bytes again. So here: the wrapper's `'data'` listener is
   * not a listener but the socket's reader — it alone gets what the socket
   * reads, from the socket itself (see `[kReadToWrap]`), held back by the
   * wrapper's own pause only, and what is done to the socket's stream
   * (listeners removed, an encoding, a pause, a pipe left from before)
   * touches none of it. What a STARTTLS server emits as `'data'` by hand (the
   * plaintext, as ftp-srv re-emits it) reaches the socket's listeners alone.
   * Before (the socket's stream carried the records): ftp-srv's command
   * parser, still listening, took the client's hello for a command, a
   * parser left piped starved the handshake with its pause()
   * (proxy-chain), and an encoding given before the upgrade made strings
   * of the records (`ERR_STREAM_WRAP`: basic-ftp's FTPS).
   */
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    if (event !== 'data' || !calls(listener, '_handle.readBuffer(')) return super.on(event, listener);
    // What waits in the stream is the wrapper's (a hello peeked and unshift()ed before a TLS server
    // was handed the socket, read before the upgrade): first in line, as bytes.
    const waiting = this[kTakeBuffered]();
    if (waiting.length > 0) this[kStalled] = this[kStalled] === undefined ? waiting : waiting.concat(this[kStalled]);
    // Its 'error' listener, added just before: what the connection meets goes to it alone, as
    // node:net's TLS reads and writes the handle, and the socket's own listeners (a driver's, from
    // before the upgrade: pg's Client said 'error' twice for one reset) hear none (see `_destroy`).
    const relayError = [...this.rawListeners('error')].reverse().find((l) => calls(l, "this.emit('error', err)")) as ((err: Error) => void) | undefined;
    if (relayError !== undefined) super.removeListener('error', relayError);
    // The wrapper paused the stream before it listened: that pause is its reads' (its readStart()
    // asks for the first bytes), the stream is as it was.
    this[kStreamWrap] = { read: listener, paused: true, relayError, connectionError: undefined };
    lendTcpMethods(isSocket);
    if (this[kFlowingBeforePause] !== undefined) {
      const state = readableState(this);
      state.flowing = this[kFlowingBeforePause];
      state.paused = this[kPausedBeforePause];
    }
    this[kSyncLeanReads]();
    return this;
  }

  override addListener(event: string | symbol, listener: (...args: any[]) => void): this {
    return this.on(event, listener);
  }

  /**
   * Under TLS (see `on()`) the connection's end and the socket's own are
   * the wrapper's: node:net's TLS reads the FIN and shuts the handle down
   * itself, and the socket's stream says neither `'end'` nor `'finish'`
   * (mysql2's Connection, listening from before, said `'end'` again). The
   * end goes to the wrapper's listener and to the socket's own (half-open
   * for it, see `peerEnded`) only.
   */
  override emit(event: string | symbol, ...args: any[]): boolean {
    if ((event !== 'end' && event !== 'finish') || this[kStreamWrap] === undefined) return super.emit(event, ...args);
    if (event === 'finish') return false;
    const ours = this.rawListeners('end').filter((l) => {
      const listener = (l as { listener?: unknown }).listener ?? l;
      return listener === peerEnded || isWrapperEnd(listener);
    });
    for (const listener of ours) listener.call(this);
    return ours.length > 0;
  }

  /** Empties the stream's buffer: its chunks, as bytes (text decoded and not yet read goes back). */
  private [kTakeBuffered](): Buffer[] {
    const state = readableState(this);
    const encoding = state.encoding ?? 'utf8';
    const { buffer } = state;
    const chunks = Array.isArray(buffer) ? buffer.slice(state.bufferIndex ?? 0) : [...buffer];
    if (Array.isArray(buffer)) buffer.length = 0;
    else buffer.clear?.();
    if (state.bufferIndex !== undefined) state.bufferIndex = 0;
    state.length = 0;
    return chunks.map((chunk) => (typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk));
  }

  /**
   * With onread, pausing stops reading from the kernel, as in node:net.
   * Under TLS (see `on()`) the wrapper's own pause holds its reads back;
   * anyone else's pauses the socket's stream only, as node:net's TLS reads
   * the handle whoever pauses the socket.
   */
  override pause(): this {
    const wrap = this[kStreamWrap];
    if (wrap !== undefined && calledByWrapper('readStop')) {
      wrap.paused = true;
      this[kStopReading]();
      return this;
    }
    if (this[kOnread] && wrap === undefined && !this[kConnectingFlag]) this[kStopReading]();
    // (The wrapper's first act. Looked for only on a socket with an `on` of its own: rare.)
    if (wrap === undefined && Object.hasOwn(this, 'on') && calledByWrapper('new')) dropHttpListenerWraps(this);
    const state = readableState(this);
    this[kFlowingBeforePause] = state.flowing;
    this[kPausedBeforePause] = state.paused;
    const self = super.pause();
    this[kSyncLeanReads]();
    return self;
  }

  /**
   * A socket not flowing (paused, piped into a full writer, read with
   * `read()`, not read yet) or reading into an onread buffer takes input a
   * read at a time and may stop after any: the reactor reads it one 64 KiB
   * read a turn (libuv's read size; libuv reads on, 32 at most, while the
   * stream takes them), so a stop holds at most one read past it, not the
   * rest of a turn's 256 KiB (held in `[kStalled]` or `[kUnread]`). A flowing
   * socket, which takes all, reads the full turn (half the CPU per byte).
   * Nothing to read after the peer's FIN: no call then (pipe's unpipe
   * pauses every piped socket that ends).
   */
  private [kSyncLeanReads](): void {
    // (Under TLS the wrapper takes all it is given, whatever the stream's state.)
    const lean = this[kStreamWrap] === undefined && (this[kOnread] !== undefined || this.readableFlowing !== true);
    if (lean === this[kLeanReads] || this[kToken] < 0 || this[kPeerFin]) return;
    this[kLeanReads] = lean;
    this[kReactor]!.native.setLeanReads(this[kToken], lean);
  }

  /** `[kSyncLeanReads]` for a socket made, once its first listeners have had their say (see `[kBind]`). */
  private static leanUnlessFlowing(socket: Socket): void {
    socket[kSyncLeanReads]();
  }

  override resume(): this {
    const wrap = this[kStreamWrap];
    if (wrap !== undefined && calledByWrapper('readStart')) {
      wrap.paused = false;
      this._read();
      return this;
    }
    // Readable's resume first: a pause() from an onread callback below must not be undone by it
    // (its resume_ tick would call _read() and restart the kernel reads with `[kUnread]` still held).
    const self = super.resume();
    this[kSyncLeanReads]();
    if (this[kOnread] && wrap === undefined && !this[kConnectingFlag] && this[kNativePaused]) {
      this._read();
      // As in node:net, the bytes already read reach the callback later, not inside resume().
      this[kQueueDeliver]();
    }
    return self;
  }

  /** onread: hands what is held to the callback on the next tick. */
  private [kQueueDeliver](): void {
    if ((this[kUnread] === undefined && !this[kEofPending]) || this[kDeliverQueued]) return;
    this[kDeliverQueued] = true;
    nextTick(() => {
      this[kDeliverQueued] = false;
      if (!this.destroyed) this[kDeliver]();
    });
  }

  get connecting(): boolean {
    return this[kConnectingFlag];
  }

  // Assignable, as node:net's plain field (a test's mock of net.connect sets it; in strict mode a
  // getter alone threw): and, as there, it is the state a write reads.
  set connecting(value: boolean) {
    this[kConnectingFlag] = value;
  }

  /** node:net's legacy name for `connecting`. */
  get _connecting(): boolean {
    return this[kConnectingFlag];
  }

  get pending(): boolean {
    return !this[kHasHandle] || this[kConnectingFlag];
  }

  /**
   * node:net's socket would hold its handle: connected, or closed in order
   * by the reactor (both ways done) and not destroyed yet, which node:net's
   * handle outlives.
   */
  private get [kHasHandle](): boolean {
    return this[kToken] >= 0 || this[kFailedHandle] || this[kErrorDeferred] || (this[kHandleClosed] && !this.destroyed);
  }

  get readyState(): SocketReadyState {
    if (this[kConnectingFlag]) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable && !this.writable) return 'readOnly';
    if (!this.readable && this.writable) return 'writeOnly';
    return 'closed';
  }

  /** Every byte `write()` accepted: sent, queued, corked or waiting for the connection. */
  get bytesWritten(): number {
    const queued = (this as unknown as { writableBuffer?: { chunk: Buffer | string; encoding: BufferEncoding }[] }).writableBuffer;
    // Read off the prototype (no stream state), it is undefined, as node:net's: typed for instances.
    if (!queued) return undefined as unknown as number;
    let bytes = this[kDispatched] + (this[kPendingData]?.length ?? 0);
    for (const { chunk, encoding } of queued) bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length;
    return bytes;
  }

  // These two are undefined at times, as node:net's are, yet typed as @types/node types
  // them (never undefined): so a muxnet Socket is a net.Socket to TypeScript.

  /** `ip:port` of each address tried when connecting with autoSelectFamily to several; else undefined. */
  get autoSelectFamilyAttemptedAddresses(): string[] {
    return this[kAttempted] as string[];
  }

  set autoSelectFamilyAttemptedAddresses(value: string[]) {
    this[kAttempted] = value;
  }

  /** Bytes waiting to be written (`writableLength`) once the socket has a connection; undefined before. */
  get bufferSize(): number {
    return (this[kHasHandle] || this[kConnectingFlag] ? this.writableLength : undefined) as number;
  }

  /**
   * The peer's address as node:net gives it: read from the connection when
   * first asked and kept; asked while connecting, or first asked once the
   * connection is gone (destroyed, or closed both ways once 'finish' came), there is none.
   */
  private [kPeerName](): { address: string; family: string; port: number } | null {
    if (!this[kPeerKept] && this[kToken] >= 0 && !this[kConnectingFlag] && !this.destroyed) {
      // The kernel's answer: none once both ways are closed, though the reactor has not said so yet.
      const peer = this[kPeerBeforeFin] ? this[kRemote] : this[kReactor]!.native.remoteAddress(this[kToken]);
      if (peer) [this[kRemote], this[kPeerKept]] = [peer, true];
    }
    return this[kPeerKept] ? this[kRemote] : null;
  }

  /**
   * This end's address, as node:net's: none once the socket is destroyed
   * (its handle gone); a client bound to a Unix-domain path names it.
   */
  private [kSockName](): { address: string; family?: string; port?: number } | null {
    if (this[kFromBound]?.path !== undefined) return { address: this[kFromBound].path };
    if (this.destroyed) return null;
    // As node:net's getsockname(): while connecting, the kernel has bound this end already
    // (asked, not kept: the next attempt of several is another socket).
    if (this[kLocal] === null && this[kConnectingFlag] && this[kToken] >= 0) return this[kReactor]!.native.localAddress(this[kToken]);
    return this[kLocal];
  }

  get remoteAddress(): string | undefined {
    return this[kPeerName]()?.address;
  }

  get remotePort(): number | undefined {
    return this[kPeerName]()?.port;
  }

  get remoteFamily(): string | undefined {
    return this[kPeerName]()?.family;
  }

  get localAddress(): string | undefined {
    return this[kSockName]()?.address;
  }

  get localPort(): number | undefined {
    return this[kSockName]()?.port;
  }

  get localFamily(): string | undefined {
    return this[kSockName]()?.family;
  }

  /** `{ address, family, port }`; `{ address }` for a client bound to a Unix-domain path; `{}` with no address. */
  address(): { address: string; family: string; port: number } | { address: string } | Record<string, never> {
    const local = this[kSockName]();
    return local ? { ...local } : {};
  }

  connect(options: SocketConnectOpts, listener?: () => void): this;
  connect(port: number | string, host?: string, listener?: () => void): this;
  connect(port: number | string, listener?: () => void): this;
  connect(...args: unknown[]): this {
    if (EVERY_CONNECT_PUBLISHES && clientSocket.hasSubscribers) clientSocket.publish({ socket: this });
    const [opts, listener] = normalizeConnectArgs(args);
    if (opts.port === undefined && opts.path == null) throw missingArgs('options', 'port', 'path');
    if (this[kToken] >= 0 || this[kConnectingFlag]) return this[kConnectAgain](opts, listener);
    this[kScope] = new AsyncResource('MUXNET_SOCKET');
    const adopted = this[kFromBound]?.adopted;
    // Only a truthy path is IPC: http.Agent passes `path: null` with a port. An adopted
    // BoundSocket's own kind decides, as in node:net: a Unix-domain one needs a path, a TCP one reads none.
    if (adopted ? adopted.path !== undefined : opts.path) {
      if (typeof opts.path !== 'string') throw invalidArgType('options.path', 'of type string', opts.path);
      return this[kConnectPath](opts.path, opts, listener);
    }
    if (this[kFromBound] && (opts.localAddress !== undefined || opts.localPort !== undefined)) {
      throw invalidArgValue('options', opts, 'localAddress and localPort cannot be used with an adopted bound socket');
    }
    if (opts.localAddress && !isIP(opts.localAddress)) throw invalidIpAddress(opts.localAddress);
    // As node:net, an address given as an object (a String, an array) is read as its text.
    const localAddress = opts.localAddress ? String(opts.localAddress) : opts.localAddress;
    if (opts.localPort && typeof opts.localPort !== 'number') throw invalidArgType('options.localPort', 'of type number', opts.localPort);
    // Not wrapped into a port the kernel would take (2 ** 32 + 5 bound port 5): node:net's bind fails.
    const localPort = opts.localPort ? validatePort(opts.localPort, 'options.localPort') : opts.localPort;
    if (opts.port !== undefined && typeof opts.port !== 'number' && typeof opts.port !== 'string') {
      throw invalidArgType('options.port', 'one of type number or string', opts.port);
    }
    const port = opts.port === undefined ? 0 : validatePort(opts.port, 'Port');
    // An adopted BoundSocket has its address family already: one address is dialled.
    const autoSelectFamily = opts.autoSelectFamily == null ? nodeNet.getDefaultAutoSelectFamily() && !this[kFromBound] : validateBoolean(opts.autoSelectFamily, 'options.autoSelectFamily', false) && !this[kFromBound];
    const timeoutMs = Math.max(10, opts.autoSelectFamilyAttemptTimeout == null ? nodeNet.getDefaultAutoSelectFamilyAttemptTimeout() : validateInteger(opts.autoSelectFamilyAttemptTimeout, 'options.autoSelectFamilyAttemptTimeout', 1, 1, 2 ** 31 - 1));
    // As Node 24 (Node 20 passes it on and aborts in its binding); an empty host means localhost.
    if (opts.host && typeof opts.host !== 'string') throw invalidArgType('options.host', 'of type string', opts.host);

    if (this.destroyed) this[kReset]();
    if (listener) this.once('connect', listener);
    if (opts.typeOfService !== undefined) this[kTos] = validateTypeOfService(opts.typeOfService);
    this[kConnectingFlag] = true;
    this[kOpened] = true;
    // A socket that was a Unix-domain one (closed in order, not destroyed) is a TCP one now.
    this[kUnixDomain] = false;
    const connect = ++this[kConnects];
    const target = { connect, reactor: openReactor(opts.backend ?? this[kBackendName]), port, localAddress, localPort: localPort || undefined, timeoutMs, errors: [] };
    const host = opts.host || 'localhost';
    if (isIP(host)) {
      // From a BoundSocket, node:net connects within the call: its address is known when it returns.
      const addresses = [{ address: host, family: isIP(host) }];
      if (this[kFromBound]) this[kDial]({ ...target, addresses, multiple: false });
      else nextTick(() => this[kDial]({ ...target, addresses, multiple: false }));
      return this;
    }
    // As node:net: checked only once a lookup is needed (an IP host never reads it).
    if (opts.lookup != null && typeof opts.lookup !== 'function') throw invalidArgType('options.lookup', 'of type function', opts.lookup);
    // -0 as 0: dns.lookup lets -0 through (it equals 0) to a binding that asserts an int32 and aborts the process.
    const family = opts.family === 'IPv6' ? 6 : opts.family === 'IPv4' ? 4 : opts.family === 0 ? 0 : opts.family;
    const dnsOpts: Parameters<Lookup>[1] = { family, hints: opts.hints || 0 };
    if (family !== 4 && family !== 6 && dnsOpts.hints === 0) dnsOpts.hints = ADDRCONFIG;
    const lookup = (opts.lookup as unknown as Lookup | undefined) ?? (dnsLookup as unknown as Lookup);
    const fail = (err: Error) => nextTick(() => this.destroy(err));
    // A lookup that answers again while connecting: node:net's handle refuses the second connect.
    let answered = false;
    const answeredAgain = (address: string, type: number) => {
      this.emit('connectionAttempt', address, port, type);
      fail(systemError(uvErrno('EALREADY'), 'connect', address, port, this[kBusyEnd]()));
    };
    if (family !== 4 && family !== 6 && !localAddress && autoSelectFamily) {
      dnsOpts.all = true;
      lookup(host, dnsOpts, (err, found) => {
        if (!this[kConnectingFlag] || connect !== this[kConnects]) return;
        if (err) {
          this.emit('lookup', err, undefined, undefined, host);
          return fail(err);
        }
        // Not a list (a lookup that ignores `all`): node:net reads it as one, entries with no address.
        const all = Array.isArray(found) ? found : [{ address: undefined as unknown as string, family: 0 }];
        for (const { address, family: type } of all) {
          this.emit('lookup', err, address, type, host);
          if (!this[kConnectingFlag]) return;
        }
        const addresses = happyEyeballsOrder(all);
        if (addresses.length === 0) {
          const [{ address, family: type } = { address: undefined, family: undefined }] = all;
          return fail(address !== undefined && isIP(address) ? invalidAddressFamily(type, opts.host, opts.port) : invalidIpAddress(address));
        }
        const again = answered;
        answered = true;
        // node:net's connect on a handle still connecting fails: with one address, the socket
        // with it; with several, its connect-multiple goes on past it (after a first answer of
        // one address, node:net fails an internal assertion later: the socket fails here).
        if (again && (addresses.length === 1 || !this[kAttempts]?.multiple || this[kToken] < 0)) return answeredAgain(addresses[0].address, addresses[0].family);
        if (addresses.length > 1) this[kAttempted] = [];
        // Errors of its own: the first answer's dial keeps its list (it may yet fail with it).
        if (again) this[kDialAgain]({ ...target, addresses, multiple: true, errors: [] });
        else this[kDial]({ ...target, addresses, multiple: addresses.length > 1 });
      });
    } else {
      lookup(host, dnsOpts, (err, address, type) => {
        if (connect !== this[kConnects]) return;
        this.emit('lookup', err, address, type, host);
        if (!this[kConnectingFlag]) return;
        if (err) return fail(err);
        if (typeof address !== 'string' || !isIP(address)) return fail(invalidIpAddress(address));
        if (type !== 4 && type !== 6) return fail(invalidAddressFamily(type, opts.host, opts.port));
        if (answered) return answeredAgain(address, type);
        answered = true;
        this[kDial]({ ...target, addresses: [{ address, family: type }], multiple: false });
      });
    }
    return this;
  }

  /**
   * connect() on a socket connecting or connected, as node:net's handle
   * takes it: one still connecting fails (`EALREADY`, destroyed), one
   * connected stays on its connection and says 'connect' and 'ready' again.
   * A Unix-domain one, connecting or connected, fails (`EISCONN`, destroyed):
   * its connect(2) went through in the first call.
   */
  private [kConnectAgain](opts: SocketConnectOpts, listener: (() => void) | undefined): this {
    if (listener) this.once('connect', listener);
    const connect = this[kConnects];
    if (this[kUnixDomain]) {
      nextTick(() => {
        if (connect === this[kConnects] && !this.destroyed) this.destroy(systemError(uvErrno('EISCONN'), 'connect', opts.path ?? opts.host ?? 'localhost'));
      });
      return this;
    }
    if (this[kConnectingFlag]) {
      nextTick(() => {
        if (!this[kConnectingFlag] || connect !== this[kConnects]) return;
        const port = opts.port === undefined ? undefined : Number(opts.port);
        this.destroy(systemError(uvErrno('EALREADY'), 'connect', opts.path ?? opts.host ?? 'localhost', port, this[kBusyEnd]()));
      });
      return this;
    }
    this[kConnectingFlag] = true;
    nextTick(() => {
      if (!this[kConnectingFlag] || connect !== this[kConnects]) return;
      this[kConnectingFlag] = false;
      // Closed in order meanwhile: connected no more, nothing to say.
      if (this[kToken] < 0) return;
      this.emit('connect');
      this.emit('ready');
    });
    return this;
  }

  /** The attempt in flight's own end (`address:port`), as node:net names it in a connect that handle refuses (EALREADY). */
  private [kBusyEnd](): string | undefined {
    const local = this[kToken] >= 0 ? this[kReactor]!.native.localAddress(this[kToken]) : null;
    return local ? `${local.address}:${local.port}` : undefined;
  }

  /**
   * A lookup's second answer of several addresses while the first's are
   * dialled, as node:net's connect-multiple takes it: its first address is
   * refused on the handle still connecting (EALREADY), the next ones are
   * dialled on a new handle. Closing the old one cancels the first answer's
   * attempt (ECANCELED, in the closing phase); that answer's dial, unless
   * connected by then, ends the socket with its errors.
   */
  private [kDialAgain](attempts: Attempts): void {
    const first = attempts.addresses.shift()!;
    this[kAttempted]!.push(`${first.address}:${attempts.port}`);
    const refused = systemError(uvErrno('EALREADY'), 'connect', first.address, attempts.port, this[kBusyEnd]());
    if (!this[kAttemptFailed](attempts, first.address, first.family, refused) || !this[kConnectingFlag]) return;
    const old = this[kAttempts]!;
    const { address, port, family } = this[kRemote]!;
    clearTimeout(old.timer);
    this[kReactor]!.closeHandle(this[kToken], this[kKeepAlive]);
    this[kToken] = -1;
    const cancelled = connectError(uvErrno('ECANCELED'), old, address, port);
    old.errors.push(cancelled);
    const { connect } = attempts;
    this[kReactor]!.onHandleClose(this[kScope], [
      () => {
        if (connect !== this[kConnects]) return;
        this.emit('connectionAttemptFailed', address, port, family === 'IPv6' ? 6 : 4, cancelled);
        if (this[kConnectingFlag]) this.destroy(aggregate(old.errors));
      },
    ]);
    this[kDial](attempts);
  }

  /** An IPC connection to a Unix-domain path: no lookup, one attempt. */
  private [kConnectPath](path: string, opts: SocketConnectOpts, listener: (() => void) | undefined): this {
    if (this.destroyed) this[kReset]();
    if (listener) this.once('connect', listener);
    this[kConnectingFlag] = true;
    this[kOpened] = true;
    this[kUnixDomain] = true;
    const connect = ++this[kConnects];
    const reactor = openReactor(opts.backend ?? this[kBackendName]);
    nextTick(() => {
      if (!this[kConnectingFlag] || connect !== this[kConnects]) return;
      const adopted = this[kFromBound]?.adopted;
      const token = typeof reactor === 'number' ? reactor : adopted ? reactor.native.connectFrom(adopted.fd, '', 0, pipeName(path)) : reactor.native.connectUnix(pipeName(path));
      if (typeof reactor === 'number' || token < 0) this.destroy(systemError(-token, 'connect', path));
      else this[kBind](reactor, token);
    });
    return this;
  }

  /** A destroyed socket connects again as a new one (node:net's connect after close). */
  private [kReset](): void {
    (this as unknown as { _undestroy(): void })._undestroy();
    this[kRemote] = this[kLocal] = null;
    this[kPeerKept] = this[kPeerBeforeFin] = false;
    this[kHandleClosed] = false;
    this[kPeerFin] = false;
    this[kEndedByPeer] = false;
    this[kNativePaused] = false;
    this[kUnread] = undefined;
    this[kEofPending] = false;
    this[kAttempted] = undefined;
    this[kUnixDomain] = false;
    this[kShared] = false;
    // Counted per connection, as node:net counts per handle.
    this.bytesRead = 0;
    this[kDispatched] = 0;
  }

  /** Tries the next address; the last failure (or all of them) destroys the socket. */
  private [kDial](attempts: Attempts): void {
    // Destroyed and connected again since: that connect dials for itself.
    if (attempts.connect !== this[kConnects]) return;
    this[kAttempts] = attempts;
    const { reactor, addresses, port, localPort } = attempts;
    while (this[kConnectingFlag]) {
      const next = addresses.shift();
      if (next === undefined) {
        const { errors } = attempts;
        this[kAttempts] = undefined;
        this.destroy(errors.length === 1 ? errors[0] : aggregate(errors));
        return;
      }
      const { address, family } = next;
      const v6 = family === 6;
      // A blocked address is not dialled: node:net says so as an attempt that failed at once
      // among several, and as an attempt and its error for one.
      if (isBlocked(this[kBlockList], address)) {
        const err = ipBlocked(address);
        attempts.errors.push(err);
        if (attempts.multiple) this.emit('connectionAttemptFailed', address, port, family, err);
        else this.emit('connectionAttempt', address, port, family);
        continue;
      }
      this[kAttempted]?.push(`${address}:${port}`);
      const localAddress = localAddressFor(attempts, v6);
      if (localAddress !== undefined && isIP(localAddress) !== family) {
        // As node:net: a local address of the other family does not parse for this bind.
        attempts.errors.push(systemError(uvErrno('EINVAL'), 'bind', localAddress, localPort));
        continue;
      }
      if (isIP(address) !== family) {
        // As node:net's handle: an address not of the family its lookup said does not parse. No
        // socket was made (unless bound), so its own end is unknown.
        const own = localAddress === undefined ? 'undefined:undefined' : `${localAddress}:${localPort ?? 0}`;
        if (this[kAttemptFailed](attempts, address, family, systemError(uvErrno('EINVAL'), 'connect', address, port, own))) continue;
        return;
      }
      const adopted = this[kFromBound]?.adopted;
      const token = typeof reactor === 'number' ? reactor : adopted ? reactor.native.connectFrom(adopted.fd, address, port, null) : reactor.native.connect(address, port, localAddress, localPort);
      if (typeof reactor === 'number' || token < 0) {
        // The binding does not say which step failed; these codes come from binding the local end.
        if (localAddress !== undefined && LOCAL_BIND_ERRORS.includes(-token)) {
          // node:net binds before it announces an attempt: a bind that fails is none.
          attempts.errors.push(systemError(-token, 'bind', localAddress, localPort));
          continue;
        }
        // A connect refused at once names the socket's own end, as node:net's getsockname() gives it
        // (port 0 where only the kernel knows the ephemeral port a bare localAddress took); out of
        // fds there was no socket to ask.
        const own = adopted?.local ?? { address: localAddress ?? (v6 ? '::' : '0.0.0.0'), port: localPort ?? 0 };
        const ownText = NO_SOCKET_ERRORS.includes(-token) && !adopted ? 'undefined:undefined' : `${own.address}:${own.port}`;
        if (this[kAttemptFailed](attempts, address, family, systemError(-token, 'connect', address, port, ownText))) continue;
        return;
      }
      this[kRemote] = { address, port, family: v6 ? 'IPv6' : 'IPv4' };
      this[kBind](reactor, token);
      if (adopted) {
        // The reactor's copy serves it now; and its own address is known at once, as node:net's.
        adopted.release();
        this[kFromBound]!.adopted = undefined;
        this[kFetchAddresses]();
      }
      // node:net's attempt event; a listener may destroy the socket (which closes the attempt).
      this.emit('connectionAttempt', address, port, family);
      if (!this[kConnectingFlag]) return;
      if (addresses.length > 0) {
        attempts.timer = setTimeout(() => {
          // node:net unhooks the timed-out attempt as its listeners return, before its handle's
          // close could cancel it: a destroy() from a listener reports no cancelled attempt.
          this[kAttempts] = undefined;
          this.emit('connectionAttemptTimeout', address, port, family);
          if (!this[kConnectingFlag]) return;
          attempts.errors.push(connectError(uvErrno('ETIMEDOUT'), attempts, address, port));
          reactor.closeHandle(this[kToken], this[kKeepAlive]);
          this[kToken] = -1;
          this[kDial](attempts);
        }, attempts.timeoutMs).unref();
      }
      return;
    }
  }

  /**
   * An attempt that failed at once, as node:net announces it: made, then
   * failed (among several). False if a listener ended the connecting.
   */
  private [kAttemptFailed](attempts: Attempts, address: string, family: number, err: Error): boolean {
    attempts.errors.push(err);
    this.emit('connectionAttempt', address, attempts.port, family);
    if (!this[kConnectingFlag]) return false;
    if (attempts.multiple) this.emit('connectionAttemptFailed', address, attempts.port, family, err);
    return true;
  }

  setNoDelay(enable?: boolean): this {
    const on = enable === undefined ? true : Boolean(enable);
    if (this[kToken] < 0 || this[kConnectingFlag]) {
      this[kNoDelay] = on;
    } else if (on !== this[kNoDelay]) {
      this[kNoDelay] = on;
      this[kReactor]!.native.setNoDelay(this[kToken], on);
    }
    return this;
  }

  /**
   * Node 24: the type-of-service byte (DSCP and ECN) of the packets this
   * socket sends — `IP_TOS`, or `IPV6_TCLASS` over IPv6. Before the
   * connection (or on a Unix-domain socket, which has none) it is kept, and
   * set once connected; a failure throws, except on Windows, where it is
   * best effort as in node:net.
   */
  setTypeOfService(tos: number): this {
    validateTypeOfService(tos, 'tos');
    const changed = tos !== this[kTos];
    this[kTos] = tos;
    if (!changed || this[kToken] < 0 || this[kConnectingFlag]) return this;
    const r = this[kReactor]!.native.typeOfService(this[kToken], tos);
    if (r < 0 && -r !== uvErrno('ENOTSUP') && process.platform !== 'win32') throw systemError(-r, 'setTypeOfService');
    return this;
  }

  /** The type-of-service byte as the kernel has it; the one asked for (or 0) before the connection. */
  getTypeOfService(): number {
    const asked = this[kTos] ?? 0;
    if (this[kToken] < 0 || this[kConnectingFlag]) return asked;
    const r = this[kReactor]!.native.typeOfService(this[kToken], -1);
    if (r >= 0) return r;
    if (-r === uvErrno('ENOTSUP') || process.platform === 'win32') return asked;
    throw systemError(-r, 'getTypeOfService');
  }

  /** Node 24.19 and later; on earlier Node, as node:net there, the object only turns keep-alive on. */
  setKeepAlive(options: SetKeepAliveOptions): this;
  /** `interval` and `count` from Node 24.19 (before, as libuv then: a probe a second, ten unanswered drop the connection). */
  setKeepAlive(enable?: boolean, initialDelay?: number, interval?: number, count?: number): this;
  setKeepAlive(enable?: boolean | SetKeepAliveOptions, initialDelay?: number, interval?: number, count?: number): this {
    if (KEEPALIVE_PROBES_SET && enable !== null && typeof enable === 'object') ({ enable, initialDelay, interval, count } = enable);
    const probe = KEEPALIVE_PROBES_SET ? keepAliveProbe(enable, initialDelay, interval, count) : keepAliveProbe(enable, initialDelay, undefined, undefined);
    const was = this[kKeepAliveProbe];
    const changed =
      probe.enable !== Boolean(was?.enable) || (probe.enable && (probe.delay !== was?.delay || probe.interval !== was.interval || probe.count !== was.count));
    this[kKeepAliveProbe] = probe;
    if (changed && this[kToken] >= 0 && !this[kConnectingFlag]) this[kApplyKeepAlive](probe);
    return this;
  }

  private [kApplyKeepAlive]({ enable, delay, interval, count }: KeepAliveProbe): void {
    this[kReactor]!.native.setKeepAlive(this[kToken], enable, delay, interval, count);
  }

  setTimeout(msecs: number, callback?: () => void): this {
    if (this.destroyed) return this;
    this.timeout = msecs;
    const ms = timerDuration(msecs, 'msecs');
    // As node:net: the old timer goes, and the new one starts, before the callback is looked at.
    clearTimeout(this[kTimer]);
    this[kTimer] = undefined;
    if (msecs === 0) {
      if (callback !== undefined) {
        validateType(callback, 'callback', 'function');
        this.off('timeout', callback);
      }
    } else {
      // node:net's socket timers never hold the process.
      this[kTimer] = setTimeout(() => this[kOnTimeout](), ms).unref();
      if (callback !== undefined) {
        validateType(callback, 'callback', 'function');
        this.once('timeout', callback);
      }
    }
    return this;
  }

  /**
   * As node:net's: a write still going out (its queue changed since the last
   * look, see `[kLastQueued]`) is no idleness: the timer starts again instead.
   */
  private [kOnTimeout](): void {
    if (this[kLastQueued] > 0 && this[kToken] >= 0) {
      const now = this[kReactor]!.native.queued(this[kToken]) + this[kUnhanded];
      if (now !== this[kLastQueued]) {
        this[kLastQueued] = now;
        this[kTouch]();
        return;
      }
    }
    this.emit('timeout');
  }

  /** Restarts the idle timer on activity, as node:net does. */
  private [kTouch](): void {
    this[kTimer]?.refresh();
  }

  ref(): this {
    this[kKeepAlive].set(true);
    return this;
  }

  unref(): this {
    this[kKeepAlive].set(false);
    return this;
  }

  /**
   * @internal A copy for another process (see ../handoff). Unless
   * `keepOpen`, this one stops reading now and closes once what it was
   * writing is written: no FIN, which would end the copy too.
   */
  [handOver](keepOpen: boolean): Handover {
    // Handed over already (still writing what it had): node:net's socket has no handle left to give.
    if (this[kToken] < 0 || this[kHandedOver]) return undefined;
    const fd = this[kReactor]!.native.duplicate(this[kToken]);
    if (fd >= 0) this[kShared] = true;
    if (fd >= 0 && !keepOpen) {
      this[kHandedOver] = true;
      this[kStopReading]();
      // Counted where it went from now on, as node:net's server stops counting it at once.
      this[kCountedBy]?.[kSocketClosed]();
      this[kCountedBy] = undefined;
      // No idle timer on a socket done with here (node:net's send() calls setTimeout(0)): its
      // 'timeout' handler's end() would half-close the receiver's connection.
      this.setTimeout(0);
      // What it was writing goes out first (ended or not: no FIN, see _final), then it closes.
      if (this.writableLength === 0) this.destroy();
      else if (this.writableEnded) this.once('finish', () => this.destroy());
      else super.write(Buffer.alloc(0), () => this.destroy());
    }
    return { fd, kind: 'socket', server: this.server };
  }

  /**
   * Given as a child's stdio and kept (see ../handoff): node's spawn stops
   * reading node:net's socket and pauses it, so that the child alone reads
   * the connection (libuv has made the file they share blocking, too); a
   * `resume()` or `read()` starts reading again, as there.
   */
  [usedAsStdio](): void {
    this[kShared] = true;
    this[kStopReading]();
    this.pause();
    readableState(this).reading = false;
  }

  /**
   * Moved to a worker thread (see ../threads): as node:net's, only a TCP
   * connection nothing was read from or written to yet (nor read by the
   * reactor and still to be handed out in this batch). Moved, it is
   * destroyed here, with no FIN: the receiver holds the connection. Not
   * read here from the copy on (see `Move`).
   */
  [moveToThread](): Move {
    const fresh =
      this[kToken] >= 0 &&
      !this[kConnectingFlag] &&
      !this[kHandedOver] &&
      this[kLocal] !== null &&
      this.bytesRead === 0 &&
      this.bytesWritten === 0 &&
      this.readableLength === 0 &&
      this.writableLength === 0 &&
      this.readableEncoding === null &&
      this[kUnread] === undefined &&
      this[kStalled] === undefined &&
      !this[kReactor]!.delivering(this[kToken]);
    if (!fresh) throw notTransferable('net.Socket');
    const fd = this[kReactor]!.native.duplicate(this[kToken]);
    if (fd < 0) throw systemError(-fd, 'dup');
    const reading = !this[kNativePaused];
    this[kStopReading]();
    const moved = () => {
      this[kHandedOver] = true;
      this[kCountedBy]?.[kSocketClosed]();
      this[kCountedBy] = undefined;
      this.destroy();
    };
    const kept = () => {
      if (reading) this[kStartReading]();
    };
    return { fd, kind: 'socket', options: { allowHalfOpen: this.allowHalfOpen }, moved, kept };
  }

  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /** Closes with RST instead of FIN (once connected, if connecting); a Unix-domain connection has no RST to send. */
  resetAndDestroy(): this {
    if (this[kUnixDomain] && (this[kToken] >= 0 || this[kConnectingFlag])) throw coded(new TypeError('This handle type cannot be sent'), 'ERR_INVALID_HANDLE_TYPE');
    if (this[kConnectingFlag]) {
      this.once('connect', () => this.resetAndDestroy());
      return this;
    }
    // Closed in order already (an 'end' listener after its own end()): node:net's handle closes quietly.
    if (this[kToken] < 0) return this[kHasHandle] ? this.destroy() : this.destroy(socketClosed());
    this[kResetOnClose] = true;
    return this.destroy();
  }

  /**
   * After the peer ended a socket that is not half-open, writing fails with
   * EPIPE. A string said to be a `'buffer'` is node:net's TypeError where
   * Node's Writable lets it reach the handle (whose check throws it).
   */
  override write(chunk: unknown, callback?: (error: Error | null | undefined) => void): boolean;
  override write(chunk: unknown, encoding: BufferEncoding, callback?: (error: Error | null | undefined) => void): boolean;
  override write(chunk: unknown, encoding?: BufferEncoding | ((error: Error | null | undefined) => void), callback?: (error: Error | null | undefined) => void): boolean {
    if (this[kHandedOver] && !this.destroyed) {
      // Handed over, still writing what it had: node:net's socket has no handle left; nothing more reaches the peer.
      const cb = typeof encoding === 'function' ? encoding : callback;
      if (typeof cb === 'function') nextTick(cb, codedError('Socket is closed', 'ERR_SOCKET_CLOSED'));
      return false;
    }
    if (STRING_AS_BUFFER_REACHES_HANDLE && typeof chunk === 'string' && (encoding as string) === 'buffer' && this[kToken] >= 0) {
      throw coded(new TypeError('Second argument must be a buffer'), 'ERR_INVALID_ARG_TYPE');
    }
    if (!this[kEndedByPeer] || !this.writableEnded) return super.write(chunk, encoding as BufferEncoding, callback);
    const cb = typeof encoding === 'function' ? encoding : callback;
    const err = codedError('This socket has been ended by the other party', 'EPIPE');
    if (typeof cb === 'function') nextTick(cb, err);
    this.destroy(err);
    return false;
  }

  // Reading stops when push() says the buffer is full (a paused socket
  // fills it) and starts again when the stream asks for more: the peer
  // meets TCP backpressure, as with node:net.
  override _read(): void {
    // Under TLS the wrapper's readStart() asks, not the socket's stream.
    if (this[kStreamWrap]?.paused) return;
    if (this[kConnectingFlag] && !this[kReadArmed]) {
      this[kReadArmed] = true;
      this.once('connect', Socket.beginReading);
    }
    this[kStartReading]();
    this[kQueueRelease]();
  }

  /**
   * Hands on what reading held back, a tick after `_read` asked for more
   * (as libuv's next read comes): a 'data' listener that throws in the
   * `resume()` that asked then still finds these on their way, which
   * restart the flow its throw broke off. A full buffer among them stops
   * reading again.
   */
  private static release(socket: Socket): void {
    socket[kReleaseQueued] = false;
    const stalled = socket[kStalled];
    if (stalled === undefined || socket.destroyed) return;
    socket[kStalled] = undefined;
    const eof = socket[kStalledEof];
    socket[kStalledEof] = undefined;
    // Destroyed (and maybe connected again) by a listener: the rest was the old connection's.
    const connect = socket[kConnects];
    const same = () => !socket.destroyed && socket[kConnects] === connect;
    for (let i = 0; i < stalled.length && same(); i++) {
      try {
        socket[kOnData](stalled[i]);
      } catch (err) {
        socket[kHoldBack](stalled.slice(i + 1), eof);
        throw err;
      }
    }
    if (!same()) return;
    if (eof !== undefined) socket[kOnEnd](eof);
    // The reset came behind them: reported once they are all out (held again if some are).
    const err = socket[kStalledError];
    if (err === undefined || socket[kStalled] !== undefined) return;
    socket[kStalledError] = undefined;
    socket[kErrorDeferred] = false;
    if (!socket.destroyed) socket.destroy(err);
  }

  /**
   * A 'data' listener threw: the rest of what was read comes on a tick, as
   * libuv's next read would, so the throw reaches 'uncaughtException' (or
   * ends the process) before the listener hears another byte, and no byte
   * is lost if the process lives on.
   */
  private [kHoldBack](rest: Buffer[], eof?: boolean): void {
    if (this.destroyed) return;
    this[kStalled] = this[kStalled] === undefined ? rest : this[kStalled].concat(rest);
    if (eof !== undefined) this[kStalledEof] = eof;
    this[kQueueRelease]();
  }

  private [kQueueRelease](): void {
    if (this[kStalled] === undefined || this[kReleaseQueued]) return;
    this[kReleaseQueued] = true;
    nextTick(Socket.release, this);
  }

  // Strings reach here as written (`decodeStrings: false`, as node:net): queued, they count
  // in `writableLength` by their length, not their bytes.
  override _write(chunk: Buffer | string, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this[kWriteOut](toBuffer(chunk, encoding), cb, false);
  }

  override _writev(chunks: { chunk: Buffer | string; encoding: BufferEncoding }[], cb: (err?: Error | null) => void): void {
    // cork()/uncork(), or writes buffered behind one in flight: everything in one write(2), in
    // one buffer that strings are encoded straight into (a Buffer of each, then their
    // concatenation, copied a 600 MiB pipeline of strings twice, and held both at once).
    let total = 0;
    for (const { chunk, encoding } of chunks) total += typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length;
    const all = Buffer.allocUnsafe(total);
    let at = 0;
    for (const { chunk, encoding } of chunks) at += typeof chunk === 'string' ? all.write(chunk, at, encoding) : chunk.copy(all, at);
    // byteLength is an upper bound for base64 and hex that is not clean (line breaks, a stray
    // character): only what was written goes (the rest of an unsafe allocation is old memory).
    this[kWriteOut](at === total ? all : all.subarray(0, at), cb, chunks.length > LIBUV_IOV_MAX);
  }

  /**
   * Writes `chunk`, then calls `cb`: at once if the kernel took it all,
   * unless `finishLater` (libuv's writev of more than IOV_MAX buffers: a
   * turn later, so that 'drain' follows what the writer does meanwhile, as
   * after a connect: its 'ready').
   */
  private [kWriteOut](chunk: Buffer, cb: (err?: Error | null) => void, finishLater: boolean): void {
    if (this[kConnectingFlag]) {
      // node:net queues writes made before the connection is up.
      this[kPendingData] = chunk;
      const onClose = () => cb(codedError('Socket closed before the connection was established', 'ERR_SOCKET_CLOSED_BEFORE_CONNECTION'));
      this.once('close', onClose);
      this.once('connect', () => {
        this.off('close', onClose);
        this[kWriteOut](chunk, cb, finishLater);
      });
      return;
    }
    this[kPendingData] = undefined;
    if (this[kToken] < 0) {
      // A reset held behind read bytes (Node 20) is what node:net's write meets; it no longer waits.
      const held = this[kStalledError];
      this[kStalledError] = undefined;
      if (held !== undefined) return cb(systemError(uvErrno(held.code!), 'write'));
      cb(this[kFailedHandle] || this[kErrorDeferred] ? systemError(uvErrno('EPIPE'), 'write') : socketClosed());
      return;
    }
    // Counted though it fails: node:net counts what it handed to the handle.
    this[kDispatched] += chunk.length;
    this[kWritePiece](chunk, cb, finishLater);
  }

  /**
   * Writes `chunk` as libuv's `uv_write` does: one write(2) of it all in
   * the call, the kernel taking what it can, then the rest on writable
   * events. The rest goes to the reactor a turn's bytes (`WRITE_TURN`) at a
   * time, the next piece once the last is out, at a later turn's Drain
   * (after the socket's read, which meets a reset first): one write() of
   * 1 GiB to a peer reading as fast held the thread for its whole transfer;
   * to a slower one, copied the rest into the queue. `handed`: a piece
   * after the first, libuv's progress on the write, which is no activity
   * of the writer's.
   */
  private [kWritePiece](chunk: Buffer, cb: (err?: Error | null) => void, finishLater: boolean, handed = false): void {
    const reactor = this[kReactor]!;
    const turn = native.WRITE_TURN;
    let rest = chunk;
    if (chunk.length > turn && !handed) {
      const taken = reactor.native.writeOnce(this[kToken], chunk);
      if (taken < 0) return cb(systemError(-taken, 'write'));
      rest = chunk.subarray(taken);
    }
    const piece = rest.length > turn ? rest.subarray(0, turn) : rest;
    const queued = piece.length === 0 && rest !== chunk ? 0 : reactor.write(this[kToken], piece);
    if (queued < 0) {
      cb(systemError(-queued, 'write'));
      return;
    }
    this[kUnhanded] = rest.length - piece.length;
    if (!handed) {
      this[kTouch]();
      // node:net's `req.bytes`: the whole write's, which the first look finds changed.
      if (queued + this[kUnhanded] > 0) this[kLastQueued] = chunk.length;
    }
    if (this[kUnhanded] > 0) {
      const next = rest.subarray(piece.length);
      // A close meanwhile cancels the rest with the piece (see `_destroy`).
      this[kPendingWrite] = (err) => (err || this[kToken] < 0 ? cb(err) : this[kWritePiece](next, cb, finishLater, true));
      // (The write above found the connection: asking cannot fail.)
      if (queued === 0) reactor.native.drainNextTurn(this[kToken]);
      this[kSyncActive]();
      return;
    }
    if (queued === 0 && !finishLater) return cb();
    // Done when the queue drains (`onDrain`), or a turn from now; a close
    // meanwhile cancels it (see `_destroy`).
    this[kPendingWrite] = cb;
    this[kSyncActive]();
    if (queued === 0) setImmediate(() => this[kFinishWrite](cb));
  }

  /** A write finished a turn later (see `[kWriteOut]`): done, unless a close cancelled it meanwhile. */
  private [kFinishWrite](cb: (err?: Error | null) => void): void {
    if (this[kPendingWrite] === cb) this[kOnDrain]();
  }

  /** Handed over, still writing what it had: `end(data)`'s data reaches no one either (see write()). */
  override end(...args: unknown[]): this {
    const [chunk] = args;
    if (this[kHandedOver] && chunk != null && typeof chunk !== 'function') args = args.filter((a) => typeof a === 'function');
    return (super.end as (...a: unknown[]) => this)(...args);
  }

  override _final(cb: (err?: Error | null) => void): void {
    // Handed over, done writing what it had: no FIN, which would half-close the receiver's connection too.
    if (this[kHandedOver]) return cb();
    // Never connected: nothing to shut down. Node 21 on finishes end() at once; Node 20 waits for a
    // connect (and sends the FIN after it), never calling back if none comes.
    if (!this[kOpened] && END_FINISHES_UNCONNECTED) return cb();
    // (A reset held for later, or waiting for its moment, leaves node:net's handle there: no wait.)
    if (this[kConnectingFlag] || (this[kToken] < 0 && !this[kHandleClosed] && !this[kErrorDeferred])) {
      this.once('connect', () => this._final(cb));
      return;
    }
    // No handle: done (node:net's calls back at once). A held reset leaves node:net's handle, whose shutdown goes on.
    if (this[kToken] < 0 && !this[kErrorDeferred]) return cb();
    if (this[kToken] >= 0 && !this[kPeerKept]) {
      this[kRemote] = this[kReactor]!.native.remoteAddress(this[kToken]);
      this[kPeerBeforeFin] = this[kRemote] !== null;
    }
    // node:net's shutdown request goes out, and completes, from libuv's pending queue, after
    // the poll phase and before the immediates: never inside end() (a write after end() or a
    // destroy() in the same tick finds the stream unfinished: 'error', and no 'finish'), nor
    // before the events this turn brought the socket (a destroySoon() from another socket's
    // listener lost the bytes this one had read), nor before the promise jobs of the code that
    // called end() (`end(); await x; await once(socket, 'finish')` waited forever).
    this[kReactor]!.afterPollPhase(() => {
      this[kPeerBeforeFin] = false;
      if (this[kToken] < 0) return cb();
      const r = this[kReactor]!.native.shutdown(this[kToken]);
      // As node:net: a peer already gone (ENOTCONN) is a finished shutdown.
      if (r < 0) return cb(-r === uvErrno('ENOTCONN') ? null : systemError(-r, 'shutdown'));
      cb();
    });
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    const wrap = this[kStreamWrap];
    clearTimeout(this[kTimer]);
    this[kTimer] = undefined;
    const attempts = this[kAttempts];
    clearTimeout(attempts?.timer);
    // An attempt among several still connecting: node:net's closing handle cancels it, and
    // 'connectionAttemptFailed' says so (ECANCELED) just before 'close'.
    const cancelled = this[kConnectingFlag] && attempts?.multiple && this[kToken] >= 0 ? this[kRemote] : null;
    this[kAttempts] = undefined;
    this[kConnectingFlag] = false;
    if (this[kFromBound]?.adopted) {
      this[kFromBound].adopted.release();
      this[kFromBound].adopted = undefined;
    }
    this[kGiven]?.release();
    this[kGiven] = undefined;
    if (this[kToken] >= 0) {
      // Bytes the reactor read that nobody took (later in this batch, or held for a reader that
      // stopped, or for onread's callback) are in the kernel for node:net: closed over, they
      // reset the connection.
      // (Not Unix-domain: it has no reset to send; node:net's peer hears ECONNRESET there, this
      // one's an EOF. Nor a socket held elsewhere too: see `kShared`.)
      const held = (this[kStalled]?.length ?? 0) > 0 || (this[kUnread]?.length ?? 0) > 0 || this[kReadRest] !== undefined;
      const unread = !this[kUnixDomain] && !this[kShared] && (held || this[kReactor]!.delivering(this[kToken], true));
      this[kReactor]!.closeHandle(this[kToken], this[kKeepAlive], this[kResetOnClose] || unread);
      this[kReadRest] = undefined;
    } else this[kKeepAlive].release();
    this[kToken] = -1;
    this[kResetOnClose] = false;
    // onread: what was read and not yet handed over is dropped, as the kernel drops it; so is what a throwing 'connect' listener left unread.
    this[kUnread] = undefined;
    this[kEofPending] = false;
    this[kStalled] = undefined;
    this[kStalledEof] = undefined;
    this[kStalledError] = undefined;
    // Its wrapper goes with it: connected again, it is plain TCP.
    this[kStreamWrap] = undefined;
    this[kErrorDeferred] = this[kEndDeferred] = false;
    this[kCountedBy]?.[kSocketClosed]();
    this[kCountedBy] = undefined;
    const pending = this[kPendingWrite];
    this[kPendingWrite] = undefined;
    this[kUnhanded] = 0;
    // As node:net: the write in flight hears of it when closing the handle
    // cancels it, in the closing phase just before 'close' (after 'error'):
    // with no error before Node 22.9, with `write ECANCELED` since; the
    // writes queued behind it get the socket's error.
    const reactor = this[kReactor];
    // What closing the handle calls back, in libuv's order (see `onHandleClose`).
    const onClose: (() => void)[] = [];
    if (pending) {
      const cancelled = CANCELLED_WRITE_FAILS ? systemError(uvErrno('ECANCELED'), 'write') : null;
      if (reactor) onClose.push(() => pending(cancelled));
      else setImmediate(pending, cancelled);
    }
    // Under TLS (see `on()`) what the connection met (a reset, a write refused) is the wrapper's
    // alone; an error of the socket's own (a refused connect, its destroy(err)) is its listeners'
    // and the wrapper's, as node:net's TLS listens on the socket for those.
    const wrapsAlone = err != null && err === wrap?.connectionError;
    if (wrapsAlone) nextTick(wrap.relayError!, err);
    else if (err && wrap?.relayError) super.on('error', wrap.relayError);
    cb(wrapsAlone ? null : err);
    // node:net emits 'close' from the handle's close callback, in libuv's
    // closing phase (after this loop turn's immediates); a socket that never
    // had one closes on the next tick, saying nothing.
    const emitClose = () => this.emit('close', err !== null && err !== undefined && !wrapsAlone);
    if (cancelled) {
      const { address, port, family } = cancelled;
      const failure = connectError(uvErrno('ECANCELED'), attempts!, address, port);
      onClose.push(() => this.emit('connectionAttemptFailed', address, port, family === 'IPv6' ? 6 : 4, failure));
    }
    // Under TLS, node:net's socket says 'close' just before the TLS socket, whose handle closes
    // its own: the wrapper's close waits for an immediate (Node's JSStreamSocket), so this one too.
    if (this[kOpened] && reactor && wrap === undefined) onClose.push(emitClose);
    else if (this[kOpened]) setImmediate(emitClose);
    else nextTick(() => this.emit('close'));
    if (onClose.length > 0) reactor!.onHandleClose(this[kScope], onClose);
    this[kOpened] = false;
  }

  /** @internal */
  [kOnConnect](): void {
    this[kConnectingFlag] = false;
    clearTimeout(this[kAttempts]?.timer);
    this[kAttempts] = undefined;
    this[kFetchAddresses]();
    this[kSyncActive]();
    if (this[kNoDelay]) this[kReactor]!.native.setNoDelay(this[kToken], true);
    if (this[kKeepAliveProbe]?.enable) this[kApplyKeepAlive](this[kKeepAliveProbe]);
    if (this[kTos] !== undefined) this[kReactor]!.native.typeOfService(this[kToken], this[kTos]);
    this[kTouch]();
    this[kReadBegun] = false;
    try {
      this.emit('connect');
      this.emit('ready');
    } catch (err) {
      if (!this[kReadBegun]) {
        this[kStopReading]();
        this[kStalled] = [];
      }
      throw err;
    }
    // node:net starts reading only if the stream asked for data or nobody paused it (under TLS: the
    // wrapper), and never if it reads nothing.
    const wrap = this[kStreamWrap];
    if (wrap !== undefined ? wrap.paused : this[kReadsNothing]() || (this.isPaused() && !readableState(this).reading)) this[kStopReading]();
  }

  /** The 'connect' listener `_read` adds (one function for every socket: no closure each). */
  private static beginReading(this: Socket): void {
    this[kReadArmed] = false;
    this[kReadBegun] = true;
  }

  /** @internal */
  [kOnData](chunk: Buffer): void {
    if (this[kStalled] !== undefined) return void this[kStalled].push(heldCopy(chunk));
    // Read in the turn it connected, by a socket that reads nothing: held unread, as node:net
    // leaves them in the kernel (a destroy resets over them).
    if (this[kStreamWrap] === undefined && this[kReadsNothing]()) {
      this[kStalled] = [heldCopy(chunk)];
      return this[kStopReading]();
    }
    // Flowing by a way that passes no resume() (a 'readable' listener removed).
    if (this[kLeanReads] && this.readableFlowing === true && !this[kOnread]) this[kSyncLeanReads]();
    this[kDataBatch] = this[kReactor]!.batches;
    this[kTouch]();
    if (this[kStreamWrap] !== undefined) return this[kReadToWrap](chunk, this[kStreamWrap]);
    // bytesRead counts what is handed out, piece by piece, as libuv's reads
    // are counted one by one: a listener sees the bytes up to its own.
    if (this[kOnread]) {
      this[kUnread] = this[kUnread] === undefined ? chunk : Buffer.concat([this[kUnread], chunk]);
      this[kDeliver]();
      // Left for after a pause: held, so not a view that pins the slab.
      if (this[kUnread] !== undefined) this[kUnread] = heldCopy(this[kUnread]);
      return;
    }
    // A copy when small (see retained()), as node:net's chunks hold little
    // beyond their bytes: a listener keeping a small view (a parser holding
    // a partial message) would pin its whole 1 MiB slab, and a trickle of
    // such bytes among others' traffic would pin a slab each. No chunk
    // longer than node:net's (libuv reads 64 KiB at a time), though a turn
    // reads up to the reactor's budget at once.
    // A listener that destroys the socket hears no more, and none is counted (node:net stops
    // reading); connected again, the rest was the old connection's.
    const connect = this[kConnects];
    for (let at = 0; at < chunk.length && !this.destroyed && this[kConnects] === connect; at += NODE_READ_SIZE) {
      // (No new view for a chunk that fits: the usual case, on every read.)
      const piece = chunk.length > NODE_READ_SIZE ? chunk.subarray(at, at + NODE_READ_SIZE) : chunk;
      this.bytesRead += piece.length;
      const rest = (this[kReadRest] = restAfter(chunk, at));
      try {
        // Buffered for a reader not flowing, it may wait long: a copy of its own (see heldCopy).
        if (this.push(this.readableFlowing === true ? retained(piece) : heldCopy(piece))) {
          if (rest !== undefined && this[kReactor]!.readOnAfterTicks(this)) return;
          continue;
        }
      } catch (err) {
        // The rest as after a listener that returned (see `[kHoldBack]` outside an event).
        if (rest !== undefined && this[kReactor]!.readOnAfterTicks(this)) throw err;
        this[kReadRest] = undefined;
        this[kHoldBack](rest !== undefined ? [heldCopy(rest)] : []);
        throw err;
      }
      // Full: libuv stops reading at the first full push, so a paused socket holds one 64 KiB
      // read past its high-water mark, not the reactor's whole read; the rest waits for _read.
      // Held from here, the rest of this chunk and any other of the same batch.
      if (!this.destroyed) this[kStalled] = rest !== undefined ? [heldCopy(rest)] : [];
      this[kStopReading]();
      // Not flowing by a way that passes no pause() (a 'readable' listener, an unpipe).
      this[kSyncLeanReads]();
      break;
    }
    this[kReadRest] = undefined;
  }

  /**
   * No readable side (`readable: false`: its stream ended from the start)
   * and no onread callback: node:net never reads it.
   */
  private [kReadsNothing](): boolean {
    return readableState(this).ended && !this[kOnread];
  }

  /** @internal The rest of the read left for after the ticks (see `Reactor.readOnAfterTicks`): the next of libuv's reads. */
  [kReadOn](): void {
    const rest = this[kReadRest];
    this[kReadRest] = undefined;
    if (this.destroyed) return;
    if (this[kOnread]) this[kDeliver]();
    else if (rest !== undefined) this[kOnData](rest);
  }

  /**
   * Under TLS (see `on()`): what the socket reads goes to the wrapper, in
   * libuv-sized reads, until the wrapper pauses (TLS's own backpressure);
   * the rest waits for its readStart().
   */
  private [kReadToWrap](chunk: Buffer, wrap: StreamWrap): void {
    const connect = this[kConnects];
    for (let at = 0; at < chunk.length && !this.destroyed && this[kConnects] === connect; at += NODE_READ_SIZE) {
      if (wrap.paused || this[kStreamWrap] !== wrap) {
        this[kReadRest] = undefined;
        this[kStalled] = [heldCopy(chunk.subarray(at))];
        return this[kStopReading]();
      }
      const piece = chunk.length > NODE_READ_SIZE ? chunk.subarray(at, at + NODE_READ_SIZE) : chunk;
      this.bytesRead += piece.length;
      const rest = (this[kReadRest] = restAfter(chunk, at));
      try {
        // (Node's JSStream copies it before readBuffer() returns: no copy of our own.)
        wrap.read(piece);
        if (rest !== undefined && this[kReactor]!.readOnAfterTicks(this)) return;
      } catch (err) {
        this[kReadRest] = undefined;
        if (rest !== undefined) this[kHoldBack]([heldCopy(rest)]);
        throw err;
      }
    }
    this[kReadRest] = undefined;
  }

  /** @internal The peer sent FIN: 'end' comes once the buffer is read, even if nobody reads. `hungUp`: see `Handle`. */
  [kOnEnd](hungUp = false): void {
    if (this[kStalled] !== undefined) return void (this[kStalledEof] = hungUp);
    // The end of the stream is a read as any other for the idle timer (node:net refreshes it on every read callback).
    this[kTouch]();
    const reactor = this[kReactor]!;
    if (this[kDataBatch] === reactor.batches && !(hungUp && HANG_UP_ENDS_WITH_BYTES)) {
      // Bytes came in this batch too (mio reads on to the EOF). libuv sees the EOF a loop
      // turn after a short read: what their listeners queue (ticks, immediates) runs before
      // 'end' — node:http takes an 'end' before its reply is out for an aborted request.
      // (Not in a hang-up on an older libuv: see `HANG_UP_ENDS_WITH_BYTES`.)
      this[kDataBatch] = -1;
      this[kEndDeferred] = true;
      const connect = this[kConnects];
      return void reactor.nextTurnRead(() => {
        // Destroyed and connected again since: the end was the old connection's.
        if (connect !== this[kConnects]) return;
        this[kEndDeferred] = false;
        if (!this.destroyed) this[kOnEnd]();
      }, this[kScope]);
    }
    this[kPeerFin] = true;
    this[kSyncActive]();
    if (this[kOnread]) {
      this[kEofPending] = true;
      this[kDeliver]();
      return;
    }
    this.push(null);
    this.read(0);
  }

  /** @internal */
  [kOnDrain](): void {
    const cb = this[kPendingWrite];
    this[kPendingWrite] = undefined;
    // A piece of a write out (see `[kWritePiece]`) is libuv's progress on it; a write done is
    // activity, as node:net counts it.
    if (this[kUnhanded] === 0) {
      this[kLastQueued] = 0;
      if (cb) this[kTouch]();
    }
    this[kSyncActive]();
    cb?.();
  }

  /** @internal The reactor closed the socket (its token is already free). */
  [kOnClose](errno: number, syscall: 'read' | 'write'): void {
    this[kToken] = -1;
    this[kKeepAlive].release();
    const attempts = this[kAttempts];
    if (this[kConnectingFlag] && attempts) {
      clearTimeout(attempts.timer);
      const r = this[kRemote]!;
      const err = connectError(errno, attempts, r.address, r.port);
      attempts.errors.push(err);
      if (!attempts.multiple && attempts.addresses.length === 0) {
        // As node:net's afterConnect for its one address: no longer connecting while the
        // listeners hear of it (a write fails with EPIPE on the handle), then destroyed.
        this[kConnectingFlag] = false;
        this[kAttempts] = undefined;
        this[kFailedHandle] = true;
        try {
          this.emit('connectionAttemptFailed', r.address, r.port, r.family === 'IPv6' ? 6 : 4, err);
        } finally {
          this[kFailedHandle] = false;
        }
        this.destroy(err);
        return;
      }
      this.emit('connectionAttemptFailed', r.address, r.port, r.family === 'IPv6' ? 6 : 4, err);
      // Not inside the reactor's batch: a record later in it may name the
      // token the next attempt would get.
      nextTick(() => this[kDial](attempts));
      return;
    }
    if (errno === uvErrno('EPIPE') && this[kPendingWrite] === undefined) {
      // Linux reports a reset after the peer's FIN (CLOSE_WAIT) as EPIPE.
      // libuv reads that FIN as the EOF and only a write would meet the
      // reset: with none waiting, the peer ended the connection.
      if (!this[kPeerFin]) this[kOnEnd]();
      errno = 0;
    }
    if (errno === 0) {
      // Orderly: both directions are done; the stream ends (and is
      // destroyed) as its buffers are consumed.
      this[kHandleClosed] = true;
      return;
    }
    const err = systemError(errno, syscall);
    const wrap = this[kStreamWrap];
    if (wrap?.relayError !== undefined) wrap.connectionError = err;
    const fail = () => {
      const pending = this[kPendingWrite];
      if (syscall === 'write' && pending !== undefined) {
        // The write in flight met it: as a failed write in node:net, its
        // callback gets the error, which then destroys the stream.
        this[kPendingWrite] = undefined;
        pending(err);
      } else if (!this.destroyed) {
        this.destroy(err);
      }
    };
    // Bytes held for a reader that stopped (see `[kOnData]`): on Node 20 they come first.
    if (syscall === 'read' && this[kStalled] !== undefined && RESET_AFTER_HELD_BYTES) {
      // node:net's handle is there till then (a write meets the reset, see `[kWriteOut]`).
      this[kErrorDeferred] = true;
      return void (this[kStalledError] = err);
    }
    const wait = this[kErrorWait](syscall);
    if (wait === undefined) return fail();
    // node:net's handle is there till then; destroyed meanwhile (and maybe connected again),
    // nothing is left to report.
    this[kErrorDeferred] = true;
    const connect = this[kConnects];
    wait(() => {
      if (!this[kErrorDeferred] || connect !== this[kConnects]) return;
      this[kErrorDeferred] = false;
      fail();
    });
  }

  /** How to wait for the moment node:net would meet the connection's error, if it is later than now. */
  private [kErrorWait](syscall: 'read' | 'write'): ((report: () => void) => void) | undefined {
    const reactor = this[kReactor]!;
    const afterClosingPhase = (report: () => void) => reactor.inClosingPhase(() => nextTick(report), this[kScope]);
    // The peer's FIN came first (in this batch) and 'end' waits for the next tick: node:net
    // reads the FIN a loop turn before its write meets the reset, so 'end' comes before 'error'.
    // Bytes a throwing listener held back come on a tick too (see `[kHoldBack]`, `[kDeliver]`): libuv
    // would read them before it met the error.
    if ((this[kPeerFin] && !this.readableEnded) || this[kReleaseQueued] || this[kDeliverQueued]) return nextTick;
    // The FIN came with bytes and its end waits for the next turn's read (see `onEnd`): after it.
    if (this[kEndDeferred] && HANG_UP_ENDS_WITH_BYTES) return (report) => reactor.nextTurnRead(() => nextTick(report), this[kScope]);
    if (syscall !== 'write') return undefined;
    // A write meeting the reset in the batch that brought bytes fails after what their
    // listeners queued, as libuv's write callback comes after its read callback and the ticks
    // that queued (node:http ends the response there: a 413 to an upload is not lost to EPIPE);
    // on Node 24 before the end deferred above, which then never comes, as there.
    if (this[kEndDeferred]) return setImmediate;
    if (this[kDataBatch] === reactor.batches) return afterClosingPhase;
    return undefined;
  }
}
// Its events are callbacks of their own: ticks queued in one run before the next socket's.
ownCallbacks(Socket);

/** No socket could be made (out of fds): node:net meets it where the socket is made, at the bind when there is one. */
const NO_SOCKET_ERRORS = ['EMFILE', 'ENFILE'].map(uvErrno);
const LOCAL_BIND_ERRORS = [...['EADDRINUSE', 'EADDRNOTAVAIL', 'EACCES'].map(uvErrno), ...NO_SOCKET_ERRORS];

/** A written chunk's bytes (a string in its encoding). */
function toBuffer(chunk: Buffer | string, encoding: BufferEncoding): Buffer {
  return typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
}

/** node:net's order for autoSelectFamily: each valid address once, the families alternating, the lookup's first family first. */
function happyEyeballsOrder(all: LookupAddress[]): LookupAddress[] {
  const byFamily: Record<number, LookupAddress[]> = { 4: [], 6: [] };
  let first: number | undefined;
  for (const { address, family } of all) {
    if (isIP(address) && (family === 4 || family === 6) && !byFamily[family].some((a) => a.address === address)) {
      first ??= family;
      byFamily[family].push({ address, family });
    }
  }
  const [a, b] = first === 6 ? [byFamily[6], byFamily[4]] : [byFamily[4], byFamily[6]];
  // A plain loop: `Array.from({ length })` follows a polluted `Object.prototype[Symbol.iterator]`
  // (undici tests it) and gave no address at all.
  const order: LookupAddress[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) order.push(a[i]);
    if (i < b.length) order.push(b[i]);
  }
  return order;
}

/** Several connection attempts failed: all their errors, as node:net reports them. */
function aggregate(errors: Error[]): AggregateError & { code?: string } {
  const err = new AggregateError(errors) as AggregateError & { code?: string };
  err.code = (errors[0] as NodeJS.ErrnoException | undefined)?.code;
  return err;
}

/**
 * A socket's `'end'`: unless half-open, its own end follows and writes fail with EPIPE —
 * unless it is the transport of Node's `JSStreamSocket` (TLS or http2 over a muxnet
 * socket): that one's wrapper ends it, as node:net's TLS over its native handle ends the
 * TCP side itself, after its `close_notify`. Ended here first, the `close_notify` met a
 * socket the FIN had ended: an `EPIPE` error where node:net's native path has none, which
 * pg and mysql2 over TLS re-emit — a process ended by `conn.end()` or a server's restart.
 */
function peerEnded(this: Socket): void {
  if (this.allowHalfOpen) return;
  if (!isStreamWrapTransport(this)) {
    (this as unknown as { [kEndedByPeer]: boolean })[kEndedByPeer] = true;
    return;
  }
  // Readable reads `allowHalfOpen` right after the 'end' listeners have run: half-open for
  // that moment only (the socket may connect again, or move, as it was made).
  this.allowHalfOpen = true;
  nextTick(notHalfOpen, this);
}

function notHalfOpen(socket: Socket): void {
  socket.allowHalfOpen = false;
}

/**
 * Whether `socket` carries a live `JSStreamSocket` of Node's: one reads it
 * (see `on()`), its `'end'` listener hands the end to the native side
 * (`_handle.emitEOF()`), and its `once('close')` destroying the wrapper is
 * still there — gone, the socket closed since,
 * and the wrapper with it (a TLS handshake that failed, the socket
 * connected again for plain TCP, kept its first two: taken for a transport,
 * it never ended). Read from their source, once, at the peer's FIN.
 */
function isStreamWrapTransport(socket: Socket): boolean {
  return socket[kStreamWrap] !== undefined && socket.listeners('end').some(isWrapperEnd) && socket.listeners('close').some((l) => calls(l, 'this.destroy()'));
}

/** Whether `listener` is a `JSStreamSocket`'s `'end'` listener, handing the end to its native side. */
function isWrapperEnd(listener: unknown): boolean {
  return calls(listener, '_handle.emitEOF()');
}

/**
 * A socket node:http has parsed (its CONNECT or upgrade handed out) keeps
 * the `on`, `addListener` and `prependListener` http put on it: a wrapper
 * while parsing, then node:net's own, own properties both, past
 * muxnet's `on()` — Node's `JSStreamSocket` over it then listened as any
 * listener (TLS records for every 'data' listener, and the socket's own
 * 'end' and 'finish'). Once http is done with it (no parser), they are
 * dropped for the class's own, which is what http means by them.
 */
function dropHttpListenerWraps(socket: Socket): void {
  if ((socket as unknown as { parser?: unknown }).parser) return;
  for (const name of ['on', 'addListener', 'prependListener'] as const) {
    const own = Object.getOwnPropertyDescriptor(socket, name)?.value as { name?: string } | undefined;
    if (own !== undefined && (own.name === 'socketListenerWrap' || own === (nodeNet.Socket.prototype as unknown as Record<string, unknown>)[name])) {
      delete (socket as unknown as Record<string, unknown>)[name];
    }
  }
}

/**
 * Whether Node's `JSStreamSocket` called this pause() or resume() from its
 * `readStop()` / `readStart()` (TLS holding its transport's reads back, or
 * asking for more), or from its constructor (`'new'`). Read from the call
 * sites themselves, whatever a user's `prepareStackTrace` or
 * `stackTraceLimit`; taken only under TLS, or on a socket node:http handed out.
 */
function calledByWrapper(method: 'readStop' | 'readStart' | 'new'): boolean {
  const { prepareStackTrace, stackTraceLimit } = Error;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  try {
    // A few frames up: a pause() wrapped by a subclass or a user stands between.
    Error.stackTraceLimit = 8;
    Error.prepareStackTrace = (_err, sites) => sites;
    Error.captureStackTrace(holder, calledByWrapper);
    // (Formatted when first read: before the user's prepareStackTrace is back.)
    const made = (site: NodeJS.CallSite) => site.isConstructor() && site.getFunctionName() === 'JSStreamSocket';
    const called = (site: NodeJS.CallSite) => site.getFunctionName() === method && site.getTypeName() === 'JSStreamSocket';
    return holder.stack?.some(method === 'new' ? made : called) ?? false;
  } catch {
    // Error's settings frozen (--frozen-intrinsics): read from the stack as V8 formats it then.
    return (new Error().stack ?? '').includes(method === 'new' ? ' new JSStreamSocket (' : ` JSStreamSocket.${method} (`);
  } finally {
    try {
      Error.prepareStackTrace = prepareStackTrace;
      Error.stackTraceLimit = stackTraceLimit;
    } catch {
      // (Frozen: never changed.)
    }
  }
}

/** Node's `JSStreamSocket` over a socket (see `Socket.on()`): its listeners, taken from the socket. */
type StreamWrap = {
  /** Its `'data'` listener: what the socket reads. */
  read: (chunk: Buffer) => void;
  /** Held back by its readStop(), until its readStart(). */
  paused: boolean;
  /** Its `'error'` listener, where Node has it. */
  relayError: ((err: Error) => void) | undefined;
  /** What the connection met (a reset, a write refused): for the wrapper alone. */
  connectionError: Error | undefined;
};

function isSocket(stream: unknown): stream is Socket {
  return stream instanceof Socket;
}

/** The parts of Readable's state muxnet reads or sets (Node 20.20, 22 and 24 alike). */
type ReadableState = {
  encoding: BufferEncoding | null;
  // An array since Node 20.20 (from `bufferIndex` on), a list before.
  buffer: { clear?: () => void } & Iterable<Buffer | string>;
  bufferIndex?: number;
  length: number;
  reading: boolean;
  /** Nothing more may be pushed (the end pushed, or no readable side: `readable: false`). */
  ended: boolean;
  flowing: boolean | null;
  paused: boolean;
};

function readableState(socket: Socket): ReadableState {
  return (socket as unknown as { _readableState: ReadableState })._readableState;
}

/** Whether `fn`'s source makes `call` (Node's own listeners, known by what they do). */
function calls(fn: unknown, call: string): boolean {
  return Function.prototype.toString.call(fn).includes(call);
}

/**
 * node:net's own `_normalizeArgs` (public code calls it: proxy agents,
 * wrappers of `connect`). Its arrays carry a mark, by which `connect([opts,
 * cb])` takes them as normalized already.
 */
export const normalizeArgs = (nodeNet as unknown as { _normalizeArgs: (args: unknown[]) => unknown[] })._normalizeArgs;
const NORMALIZED: symbol | undefined = Object.getOwnPropertySymbols(normalizeArgs([]))[0];

/** node:net's `normalizeArgs`: (options[, cb]) | (port[, host][, cb]) | (path[, cb]) | ([options, cb]) marked as normalized. */
export function normalizeConnectArgs(args: unknown[]): [SocketConnectOpts, (() => void) | undefined] {
  const normalized = args[0];
  if (Array.isArray(normalized) && NORMALIZED !== undefined && (normalized as unknown as Record<symbol, unknown>)[NORMALIZED]) {
    return [normalized[0] as SocketConnectOpts, typeof normalized[1] === 'function' ? (normalized[1] as () => void) : undefined];
  }
  const last = args[args.length - 1];
  const cb = typeof last === 'function' ? (last as () => void) : undefined;
  // As node:net, the first argument is read even when it is the callback: `connect(cb)` has a function for its port.
  const [first, second] = args;
  if (first !== null && typeof first === 'object') return [first as SocketConnectOpts, cb];
  if (isPipeName(first)) return [{ path: first }, cb];
  return [{ port: first as number | string, host: typeof second === 'string' ? second : undefined }, cb];
}
