/**
 * A load-balancing TCP proxy on the fast API: each client is joined to an
 * upstream with `Connection.pipe()`, so the bytes of a pair cross the
 * reactor in Rust with no JavaScript per chunk. JavaScript only chooses the
 * upstream, fails over, and keeps the books.
 */
import { EventEmitter } from 'node:events';
import { connect, listen, type BackendName, type Connection, type PipeOptions, type Server, type SocketAddress } from '../../fast';
import { invalidArgType, systemError, uvErrno } from '../../errors';
import { validateBoolean, validateInteger, validateObject } from '../../options';
import { LiveSet } from '../../server';
import { closeTimeout } from '../../server/drain';
import { Balancer, type Strategy, type Upstream, type UpstreamSpec } from './balancer';

export { Balancer, MAX_WEIGHT, STRATEGIES, parseUpstream, type BalancerOptions, type Strategy, type Upstream, type UpstreamSpec } from './balancer';

export interface ProxyOptions {
  /** Where to listen (port 0 picks one; host default 127.0.0.1). */
  port?: number;
  host?: string;
  backend?: BackendName;
  upstreams: readonly UpstreamSpec[];
  strategy?: Strategy;
  /** An upstream that has not accepted within this is given up for the next (default 2000 ms). */
  connectTimeoutMs?: number;
  /** How often each upstream is probed with a TCP connect + close (default 2000 ms). */
  healthIntervalMs?: number;
  /** A probe not connected within this failed (default 500 ms). */
  healthTimeoutMs?: number;
  /** Failures in a row (client connects or probes) that eject an upstream (default 2). */
  maxFailures?: number;
  /** Clients beyond this many open pairs are closed at once (default: no limit). */
  maxConnections?: number;
  /**
   * Linux: relay each pair's bulk input with `splice(2)` (`PipeOptions.splice`
   * of muxnet/fast; default: on only with `MUXNET_SPLICE=1`). Less CPU for
   * the proxy, more for its peers on the same host (see README, Proxy).
   */
  splice?: boolean;
}

/** What one upstream has carried. */
export interface UpstreamStats {
  address: string;
  weight: number;
  healthy: boolean;
  /** Pairs open (or connecting) now. */
  live: number;
  /** Pairs joined to it so far. */
  pairs: number;
  /** Connects that failed (refused, timed out) or probes that did. */
  failures: number;
  /** Pairs that ended with an error (a reset) after joining. */
  errors: number;
  /** Bytes from clients to it. */
  bytesUp: number;
  /** Bytes from it to clients. */
  bytesDown: number;
}

export interface ProxyStats {
  /** Clients open now. */
  live: number;
  accepted: number;
  /** Clients closed at once: over `maxConnections`. */
  rejected: number;
  /** Clients closed because no upstream would take them. */
  unavailable: number;
  bytesUp: number;
  bytesDown: number;
  /** Bytes the proxy holds now: waiting for an upstream to connect, and queued in the reactor. */
  buffered: number;
  upstreams: UpstreamStats[];
}

export interface CloseOptions {
  /** How long live pairs may take to finish before they are destroyed (default 10 000 ms). */
  timeout?: number;
}

/** Bytes a client may send before its upstream connects; past them it is paused. */
const PENDING_CAP = 256 * 1024;
/** The longest a down upstream waits between probes, in health intervals. */
const MAX_BACKOFF = 16;

const ETIMEDOUT = uvErrno('ETIMEDOUT');
/** Failures of this process, not of the upstream: they eject nothing. */
const LOCAL_ERRORS = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

/** One client and its upstream, through the attempts to find one. */
interface Pair {
  client: Connection<Pair>;
  /** The upstream connection now (connecting, or joined), if any. */
  upstream: Connection<Pair> | undefined;
  target: Upstream | undefined;
  /** Upstreams that failed this client (made on the first failure: most pairs never need it). */
  tried: Set<Upstream> | undefined;
  /** Client bytes read before the upstream connected, in order (none once joined). */
  pending: Buffer[] | undefined;
  pendingBytes: number;
  clientEnded: boolean;
  piped: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Bytes written to the upstream from JS (before the join, or in the batch that joined). */
  written: number;
}

interface Counters {
  pairs: number;
  failures: number;
  errors: number;
  bytesUp: number;
  bytesDown: number;
  /** Health probing: when next, how far apart while down, whether one is out. */
  nextProbe: number;
  backoff: number;
  probing: boolean;
}

/** The proxy's events and their arguments. */
export interface ProxyEvents {
  /** Ejected after `maxFailures` failures in a row; `err` is the last. */
  'upstream-down': [upstream: Upstream, err: NodeJS.ErrnoException];
  /** Re-admitted after a successful connect or probe. */
  'upstream-up': [upstream: Upstream];
  /** A client's connect failed (refused, timed out); the next upstream is tried at once. */
  'connect-failed': [upstream: Upstream, err: NodeJS.ErrnoException, clientAddress: string | undefined];
  /** No upstream took the client; it was closed. */
  unavailable: [clientAddress: string];
  /**
   * This process ran out of fds (or memory): accepting failed (it resumes by
   * itself), or a connect could not start (that client is closed). Without a
   * listener it is a process warning.
   */
  error: [err: Error];
  /** `close()` finished. */
  close: [stats: ProxyStats];
}

/** The proxy: a listening server that joins each client to an upstream. Events: `ProxyEvents`. */
export class ProxyServer extends EventEmitter<ProxyEvents> {
  readonly balancer: Balancer;
  private readonly server: Server<Pair>;
  private readonly options: Required<Omit<ProxyOptions, 'port' | 'host' | 'backend' | 'upstreams' | 'strategy' | 'maxFailures' | 'splice'>>;
  /** Each pair's `PipeOptions`. */
  private readonly pipeOptions: PipeOptions;
  /** The reactor backend its sockets are on. */
  readonly backend: BackendName;
  private readonly pairs = new LiveSet<Pair>();
  private readonly counters = new Map<Upstream, Counters>();
  private readonly totals = { accepted: 0, rejected: 0, unavailable: 0 };
  private readonly health: NodeJS.Timeout;
  private closing: Promise<ProxyStats> | undefined;

  constructor(options: ProxyOptions) {
    super();
    const opts = validateObject(options, 'options') as unknown as ProxyOptions;
    this.balancer = new Balancer(opts.upstreams, { strategy: opts.strategy, maxFailures: opts.maxFailures });
    const integer = (name: keyof ProxyOptions, fallback: number, min = 1) => validateInteger(opts[name], `options.${name}`, fallback, min, 2 ** 31 - 1);
    this.options = {
      connectTimeoutMs: integer('connectTimeoutMs', 2000),
      healthIntervalMs: integer('healthIntervalMs', 2000),
      healthTimeoutMs: integer('healthTimeoutMs', 500),
      maxConnections: opts.maxConnections === undefined ? Infinity : integer('maxConnections', 0, 0),
    };
    this.pipeOptions = opts.splice === undefined ? {} : { splice: validateBoolean(opts.splice, 'options.splice', false) };
    for (const u of this.balancer.upstreams) {
      this.counters.set(u, { pairs: 0, failures: 0, errors: 0, bytesUp: 0, bytesDown: 0, nextProbe: 0, backoff: 0, probing: false });
    }
    this.server = listen<Pair>({ port: opts.port, host: opts.host, backend: opts.backend, allowHalfOpen: true }, this.clientHandlers());
    this.backend = this.server.backend;
    this.health = setInterval(() => this.probeAll(), this.options.healthIntervalMs).unref();
  }

  /** The port it listens on. */
  get port(): number {
    return this.server.port;
  }

  /** Where it listens; null once closed. */
  address(): SocketAddress | null {
    return this.server.address() as SocketAddress | null;
  }

  /** Counts now: totals, each upstream, bytes each way (live pairs included). */
  stats(): ProxyStats {
    const ups = new Map<Upstream, UpstreamStats>();
    for (const u of this.balancer.upstreams) {
      const c = this.counters.get(u)!;
      ups.set(u, {
        address: u.address,
        weight: u.weight,
        healthy: u.healthy,
        live: u.live,
        pairs: c.pairs,
        failures: c.failures,
        errors: c.errors,
        bytesUp: c.bytesUp,
        bytesDown: c.bytesDown,
      });
    }
    let buffered = 0;
    for (const pair of this.pairs) {
      buffered += pair.pendingBytes + pair.client.bufferedAmount + (pair.upstream?.bufferedAmount ?? 0);
      if (!pair.piped || !pair.target) continue;
      const s = ups.get(pair.target)!;
      s.bytesUp += pair.written + pair.client.bytesRelayed;
      s.bytesDown += pair.upstream!.bytesRelayed;
    }
    const upstreams = [...ups.values()];
    return {
      live: this.pairs.size,
      ...this.totals,
      bytesUp: upstreams.reduce((n, s) => n + s.bytesUp, 0),
      bytesDown: upstreams.reduce((n, s) => n + s.bytesDown, 0),
      buffered,
      upstreams,
    };
  }

  /**
   * Stops accepting and lets the live pairs finish; those still open after
   * `timeout` ms are destroyed. Resolves with the final stats. Called again
   * meanwhile, it returns the same promise, and a sooner deadline holds.
   */
  close(options?: CloseOptions): Promise<ProxyStats> {
    let timeout: number;
    try {
      timeout = closeTimeout(options, 10_000);
    } catch (err) {
      // Bad options reject, as the servers' close() does.
      return Promise.reject(err);
    }
    const expire = (pair: Pair) => {
      pair.client.destroy();
      pair.upstream?.destroy();
    };
    if (this.closing) {
      // A second close (a second SIGTERM) whose deadline comes sooner holds.
      void this.pairs.drain(timeout, expire);
      return this.closing;
    }
    this.server.close();
    clearInterval(this.health);
    this.closing = this.pairs.drain(timeout, expire).then(() => {
      const stats = this.stats();
      this.tell('close', stats);
      return stats;
    });
    return this.closing;
  }

  private clientHandlers() {
    return {
      onOpen: (client: Connection<Pair>) => this.accept(client),
      onData: (conn: Connection<Pair>, chunk: Buffer) => this.data(conn.data!, conn, chunk),
      onEnd: (conn: Connection<Pair>) => this.ended(conn.data!, conn),
      onClose: (client: Connection<Pair>) => this.clientClosed(client.data),
      onError: (err: Error) => this.warn(err),
    };
  }

  /** Handlers of every upstream connection; `conn.data` is its pair. */
  private readonly upstreamHandlers = {
    onOpen: (conn: Connection<Pair>) => this.upstreamOpen(conn.data!, conn),
    onData: (conn: Connection<Pair>, chunk: Buffer) => this.data(conn.data!, conn, chunk),
    onEnd: (conn: Connection<Pair>) => this.ended(conn.data!, conn),
    onClose: (conn: Connection<Pair>, err?: Error) => this.upstreamClosed(conn.data!, conn, err),
  };

  private accept(client: Connection<Pair>): void {
    this.totals.accepted++;
    if (this.pairs.size >= this.options.maxConnections) {
      this.totals.rejected++;
      client.destroy();
      return;
    }
    const pair: Pair = {
      client,
      upstream: undefined,
      target: undefined,
      tried: undefined,
      pending: undefined,
      pendingBytes: 0,
      clientEnded: false,
      piped: false,
      timer: undefined,
      written: 0,
    };
    client.data = pair;
    this.pairs.add(pair);
    this.attempt(pair);
  }

  /** An `'error'` event, or a process warning if nothing listens (an unhandled one would throw). */
  private warn(err: Error): void {
    if (this.listenerCount('error') > 0) this.tell('error', err);
    else process.emitWarning(`muxnet proxy: ${err.message}`);
  }

  /**
   * Emits `event`; what a listener throws is thrown again on the next tick
   * (it reaches 'uncaughtException'). The proxy emits in the middle of its
   * work (before it closes a client given up, tries the next upstream,
   * joins a pair): a throw there must not skip the rest. (`args` is typed
   * as EventEmitter<T> types emit()'s: a plain ProxyEvents[E] fails to check.)
   */
  private tell<E extends keyof ProxyEvents>(event: E, ...args: E extends keyof ProxyEvents ? ProxyEvents[E] : never): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      process.nextTick(() => { throw err; });
    }
  }

  /** Connects the pair to the next upstream the balancer offers, or gives the client up. */
  private attempt(pair: Pair): void {
    const clientAddress = pair.client.remoteAddress ?? '';
    const target = this.balancer.pick(clientAddress, pair.tried);
    if (!target) {
      this.totals.unavailable++;
      this.tell('unavailable', clientAddress);
      pair.client.destroy();
      return;
    }
    pair.target = target;
    this.balancer.acquire(target);
    let upstream: Connection<Pair>;
    try {
      upstream = connect<Pair>({ host: target.host, port: target.port, backend: this.backend, allowHalfOpen: true }, this.upstreamHandlers);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (!LOCAL_ERRORS.has(code)) {
        // Known at once (no route, …): as good as refused.
        this.failed(pair, target, err as Error);
        return;
      }
      // Out of fds or memory here: no upstream's fault, and no other would do better.
      this.balancer.release(target);
      pair.target = undefined;
      this.warn(err as Error);
      pair.client.destroy();
      return;
    }
    upstream.data = pair;
    pair.upstream = upstream;
    pair.timer = setTimeout(() => {
      pair.upstream = undefined;
      upstream.destroy();
      this.failed(pair, target, systemError(ETIMEDOUT, 'connect', target.host, target.port));
    }, this.options.connectTimeoutMs).unref();
  }

  /** A connect for `pair` failed: count it, and try the next upstream. */
  private failed(pair: Pair, target: Upstream, err: Error): void {
    (pair.tried ??= new Set()).add(target);
    this.balancer.release(target);
    pair.target = undefined;
    this.countFailure(target, err);
    this.tell('connect-failed', target, err, pair.client.remoteAddress);
    if (!pair.client.closed) this.attempt(pair);
  }

  private countFailure(target: Upstream, err: Error): void {
    this.counters.get(target)!.failures++;
    if (this.balancer.report(target, false)) {
      const c = this.counters.get(target)!;
      c.backoff = this.options.healthIntervalMs;
      c.nextProbe = Date.now() + c.backoff;
      this.tell('upstream-down', target, err);
    }
  }

  private countSuccess(target: Upstream): void {
    if (this.balancer.report(target, true)) {
      this.counters.get(target)!.backoff = 0;
      this.tell('upstream-up', target);
    }
  }

  private upstreamOpen(pair: Pair, upstream: Connection<Pair>): void {
    clearTimeout(pair.timer);
    // A joined pair holds only what it needs: thousands of them sit idle.
    pair.timer = undefined;
    const target = pair.target!;
    this.countSuccess(target);
    this.counters.get(target)!.pairs++;
    // What the client sent while we waited goes first, then the reactor relays.
    for (const chunk of pair.pending ?? []) {
      upstream.write(chunk);
      // A write that failed closed it: the next upstream gets the same bytes.
      if (upstream.closed) return;
    }
    pair.written += pair.pendingBytes;
    pair.pending = undefined;
    pair.tried = undefined;
    pair.pendingBytes = 0;
    try {
      pair.client.pipe(upstream, this.pipeOptions);
    } catch {
      // The client went away in this batch (its close record follows):
      // the upstream goes too, and the client's close settles the pair.
      upstream.destroy();
      return;
    }
    pair.piped = true;
    pair.client.resume();
    if (pair.clientEnded) upstream.end();
  }

  /**
   * Input not relayed in Rust: the client's before the join (kept for the
   * upstream), and anything read in the batch that joined them.
   */
  private data(pair: Pair, conn: Connection<Pair>, chunk: Buffer): void {
    if (conn === pair.client && !pair.piped) {
      (pair.pending ??= []).push(chunk);
      pair.pendingBytes += chunk.length;
      if (pair.pendingBytes > PENDING_CAP) conn.pause();
      return;
    }
    const partner = conn === pair.client ? pair.upstream : pair.client;
    if (!partner?.writable) return;
    if (conn === pair.client) pair.written += chunk.length;
    else this.counters.get(pair.target!)!.bytesDown += chunk.length;
    partner.write(chunk);
  }

  /** An end of input. Once joined, the reactor passes it on (again here is harmless: it may have been read before the join). */
  private ended(pair: Pair, conn: Connection<Pair>): void {
    if (conn === pair.client && !pair.piped) {
      pair.clientEnded = true;
      return;
    }
    const partner = conn === pair.client ? pair.upstream : pair.client;
    partner?.end();
  }

  private upstreamClosed(pair: Pair, upstream: Connection<Pair>, err?: Error): void {
    if (pair.upstream !== upstream) return; // an attempt given up on
    clearTimeout(pair.timer);
    const target = pair.target!;
    if (!pair.piped) {
      pair.upstream = undefined;
      this.failed(pair, target, err ?? systemError(uvErrno('ECONNRESET'), 'connect', target.host, target.port));
      return;
    }
    // Joined: the client closes too (the reactor resets it on an error,
    // and an orderly close means both directions ended).
    if (err) this.counters.get(target)!.errors++;
    this.settle(pair);
  }

  private clientClosed(pair: Pair | undefined): void {
    // Rejected over the limit: no pair.
    if (!pair) return;
    if (!pair.piped) {
      // Waiting for an upstream: stop the attempt.
      clearTimeout(pair.timer);
      if (pair.upstream) {
        const upstream = pair.upstream;
        pair.upstream = undefined;
        upstream.destroy();
        this.balancer.release(pair.target!);
      }
      this.forget(pair);
      return;
    }
    // An error reset the upstream too, in the reactor; it reports its own close.
    this.settle(pair);
  }

  /** Books a joined pair once both sides have closed. */
  private settle(pair: Pair): void {
    const upstream = pair.upstream!;
    if (!pair.client.closed || !upstream.closed || !this.pairs.has(pair)) return;
    const target = pair.target!;
    const c = this.counters.get(target)!;
    c.bytesUp += pair.written + pair.client.bytesRelayed;
    c.bytesDown += upstream.bytesRelayed;
    this.balancer.release(target);
    this.forget(pair);
  }

  private forget(pair: Pair): void {
    this.pairs.delete(pair);
  }

  /** Probes each upstream that is due: healthy ones every interval, down ones with backoff. */
  private probeAll(): void {
    const now = Date.now();
    for (const target of this.balancer.upstreams) {
      const c = this.counters.get(target)!;
      if (c.probing || now < c.nextProbe) continue;
      c.probing = true;
      this.probe(target, (err) => {
        c.probing = false;
        if (!err) {
          this.countSuccess(target);
          c.nextProbe = 0;
          return;
        }
        if (!target.healthy) {
          c.backoff = Math.min(c.backoff * 2 || this.options.healthIntervalMs, this.options.healthIntervalMs * MAX_BACKOFF);
          c.nextProbe = Date.now() + c.backoff;
        }
        this.countFailure(target, err);
      });
    }
  }

  /** A TCP connect to `target`, closed at once; `done(err)` when it is known how it went. */
  private probe(target: Upstream, done: (err?: Error) => void): void {
    let finished = false;
    const finish = (conn: Connection, err?: Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      conn.destroy();
      done(err);
    };
    let conn: Connection;
    try {
      conn = connect({ host: target.host, port: target.port, backend: this.backend }, {
        onOpen: (c) => finish(c),
        onClose: (c, err) => finish(c, err ?? systemError(uvErrno('ECONNRESET'), 'connect', target.host, target.port)),
      });
    } catch (err) {
      finished = true;
      done(err as Error);
      return;
    }
    conn.unref();
    const timer = setTimeout(() => finish(conn, systemError(ETIMEDOUT, 'connect', target.host, target.port)), this.options.healthTimeoutMs).unref();
  }
}

/** Starts a proxy; throws at once if the address is taken or an option is bad. */
export function createProxy(options: ProxyOptions): ProxyServer {
  return new ProxyServer(options);
}

/** One line of counts: what the CLI prints. */
export function formatStats(stats: ProxyStats): string {
  const given = validateObject(stats, 'stats');
  if (!Array.isArray(given.upstreams)) throw invalidArgType('stats.upstreams', 'an instance of Array', given.upstreams);
  const ups = stats.upstreams
    .map((u) => `${u.address}${u.healthy ? '' : ' DOWN'} ${u.live} live/${u.pairs} pairs/${u.failures} failed`)
    .join(', ');
  // The clients it turned away, when there were any (the line left them out until 2026-12-06).
  const away = `${stats.rejected > 0 ? `, ${stats.rejected} rejected (max connections)` : ''}${stats.unavailable > 0 ? `, ${stats.unavailable} unavailable (no upstream)` : ''}`;
  return `${stats.live} live, ${stats.accepted} accepted${away}, ${stats.bytesUp} bytes up, ${stats.bytesDown} bytes down; ${ups}`;
}
