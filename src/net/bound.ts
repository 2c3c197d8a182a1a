/**
 * Node's `net.BoundSocket` (Node 24.x): a socket bound when it is made
 * (a port reserved at once, or a client's source address), neither
 * listening nor connecting until one server (`listen(bound)`,
 * `listen({ handle: bound })`) or one socket (`new Socket({ handle: bound })`)
 * adopts it. muxnet exports node's own class — its binding, errors, and its
 * moves to a worker thread or a child process are node's — and adopts one
 * as node:net does: the BoundSocket is spent (`address()`, `fd()` and
 * `close()` throw `ERR_SOCKET_HANDLE_ADOPTED`), and the reactor serves a
 * copy of its socket (muxnet-core's `inherit_listener`, `inherit_connect`).
 */
import type { AddressInfo } from 'node:net';
import { nodeNet } from '../builtins';
import { unsupported } from './unsupported';

export interface BoundSocketOptions {
  /** A numeric IP address (no lookup); default `'0.0.0.0'`, `'::'` with `ipv6Only`. */
  host?: string;
  /** Default 0: a port the kernel picks. */
  port?: number;
  ipv6Only?: boolean;
  reusePort?: boolean;
  /** A Unix-domain path instead (a leading NUL: Linux's abstract names). */
  path?: string;
}

/** An instance of node:net's `BoundSocket`. */
export interface BoundSocket {
  /** `{ address, family, port }`, or the path of a Unix-domain bind. */
  address(): AddressInfo | string;
  /** Its file descriptor, still the BoundSocket's own. */
  fd(): number;
  /** Releases a BoundSocket never adopted. */
  close(): void;
}

export interface BoundSocketConstructor {
  new (options?: BoundSocketOptions): BoundSocket;
  readonly prototype: BoundSocket;
}

/** node:net's class, or undefined on a Node whose node:net has none (as there). */
export const BoundSocket = (nodeNet as { BoundSocket?: BoundSocketConstructor }).BoundSocket;

/** The libuv handle a BoundSocket holds: its fd, and its close. */
interface BoundHandle {
  readonly fd: number;
  close(): void;
}

/**
 * The one way to take a BoundSocket's handle that leaves it adopted, as
 * node:net's `listen()` and `Socket` take it: a method keyed by an internal
 * symbol on the class, found by its name.
 */
const consume: symbol | undefined = BoundSocket && Object.getOwnPropertySymbols(BoundSocket.prototype).find((s) => s.description === 'kBoundSocketConsume');

/** A BoundSocket taken: the socket's fd, where it is bound, and how to let node's handle go. */
export interface Adopted {
  readonly fd: number;
  /** The bound Unix-domain path, else undefined. */
  readonly path: string | undefined;
  /** The bound IP address and port (for a connect error's `Local (…)`), else undefined. */
  readonly local: AddressInfo | undefined;
  /**
   * Closes node's handle: once the reactor's copy serves a TCP socket; with
   * the server or socket for a Unix-domain one, since libuv removes the
   * file it bound when that handle closes, as node:net's adopter does.
   */
  release(): void;
}

export function isBoundSocket(value: unknown): value is BoundSocket {
  return BoundSocket !== undefined && value instanceof BoundSocket;
}

/** Takes `bound` as node:net adopts it; a spent one throws node's `ERR_SOCKET_HANDLE_ADOPTED`. */
export function adopt(bound: BoundSocket): Adopted {
  if (consume === undefined) throw unsupported("net.BoundSocket on this Node (its adoption changed)");
  const address = bound.address();
  const handle = (bound as unknown as Record<symbol, () => BoundHandle>)[consume]();
  let held = true;
  return {
    fd: handle.fd,
    path: typeof address === 'string' ? address : undefined,
    local: typeof address === 'string' ? undefined : address,
    release() {
      if (held) handle.close();
      held = false;
    },
  };
}
