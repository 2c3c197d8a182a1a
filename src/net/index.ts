/**
 * muxnet: sockets for Node.js on a Rust reactor (mio, poll or select).
 *
 * `require('muxnet')` is this module, the drop-in `node:net`: change
 * `require('net')` to `require('muxnet')` and TCP code runs on the muxnet
 * reactor. Same classes, events, argument forms and errors. The lean callback API is
 * `muxnet/fast`.
 *
 * Every export is a plain property, as node:net's: code may replace one
 * (tracing and mocking libraries wrap `net.connect`). So no `export { } from`
 * here, which TypeScript compiles to getters that cannot be assigned, and the
 * package's entry is this file, not one that re-exports it.
 */
import type * as Net from 'node:net';
import { nodeNet } from '../builtins';
import { EVERY_CONNECT_PUBLISHES, clientSocket } from '../diagnostics';
import { installHandoff } from '../handoff';
import { installThreadMoves } from '../threads';
import { callable } from './callable';
import { BoundSocket as BoundSocketClass, type BoundSocket as BoundSocketInstance } from './bound';
import { Server as ServerClass, type ServerOptions } from './server';
import { Socket as SocketClass, normalizeArgs, normalizeConnectArgs, type OnReadOptions, type SetKeepAliveOptions, type SocketConnectOpts, type SocketOptions } from './socket';
import { ownDefault } from '../interop';

// Node's own: pure JavaScript, no handle. The autoSelectFamily defaults are
// node:net's, so the command line and either module set the same ones.
export const BlockList = nodeNet.BlockList;
export type BlockList = Net.BlockList;
export const SocketAddress = nodeNet.SocketAddress;
export type SocketAddress = Net.SocketAddress;
export const getDefaultAutoSelectFamily = nodeNet.getDefaultAutoSelectFamily;
export const getDefaultAutoSelectFamilyAttemptTimeout = nodeNet.getDefaultAutoSelectFamilyAttemptTimeout;
export const isIP = nodeNet.isIP;
export const isIPv4 = nodeNet.isIPv4;
export const isIPv6 = nodeNet.isIPv6;
export const setDefaultAutoSelectFamily = nodeNet.setDefaultAutoSelectFamily;
export const setDefaultAutoSelectFamilyAttemptTimeout = nodeNet.setDefaultAutoSelectFamilyAttemptTimeout;
export type { BoundSocketConstructor, BoundSocketOptions } from './bound';
export type { ListenOptions, ServerOptions } from './server';
export type { OnReadOptions, SetKeepAliveOptions, SocketConnectOpts, SocketOptions } from './socket';
// node:net's other type names, so that `import type { AddressInfo } from 'muxnet'` compiles as
// it did from 'node:net': its own for what muxnet takes as node:net does, muxnet's for its options.
export type { OnReadOptions as OnReadOpts, SocketOptions as SocketConstructorOpts } from './socket';
export type { ServerOptions as ServerOpts } from './server';
/** @types/node 20's name for `onread` among connect options (gone from its Node 24 types: declared here). */
export interface ConnectOpts {
  onread?: OnReadOptions;
}
export type {
  AddressInfo,
  DropArgument,
  IPVersion,
  IpcNetConnectOpts,
  IpcSocketConnectOpts,
  LookupFunction,
  NetConnectOpts,
  SocketAddressInitOptions,
  SocketReadyState,
  TcpNetConnectOpts,
  TcpSocketConnectOpts,
} from 'node:net';

// Its sockets and servers go through `subprocess.send()` as node:net's do, and to worker threads.
installHandoff();
installThreadMoves();

/*
 * To TypeScript, muxnet's sockets and servers are node:net's: a function typed
 * `net.Socket` takes node's own (an http request's, a TLS socket), a
 * project's augmentation of node:net's interfaces applies, listeners are
 * typed by event. What muxnet makes is that, with what it has beyond the
 * @types/node in use (Node 24's methods on @types/node 20). (Assigning the
 * classes here checks that their instances are node:net's to TypeScript.)
 */
/** What a muxnet socket has beyond @types/node 20's `net.Socket`: Node 24's methods. */
export interface SocketExtras {
  setTypeOfService(tos: number): this;
  getTypeOfService(): number;
  setKeepAlive(options: SetKeepAliveOptions): this;
}
/** A socket muxnet makes (`net.connect()`, `new net.Socket()`). */
export type MuxnetSocket = Net.Socket & SocketExtras;
/** `net.Socket`'s constructor, callable without `new` as node:net's, with node's statics. */
export type SocketConstructor = {
  new (options?: SocketOptions | number): MuxnetSocket;
  (options?: SocketOptions | number): MuxnetSocket;
  readonly prototype: MuxnetSocket;
  // node's statics, not its construct signature (two, of different types, and no class could extend it).
} & Pick<typeof nodeNet.Socket, keyof typeof nodeNet.Socket>;
/** `net.Server`'s constructor, callable without `new` as node:net's, with node's statics. */
export type ServerConstructor = {
  new (connectionListener?: (socket: MuxnetSocket) => void): Net.Server;
  new (options?: ServerOptions, connectionListener?: (socket: MuxnetSocket) => void): Net.Server;
  (connectionListener?: (socket: MuxnetSocket) => void): Net.Server;
  (options?: ServerOptions, connectionListener?: (socket: MuxnetSocket) => void): Net.Server;
  readonly prototype: Net.Server;
} & Pick<typeof nodeNet.Server, keyof typeof nodeNet.Server>;
export const Socket: SocketConstructor = callable(SocketClass, 'Socket', 1, nodeNet.Socket);
export type Socket = Net.Socket;
// (The listener-only call form is an overload `Callable` cannot spell: asserted.)
export const Server = callable(ServerClass, 'Server', 2, nodeNet.Server) as ServerConstructor;
export type Server = Net.Server;
/** node:net's old name for `Socket`. */
export const Stream = Socket;
export type Stream = Net.Socket;

export function createServer(connectionListener?: (socket: MuxnetSocket) => void): Server;
export function createServer(options?: ServerOptions, connectionListener?: (socket: MuxnetSocket) => void): Server;
export function createServer(options?: ServerOptions | ((socket: MuxnetSocket) => void), connectionListener?: (socket: MuxnetSocket) => void): Server {
  return new ServerClass(options as ServerOptions, connectionListener);
}

export function connect(options: SocketConnectOpts & SocketOptions, listener?: () => void): MuxnetSocket;
export function connect(port: number | string, host?: string, listener?: () => void): MuxnetSocket;
export function connect(port: number | string, listener?: () => void): MuxnetSocket;
export function connect(...args: unknown[]): MuxnetSocket {
  const [opts] = normalizeConnectArgs(args);
  const socket = new SocketClass(opts as SocketOptions);
  if (!EVERY_CONNECT_PUBLISHES && clientSocket.hasSubscribers) clientSocket.publish({ socket });
  // As node:net: the option is connect()'s and createConnection()'s, not Socket#connect's.
  if ((opts as SocketConnectOpts).timeout) socket.setTimeout((opts as SocketConnectOpts).timeout!);
  return socket.connect(...(args as Parameters<SocketClass['connect']>));
}

export const createConnection = connect;

/** node:net's own `_normalizeArgs`: `connect(net._normalizeArgs(args))` takes its array. */
export const _normalizeArgs = normalizeArgs;

let simultaneousAcceptsWarned = false;
/** Deprecated (DEP0121) and, outside Windows, does nothing, as in node:net. */
export function _setSimultaneousAccepts(): void {
  if (simultaneousAcceptsWarned) return;
  simultaneousAcceptsWarned = true;
  process.emitWarning('net._setSimultaneousAccepts() is deprecated and will be removed.', 'DeprecationWarning', 'DEP0121');
}

/**
 * Node 24's `net.BoundSocket`, node:net's own class (undefined on a Node
 * whose node:net has none): muxnet's servers and sockets adopt it (see ./bound).
 */
export const BoundSocket = BoundSocketClass;
export type BoundSocket = BoundSocketInstance;

// Compiled CommonJS only (under vitest's ESM transform there is no `module`).
if (typeof module === 'object') ownDefault(module.exports);
