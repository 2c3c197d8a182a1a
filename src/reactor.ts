// The JS side of a native reactor: one per backend per thread. The binding
// calls `dispatch` once per reactor turn with a batch of event records; this
// fans them out to the handle registered under each token.
// Imported, not the globals: those are accessors on globalThis, a call at every use on a hot path.
import { AsyncResource } from 'node:async_hooks';
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { markAsUntransferable } from 'node:worker_threads';
import { native, type NativeReactor } from './binding';
import { libuvSystemError, systemError } from './errors';
import { resolveBackend, type BackendName } from './options';
import { nextTick, setImmediate, setTimeout, clearTimeout } from './schedule';

/**
 * Sets a UDP socket's `SO_RCVBUF` (`recv`) or `SO_SNDBUF` to `size` bytes,
 * or reads it (`size` 0: the kernel's figure, on Linux twice what was set),
 * with node:dgram's error.
 */
export function udpBufferSize(reactor: NativeReactor, token: number, size: number, recv: boolean): number {
  const r = reactor.udpBufferSize(token, recv, size);
  if (r < 0) throw libuvSystemError('ERR_SOCKET_BUFFER_SIZE', 'Could not get or set buffer size', -r, recv ? 'uv_recv_buffer_size' : 'uv_send_buffer_size');
  return r;
}

/** What a token's owner hears. Only the methods its kind needs are called. */
/*
 * What the reactor calls on a handle, under symbols: a user's subclass of a
 * drop-in class may have an `onData` or `onClose` of its own (node:net keeps
 * its internals under symbols too), which must not be taken for these.
 */
export const kOnAccept = Symbol('muxnet.onAccept');
export const kOnAcceptError = Symbol('muxnet.onAcceptError');
export const kOnConnect = Symbol('muxnet.onConnect');
export const kOnData = Symbol('muxnet.onData');
export const kOnEnd = Symbol('muxnet.onEnd');
export const kOnDrain = Symbol('muxnet.onDrain');
export const kOnFileSent = Symbol('muxnet.onFileSent');
export const kOnClose = Symbol('muxnet.onClose');
export const kOnMessage = Symbol('muxnet.onMessage');
export const kOnReceiveError = Symbol('muxnet.onReceiveError');
export const kReadOn = Symbol('muxnet.readOn');
const kOwnCallbacks = Symbol('muxnet.ownCallbacks');

export interface Handle {
  /**
   * A connection came. `scope`, for a listener with an async context of its
   * own: the connection's, made in the reactor's (no request's store, as
   * node's accepted handle, made before any callback runs).
   */
  [kOnAccept]?(token: number, scope?: AsyncResource): void;
  [kOnAcceptError]?(errno: number): void;
  [kOnConnect]?(): void;
  [kOnData]?(chunk: Buffer): void;
  /** The rest of the read its event brought, once the ticks have run (see `Reactor.readOnAfterTicks`). */
  [kReadOn]?(): void;
  /** The peer's FIN; `hungUp`: both directions were shut by then (the kernel's hang-up, or this end's FIN out). */
  [kOnEnd]?(hungUp: boolean): void;
  [kOnDrain]?(): void;
  /** The oldest file queued by `sendFile` is sent: `sent` bytes. */
  [kOnFileSent]?(sent: number): void;
  /**
   * The socket is gone (token already free); `errno` 0 for an orderly
   * close. `syscall`: what met the error — `'write'` when sending queued
   * bytes did (node:net's `write EPIPE`), else `'read'`.
   */
  [kOnClose]?(errno: number, syscall: 'read' | 'write'): void;
  [kOnMessage]?(msg: Buffer, address: string, port: number): void;
  /** A UDP socket's receive failed (an ICMP error on a connected socket); it stays open. */
  [kOnReceiveError]?(errno: number): void;
  /**
   * Each of its events is a callback of its own, as each of libuv's is: the
   * ticks and promise jobs its listeners queue run before the batch's next
   * event is handed out (the drop-in's connections, servers and UDP
   * sockets, in node's order). Without it, they run after the batch (the
   * fast API's handlers).
   */
  readonly [kOwnCallbacks]?: boolean;
}

/**
 * Marks a handle class's events as callbacks of their own (`Handle[kOwnCallbacks]`):
 * one property on its prototype, none per instance.
 */
export function ownCallbacks(handleClass: abstract new (...args: never[]) => Handle): void {
  Object.defineProperty(handleClass.prototype, kOwnCallbacks, { value: true });
}

const {
  RECORD_WORDS,
  RECORD_KIND,
  RECORD_TOKEN_INDEX,
  RECORD_TOKEN_GENERATION,
  RECORD_A,
  RECORD_B,
  RECORD_C,
  RECORD_D,
  EVENT_ACCEPT,
  EVENT_ACCEPT_ERROR,
  EVENT_CONNECT,
  EVENT_DATA,
  EVENT_END,
  EVENT_DRAIN,
  EVENT_CLOSE,
  EVENT_MESSAGE,
  EVENT_REACTOR_ERROR,
  EVENT_RECEIVE_ERROR,
  EVENT_FILE_SENT,
} = native;

/**
 * A token is one integer below 2^53: the slot index in its low 32 bits,
 * the slot's generation above. The generation changes each time a slot is
 * reused, so the token of a closed socket never names another (the
 * binding answers `EBADF`), and a record for it never reaches a handle
 * attached to the slot since.
 */
const SLOT_SPAN = 2 ** 32;

/**
 * What `sendDatagram` returns for a datagram queued to leave at the end of
 * the batch (above any byte count: a datagram holds at most 65 535 bytes).
 */
export const SEND_QUEUED = 2 ** 31;

/** The count the native callback gets, alone, in libuv's closing phase (see `inClosingPhase`). */
const CLOSING_PHASE = -1;
/** The counts it gets, alone, where libuv runs its pending queue: a turn's start, after its poll phase (see `afterPollPhase`). */
const PENDING_PHASE = -2;
const PENDING_AFTER_POLL = -3;
/** The count it gets, alone, for the reads libuv makes a loop turn late (see `nextTurnRead`). */
const LATE_READS = -4;

/** Datagrams queued in one batch before they are sent early, to bound the queue. */
const MAX_QUEUED_SENDS = 1024;

/**
 * Hears how a queued datagram went when the batch's sends left: the bytes
 * sent, or a negative errno (`EAGAIN`: the send buffer was full; it was not
 * sent). It is handed where the datagram went and the `context` its sender
 * gave, so a sender makes one settler, not a closure per datagram.
 */
export type SendSettler = (result: number, host: string | undefined, port: number | undefined, context: unknown) => void;

/**
 * The datagrams of a batch waiting for their results, in the order sent.
 * Its arrays are refilled batch after batch, not regrown: an echo server
 * queues one entry per datagram.
 */
class Settlements {
  count = 0;
  readonly settlers: (SendSettler | undefined)[] = [];
  readonly hosts: (string | undefined)[] = [];
  readonly ports: (number | undefined)[] = [];
  readonly contexts: unknown[] = [];
  /** Each one's place in the native queue, or -1 when its result was known at once (`known`). */
  readonly places: number[] = [];
  readonly known: number[] = [];

  add(settle: SendSettler | undefined, host: string | undefined, port: number | undefined, context: unknown, place: number, known: number): void {
    const i = this.count++;
    this.settlers[i] = settle;
    this.hosts[i] = host;
    this.ports[i] = port;
    this.contexts[i] = context;
    this.places[i] = place;
    this.known[i] = known;
  }

  /**
   * Tells each settler its result (`results` by place, or `failed` for all
   * queued ones), then empties, dropping the settlers and contexts it held.
   */
  settle(results: Int32Array, failed: number): void {
    for (let i = 0; i < this.count; i++) {
      const settle = this.settlers[i];
      const context = this.contexts[i];
      this.settlers[i] = undefined;
      this.contexts[i] = undefined;
      if (settle === undefined) continue;
      const place = this.places[i];
      try {
        settle(place < 0 ? this.known[i] : failed < 0 ? failed : results[place], this.hosts[i], this.ports[i], context);
      } catch (err) {
        // Not thrown from here: this may be another socket's close() or
        // connect(), which must not get this datagram's error.
        nextTick(() => {
          throw err;
        });
      }
    }
    this.count = 0;
  }
}

/** Events fanned out to handles so far, by every reactor (see `eventsDispatched`). */
let dispatched = 0;

/**
 * How many events have been fanned out to handles: during a handler, its
 * own event's number. What an earlier handler of the batch started (a send
 * waiting for its address) may still be pending when a later one runs.
 */
export function eventsDispatched(): number {
  return dispatched;
}

/** A chunk kept by a reader pins at most this many times its own size of memory. */
const MAX_PIN_RATIO = 16;
/** The smallest pool copies are cut from: what a kept copy of a few bytes may pin. */
const MIN_POOL = 4096;
/**
 * Pools of copies, by size class: copies of `2^k` to `2^(k+1) - 1` bytes
 * are cut from a pool of `MAX_PIN_RATIO * 2^k` (at least `MIN_POOL`), so
 * a kept copy pins at most `MAX_PIN_RATIO` times its size (`MIN_POOL` for
 * one under 256 bytes), and a copy costs no allocation of its own: a fresh
 * ArrayBuffer per chunk (what node:net pays per read) cost the drop-in's
 * 16 KiB echo about a third of its messages per CPU-second.
 */
const pools: Buffer[] = [];
/** Each pool's memory (it starts at offset 0), kept: reading `.buffer` is a call into V8's runtime. */
const poolMemory: ArrayBuffer[] = [];
const poolUsed: number[] = [];

/**
 * The class `subarray` makes a Buffer's views of: Node gives it as Buffer's
 * species. Made directly, a view skips `subarray`'s species lookup, which
 * was ~8 % of a UDP echo server's user time (perf).
 */
const BufferView = (Buffer as unknown as { [Symbol.species]: new (buffer: ArrayBufferLike, byteOffset: number, length: number) => Buffer })[Symbol.species];

/**
 * A copy of `chunk` in memory of its own, for bytes that wait for a reader
 * who stopped (a paused socket's buffer): `retained()`'s 64 KiB view, or a
 * copy from its pools, would keep a 1 MiB slab or pool alive for as long
 * as they wait — a slab per paused socket, 13 times node:net's memory with
 * 200 of them (node:net's reads are sized to what they got).
 */
export function heldCopy(chunk: Buffer): Buffer {
  // Already in memory mostly its own (a copy made earlier, a concatenation): kept as it is.
  if (chunk.length * 2 >= chunk.buffer.byteLength) return chunk;
  return Buffer.from(chunk);
}

/**
 * `chunk`, or a copy of it if it is a small view of a large buffer (a read
 * slab: 1 MiB), so that whoever keeps it keeps at most `MAX_PIN_RATIO`
 * times its bytes alive (4 KiB for a few). A view would keep its whole
 * slab: a parser keeping a partial message, or a layer holding a chunk
 * for a paused reader, while others' traffic fills new slabs, would pin
 * a slab per chunk kept.
 */
export function retained(chunk: Buffer): Buffer {
  const len = chunk.length;
  // Its memory holds at least what precedes it: a chunk that far in is small beside it,
  // known without reading `.buffer` (a call into V8's runtime, per chunk).
  if (len * MAX_PIN_RATIO >= chunk.byteOffset + len && len * MAX_PIN_RATIO >= chunk.buffer.byteLength) return chunk;
  if (len === 0) return Buffer.alloc(0);
  const k = 31 - Math.clz32(len);
  let pool = pools[k];
  let at = poolUsed[k];
  if (pool === undefined || at + len > pool.length) {
    // Zero-filled: a copy's `.buffer` shows the pool, never memory the process freed.
    pool = pools[k] = Buffer.alloc(Math.max(MIN_POOL, MAX_PIN_RATIO * 2 ** k));
    poolMemory[k] = pool.buffer as ArrayBuffer;
    // As Buffer's own pool: a reader moving one copy's ArrayBuffer to another
    // thread (postMessage's transfer list) would empty other sockets' copies.
    markAsUntransferable(poolMemory[k]);
    at = 0;
  }
  pool.set(chunk, at);
  // The next copy starts 8-byte aligned, as Buffer's own pool does.
  poolUsed[k] = (at + len + 7) & ~7;
  return new BufferView(poolMemory[k], at, len);
}

function tokenOf(index: number, generation: number): number {
  return generation * SLOT_SPAN + index;
}

export class Reactor {
  readonly native: NativeReactor;
  /** Writes now what the kernel takes; returns the bytes left queued, or a negative errno. */
  readonly write: (token: number, data: Uint8Array) => number;
  /** Sends one datagram (to `host:port`, or the connected peer); returns the bytes sent, or a negative errno. */
  readonly send: (token: number, data: Uint8Array, host?: string | number, port?: number) => number;
  /** Queues one datagram for `flushSends`; returns its place in the queue, or a negative errno. */
  private readonly sendLater: (token: number, data: Uint8Array, host?: string | number, port?: number) => number;
  /**
   * The hosts of the last batch's datagrams (the native side keeps their
   * addresses, by the same index), and the index of the one whose message
   * was handed out last: a reply to it names it by index, and the native
   * side skips reading and parsing the address text (~2 % of a UDP echo
   * server's CPU).
   */
  private batchPeers: string[] | undefined;
  private peer = 0;
  /** True from a batch of events until the ticks it queued have run: datagrams sent meanwhile are queued. */
  private dispatching = false;
  /** A UDP socket was bound on this reactor: its batches queue datagrams from then on. */
  private hasDatagrams = false;
  /** Who hears each queued datagram's result. */
  private pending = new Settlements();
  /** Another, empty, to take `pending`'s place while its settlers run (undefined while a flush of theirs uses it). */
  private spare: Settlements | undefined = new Settlements();
  /** Datagrams in the native queue. */
  private queuedSends = 0;
  /** Where `flushSends` has the native side put the results (one array for every batch: a fresh one was an allocation and a sweep each time). */
  private readonly sendResults = new Int32Array(MAX_QUEUED_SENDS);
  /** Settlers of a flush are running: a flush they cause takes results of its own. */
  private settling = false;
  readonly backend: BackendName;
  /** Handles by slot index, and the generation of the token each was attached with. */
  private readonly handles: (Handle | undefined)[] = [];
  private readonly generations: number[] = [];
  /** The async context each handle's events run in, by slot (see `attach`). */
  private readonly scopes: (AsyncResource | undefined)[] = [];
  /** The read slab the last batch came in (marked untransferable once). */
  private slab: Buffer | undefined;
  /** The records of the batch being dispatched and their count, for `delivering` (none between batches). */
  private batchRecords: Int32Array | undefined;
  private batchCount = 0;
  /** The index of the record being handled in that batch, and of the one to hand out next. */
  private batchAt = 0;
  private batchNext = 0;
  /** An event's listener is running (not a tick between a batch's parts): see `atEventEnd`. */
  private inEvent = false;
  /** The handle whose event is being handed out, and one whose read goes on once the ticks have run (see `readOnAfterTicks`). */
  private handing: Handle | undefined;
  private readingOn: Handle | undefined;
  /** The part of the batch being handed out, and the most the native side makes (see `dispatch`). */
  private part = 0;
  private parts = 0;
  /**
   * Its memory and where in it the slab starts, read once a slab: each is a
   * call into V8's runtime, and every chunk and datagram is a view of it.
   */
  private slabMemory: ArrayBufferLike = new ArrayBuffer(0);
  private slabStart = 0;
  /** Handles that keep the process alive. */
  private refs = 0;
  /** What waits for libuv's closing phase of this loop turn (see `inClosingPhase`). */
  private closing: (() => void)[] = [];
  /** Handles' close callbacks for that phase, a list a handle (see `onHandleClose`). */
  private closes: (() => void)[][] = [];
  /** What the closing phase being run took (see `runClosing`). */
  private readonly closingRun = new PhaseRun();
  /** What waits for libuv's pending queue (see `afterPollPhase`), and what its phase being run took. */
  private requests: (() => void)[] = [];
  /** Requests for after the next poll phase (see `afterPollPhase`'s `late`). */
  private lateRequests: (() => void)[] = [];
  private readonly pendingRun = new PhaseRun();
  /** Calls due once the event being handed out has been, four words each (see `atEventEnd`). */
  private readonly eventEnd: unknown[] = [];
  /** Batches dispatched: a socket tells by it whether two of its events came in one. */
  batches = 0;

  constructor(backend: BackendName) {
    this.backend = backend;
    // MUXNET_WAKE=thread forces the waiter thread where libuv could watch
    // the poller's fd; MUXNET_SPLICE=1 makes splicing bulk input the
    // default of pipe() (Linux; see README, Proxy).
    const wake = process.env.MUXNET_WAKE;
    const options = { ...(wake ? { wake } : {}), ...(process.env.MUXNET_SPLICE === '1' ? { splice: true } : {}) };
    // Its turns run in the async context of no request (see the binding's JsSide::context).
    this.native = new native.Reactor(
      backend,
      (count, records, slab, peers, part, parts) =>
        count === CLOSING_PHASE
          ? this.runClosing(part)
          : count === PENDING_PHASE || count === PENDING_AFTER_POLL || count === LATE_READS
            ? this.runPending(part, count)
            : this.dispatch(count, records, slab, peers, part, parts),
      options,
    );
    this.write = this.native.writer();
    this.send = this.native.sender();
    this.sendLater = this.native.queuer();
  }

  /** Binds a UDP socket; returns its token or a negative errno. */
  udpBind(host: string, port: number, reuseAddr: boolean, reusePort: boolean, ipv6Only: boolean): number {
    this.queuesDatagrams();
    return this.native.udpBind(host, port, reuseAddr, reusePort, ipv6Only);
  }

  /** A UDP socket of the family, bound to nothing yet (`native.udpBindSocket` binds it); its token or a negative errno. */
  udpSocket(ipv6: boolean): number {
    this.queuesDatagrams();
    return this.native.udpSocket(ipv6);
  }

  /** Its batches queue datagrams from now on (see `sendDatagram`), and the process's exit sends what is queued. */
  private queuesDatagrams(): void {
    if (this.hasDatagrams) return;
    this.hasDatagrams = true;
    process.on('exit', this.sendAtExit);
  }

  /**
   * The process exits with datagrams queued (`process.exit()` from a later
   * listener or a tick, a throw nothing catches): they leave, as node:dgram's
   * had in their own callbacks; no callback runs then.
   */
  private readonly sendAtExit = (): void => {
    if (this.queuedSends > 0) this.native.flushSends(this.sendResults);
  };

  /**
   * Sends one datagram. Outside a batch of events it leaves at once: the
   * bytes sent or a negative errno. Inside one (a handler replying, or a
   * tick it queued), it is queued and the batch's datagrams leave
   * together after it, one `sendmmsg` per socket on Linux: `SEND_QUEUED`,
   * and `settle` hears the result then (a connected socket, `host`
   * undefined, always sends at once). An error known at once (a bad
   * address, a closed socket, a datagram too long) is returned either way.
   */
  sendDatagram(token: number, data: Uint8Array, host: string | undefined, port: number | undefined, settle?: SendSettler, context?: unknown): number {
    // A connected socket's datagrams go at once: the peer's ICMP refusal is
    // reported to the send that meets it, where one sendmmsg would spend it
    // on the next datagram of the batch and lose it.
    const to = this.hostOrPeer(host);
    if (!this.dispatching || host === undefined) return this.send(token, data, to, port);
    if (this.queuedSends === MAX_QUEUED_SENDS) this.flushSends();
    const place = this.sendLater(token, data, to, port);
    if (place < 0) return place;
    this.queuedSends++;
    this.pending.add(settle, host, port, context, place, 0);
    return SEND_QUEUED;
  }

  /** `host`, or the index of the last message's sender if that is who it names. */
  private hostOrPeer(host: string | undefined): string | number | undefined {
    const peers = this.batchPeers;
    return peers !== undefined && host !== undefined && peers[this.peer] === host ? this.peer : host;
  }

  /**
   * Tells `settle` of `result` (a send done or refused at once) — during
   * a batch, once the batch's datagrams have left, in its place among
   * them: for a caller whose results come in the order sent (node:dgram's
   * callbacks).
   */
  settleInTurn(settle: SendSettler, result: number, host?: string, port?: number, context?: unknown): void {
    if (!this.dispatching) return settle(result, host, port, context);
    this.pending.add(settle, host, port, context, -1, result);
  }

  /**
   * Sends the datagrams queued in this batch now, each socket's in order,
   * and tells each one's settler how it went. Called when the batch ends,
   * and before anything that must come after them (closing or connecting
   * a socket, changing its options).
   */
  flushSends(): void {
    const batch = this.pending;
    if (batch.count === 0) return;
    // The queues are empty before any settler runs: one that sends or
    // closes (flushing again) starts afresh, in step with the native queue,
    // and with results of its own while these are still being read.
    const results = this.settling ? new Int32Array(this.queuedSends) : this.sendResults;
    const r = this.queuedSends > 0 ? this.native.flushSends(results) : 0;
    this.queuedSends = 0;
    this.pending = this.spare ?? new Settlements();
    this.spare = undefined;
    const outer = this.settling;
    this.settling = true;
    try {
      batch.settle(results, r);
    } finally {
      this.settling = outer;
      this.spare = batch;
    }
  }

  /** Inside a batch of events, or a tick it queued: datagrams sent now are queued (see `sendDatagram`). */
  get inBatch(): boolean {
    return this.dispatching;
  }

  /** `'fd'` (libuv watches the poller) or `'thread'` (a waiter thread). */
  get wakeMode(): string {
    return this.native.wakeMode;
  }

  /**
   * `handle` hears the token's events. With `scope`, they run in its async
   * context (an `AsyncResource` made as node:net and node:dgram make their
   * libuv handles, so that `AsyncLocalStorage` and async hooks see each
   * socket's events where its connect, listen or createSocket was called);
   * without one (an accepted connection, the fast API: no cost on its hot
   * path), in the reactor's: the context of no request.
   */
  attach(token: number, handle: Handle, scope?: AsyncResource): void {
    const index = token % SLOT_SPAN;
    this.handles[index] = handle;
    this.generations[index] = (token - index) / SLOT_SPAN;
    this.scopes[index] = scope;
  }

  /** Forgets the token's handle (a stale token changes nothing). */
  detach(token: number): void {
    const index = token % SLOT_SPAN;
    if (this.generations[index] === (token - index) / SLOT_SPAN) this.forget(index);
  }

  private forget(index: number): void {
    this.handles[index] = undefined;
    this.scopes[index] = undefined;
  }

  /** The handle attached under exactly this slot and generation. */
  private handle(index: number, generation: number): Handle | undefined {
    return this.generations[index] === generation ? this.handles[index] : undefined;
  }

  /**
   * Closes a handle's socket now (RST instead of FIN if `reset`), and
   * releases its `keepAlive` (a handle without one keeps its own count).
   */
  closeHandle(token: number, keepAlive?: KeepAlive, reset = false): void {
    // What a handler sent before closing still leaves, as it would outside a batch.
    this.flushSends();
    if (reset) this.native.resetSocket(token);
    else this.native.closeSocket(token);
    this.detach(token);
    keepAlive?.release();
  }

  /**
   * A server or UDP socket closed: libuv's `uv_close` keeps the loop for
   * one more turn, to its closing phase, so a 'beforeExit' listener that
   * closes an unref'd one hears 'beforeExit' again, as with node:net's.
   * (A connection's own 'close' waits for that phase already.)
   */
  closeTurn(): void {
    this.inClosingPhase(() => {});
  }

  /** One more handle keeps the process alive. */
  ref(): void {
    if (this.refs++ === 0) this.native.setRef(true);
  }

  unref(): void {
    if (--this.refs === 0) this.native.setRef(false);
  }

  /**
   * Runs `fn` in libuv's closing phase of this loop turn, after the turn's
   * immediates (the next turn's, if called in that phase), in the order
   * queued and after the handles' close callbacks (`onHandleClose`): what
   * node would do a loop turn later, after the close callbacks of this one.
   * `setImmediate` where that phase is out of reach (Windows).
   */
  inClosingPhase(fn: () => void, scope?: AsyncResource): void {
    const bound = inScope(fn, scope);
    if (!this.closingArmed()) return void setImmediate(bound);
    this.closing.push(bound);
  }

  /**
   * Runs `fn` (in the caller's async context) where libuv would run a
   * request such as a shutdown made now, from its pending queue: after
   * the poll phase's callbacks and the ticks and promise jobs they queued,
   * before the immediates (up to 8 rounds); asked outside the poll phase
   * (a timer, an immediate), just before the next poll phase (and the loop
   * stays alive for it, as for node's request). Each a callback of its own. `late`:
   * after the next poll phase, not before it (see `nextTurnRead`).
   * `setImmediate` if the reactor is closed.
   */
  afterPollPhase(fn: () => void, late = false): void {
    const bound = AsyncResource.bind(fn);
    if (this.requests.length === 0 && this.lateRequests.length === 0) {
      if (!this.native.askPending()) return void setImmediate(bound);
      this.ref();
    }
    (late ? this.lateRequests : this.requests).push(bound);
  }

  /**
   * Runs `fn` where libuv would read what a socket has left a loop turn
   * later (a FIN that came with bytes: libuv reads up to the EOF only after
   * a short read, in the next turn's poll phase): before the events of the
   * next turn's batch (other sockets' reads of that poll phase), or just
   * after that poll phase if none comes, before its immediates, and in no
   * round of its pending queue. After this turn's timers and immediates,
   * so neither comes between that 'end' and the 'close' it brings, as with
   * node:net.
   */
  nextTurnRead(fn: () => void, scope?: AsyncResource): void {
    this.inClosingPhase(() => this.afterPollPhase(fn, true), scope);
  }

  /**
   * Runs `fns`, in order, as the close callbacks of one handle closed now:
   * in the closing phase, before what `inClosingPhase` queued, the handle
   * closed last first, as libuv's `uv_close` pushes each onto the
   * head of the loop's closing list (node:net's sockets destroyed in one
   * turn say 'close' last-to-first). `setImmediate` where that phase is out
   * of reach.
   */
  onHandleClose(scope: AsyncResource | undefined, fns: (() => void)[]): void {
    const bound = fns.map((fn) => inScope(fn, scope));
    if (!this.closingArmed()) return void setImmediate(() => bound.forEach((fn) => fn()));
    this.closes.push(bound);
  }

  /** Whether the closing phase will call back (asks for it once a phase); false where it cannot. */
  private closingArmed(): boolean {
    return this.closing.length > 0 || this.closes.length > 0 || this.native.inClosingPhase();
  }

  /**
   * Runs the callbacks due in this closing phase (`part` 0 takes those
   * queued so far), each a callback of its own, as node's close callbacks
   * are: the ticks and promise jobs one queues run before the next
   * (`runTicks`; without it, a part each). True while some remain, for the
   * native side to call again (after a throw too: it went to
   * 'uncaughtException', as from node's).
   */
  private runClosing(part: number): boolean {
    if (part === 0) {
      const due: (() => void)[] = [];
      for (let i = this.closes.length - 1; i >= 0; i--) due.push(...this.closes[i]);
      due.push(...this.closing);
      this.closing = [];
      this.closes = [];
      this.closingRun.start(due);
    }
    return this.closingRun.run();
  }

  /**
   * Runs what `afterPollPhase` queued, as `runClosing` its phase's
   * callbacks: before the poll phase the requests, after it the late ones
   * too (asked for again till then); `LATE_READS` the late ones alone (the
   * native side keeps the others asked for).
   */
  private runPending(part: number, phase: number): boolean {
    if (part === 0) {
      let due: (() => void)[];
      if (phase === LATE_READS) {
        due = this.lateRequests;
        this.lateRequests = [];
      } else {
        due = this.requests;
        this.requests = [];
        if (phase === PENDING_AFTER_POLL) {
          due.push(...this.lateRequests);
          this.lateRequests = [];
        }
        if (this.lateRequests.length > 0) this.native.askPending();
      }
      if (due.length > 0 && this.requests.length === 0 && this.lateRequests.length === 0) this.unref();
      this.pendingRun.start(due);
    }
    return this.pendingRun.run();
  }

  /**
   * Calls `fn(a, b, c)` once the listener of the event being handed out
   * returns: where node would run a tick it queued, between libuv's
   * separate callbacks, not after the whole batch. False outside a batch's
   * events (queue a tick then). For a UDP send's address, resolved on a
   * tick in node: its bytes are taken before the next event's listener
   * reuses the buffer or changes the socket's options.
   */
  atEventEnd<A, B, C>(fn: (a: A, b: B, c: C) => void, a: A, b: B, c: C): boolean {
    if (!this.inEvent) return false;
    this.eventEnd.push(fn, a, b, c);
    return true;
  }

  /**
   * Asked by the handle whose event is being handed out, for a read that
   * brings several of libuv's (the drop-in's 64 KiB pieces of one reactor
   * read, onread's buffers): true if the reactor will call its `[kReadOn]`
   * for the rest once the ticks and promise jobs queued so far have run, as
   * between two events — outside its async context, where a throw reaches
   * the top as from node's own — so a destroy from a tick queued in 'data'
   * finds the rest unread, and node:net resets the peer over it. False
   * outside that handle's event: it reads on at once. False too where the
   * parts could run out: a read going on may end a part without handing out
   * a record (a tick's caught throw, no tick runner), and the native side
   * makes at most `parts` (for the batch's records and each byte it read,
   * twice): granted only while those left exceed the records left, each
   * part handing out one at least, the batch always ends (reviews: two
   * caught throws once left a batch half-handed, its slab refilled under
   * the rest; an onread rest held from an earlier turn's read, after a
   * throw, outgrew this turn's bytes).
   */
  readOnAfterTicks(handle: Handle): boolean {
    if (!this.inEvent || this.handing !== handle || this.part + this.batchCount - this.batchAt >= this.parts) return false;
    this.readingOn = handle;
    return true;
  }

  /** Runs the calls due at the event's end; one that throws leaves the queue with those before it, the rest stay due. */
  private runEventEnd(): void {
    const due = this.eventEnd;
    let ran = 0;
    try {
      while (ran < due.length) {
        const fn = due[ran] as (a: unknown, b: unknown, c: unknown) => void;
        ran += 4;
        fn(due[ran - 3], due[ran - 2], due[ran - 1]);
      }
    } finally {
      if (ran === due.length) due.length = 0;
      else due.splice(0, ran);
    }
  }

  /**
   * Hands out a batch, in parts: when one ends (a throw, or see `fanOut`),
   * true if events remain, and the native side calls again — a callback
   * scope of its own, so the ticks and promise jobs queued run first — with
   * the next `part`.
   */
  private dispatch(count: number, records: Int32Array, slab: Buffer, peers: string[] | undefined, part: number, parts: number): boolean {
    if (part === 0) this.beginBatch(count, records, slab, peers, parts);
    this.part = part;
    if (this.fanOut(count, records, peers)) return true;
    this.batchRecords = undefined;
    // The batch's datagrams leave together once the batch and the ticks
    // it queued have run (queued after them): node:dgram's send resolves
    // its address on the next tick, so a 'message' listener's reply is sent there.
    if (this.dispatching) nextTick(this.endBatch);
    return false;
  }

  private beginBatch(count: number, records: Int32Array, slab: Buffer, peers: string[] | undefined, parts: number): void {
    if (slab !== this.slab) {
      // Its views are kept (the drop-in's 'data' chunks from 64 KiB, the fast API's):
      // a reader moving one's memory to another thread would empty all the others.
      markAsUntransferable(slab.buffer);
      this.slab = slab;
      this.slabMemory = slab.buffer;
      this.slabStart = slab.byteOffset;
    }
    // In step with the native side's list of the batch's senders.
    this.batchPeers = peers;
    this.peer = 0;
    // A reactor that never had a UDP socket (TCP only) pays no tick per turn.
    this.dispatching = this.hasDatagrams;
    this.batchRecords = records;
    this.batchCount = count;
    this.parts = parts;
    this.batchNext = 0;
    this.batches++;
  }

  private readonly endBatch = (): void => {
    this.dispatching = false;
    this.flushSends();
  };

  /**
   * Whether the batch being dispatched holds bytes, an end or a close for
   * `token` (`bytes`: bytes alone): read from the kernel already, and not
   * taken yet if its record comes after the one being handled. Scanned only
   * when asked (a socket about to move to another thread, or closed), so
   * the loop pays nothing for it.
   */
  delivering(token: number, bytes = false): boolean {
    const records = this.batchRecords;
    if (records === undefined) return false;
    for (let i = this.batchAt + 1, at = i * RECORD_WORDS; i < this.batchCount; i++, at += RECORD_WORDS) {
      const kind = records[at + RECORD_KIND];
      if ((kind === EVENT_DATA || (!bytes && (kind === EVENT_END || kind === EVENT_CLOSE))) && tokenOf(records[at + RECORD_TOKEN_INDEX], records[at + RECORD_TOKEN_GENERATION]) === token) return true;
    }
    return false;
  }

  /** `length` bytes of the read slab from `offset`, as a view. */
  private slabView(offset: number, length: number): Buffer {
    return new BufferView(this.slabMemory, this.slabStart + offset, length);
  }

  /**
   * A throw nothing catches: the process dies at it, as node's. The datagrams the batch's
   * earlier listeners sent leave first (node's had, in their own callbacks); this one's not.
   */
  private dieAt(err: unknown): never {
    this.eventEnd.length = 0;
    this.flushSends();
    throw err;
  }

  /**
   * Hands out the batch's events from `batchNext`. After one whose handle
   * has callbacks of its own, the ticks and promise jobs queued run
   * (`runTicks`) before the next; without Node's runner, the part ends
   * there: true if events remain. A throwing handler must not cost the
   * other connections their events: if something will catch the throw
   * ('uncaughtException'), a handle with an async context of its own (the
   * drop-in's) has it reported there at once (`deliverInScope`), another's
   * ends the part (the rest come in the next); if nothing will, the process
   * ends now, as with node:net, before another callback runs.
   */
  private fanOut(count: number, records: Int32Array, peers: string[] | undefined): boolean {
    let thrown: unknown[] | undefined;
    this.inEvent = true;
    try {
      for (let i = this.batchNext, at = i * RECORD_WORDS; i < count; i++, at += RECORD_WORDS) {
        dispatched++;
        this.batchAt = i;
        this.batchNext = i + 1;
        const kind = records[at + RECORD_KIND];
        const index = records[at + RECORD_TOKEN_INDEX];
        const generation = records[at + RECORD_TOKEN_GENERATION];
        let own: boolean | undefined;
        try {
          // An accepted connection is handed out in its listener's context, with one of its own
          // (made here, outside the listener's): its events are its own, as node's (a store one
          // listener enters stays in that connection).
          const scope = this.scopes[kind === EVENT_ACCEPT ? records[at + RECORD_A] : index];
          if (scope === undefined) own = this.deliver(kind, at, index, generation, records, peers);
          else {
            const accepted = kind === EVENT_ACCEPT ? new AsyncResource('MUXNET_SOCKET') : undefined;
            own = scope.runInAsyncScope(this.deliverInScope, this, kind, at, index, generation, records, peers, accepted);
          }
          if (this.eventEnd.length > 0) this.runEventEnd();
        } catch (err) {
          if (!caught()) this.dieAt(err);
          thrown = [err];
          // Caught, node runs the ticks queued before the throw, each on its own.
          while (this.eventEnd.length > 0) {
            try {
              this.runEventEnd();
            } catch (later) {
              if (!caught()) this.dieAt(later);
              thrown.push(later);
            }
          }
          // A read asked to go on (before an event-end call threw): in the next part.
          if (this.readingOn !== undefined) this.batchNext = i;
          break;
        }
        // The rest of its read: this record again, once the ticks have run (the same if a throw ends the part).
        if (this.readingOn !== undefined) {
          this.batchNext = i--;
          at -= RECORD_WORDS;
        }
        if (own === true && i + 1 < count) {
          if (runTicks === undefined) return true;
          // A throw from a tick ends the part: the next part goes on after this event (or with its read's rest).
          this.inEvent = false;
          runTicks();
          this.inEvent = true;
        }
      }
    } finally {
      this.inEvent = false;
      this.handing = undefined;
    }
    rethrow(thrown);
    return false;
  }

  /**
   * `deliver`, in the handle's async context: a listener's throw that
   * 'uncaughtException' will catch is reported there (see `reportCaught`),
   * and the batch goes on, the ticks queued run first.
   */
  private deliverInScope(kind: number, at: number, index: number, generation: number, records: Int32Array, peers: string[] | undefined, accepted: AsyncResource | undefined): boolean | undefined {
    try {
      return this.deliver(kind, at, index, generation, records, peers, accepted);
    } catch (err) {
      reportCaught(err);
      return true;
    }
  }

  /** Hands one record of the batch to its handle; whether that handle has callbacks of its own (`kOwnCallbacks`). */
  private deliver(kind: number, at: number, index: number, generation: number, records: Int32Array, peers: string[] | undefined, accepted?: AsyncResource): boolean | undefined {
    this.handing = undefined;
    const readOn = this.readingOn;
    this.readingOn = undefined;
    if (kind === EVENT_ACCEPT) {
      const listener = this.handle(records[at + RECORD_A], records[at + RECORD_B]);
      // A listener closed earlier in this batch takes no more
      // connections: reset the socket, as the kernel resets what
      // waits in a closed listener's backlog (node:net's clients
      // see ECONNRESET, not an empty answer).
      if (listener?.[kOnAccept]) listener[kOnAccept](tokenOf(index, generation), accepted);
      else this.native.resetSocket(tokenOf(index, generation));
      return listener?.[kOwnCallbacks];
    }
    if (kind === EVENT_REACTOR_ERROR) throw new Error(`muxnet: the ${this.backend} reactor failed to wait for events (errno ${records[at + RECORD_A]})`);
    // In step with the native side's list of the batch's senders, handle or not.
    if (kind === EVENT_MESSAGE) this.peer = records[at + RECORD_D];
    const handle = this.handle(index, generation);
    this.handing = handle;
    if (handle === undefined) return undefined;
    // (Destroyed since, or connected again: its token is gone, and the rest with it.)
    if (readOn !== undefined) {
      if (readOn === handle) handle[kReadOn]?.();
      return handle[kOwnCallbacks];
    }
    switch (kind) {
      case EVENT_DATA:
        handle[kOnData]?.(this.slabView(records[at + RECORD_A], records[at + RECORD_B]));
        break;
      case EVENT_CLOSE:
        this.forget(index);
        handle[kOnClose]?.(records[at + RECORD_A], records[at + RECORD_B] === 1 ? 'write' : 'read');
        break;
      case EVENT_END:
        handle[kOnEnd]?.(records[at + RECORD_A] === 1);
        break;
      case EVENT_DRAIN:
        handle[kOnDrain]?.();
        break;
      case EVENT_FILE_SENT:
        handle[kOnFileSent]?.((records[at + RECORD_A] >>> 0) + records[at + RECORD_B] * SLOT_SPAN);
        break;
      case EVENT_CONNECT:
        handle[kOnConnect]?.();
        break;
      case EVENT_MESSAGE:
        handle[kOnMessage]?.(this.slabView(records[at + RECORD_A], records[at + RECORD_B]), peers![this.peer], records[at + RECORD_C]);
        break;
      case EVENT_RECEIVE_ERROR:
        handle[kOnReceiveError]?.(records[at + RECORD_A]);
        break;
      case EVENT_ACCEPT_ERROR:
        handle[kOnAcceptError]?.(records[at + RECORD_A]);
        break;
    }
    return handle[kOwnCallbacks];
  }
}

/**
 * Callbacks libuv runs one by one in a phase, each a callback of its own:
 * the ticks and promise jobs one queues run before the next (`runTicks`;
 * without it, a part each). A throw ends the part; the next goes on after.
 */
class PhaseRun {
  private due: (() => void)[] = [];
  private at = 0;

  start(due: (() => void)[]): void {
    this.due = due;
    this.at = 0;
  }

  /** True while some remain, for the native side to call again (after a throw too: it went to 'uncaughtException', as from node's). */
  run(): boolean {
    const due = this.due;
    while (this.at < due.length) {
      due[this.at++]!();
      if (this.at === due.length) break;
      if (runTicks === undefined) return true;
      runTicks();
    }
    // Not kept until the next phase: the callbacks hold their sockets.
    this.due = [];
    return false;
  }
}

/**
 * Node's runner of the ticks and promise jobs due between two callbacks, as
 * its timers run them between timers: a call when nothing is queued, where
 * a callback scope of its own for each event cost the drop-in an eighth of
 * its echo rate. Undocumented (DEP0134, documentation only), so looked for;
 * under `--pending-deprecation` Node puts a wrapper there that warns (and
 * throws, with `--throw-deprecation`): not used, each event ends a part.
 */
const tickCallback = (process as { _tickCallback?: () => void })._tickCallback;
const runTicks = tickCallback?.name === 'runNextTicks' ? tickCallback : undefined;

/** Whether a throw reaching the top will be caught ('uncaughtException', a domain) rather than end the process. */
function caught(): boolean {
  return process.listenerCount('uncaughtException') > 0 || process.hasUncaughtExceptionCaptureCallback();
}

/**
 * A handle's listener threw, in its async context: what 'uncaughtException'
 * will catch is reported here and now, in that context, as node reports a
 * throw from the handle's own callback (node:test tells by the context which
 * test failed; rethrown after the batch, the reactor's context was current).
 * What nothing will catch goes up, to end the process (see `fanOut`).
 */
function reportCaught(err: unknown): void {
  if (!caught()) throw err;
  native.reportUncaught(err);
}

/**
 * `fn` bound to a handle's async context, as node's close callbacks run, its
 * throw reported there; without one, `fn` (the reactor's context). A
 * closure, not `scope.bind()`: on Node 20 that costs 16 µs a call (it
 * defines a deprecated getter on each bound function), and a connection's
 * close and end take a few — a fifth of the CPU of a connect and close.
 */
function inScope(fn: () => void, scope: AsyncResource | undefined): () => void {
  if (scope === undefined) return fn;
  return () => scope.runInAsyncScope(runReported, null, fn);
}

function runReported(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    reportCaught(err);
  }
}

/**
 * What user code threw while the batch was handed out, and caught: the
 * first error is thrown, the others on ticks after (each reaches
 * 'uncaughtException', as a throw from each of libuv's separate callbacks
 * would).
 */
function rethrow(thrown: unknown[] | undefined): void {
  if (thrown === undefined) return;
  for (const err of thrown.slice(1)) nextTick(() => { throw err; });
  throw thrown[0];
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

/**
 * A listener's accept that failed with `EMFILE`/`ENFILE` (fds ran out; on
 * Windows, any accept error): the reactor stopped accepting so it does not
 * spin; it resumes when one of its sockets closes, and after a pause in any
 * case (unless the listener has closed by then). One per listener.
 */
export class AcceptRetry {
  private static readonly PAUSE_MS = 100;
  private timer: NodeJS.Timeout | undefined;

  /** Called with every accept error; `open()` says whether the listener is still there. */
  failed(err: NodeJS.ErrnoException, reactor: Reactor, token: number, open: () => boolean): void {
    if (err.code !== 'EMFILE' && err.code !== 'ENFILE' && process.platform !== 'win32') return;
    this.cancel();
    this.timer = setTimeout(() => open() && reactor.native.resumeAccept(token), AcceptRetry.PAUSE_MS).unref();
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

const reactors = new Map<BackendName, Reactor>();

/** This thread's reactors made so far. */
export function openReactors(): Reactor[] {
  return [...reactors.values()];
}

/**
 * This thread's reactor for `backend` (default: `$MUXNET_BACKEND` or mio),
 * made on first use; or, if the system refuses what it needs (no fd left:
 * `EMFILE`; for select, an fd at or above `FD_SETSIZE`), the negative errno,
 * for the caller to report as its own call's error (node:dgram's `bind
 * EMFILE`). A later call tries again.
 */
export function openReactor(backend?: unknown): Reactor | number {
  const name = resolveBackend(backend);
  let reactor = reactors.get(name);
  if (reactor === undefined) {
    try {
      reactor = new Reactor(name);
    } catch (err) {
      // The binding codes such a failure with its errno, in decimal.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === undefined || !/^\d+$/.test(code)) throw err;
      return -Number(code);
    }
    reactors.set(name, reactor);
  }
  return reactor;
}

/** `openReactor`, throwing the system's refusal as a Node error (`mio reactor EMFILE`). */
export function getReactor(backend?: unknown): Reactor {
  const reactor = openReactor(backend);
  if (typeof reactor === 'number') throw systemError(-reactor, `${resolveBackend(backend)} reactor`);
  return reactor;
}
