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
import * as nodeNet from 'node:net';
import { MessagePort } from 'node:worker_threads';
import { codedError, systemError } from './errors';
import { nodeSocketOn, rawHandle } from './handoff';

/** What a muxnet object gives to move: a copy of its socket, and what to do once it has moved. */
export interface Move {
  readonly fd: number;
  readonly kind: 'server' | 'socket';
  /** node:net's construction options the receiving object keeps (node sends the same). */
  readonly options: nodeNet.ServerOpts & nodeNet.SocketConstructorOpts;
  /** The message went: let go as node:net's sender does. */
  moved(): void;
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
function nodeCopy(move: Move): nodeNet.Server | nodeNet.Socket {
  if (move.kind === 'socket') return nodeSocketOn(move.fd, move.options.allowHalfOpen);
  const handle = rawHandle('server', move.fd);
  // rawHandle closed the copy it could not open.
  if (typeof handle === 'number') throw systemError(-handle, 'open');
  return new nodeNet.Server(move.options).listen(handle);
}

/**
 * `value` with `copies`' objects in place of muxnet's, wherever a clone
 * reaches (cycles kept): arrays, plain objects, Maps, Sets, and a class
 * instance holding one (cloned as a plain object of its own enumerable
 * properties, as the clone makes of it; one holding none is left to the clone).
 */
function swapped(value: unknown, copies: Map<object, object>, seen: Map<object, unknown>): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const known = copies.get(value) ?? seen.get(value);
  if (known !== undefined) return known;
  if (Array.isArray(value)) {
    const out: unknown[] = new Array(value.length);
    seen.set(value, out);
    // forEach skips holes, so a sparse array stays sparse, as a clone keeps it.
    value.forEach((v, i) => (out[i] = swapped(v, copies, seen)));
    return out;
  }
  if (value instanceof Map) {
    const out = new Map();
    seen.set(value, out);
    for (const [k, v] of value) out.set(swapped(k, copies, seen), swapped(v, copies, seen));
    return out;
  }
  if (value instanceof Set) {
    const out = new Set();
    seen.set(value, out);
    for (const v of value) out.add(swapped(v, copies, seen));
    return out;
  }
  // Bytes the clone copies as they are (their indices are no properties to walk).
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value;
  const proto = Object.getPrototypeOf(value);
  const plain = proto === Object.prototype || proto === null;
  const out: Record<string, unknown> = {};
  seen.set(value, out);
  let changed = plain;
  for (const key of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[key];
    out[key] = swapped(v, copies, seen);
    changed ||= out[key] !== v;
  }
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
    const copies = new Map<object, nodeNet.Server | nodeNet.Socket>();
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
      for (const copy of copies.values()) {
        if (copy instanceof nodeNet.Server) copy.close();
        else copy.destroy();
      }
      throw err;
    }
    for (const move of moves) move.moved();
  };
}
