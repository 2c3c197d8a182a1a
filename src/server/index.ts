/**
 * The handler framework (`muxnet/server`): Python's `socketserver` on the
 * fast path. A handler class per connection (or per datagram), run one of
 * three ways, one option apart:
 *
 * - `mode: 'reactor'` (default): every connection (or datagram) on this
 *   thread's reactor;
 * - `mode: 'serial'`: one connection at a time; the next is accepted only
 *   when the handler finished (the listener holds accepting meanwhile).
 *   Datagrams likewise: the socket is not read while a handler runs, so
 *   the next ones wait in the kernel's receive buffer, bounded by its size;
 * - `workers: N | 'auto'`: N worker threads, each its own reactor, fed by
 *   `SO_REUSEPORT` (Linux) or by this thread accepting and transferring
 *   each connection (`distribute`). Datagram workers each bind the port
 *   with `SO_REUSEPORT` (Linux only). A worker that crashes is reported and
 *   restarted.
 *
 * ```ts
 * import { serve, ConnectionHandler } from 'muxnet/server';
 * class Echo extends ConnectionHandler {
 *   async handle() { for await (const chunk of this.stream) await this.stream.write(chunk); }
 * }
 * const server = await serve(Echo, { port: 7000 });
 * process.on('SIGTERM', () => server.close({ timeout: 5000 }));
 * ```
 */
import { threadId } from 'node:worker_threads';
import { getReactor } from '../reactor';
import { adopt, bind, listen, type Connection, type RemoteInfo, type Server as FastServer, type ServerHandlers, type SocketAddress, type UdpSocket } from '../fast';
import { AsyncConnection } from '../async';
import { ErrorThrottle, codedError, invalidArgType, invalidArgValue } from '../errors';
import { validateInteger, validateObject, type BackendName } from '../options';
import { handlerKind, STREAM, type ConnectionHandler, type DatagramHandler, type ConnectionHandlerClass, type DatagramHandlerClass, type HandlerClass, type HandlerModule } from './handlers';
import { loadHandler, WorkerPool, type WorkerInfo } from './pool';
import { closeTimeout, LiveSet, type CloseOptions } from './drain';

export { ConnectionHandler, DatagramHandler } from './handlers';
export { closeGracefully, LiveSet, type CloseOptions } from './drain';
export type { ConnectionHandlerClass, DatagramHandlerClass, HandlerClass, HandlerModule } from './handlers';
export type { WorkerInfo } from './pool';

export type ServeMode = 'reactor' | 'serial';

/** Where an error reported to `onError` came from. */
export interface ErrorSource {
  /** The thread the handler or worker ran on. */
  threadId: number;
  /** The peer, for a handler's error. */
  remoteAddress?: string;
  /** The worker's index, in `workers` mode. */
  worker?: number;
  /** A worker crashed and is being restarted. */
  restarting?: boolean;
  /**
   * The connection's own error, not one its handler threw: its peer reset
   * it, a write to it failed, it timed out. A hostile client can make
   * thousands a second.
   */
  connection?: boolean;
}

export interface ServeOptions {
  port?: number;
  host?: string;
  /** A Unix-domain socket path instead of a port (with `workers`, `distribute: 'acceptor'` only: a path has no SO_REUSEPORT). */
  path?: string;
  backlog?: number;
  backend?: BackendName;
  noDelay?: boolean;
  /** Callback handlers: keep this side open after the peer ends (a `handle()` connection always is, until it returns). */
  allowHalfOpen?: boolean;
  reusePort?: boolean;
  /** Datagram handlers: bind with `SO_REUSEADDR`. */
  reuseAddr?: boolean;
  /** `'reactor'` (default) or `'serial'` (with `workers`: each worker serial). */
  mode?: ServeMode;
  /** Worker threads, each with its own reactor; `'auto'`: `os.availableParallelism()`. */
  workers?: number | 'auto';
  /**
   * How connections reach the workers: `'reuseport'` (the default on
   * Linux; each worker listens, the kernel balances) or `'acceptor'` (the
   * default elsewhere; this thread accepts and transfers each connection
   * to the next worker, round-robin). Datagram workers: `'reuseport'`
   * only, on Linux (elsewhere `ERR_MUXNET_UNSUPPORTED`).
   */
  distribute?: 'reuseport' | 'acceptor';
  /** Read-ahead of a `handle()`'s stream before its reading pauses (see `muxnet/async`). */
  highWaterMark?: number;
  /**
   * Every error that ended a handler (thrown, or a reset) and every worker
   * crash, once each. Default: `console.error`.
   */
  onError?(err: Error, source: ErrorSource): void;
}

/**
 * A handler's result adopted as a promise when it is a thenable, else
 * undefined: a `then` that throws (or a throwing getter) rejects it, and
 * never throws out of the framework.
 */
function promised(value: unknown): Promise<unknown> | undefined {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return undefined;
  try {
    return typeof (value as PromiseLike<unknown>).then === 'function' ? Promise.resolve(value) : undefined;
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * `onError` when none is given. Accept errors, handlers cut off by a
 * close's deadline (one per connection left), and connections' own errors
 * (`source.connection`: a peer's resets) are said in a line, at most once in
 * 10 s per code, per server; a handler's own error, with its stack.
 */
function defaultOnError(err: Error, source: ErrorSource, throttle: ErrorThrottle): void {
  const where = source.worker !== undefined ? `worker ${source.worker} (thread ${source.threadId})` : `thread ${source.threadId}`;
  const { syscall, code } = err as NodeJS.ErrnoException;
  const doing =
    syscall === 'accept' ? 'accepting' : code === 'ERR_MUXNET_SERVER_CLOSED' ? 'closing' : source.connection ? `connection from ${source.remoteAddress ?? 'a client'}` : undefined;
  if (doing) {
    const since = throttle.say(String(code));
    if (since !== undefined) console.error(`muxnet/server: ${doing} on ${where}: ${err.message}${since ? ` (${since} more since)` : ''}`);
    return;
  }
  console.error(`muxnet/server: ${source.remoteAddress ? `handler for ${source.remoteAddress}` : 'worker'} on ${where}:`, err);
}

type HandlerMethod = ((this: ConnectionHandler, chunk: Buffer) => unknown) | (() => unknown);

/** A lingering close ends after this long without input from the client, */
const LINGER_IDLE = 2000;
/** or after this long in all. */
const LINGER_MAX = 30_000;

/** In a session's `early` list: the connection drained before the handler was ready. */
const DRAINED = Symbol('drained');
type Early = Buffer | null | typeof DRAINED;

/** The framework's state for one accepted connection. */
class Session {
  handler: ConnectionHandler | undefined;
  stream: AsyncConnection | undefined;
  /**
   * What came before the handler was ready for it, in order: chunks,
   * `null` for the peer's end, `DRAINED` for a drain (a callback handler's
   * `setup()` may write more than the kernel takes).
   */
  early: Early[] | undefined = [];
  /** `setup`/`handle` still running. */
  running = true;
  closed = false;
  finished = false;
  /** The handler threw: it hears no more events. */
  threw = false;
  /** A callback handler with `onData`, ready and open: where data goes straight. */
  direct: ConnectionHandler | undefined;
  error: Error | undefined;
  /**
   * A write's `ERR_SOCKET_CLOSED` thrown in a handler while the connection
   * was closed under it: the handler's own error only if the close (due
   * next tick) had none — a peer's reset met by an earlier write has one.
   */
  threwClosed: Error | undefined;
  /** `handle()` returned and the connection lingers (see `closeAfterHandle`). */
  lingering = false;
  stopLingering: (() => void) | undefined;
  constructor(readonly connection: Connection<Session>) {
    // Read while open, the peer's address stays known (the connection
    // caches it): for errors reported, and a handler's finish(), after a reset.
    void connection.remoteAddress;
  }
}

/** Everything that serves on this thread: a listener or a datagram socket. */
interface Local {
  address(): SocketAddress | string | null;
  close(timeout: number): Promise<void>;
  /** Serves a connection transferred from an acceptor thread. */
  adopt?(ticket: number): void;
  /** Fed by an acceptor thread: the acceptor's address, which this thread serves. */
  served?: SocketAddress | string | null;
}

/**
 * A running server: its address, its open connections, `close()`. In
 * `workers` mode the listeners live in the workers; this object runs them.
 */
export class Server {
  readonly mode: ServeMode;
  readonly onError: (err: Error, source: ErrorSource) => void;
  /** @internal */
  local: Local | undefined;
  /** @internal */
  pool: WorkerPool | undefined;
  private closing: Promise<void> | undefined;

  /** @internal */
  constructor(mode: ServeMode, onError: ServeOptions['onError']) {
    this.mode = mode;
    const said = new ErrorThrottle();
    this.onError = onError ?? ((err, source) => defaultOnError(err, source, said));
  }

  /** The port served (NaN for a Unix-domain path). */
  get port(): number {
    const address = this.address();
    return address !== null && typeof address === 'object' ? address.port : NaN;
  }

  address(): SocketAddress | string | null {
    return this.pool ? this.pool.address() : (this.local?.address() ?? null);
  }

  /** The worker threads (`workers` mode; empty otherwise). */
  get workers(): readonly WorkerInfo[] {
    return this.pool ? this.pool.info() : [];
  }

  /** `close()` was called: handlers may use this to wind down. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /**
   * Stops accepting, lets the handlers finish within `timeout` ms, then
   * destroys the connections left (their handlers' `finish` gets
   * `ERR_MUXNET_SERVER_CLOSED`). Resolves once every handler has finished
   * (and every worker has exited); a handler whose `setup`, `handle` or
   * `finish` has still not settled a turn after the deadline is not
   * waited for (its `finish` runs, once, if it had not). Called again, it
   * returns the first call's promise, and a sooner deadline (`timeout: 0`
   * on a second SIGTERM) cuts the rest off then.
   */
  close(options?: CloseOptions): Promise<void> {
    let timeout: number;
    try {
      timeout = closeTimeout(options, 5000);
    } catch (err) {
      return Promise.reject(err);
    }
    const closing = this.pool ? this.pool.close(timeout) : (this.local?.close(timeout) ?? Promise.resolve());
    // Called again: only its sooner deadline counts (a second SIGTERM: stop now); the first close settles.
    if (this.closing) closing.catch(() => {});
    this.closing ??= closing;
    return this.closing;
  }

  /** @internal Reports `err` once for `source`. */
  report(err: unknown, source: Partial<ErrorSource>): void {
    const error = err instanceof Error ? err : new Error(String(err));
    try {
      this.onError(error, { threadId, ...source });
    } catch (thrown) {
      // A throwing onError must not stop the server either.
      process.emitWarning(`muxnet/server: onError threw: ${String(thrown)}`);
    }
  }
}

function serverClosedError(): Error {
  return codedError('The server closed before the handler finished', 'ERR_MUXNET_SERVER_CLOSED');
}

/** Connections on this thread's reactor, one at a time in `serial` mode. */
class StreamService implements Local {
  /** None in a worker fed by an acceptor thread. */
  private readonly listener: FastServer<Session> | undefined;
  private readonly sessions = new LiveSet<Session>();
  /** Serial mode: the one being served, and those accepted with it in one turn. */
  private active: Session | undefined;
  private readonly waiting: Session[] = [];
  /** Connections in a lingering close (see `closeAfterHandle`). */
  private readonly lingering = new LiveSet<Connection<Session>>();
  private stopping = false;
  /** While closing: when lingering connections are destroyed (`Date.now()` ms). */
  private deadline = Infinity;
  private readonly isAsync: boolean;
  private readonly allowHalfOpen: boolean;
  private readonly handlers: ServerHandlers<Session>;
  private readonly backend: BackendName | undefined;

  constructor(
    private readonly server: Server,
    private readonly Handler: ConnectionHandlerClass,
    private readonly serial: boolean,
    private readonly highWaterMark: number | undefined,
    options: ServeOptions,
    listening: boolean,
  ) {
    this.isAsync = typeof Handler.prototype.handle === 'function';
    const { port, host, path, backlog, backend, noDelay, allowHalfOpen, reusePort } = options;
    // A handle() reads the peer's end as the end of its loop and may still
    // reply: its connection is half-open, ended when handle() returns.
    this.allowHalfOpen = this.isAsync || (allowHalfOpen ?? false);
    this.handlers = this.makeHandlers();
    this.backend = backend;
    this.listener = listening ? listen<Session>({ port, host, path, backlog, backend, noDelay, allowHalfOpen: this.allowHalfOpen, reusePort }, this.handlers) : undefined;
    // Fed by an acceptor: the reactor is made now, while fds are free. Made
    // at a first adoption, it could find the table full of accepted
    // connections (EMFILE), and the tickets would wait forever.
    if (!listening) getReactor(backend);
  }

  private makeHandlers(): ServerHandlers<Session> {
    return {
      onOpen: (conn) => this.accepted(conn),
      onData: (conn, chunk) => {
        const s = conn.data!;
        // The hot path: a ready callback handler.
        const direct = s.direct;
        if (direct !== undefined) {
          try {
            this.settle(s, direct.onData!(chunk));
          } catch (err) {
            this.fail(s, err, false);
          }
          return;
        }
        if (s.stream) s.stream.onData(chunk);
        else if (s.early) s.early.push(chunk);
        else this.call(s, s.handler!.onData, chunk);
      },
      onDrain: (conn) => {
        const s = conn.data!;
        if (s.stream) s.stream.onDrain();
        else if (!s.early) this.call(s, s.handler!.onDrain);
        else if (!s.early.includes(DRAINED)) s.early.push(DRAINED);
      },
      onEnd: (conn) => {
        const s = conn.data!;
        if (s.stream) s.stream.onEnd();
        else if (s.early) s.early.push(null);
        else this.call(s, s.handler!.onEnd);
      },
      onClose: (conn, err) => this.closed(conn.data!, err),
      onError: (err) => this.server.report(err, {}),
    };
  }

  served: SocketAddress | string | null = null;

  address(): SocketAddress | string | null {
    return this.listener ? this.listener.address() : this.served;
  }

  /** Takes over a connection the acceptor thread transferred (`workers`, `distribute: 'acceptor'`). */
  adopt(ticket: number): void {
    let conn: Connection<Session>;
    try {
      conn = adopt<Session>(ticket, this.handlers, { allowHalfOpen: this.allowHalfOpen, backend: this.backend });
    } catch (err) {
      // EBADF: discarded meanwhile (the acceptor closed), nothing to serve.
      // Anything else closed the connection (the reactor could not watch it).
      if ((err as NodeJS.ErrnoException).code !== 'EBADF') this.server.report(err, {});
      return;
    }
    this.accepted(conn);
  }

  private accepted(conn: Connection<Session>): void {
    const session = new Session(conn);
    conn.data = session;
    this.sessions.add(session);
    if (this.serial) {
      this.listener?.pauseAccepting();
      if (this.active) {
        // Accepted in the same turn as the active one: it waits unread.
        conn.pause();
        this.waiting.push(session);
        return;
      }
      this.active = session;
    }
    this.start(session);
  }

  private start(session: Session): void {
    const conn = session.connection as Connection<unknown>;
    if (this.serial) conn.resume();
    let handler: ConnectionHandler;
    try {
      handler = new this.Handler(conn, this.server);
    } catch (err) {
      return this.fail(session, err, true);
    }
    session.handler = handler;
    if (this.isAsync) {
      const stream = new AsyncConnection(conn, this.highWaterMark);
      session.stream = handler[STREAM] = stream;
      for (const chunk of session.early!) {
        if (chunk === DRAINED) stream.onDrain();
        else if (chunk) stream.onData(chunk);
        else stream.onEnd();
      }
      session.early = undefined;
    }
    let setup: Promise<unknown> | undefined;
    try {
      setup = promised(handler.setup());
    } catch (err) {
      return this.fail(session, err, true);
    }
    if (!setup) return this.run(session);
    // A callback handler hears nothing until its setup is done: meanwhile
    // the kernel holds the peer's bytes (backpressure), not an `early` list.
    if (!session.stream) conn.pause();
    setup.then(
      () => {
        // Given up on at a close's deadline: its finish ran already.
        if (session.finished) return;
        if (!session.stream) conn.resume();
        this.run(session);
      },
      (err) => this.fail(session, err, true),
    );
  }

  private run(session: Session): void {
    const handler = session.handler!;
    if (session.stream) {
      const stream = session.stream;
      new Promise<void>((resolve) => resolve(handler.handle!())).then(
        // Flush what was written, then close (as socketserver does).
        () => stream.end().then(() => this.closeAfterHandle(session), () => {}).finally(() => this.done(session)),
        (err) => this.fail(session, err, true),
      );
      return;
    }
    const early = session.early!;
    session.early = undefined;
    // Received before the handler was ready, maybe before a close: its due.
    for (const chunk of early) {
      if (chunk === DRAINED) this.invoke(session, handler.onDrain);
      else if (chunk) this.invoke(session, handler.onData, chunk);
      else this.invoke(session, handler.onEnd);
    }
    if (handler.onData && !session.closed && !session.threw) session.direct = handler;
    this.done(session);
  }

  /**
   * Closes a connection whose `handle()` returned, its reply and FIN with
   * the kernel. Input that arrives after the close (or waits unread at
   * it) makes the kernel answer with a reset, which may discard the reply
   * before the client reads it; and a client still sending can be sending
   * it now. So unless the client's end has come, the connection lingers,
   * as Apache's lingering close does — its input dropped until the
   * client's end, `LINGER_IDLE` ms without input, or `LINGER_MAX` ms. The
   * handler is finished meanwhile (a serial server serves the next one).
   */
  private closeAfterHandle(session: Session): void {
    const conn = session.connection;
    if (session.stream!.inputEnded || conn.closed) return conn.destroy();
    session.lingering = true;
    this.lingering.add(conn);
    const dropped = session.stream!.discardInput();
    const giveUp = Date.now() + LINGER_MAX;
    let seen = -1;
    const timer = setInterval(() => {
      if (dropped() === seen || Date.now() >= giveUp) conn.destroy();
      seen = dropped();
    }, LINGER_IDLE);
    timer.unref();
    session.stopLingering = () => {
      clearInterval(timer);
      this.lingering.delete(conn);
    };
    // A handler that finished during a close: its linger ends by the close's deadline too.
    if (this.stopping) void this.drainLingering();
  }

  /** A callback-mode handler method, for an event of an open connection. */
  private call(session: Session, method: HandlerMethod | undefined, chunk?: Buffer): void {
    if (!session.closed) this.invoke(session, method, chunk);
  }

  /** A throw ends the connection (and the events after it go unheard). */
  private invoke(session: Session, method: HandlerMethod | undefined, chunk?: Buffer): void {
    if (!method || session.threw) return;
    try {
      this.settle(session, method.call(session.handler!, chunk!));
    } catch (err) {
      this.fail(session, err, false);
    }
  }

  /** A callback's promise (an `async onData`): its rejection is a throw, not an unhandled rejection that ends the process. */
  private settle(session: Session, result: unknown): void {
    promised(result)?.then(undefined, (err) => this.fail(session, err, false));
  }

  /** `setup`/`handle` threw (`ended`), or a callback did: report once, destroy, finish. */
  private fail(session: Session, err: unknown, ended: boolean): void {
    const error = err instanceof Error ? err : new Error(String(err));
    session.threw = true;
    session.direct = undefined;
    // Not a handler's fault yet: a write that met the peer's reset closed the connection within
    // the call, and the next write threw (it was reported as the handler's error, a stack each).
    if ((error as NodeJS.ErrnoException).code === 'ERR_SOCKET_CLOSED' && session.connection.closed && !session.closed) {
      session.threwClosed ??= error;
      if (ended) this.done(session);
      return;
    }
    if (!session.error) {
      session.error = error;
      this.server.report(error, { remoteAddress: session.connection.remoteAddress });
    }
    session.connection.destroy(error);
    if (ended) this.done(session);
  }

  private done(session: Session): void {
    session.running = false;
    this.maybeFinish(session);
  }

  private closed(session: Session, err: Error | undefined): void {
    session.closed = true;
    session.direct = undefined;
    // Its handler is done: how a lingering close ends is nobody's error.
    if (session.lingering) return session.stopLingering!();
    if (err && !session.error) {
      session.error = err;
      this.server.report(err, { remoteAddress: session.connection.remoteAddress, connection: true });
    } else if (session.threwClosed && !session.error) {
      // Closed cleanly or by the handler itself: writing after it was the handler's error.
      session.error = session.threwClosed;
      this.server.report(session.threwClosed, { remoteAddress: session.connection.remoteAddress });
    }
    session.stream?.onClose(err);
    // Closed while waiting its turn (serial): there is no handler to finish.
    const at = session.handler ? -1 : this.waiting.indexOf(session);
    if (at >= 0) {
      this.waiting.splice(at, 1);
      return this.forget(session);
    }
    this.maybeFinish(session);
  }

  private maybeFinish(session: Session): void {
    if (session.running || !(session.closed || session.lingering) || session.finished) return;
    session.finished = true;
    let result: Promise<unknown> | undefined;
    try {
      result = promised(session.handler?.finish(session.error));
    } catch (err) {
      this.server.report(err, { remoteAddress: session.connection.remoteAddress });
    }
    if (result) {
      result.then(
        () => this.forget(session),
        (err) => {
          this.server.report(err, { remoteAddress: session.connection.remoteAddress });
          this.forget(session);
        },
      );
    } else this.forget(session);
  }

  private forget(session: Session): void {
    this.sessions.delete(session);
    if (this.serial && this.active === session) {
      this.active = this.waiting.shift();
      if (this.active) this.start(this.active);
      else if (!this.stopping) this.listener?.resumeAccepting();
    }
  }

  async close(timeout: number): Promise<void> {
    this.stopping = true;
    this.listener?.close();
    // Accepted but never served: nothing to finish.
    for (const s of this.waiting.splice(0)) {
      this.sessions.delete(s);
      s.connection.destroy();
    }
    this.deadline = Math.min(this.deadline, Date.now() + timeout);
    // A destroyed connection's session leaves once its handler finished;
    // one that has not settled by the next turn never holds the close.
    const sessions = this.sessions.drain(timeout, (s) => {
      s.connection.destroy(serverClosedError());
      setImmediate(() => this.abandon(s));
    });
    void this.drainLingering();
    await sessions;
    // Handlers that finished meanwhile may have left lingering connections: waited for too.
    await this.drainLingering();
  }

  /**
   * Lingering connections keep to their own end, up to the close's
   * deadline: destroyed at once, the input still coming made the kernel
   * reset them, and the reply went with it.
   */
  private drainLingering(): Promise<void> {
    return this.lingering.drain(Math.max(0, this.deadline - Date.now()), (conn) => conn.destroy());
  }

  /**
   * Past the deadline, with its connection closed: a handler whose
   * `setup`, `handle` or `finish` still has not settled (it awaits what
   * never comes) is finished and forgotten without it. Whatever it does
   * later changes nothing here.
   */
  private abandon(session: Session): void {
    session.running = false;
    this.maybeFinish(session);
    this.forget(session);
  }
}

/**
 * A datagram socket on this thread's reactor; a handler per datagram. In
 * serial mode, one at a time: while a handler runs (up to its `finish`),
 * the socket is not read, so later datagrams wait in the kernel's receive
 * buffer (what overflows it is dropped there); those already received in
 * the same batch wait here, in order.
 */
class DatagramService implements Local {
  private readonly socket: UdpSocket;
  /** One per datagram being handled: what a close waits for, and how it cuts one short. */
  private readonly running = new LiveSet<{ expire(): void }>();
  private readonly waiting: [Buffer, RemoteInfo][] = [];
  private paused = false;
  private stopping = false;

  constructor(
    private readonly server: Server,
    private readonly Handler: DatagramHandlerClass,
    private readonly serial: boolean,
    options: ServeOptions,
  ) {
    const { port, host, backend, reuseAddr, reusePort } = options;
    this.socket = bind(
      { port, host, backend, reuseAddr, reusePort },
      {
        onMessage: (msg, rinfo) => this.received(msg, rinfo),
        // A reply queued by `handle()` that fails when the batch's datagrams leave.
        onSendError: (err) => this.server.report(err, { remoteAddress: err.address ?? undefined }),
      },
    );
  }

  address(): SocketAddress | null {
    return this.socket.address();
  }

  private received(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.stopping) return;
    if (this.serial && this.running.size > 0) {
      this.waiting.push([msg, rinfo]);
      return;
    }
    this.handle(msg, rinfo);
    // Still running: read no more until it finished.
    if (this.serial && this.running.size > 0 && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private handle(msg: Buffer, rinfo: RemoteInfo): void {
    let handler: DatagramHandler | undefined;
    let error: Error | undefined;
    let finished = false;
    const exchange = {
      // Still running at the close's deadline: finished now, without waiting for it.
      expire: () => {
        if (!error) this.report((error = serverClosedError()), rinfo);
        finish();
        this.running.delete(exchange);
      },
    };
    this.running.add(exchange);
    const finish = () => {
      if (finished) return;
      finished = true;
      let result: Promise<unknown> | undefined;
      try {
        result = promised(handler?.finish(error));
      } catch (err) {
        this.report(err, rinfo);
      }
      const end = () => this.ended(exchange);
      if (result) result.then(end, (err) => (this.report(err, rinfo), end()));
      else end();
    };
    const failed = (err: unknown) => {
      if (finished) return;
      error = err instanceof Error ? err : new Error(String(err));
      this.report(error, rinfo);
      finish();
    };
    try {
      handler = new this.Handler(msg, rinfo, this.socket, this.server);
      const setup = promised(handler.setup());
      const handled = setup ? setup.then(() => handler!.handle(msg, rinfo)) : promised(handler.handle(msg, rinfo));
      if (handled) handled.then(finish, failed);
      else finish();
    } catch (err) {
      failed(err);
    }
  }

  private report(err: unknown, rinfo: RemoteInfo): void {
    this.server.report(err, { remoteAddress: rinfo.address });
  }

  private ended(exchange: { expire(): void }): void {
    this.running.delete(exchange);
    if (!this.serial || this.stopping) return;
    // Serial: the next one received, else read again.
    const next = this.waiting.shift();
    if (next) this.handle(...next);
    else if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  async close(timeout: number): Promise<void> {
    this.stopping = true;
    // Received, never handled: dropped, as the kernel drops what it holds.
    this.waiting.length = 0;
    // Handlers may still reply until they finish or the deadline passes.
    await this.running.drain(timeout, (exchange) => exchange.expire());
    this.socket.close();
  }
}

/** @internal */
export function validateHandler(handler: unknown): HandlerClass {
  if (typeof handler === 'function' && handlerKind(handler) !== undefined) return handler as HandlerClass;
  throw invalidArgType('handler', 'a subclass of ConnectionHandler or DatagramHandler', handler);
}

function isDatagram(Handler: HandlerClass): Handler is DatagramHandlerClass {
  return handlerKind(Handler) === 'datagram';
}

/** @internal Serves `Handler` on this thread (what each worker runs too). */
export function serveHere(Handler: HandlerClass, options: ServeOptions, mode: ServeMode, highWaterMark: number | undefined, listening = true): Server {
  const server = new Server(mode, options.onError);
  if (isDatagram(Handler)) {
    server.local = new DatagramService(server, Handler, mode === 'serial', options);
  } else {
    server.local = new StreamService(server, Handler, mode === 'serial', highWaterMark, options, listening);
  }
  return server;
}

/**
 * Serves `handler` — a `ConnectionHandler` or `DatagramHandler` subclass,
 * or (required with `workers`) the module that exports it — and resolves
 * once it listens. Listening errors (`EADDRINUSE`, …) reject.
 */
export async function serve(handler: HandlerClass | HandlerModule, options?: ServeOptions): Promise<Server> {
  const opts = validateObject(options, 'options') as ServeOptions;
  const mode = opts.mode ?? 'reactor';
  if (mode !== 'reactor' && mode !== 'serial') throw invalidArgValue('options.mode', mode, "must be 'reactor' or 'serial'");
  if (opts.onError !== undefined && typeof opts.onError !== 'function') throw invalidArgType('options.onError', 'of type function', opts.onError);
  const highWaterMark = opts.highWaterMark === undefined ? undefined : validateInteger(opts.highWaterMark, 'options.highWaterMark', 0, 0, 2 ** 31 - 1);
  const isModule = typeof handler === 'object' && handler !== null && 'module' in handler;
  const Handler = validateHandler(isModule ? loadHandler(handler) : handler);
  if (opts.workers === undefined) return serveHere(Handler, opts, mode, highWaterMark);
  if (!isModule) throw invalidArgType('handler', 'a { module, export } reference with options.workers (worker threads load it)', handler);
  const server = new Server(mode, opts.onError);
  server.pool = new WorkerPool(server, handler, opts, isDatagram(Handler));
  await server.pool.start();
  return server;
}
