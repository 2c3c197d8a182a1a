/**
 * TLS or http2 over a muxnet socket runs on Node's JS-stream path (see
 * `Socket.on()`): its TLS layer sits on a `JSStream` handle, not a TCP one,
 * and asks that handle for what only a TCP handle answers — addresses,
 * no-delay, keep-alive, ref and unref. A `JSStream` has none of them: the
 * TLS socket had no `remoteAddress` (smtp-server's `onSecure`, ftp-srv's
 * passive data connections under FTPS refused every one), its `unref()` held
 * the process (pg's `allowExitOnIdle` over SSL never exited, nor node's https
 * agent's idle keep-alive sockets) and its `setKeepAlive()` reached no socket.
 * node:net's TLS sits on the TCP handle itself. So `JSStream`'s prototype
 * gets them here, once: each asks the muxnet socket under the handle, and
 * for any other stream does nothing, as when they were missing.
 */
import { constants } from 'node:os';
import type nodeNet from 'node:net';

type AddressOut = { address?: string; family?: string; port?: number };
type Lent = {
  getpeername(out: AddressOut): number | undefined;
  getsockname(out: AddressOut): number | undefined;
  setNoDelay(enable: boolean): number;
  setKeepAlive(enable: boolean, delaySeconds: number): number;
  ref(): void;
  unref(): void;
};

let lent = false;

/** Gives `JSStream` the TCP handle's methods, for the streams `isMuxnet` knows. */
export function lendTcpMethods(isMuxnet: (stream: unknown) => stream is nodeNet.Socket): void {
  if (lent) return;
  lent = true;
  const proto = jsStreamPrototype();
  if (proto === undefined) return;
  /** The muxnet socket a JSStream handle carries: its owner (Node's JSStreamSocket)'s `stream`. */
  const socketUnder = (handle: object): nodeNet.Socket | undefined => {
    const owner = Object.getOwnPropertySymbols(handle).find((s) => s.description === 'owner_symbol');
    const stream = owner === undefined ? undefined : (handle as Record<symbol, { stream?: unknown } | undefined>)[owner]?.stream;
    return isMuxnet(stream) ? stream : undefined;
  };
  const fill = (out: AddressOut, from: AddressOut | undefined): number => {
    if (from?.address === undefined) return -constants.errno.ENOTCONN;
    Object.assign(out, { address: from.address, family: from.family, port: from.port });
    return 0;
  };
  const methods: Lent = {
    getpeername(this: object, out) {
      const socket = socketUnder(this);
      return socket && fill(out, { address: socket.remoteAddress, family: socket.remoteFamily, port: socket.remotePort });
    },
    getsockname(this: object, out) {
      const socket = socketUnder(this);
      return socket && fill(out, socket.address() as AddressOut);
    },
    setNoDelay(this: object, enable) {
      socketUnder(this)?.setNoDelay(enable);
      return 0;
    },
    // (node:net hands the handle whole seconds.)
    setKeepAlive(this: object, enable, delaySeconds) {
      socketUnder(this)?.setKeepAlive(enable, delaySeconds * 1000);
      return 0;
    },
    ref(this: object) {
      socketUnder(this)?.ref();
    },
    unref(this: object) {
      socketUnder(this)?.unref();
    },
  };
  // What a later Node gives JSStream itself stays its own.
  for (const [name, method] of Object.entries(methods)) if (!(name in proto)) Object.defineProperty(proto, name, { value: method, writable: true, configurable: true });
}

/**
 * `JSStream.prototype`, where Node still lists the binding for users (not
 * under the permission model). `process.binding()` is deprecated (DEP0111, a
 * warning under `--pending-deprecation`, a throw with `--throw-deprecation`):
 * muxnet's own call says nothing — node:net's TLS makes none.
 */
function jsStreamPrototype(): object | undefined {
  const quiet = process.noDeprecation;
  try {
    process.noDeprecation = true;
    return (process as unknown as { binding(name: string): { JSStream?: { prototype: object } } }).binding('js_stream').JSStream?.prototype;
  } catch {
    return undefined;
  } finally {
    process.noDeprecation = quiet;
  }
}
