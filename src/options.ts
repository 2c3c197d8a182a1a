// Argument checks shared by every API: they run before any socket is made,
// and fail with Node's error classes and codes.
import type { BlockList } from 'node:net';
import { isIP, nodeNet } from './builtins';
import { native } from './binding';
import { badPort, coded, invalidArgType, invalidArgValue, outOfRange } from './errors';
import { nextTick } from './schedule';
import { nodeFrom, uvFrom } from './versions';

export type BackendName = 'mio' | 'poll' | 'select';

/** The backends this build offers (`select`/`poll` only on Unix). */
export const BACKENDS: readonly BackendName[] = native.backends() as BackendName[];

/** `backend`, else `$MUXNET_BACKEND` (set and not empty), else `mio`. */
export function resolveBackend(backend: unknown): BackendName {
  const name = backend ?? (process.env.MUXNET_BACKEND || 'mio');
  if (typeof name !== 'string' || !(BACKENDS as readonly string[]).includes(name)) {
    throw invalidArgValue('backend', name, `must be one of: ${BACKENDS.map((b) => `'${b}'`).join(', ')}`);
  }
  return name as BackendName;
}

/**
 * `data` as bytes: a string (sent as UTF-8) or a `Uint8Array` (a Buffer is
 * one). Anything else is refused here, with Node's error, rather than by
 * the native call, which knows neither the argument's name nor its value.
 */
export function toBytes(data: unknown, name: string): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data);
  if (data instanceof Uint8Array) return data;
  throw invalidArgType(name, 'of type string or an instance of Buffer or Uint8Array', data);
}

export function validatePort(port: unknown, name = 'options.port', allowZero = true): number {
  // node:net's message shows the port as given (a string stays a string).
  const n = typeof port === 'string' && port.trim() !== '' ? Number(port) : port;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535 || (!allowZero && n === 0)) {
    throw badPort(name, port, allowZero);
  }
  return n;
}

/**
 * The fast API takes IP addresses only (no DNS lookup on the hot path);
 * `localhost` means the loopback no host means: `fallback` (the IPv4 one,
 * or a UDP socket's family's).
 */
export function validateHost(host: unknown, name = 'options.host', fallback = '127.0.0.1'): string {
  if (host === undefined || host === null) return fallback;
  if (typeof host !== 'string') throw invalidArgType(name, 'of type string', host);
  if (host === 'localhost') return fallback;
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIP(bare) === 0) {
    throw invalidArgValue(name, host, 'must be an IP address (resolve host names with dns.lookup first)');
  }
  return bare;
}

/** node:net's test for a Unix-domain path given where a port may be: a string that is not a number >= 0 (`'-1'` is a path). */
export function isPipeName(value: unknown): value is string {
  return typeof value === 'string' && !(Number(value) >= 0);
}

/**
 * libuv before 1.48 (Node 20) binds and dials a Linux abstract name
 * (`'\0…'`) NUL-padded to the whole of `sun_path`, 108 bytes (libuv#4266
 * made it the exact name): so node:net's peers on that Node do.
 */
export const PADS_ABSTRACT_NAMES = process.platform === 'linux' && !uvFrom(48);

/** Node 22.12 (and 23.1) added `reusePort` to node:net and node:dgram; before, both ignore it. */
export const REUSE_PORT_OPTION = nodeFrom([22, 12], [23, 1]);

/** The name the drop-in binds or dials for the Unix-domain `path`: node:net's on this Node (see above). */
export function pipeName(path: string): string {
  const pad = 108 - Buffer.byteLength(path);
  return PADS_ABSTRACT_NAMES && path.startsWith('\0') && pad > 0 ? path + '\0'.repeat(pad) : path;
}

/** Node's `validateString`/`validateNumber`/`validateFunction`: `value` must be of that type (`undefined` fails too). */
export function validateType(value: unknown, name: string, type: 'string' | 'number' | 'function'): void {
  if (typeof value !== type) throw invalidArgType(name, `of type ${type}`, value);
}

/** The most a Node timer waits, in ms (a signed 32-bit integer). */
const TIMEOUT_MAX = 2 ** 31 - 1;

/** Node's `getTimerDuration`: ms checked, and cut to what a timer can wait (with Node's warning), not let wrap to 1 ms. */
export function timerDuration(msecs: unknown, name: string): number {
  validateType(msecs, name, 'number');
  const ms = msecs as number;
  if (ms < 0 || !Number.isFinite(ms)) throw outOfRange(name, 'a non-negative finite number', ms);
  if (ms <= TIMEOUT_MAX) return ms;
  process.emitWarning(`${ms} does not fit into a 32-bit signed integer.\nTimer duration was truncated to ${TIMEOUT_MAX}.`, 'TimeoutOverflowWarning');
  return TIMEOUT_MAX;
}

export function validateBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
  return value;
}

export function validateInteger(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  // As Node's validateInteger: a number that is no integer is out of range.
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  return value;
}

/** A socket buffer's size for node:dgram's `set*BufferSize` (0: read it), with its error. */
export function validateBufferSize(size: unknown): asserts size is number {
  if ((size as number) >>> 0 !== size) throw coded(new TypeError('Buffer size must be a positive integer'), 'ERR_SOCKET_BAD_BUFFER_SIZE');
}

export function validateObject(value: unknown, name: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object') throw invalidArgType(name, 'of type object', value);
  return value as Record<string, unknown>;
}

/** Node's `validateAbortSignal`: undefined, or something with `aborted`. */
export function validateAbortSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value !== undefined && (value === null || typeof value !== 'object' || !('aborted' in value))) {
    throw invalidArgType(name, 'an instance of AbortSignal', value);
  }
  return value as AbortSignal | undefined;
}

/** Runs `abort` once `signal` aborts (next tick if it already has), until `handle` emits 'close'. */
export function onAbort(handle: { once(event: 'close', listener: () => void): unknown }, signal: AbortSignal, abort: () => void): void {
  if (signal.aborted) {
    nextTick(abort);
  } else {
    signal.addEventListener('abort', abort, { once: true });
    handle.once('close', () => signal.removeEventListener('abort', abort));
  }
}

/** Node's check of a `blockList` option: a `net.BlockList`, or none (any falsy value, as Node reads it). */
export function validateBlockList(value: unknown, name: string): BlockList | undefined {
  if (!value) return undefined;
  // Node's own wording ("an net.BlockList").
  if (!(value instanceof nodeNet.BlockList)) throw invalidArgType(name, 'an net.BlockList', value);
  return value;
}

/** Whether `blockList` holds `address` (an IPv4-mapped IPv6 address matches its IPv4 rules). */
export function isBlocked(blockList: BlockList | undefined, address: string): boolean {
  return blockList?.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4') ?? false;
}
