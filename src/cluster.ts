/**
 * Listening from a node:cluster worker, as node:net and node:dgram do it:
 * the worker asks the primary (node:cluster's `_getServer`, the call
 * node:net and node:dgram make), which binds once for every worker and
 * answers either with that bound socket, shared (`SCHED_NONE`, and UDP
 * always), or — round-robin, the default on Unix — with a stand-in through
 * which it hands over each connection it accepted. muxnet takes a copy of
 * each socket into its reactor (`inherit`), so what follows is served there
 * as anything else is; the primary's own copy is closed when the worker's
 * server is, which tells the primary.
 */
import cluster from 'node:cluster';
import type { EventEmitter } from 'node:events';

/** A socket the primary handed over: a libuv handle, closed once muxnet holds its copy. */
export interface HandedSocket {
  /** Its descriptor (Unix). */
  readonly fd?: number;
  close(): void;
}

/** What the primary answers with: the shared socket's libuv handle, or node's round-robin stand-in. */
export interface PrimaryHandle extends HandedSocket {
  ref?(): void;
  unref?(): void;
  /** The address the primary listens on (round-robin stand-in of a TCP server only). */
  getsockname?(out: Record<string, unknown>): number;
  /** Round-robin: the primary hands each connection it accepted for this worker here. */
  onconnection?: (errno: number, connection: HandedSocket) => void;
}

/** What node:net and node:dgram tell the primary; the primary keys its socket on address, port, addressType and fd. */
export interface PrimaryQuery {
  address: string | null;
  port: number;
  /** 4 or 6 (TCP), -1 (a Unix-domain path), 'udp4' or 'udp6'. */
  addressType: 4 | 6 | -1 | 'udp4' | 'udp6';
  fd?: number;
  /** libuv's bind flags: `UV_TCP_IPV6ONLY`, `UV_UDP_IPV6ONLY` (both 1), `UV_UDP_REUSEADDR` (4). */
  flags?: number;
  backlog?: number;
  readableAll?: boolean;
  writableAll?: boolean;
}

type GetServer = (owner: EventEmitter, query: PrimaryQuery, cb: (errno: number, handle: PrimaryHandle | null) => void) => void;

export const UV_IPV6ONLY = 1;
export const UV_UDP_REUSEADDR = 4;

/**
 * Whether a listen() or bind() goes through the primary: in a worker,
 * unless `exclusive`, where handed sockets are descriptors (not on Windows,
 * where a worker binds its own socket, as with `exclusive`).
 */
export function sharedWithPrimary(exclusive: unknown): boolean {
  return cluster.isWorker && !exclusive && process.platform !== 'win32' && typeof getServer() === 'function';
}

/**
 * The primary's handle, as a worker's server or UDP socket holds it. On
 * disconnect node:cluster closes a worker's handles — node's own servers
 * and sockets through their owner, which muxnet's are not to it: closing
 * the handle closes its owner here, which lets the handle go in turn.
 */
export class PrimaryLink {
  private readonly closeHandle: () => void;

  constructor(
    readonly handle: PrimaryHandle,
    closeOwner: (cb?: () => void) => void,
  ) {
    const own = handle.close;
    this.closeHandle = () => own.call(handle);
    handle.close = (cb?: () => void) => closeOwner(typeof cb === 'function' ? cb : undefined);
  }

  /** The owner is closing: the handle goes, and the primary hears of it. */
  release(): void {
    this.closeHandle();
  }
}

/** What node:cluster asks of a worker's server before handing it a connection. */
export interface ConnectionCount {
  readonly maxConnections: number;
  readonly _connections: number;
}

/**
 * Lets node:cluster find `server` behind its round-robin stand-in, as it
 * finds node:net's: through a symbol internal to Node (`owner_symbol`), to
 * refuse a connection past `maxConnections` — the primary then hands it to
 * another worker — rather than hand over one this worker would drop. The
 * stand-in is node:cluster's own plain object; the symbol is answered from
 * its prototype, everything else as before.
 */
export function answerAsOwner(handle: PrimaryHandle, server: ConnectionCount): void {
  const proto = Object.getPrototypeOf(handle) as object;
  Object.setPrototypeOf(
    handle,
    new Proxy(proto, {
      get: (target, key, receiver) => (typeof key === 'symbol' && key.description === 'owner_symbol' ? server : Reflect.get(target, key, receiver)),
    }),
  );
}

/** Asks the primary for the socket `query` names; `owner` emits 'listening' (the primary hears of it) once it listens. */
export function askPrimary(owner: EventEmitter, query: PrimaryQuery, cb: (errno: number, handle: PrimaryHandle | null) => void): void {
  getServer()!.call(cluster, owner, query, cb);
}

function getServer(): GetServer | undefined {
  return (cluster as unknown as { _getServer?: GetServer })._getServer;
}
