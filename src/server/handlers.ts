// The handler classes a server instantiates: one per connection, one per
// datagram. The framework (./index.ts) drives their lifecycle.
import type { AsyncConnection } from '../async';
import type { Connection, RemoteInfo, UdpSocket } from '../fast';
import { codedError } from '../errors';
import type { Server } from './index';

/** @internal Where the framework puts a handler's async view of its connection. */
export const STREAM = Symbol('muxnet.stream');

/**
 * What a handler class is, by a registry symbol on its prototype rather
 * than `instanceof`: a handler module loaded by another copy of this
 * package (ESM and CJS, or a bundler's) is still recognised.
 */
const KIND = Symbol.for('muxnet.server.handlerKind');

/** @internal */
export function handlerKind(Handler: Function): 'connection' | 'datagram' | undefined {
  const kind: unknown = (Handler.prototype as Record<symbol, unknown> | undefined)?.[KIND];
  return kind === 'connection' || kind === 'datagram' ? kind : undefined;
}

/**
 * One accepted connection's handler. `setup()` runs after the accept,
 * then either `async handle()` for the connection's life (reading and
 * writing through `this.stream`, the async API), or the callbacks
 * `onData`/`onDrain`/`onEnd` (the fast API, on `this.connection`).
 * `finish(err)` always runs last, once: after `handle` returned or threw,
 * after a reset, on shutdown.
 *
 * ```ts
 * class Echo extends ConnectionHandler {
 *   async handle() {
 *     for await (const chunk of this.stream) await this.stream.write(chunk);
 *   }
 * }
 * ```
 */
export class ConnectionHandler {
  readonly connection: Connection<unknown>;
  readonly server: Server;
  /** @internal */
  [STREAM]: AsyncConnection | undefined;

  constructor(connection: Connection<unknown>, server: Server) {
    this.connection = connection;
    this.server = server;
  }

  get remoteAddress(): string | undefined {
    return this.connection.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.connection.remotePort;
  }

  /**
   * The connection as an `AsyncConnection` (`muxnet/async`), for a handler
   * with a `handle()` method; callback handlers use `this.connection`.
   */
  get stream(): AsyncConnection {
    const stream = this[STREAM];
    if (!stream) throw codedError('this.stream is for handlers with a handle() method; use this.connection', 'ERR_INVALID_STATE');
    return stream;
  }

  /** Runs first, after the accept (may be async: `handle` waits for it). */
  setup(): void | Promise<void> {}

  /**
   * The connection's life, if defined: when it resolves, what was written
   * is flushed and the connection closed (after a lingering close until
   * the client's end, unless it came already: see README); when it throws, the connection
   * is destroyed and the error passed to `finish`.
   */
  handle?(): void | Promise<void>;

  /**
   * Callback mode: a chunk received (a view of the read slab, see `muxnet/fast`).
   * Each callback may be async: a rejection counts as a throw (the connection is
   * destroyed, the error goes to `finish` and `onError`). Nothing waits for it:
   * not the next event, nor `finish` or `close()` (one that rejects after the
   * connection closed reaches `onError` only); await in `handle()` for that.
   */
  onData?(chunk: Buffer): void | Promise<void>;

  /** Callback mode: `connection.write` returned false before; all is sent now. */
  onDrain?(): void | Promise<void>;

  /** Callback mode: the peer sent FIN. */
  onEnd?(): void | Promise<void>;

  /** Runs last, always, once; `err` is why the connection ended badly, if it did. */
  finish(_err?: Error): void | Promise<void> {}
}

/**
 * One received datagram's handler: `setup()`, `handle(msg, rinfo)` (may be
 * async), `finish(err)` always. `reply()` answers the sender.
 */
export class DatagramHandler {
  readonly message: Buffer;
  readonly rinfo: RemoteInfo;
  readonly socket: UdpSocket;
  readonly server: Server;

  constructor(message: Buffer, rinfo: RemoteInfo, socket: UdpSocket, server: Server) {
    this.message = message;
    this.rinfo = rinfo;
    this.socket = socket;
    this.server = server;
  }

  get remoteAddress(): string {
    return this.rinfo.address;
  }

  /** Sends `data` back to the sender; false if the kernel dropped it (a full send buffer). */
  reply(data: Uint8Array | string): boolean {
    return this.socket.send(data, this.rinfo.port, this.rinfo.address);
  }

  setup(): void | Promise<void> {}

  handle(_message: Buffer, _rinfo: RemoteInfo): void | Promise<void> {}

  finish(_err?: Error): void | Promise<void> {}
}

Object.defineProperty(ConnectionHandler.prototype, KIND, { value: 'connection' });
Object.defineProperty(DatagramHandler.prototype, KIND, { value: 'datagram' });

export type ConnectionHandlerClass = new (connection: Connection<unknown>, server: Server) => ConnectionHandler;
export type DatagramHandlerClass = new (message: Buffer, rinfo: RemoteInfo, socket: UdpSocket, server: Server) => DatagramHandler;
export type HandlerClass = ConnectionHandlerClass | DatagramHandlerClass;

/** A handler class by where it is defined: what worker threads load. */
export interface HandlerModule {
  /** A path or `file:` URL, loaded with `require` (Node ≥ 20.19 also loads ES modules so). */
  module: string | URL;
  /** The export that is the class (default: `default`, or the module itself). */
  export?: string;
}
