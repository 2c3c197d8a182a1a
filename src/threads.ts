/**
 * Moving muxnet's servers and sockets to a worker thread, as Node 24.22
 * moves node:net's: `port.postMessage(message, [server])` (a worker's,
 * `parentPort`'s, a `MessageChannel`'s). Node's messaging moves only
 * objects of its own making, so `MessagePort.prototype.postMessage` is
 * wrapped: a muxnet server or socket in the transfer list is checked as
 * node:net checks its own (`ERR_WORKER_HANDLE_NOT_TRANSFERABLE`), a
 * node:net object is made on a copy of its socket and put in its place —
 * in the list, and in the message's arrays and plain objects — and node
 * moves that. The receiving thread gets node:net's object, as from a
 * node:net sender. Once the message has gone, the sender's object lets go
 * as node:net's does: a server stops listening (no 'close' until
 * `close()`), a socket is destroyed (no FIN: the receiver holds the
 * connection). Installed when muxnet's `net` loads, on a Node whose
 * node:net moves its own; any other message passes through untouched.
 */
import type * as Net from 'node:net';
import { nodeNet } from './builtins';
import { MessagePort } from 'node:worker_threads';
import { codedError, systemError } from './errors';
import { nodeSocketOn, rawHandle } from './handoff';

/**
 * What a muxnet object gives to move: a copy of its socket, and what to do
 * once it has moved or not. From the copy on, the object's reactor reads or
 * accepts nothing from the socket: a worker terminated before `moved()`
 * (its loop's last turn runs no JavaScript) would take the bytes or
 * connections the receiver is owed (a hunt: ~128 KiB lost in 9 of 10 rounds).
 */
export interface Move {
  readonly fd: number;
  readonly kind: 'server' | 'socket';
  /** node:net's construction options the receiving object keeps (node sends the same). */
  readonly options: Net.ServerOpts & Net.SocketConstructorOpts;
  /** The message went: let go as node:net's sender does. */
  moved(): void;
  /** The message did not go: served here again. */
  kept(): void;
}

/** Implemented by muxnet's `net.Server` and `net.Socket`; throws what node:net's guard throws. */
export const moveToThread = Symbol('muxnet.moveToThread');
export interface Movable {
  [moveToThread](): Move;
}

const isMovable = (value: unknown): value is Movable =>
  typeof value === 'object' && value !== null && typeof (value as Partial<Movable>)[moveToThread] === 'function';

/** node:net's refusal of a server or socket that cannot move (not listening; read from, written to, ...). */
export function notTransferable(what: 'net.Server' | 'net.Socket'): Error {
  return codedError(
    `${what} cannot be transferred in its current state; it must be a freshly created or accepted handle that has not started reading and has no pending writes`,
    'ERR_WORKER_HANDLE_NOT_TRANSFERABLE',
  );
}

/** node:net's object on `move`'s copy, for node to move; it owns the copy from then on. */
function nodeCopy(move: Move): Net.Server | Net.Socket {
  if (move.kind === 'socket') return nodeSocketOn(move.fd, move.options.allowHalfOpen);
  const handle = rawHandle('server', move.fd);
  // rawHandle closed the copy it could not open.
  if (typeof handle === 'number') throw systemError(-handle, 'open');
  return new nodeNet.Server(move.options).listen(handle);
}

/**
 * `value` with `copies`' objects in place of muxnet's, wherever a clone
 * reaches (cycles kept): arrays, plain objects, Maps, Sets, and a class
 * instance (cloned as a plain object of its own enumerable properties, as
 * the clone makes of it). What holds none of them is left as it is, for the
 * clone to copy (an Error, a Date, bytes keep their kind).
 */
function swapped(value: unknown, copies: Map<object, object>, seen: Map<object, unknown>): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const known = copies.get(value) ?? seen.get(value);
  if (known !== undefined) return known;
  // What the clone copies by kind, not by its properties.
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Error || value instanceof Date || value instanceof RegExp) return value;
  // Made before it is walked: a cycle back to it is a cycle in the copy (and so a change).
  const out = Array.isArray(value) ? new Array(value.length) : value instanceof Map ? new Map() : value instanceof Set ? new Set() : ({} as Record<string, unknown>);
  seen.set(value, out);
  let changed = false;
  const swap = (v: unknown) => {
    const w = swapped(v, copies, seen);
    changed ||= w !== v;
    return w;
  };
  // forEach skips holes, so a sparse array stays sparse, as a clone keeps it.
  if (Array.isArray(value)) value.forEach((v, i) => ((out as unknown[])[i] = swap(v)));
  else if (value instanceof Map) for (const [k, v] of value) (out as Map<unknown, unknown>).set(swap(k), swap(v));
  else if (value instanceof Set) for (const v of value) (out as Set<unknown>).add(swap(v));
  else for (const key of Object.keys(value)) (out as Record<string, unknown>)[key] = swap((value as Record<string, unknown>)[key]);
  if (changed) return out;
  seen.set(value, value);
  return value;
}

/** Whether node:net's own servers move between threads on this Node (24.22 on). */
const NODE_MOVES = Object.getOwnPropertySymbols(nodeNet.Server.prototype).some((s) => s.description === 'messaging_transfer_symbol');

let installed = false;
/** Wraps `MessagePort.prototype.postMessage` (a Worker's `postMessage` is its port's). */
export function installThreadMoves(): void {
  if (installed || !NODE_MOVES) return;
  installed = true;
  const post = MessagePort.prototype.postMessage;
  MessagePort.prototype.postMessage = function (this: MessagePort, ...args: unknown[]) {
    const [message, transfer] = args;
    const list = Array.isArray(transfer) ? transfer : (transfer as { transfer?: unknown } | null | undefined)?.transfer;
    if (!Array.isArray(list) || !list.some(isMovable)) return Reflect.apply(post, this, args);
    const moves: Move[] = [];
    const copies = new Map<object, Net.Server | Net.Socket>();
    try {
      for (const item of list) {
        if (!isMovable(item) || copies.has(item)) continue;
        const move = item[moveToThread]();
        moves.push(move);
        copies.set(item, nodeCopy(move));
      }
      const newList = list.map((item) => copies.get(item) ?? item);
      const options = Array.isArray(transfer) ? newList : { ...(transfer as object), transfer: newList };
      Reflect.apply(post, this, [swapped(message, copies, new Map()), options]);
    } catch (err) {
      // Nothing moved: the copies go (node's objects close theirs), the senders keep theirs.
      for (const move of moves) move.kept();
      for (const copy of copies.values()) {
        if (copy instanceof nodeNet.Server) copy.close();
        else copy.destroy();
      }
      throw err;
    }
    for (const move of moves) move.moved();
  };
}
