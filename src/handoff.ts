/**
 * Handing muxnet's sockets to another process, as node:net's are handed:
 * `subprocess.send(message, socket)`, `process.send(message, server)`, a
 * cluster worker's `send()`. Node's `child_process` takes its own objects
 * only (`ERR_INVALID_HANDLE_TYPE` for any other), so the `send()` of each
 * IPC channel is wrapped: a muxnet socket, server or UDP socket given to it
 * is duplicated, and the copy goes in what node hands over for its own kind
 * (a node:net Socket, a TCP or UDP handle in a node:net Server or node:dgram
 * Socket shape). The receiver gets node's objects, as from a node:net
 * sender. What the sender's object does is node:net's: a socket, unless
 * `keepOpen`, stops reading at once and closes once what it was writing is
 * written (node's closes when the receiver has its copy); a server or UDP
 * socket stays open here too.
 *
 * A muxnet socket given as a child's stdio (`spawn(cmd, { stdio })`) goes
 * as a copy of its fd (see `stdioCopies`).
 *
 * Installed when muxnet's `net` or `dgram` loads: on `process.send` (a
 * child with an IPC channel, a cluster worker) and on every child process
 * made afterwards. Any other `send()` or `spawn()` passes through untouched.
 */
import type * as Net from 'node:net';
import { ChildProcess } from 'node:child_process';
import { closeSync } from 'node:fs';
import { nodeDgram, nodeNet } from './builtins';
import { systemError } from './errors';
import { nextTick } from './schedule';
import { kHandedTo } from './symbols';

/**
 * node's count of a server's connections handed to one child (its
 * `SocketListSend`): asks the child how many are still open, or to say
 * when all have closed; says 'exit' when the child exits.
 */
export interface HandedConnections {
  getConnections(cb: (err: Error | null, count: number) => void): void;
  close(cb: () => void): void;
  once(event: 'exit', listener: () => void): unknown;
}

/** A server that counts its connections handed to other processes (muxnet's `net.Server`). */
export interface CountsHanded {
  readonly _connectionKey: string | undefined;
  [kHandedTo](list: HandedConnections): void;
}

/** What a muxnet object gives to be handed over (see `HandsOver`). */
export type Handover =
  /**
   * A duplicate of its socket, to be closed by the taker; a negative errno
   * if none could be made. `server`: the server that accepted the socket,
   * which goes on counting it in the child, as node:net's does.
   */
  | { fd: number; kind: 'socket' | 'server' | 'unix-server' | 'udp4' | 'udp6'; server?: CountsHanded }
  /** It has no socket to give (closed, or handed over already): the message goes alone, as node:net sends it. */
  | undefined;

/** Implemented by muxnet's `net.Socket`, `net.Server` and `dgram.Socket`. */
export const handOver = Symbol('muxnet.handOver');
export interface HandsOver {
  /** `keepOpen`: the sender keeps using its own (a socket only; servers and UDP sockets always do). */
  [handOver](keepOpen: boolean): Handover;
  /** Given as a child's stdio, kept here: stop reading it (a socket's; see `stdioCopies`). */
  [usedAsStdio]?(): void;
}
export const usedAsStdio = Symbol('muxnet.usedAsStdio');

const isOurs = (handle: unknown): handle is HandsOver =>
  typeof handle === 'object' && handle !== null && typeof (handle as Partial<HandsOver>)[handOver] === 'function';

type Send = (message: unknown, handle?: unknown, options?: unknown, callback?: unknown) => boolean;
/** A process's or child process's IPC side. */
interface Channel {
  send?: Send;
  connected?: boolean;
  emit(event: string, err: Error): boolean;
  once(event: string, listener: () => void): unknown;
}
type Callback = (err: Error | null) => void;
const wrapped = new WeakSet<Send>();

/**
 * libuv's handle classes (through `process.binding`, node's own path to
 * them), made only when a server or UDP socket is handed over (or a
 * server moved to a thread, ./threads): one open on `fd`, or the error
 * that refused it (the fd then closed).
 */
interface RawHandle {
  open(fd: number): number;
  close(...args: unknown[]): void;
}
export function rawHandle(kind: 'server' | 'unix-server' | 'udp4' | 'udp6', fd: number): RawHandle | number {
  const binding = (name: string) => (process as unknown as { binding(name: string): unknown }).binding(name);
  let handle: RawHandle;
  if (kind === 'server' || kind === 'unix-server') {
    type Wrap = { [name: string]: new (type: number) => RawHandle } & { constants: { SERVER: number } };
    const [module, name] = kind === 'server' ? ['tcp_wrap', 'TCP'] : ['pipe_wrap', 'Pipe'];
    const wrap = binding(module) as Wrap;
    handle = new wrap[name](wrap.constants.SERVER);
  } else {
    const { UDP } = binding('udp_wrap') as { UDP: new () => RawHandle };
    handle = new UDP();
  }
  const err = handle.open(fd);
  if (err === 0) return handle;
  // A handle that could not open the copy does not own it.
  handle.close();
  closeSync(fd);
  return err;
}

let dgramState: symbol | undefined;
/** The key under which a node:dgram Socket keeps its handle (what `child_process` reads). */
function dgramStateKey(): symbol {
  if (dgramState !== undefined) return dgramState;
  const probe = nodeDgram.createSocket('udp4');
  dgramState = Object.getOwnPropertySymbols(probe).find((s) => s.description === 'state symbol');
  probe.close();
  if (dgramState === undefined) throw new Error("muxnet: node:dgram's socket state was not found");
  return dgramState;
}

/**
 * A node:net Socket on `fd`, a copy, neither read nor written here: node's
 * `send()` hands its handle over (and its messaging moves it, ./threads) as
 * it is. If node:net throws before its handle took the copy, it is closed.
 */
export function nodeSocketOn(fd: number, allowHalfOpen = false): Net.Socket {
  try {
    return new nodeNet.Socket({ fd, readable: false, writable: false, allowHalfOpen });
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * What node's `send()` takes for `given`'s copy (`copy`, the libuv handle on
 * the duplicate), which node closes itself for a socket not kept open (once
 * the receiver has it: `nodeCloses`).
 */
function nodeShaped(given: Handover & object, keepOpen: boolean): { handle: object; copy: RawHandle; nodeCloses: boolean } | number {
  if (given.kind === 'socket') {
    const socket = nodeSocketOn(given.fd);
    const { server } = given;
    if (server?._connectionKey !== undefined) {
      // What node's send() reads of a socket's server (it lowers `_connections` itself: muxnet's counts its own).
      const counter = { _connectionKey: server._connectionKey, _connections: 0, _setupWorker: (list: HandedConnections) => server[kHandedTo](list) };
      (socket as unknown as { server: unknown }).server = counter;
    }
    return { handle: socket, copy: (socket as unknown as { _handle: RawHandle })._handle, nodeCloses: !keepOpen };
  }
  const raw = rawHandle(given.kind, given.fd);
  if (typeof raw === 'number') return raw;
  const handle =
    given.kind === 'server' || given.kind === 'unix-server'
      ? Object.create(nodeNet.Server.prototype, { _handle: { value: raw } })
      : Object.create(nodeDgram.Socket.prototype, { type: { value: given.kind }, [dgramStateKey()]: { value: { handle: raw } } });
  return { handle, copy: raw, nodeCloses: false };
}

const MESSAGE_TYPES = ['string', 'object', 'number', 'boolean'];

/** `target.send`, taking muxnet's objects too. */
function wrapSend(target: Channel): void {
  const original = target.send;
  if (typeof original !== 'function' || wrapped.has(original)) return;
  // Copies not closed yet: queued behind a handle the child has not acknowledged, or sent and
  // waiting for its acknowledgement (node closes those then). A child that dies first
  // acknowledges nothing (and says no 'disconnect'): its 'close' closes them. Not in a child:
  // there the parent's death ends the process.
  const open = new Set<RawHandle>();
  if (target !== (process as unknown)) {
    target.once('close', () => {
      for (const copy of open) copy.close();
      open.clear();
    });
  }
  const send: Send = function (this: Channel, ...args: unknown[]) {
    const [message, handle] = args;
    // Every other message (cluster's, a test runner's) goes straight through.
    if (!isOurs(handle)) return Reflect.apply(original, this, args);
    let [, , options, callback] = args;
    if (typeof options === 'function') [callback, options] = [options, undefined];
    // What node refuses before it looks at the handle, it refuses as it does.
    const plain = options === undefined || (typeof options === 'object' && options !== null && !Array.isArray(options));
    if (!this.connected || !plain || message === undefined || !MESSAGE_TYPES.includes(typeof message)) {
      return Reflect.apply(original, this, args);
    }
    const opts = (options ?? {}) as { keepOpen?: unknown; swallowErrors?: unknown };
    const given = handle[handOver](opts.keepOpen === true);
    if (given === undefined) return Reflect.apply(original, this, [message, undefined, options, callback]);
    const shaped = given.fd < 0 ? given.fd : nodeShaped(given, opts.keepOpen === true);
    const report = (err: Error) => {
      if (typeof callback === 'function') (callback as Callback)(err);
      else if (!opts.swallowErrors) this.emit('error', err);
    };
    if (typeof shaped === 'number') {
      nextTick(report, systemError(-shaped, 'dup'));
      return false;
    }
    const { copy, nodeCloses } = shaped;
    open.add(copy);
    // Whoever closes it (node, on the acknowledgement), it leaves the set.
    const close = copy.close;
    copy.close = (...args: unknown[]) => {
      open.delete(copy);
      return Reflect.apply(close, copy, args);
    };
    const sent = (err: Error | null) => {
      if (!nodeCloses) copy.close();
      if (err) report(err);
      else if (typeof callback === 'function') (callback as Callback)(null);
    };
    try {
      return Reflect.apply(original, this, [message, shaped.handle, { ...opts, swallowErrors: false }, sent]);
    } catch (err) {
      copy.close();
      throw err;
    }
  };
  wrapped.add(send);
  target.send = send;
}

/**
 * `spawn(command, { stdio: [..., socket] })`: a muxnet socket given as a
 * child's stdio goes as its fd (a copy, closed here once the child has
 * its own), where node takes node:net's handle; this process keeps its
 * socket, as with node:net's, and once the child is spawned stops reading
 * it, as node's spawn stops node:net's: the child alone reads the
 * connection. Returns the copies to close and the objects given.
 */
function stdioCopies(options: { stdio?: unknown } | undefined): { copies: number[]; given: HandsOver[] } {
  const stdio = options?.stdio;
  const copies: number[] = [];
  const given: HandsOver[] = [];
  if (!Array.isArray(stdio) || !stdio.some(isOurs)) return { copies, given };
  options!.stdio = stdio.map((entry: unknown) => {
    // One closed (no socket to give) goes as it is: node refuses it as it refuses a closed node:net socket.
    const handover = isOurs(entry) ? entry[handOver](true) : undefined;
    if (handover === undefined) return entry;
    if (handover.fd < 0) {
      for (const fd of copies) closeSync(fd);
      throw systemError(-handover.fd, 'dup');
    }
    copies.push(handover.fd);
    given.push(entry as HandsOver);
    return handover.fd;
  });
  return { copies, given };
}

let installed = false;
/** Wraps `process.send`, and the `spawn()` and `send()` of every child process from now on. */
export function installHandoff(): void {
  if (installed) return;
  installed = true;
  wrapSend(process as unknown as Channel);
  // Node's own entry for every child (`spawn()`, `fork()`, cluster's workers); undocumented, so not typed.
  const prototype = ChildProcess.prototype as unknown as { spawn(options?: { stdio?: unknown }, ...rest: unknown[]): unknown };
  const spawn = prototype.spawn;
  prototype.spawn = function (this: Channel, options?: { stdio?: unknown }, ...rest: unknown[]) {
    const { copies, given } = stdioCopies(options);
    let r;
    try {
      r = spawn.call(this, options, ...rest);
    } finally {
      for (const fd of copies) closeSync(fd);
    }
    for (const entry of given) entry[usedAsStdio]?.();
    wrapSend(this);
    return r;
  };
}
