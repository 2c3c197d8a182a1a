/**
 * The drop-in `node:net`: change `require('net')` to `require('muxnet')` and
 * TCP code runs on the muxnet reactor. Same classes, events, argument forms
 * and errors; what is not supported yet throws `ERR_MUXNET_UNSUPPORTED`.
 */
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { Server, type ServerOptions } from './server';
import { Socket, normalizeConnectArgs, type SocketConnectOpts } from './socket';

export { Server, Socket, isIP, isIPv4, isIPv6 };
export type { ListenOptions, ServerOptions } from './server';
export type { SocketConnectOpts, SocketOptions } from './socket';
/** node:net's old name for `Socket`. */
export const Stream = Socket;

export function createServer(connectionListener?: (socket: Socket) => void): Server;
export function createServer(options?: ServerOptions, connectionListener?: (socket: Socket) => void): Server;
export function createServer(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void): Server {
  return new Server(options as ServerOptions, connectionListener);
}

export function connect(options: SocketConnectOpts & { allowHalfOpen?: boolean }, listener?: () => void): Socket;
export function connect(port: number | string, host?: string, listener?: () => void): Socket;
export function connect(port: number | string, listener?: () => void): Socket;
export function connect(...args: unknown[]): Socket {
  const [opts, listener] = normalizeConnectArgs(args);
  const socket = new Socket({ allowHalfOpen: (opts as { allowHalfOpen?: boolean }).allowHalfOpen, backend: opts.backend });
  return listener ? socket.connect(opts, listener) : socket.connect(opts);
}

export const createConnection = connect;
