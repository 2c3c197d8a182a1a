// Errors shaped like Node's own: system errors carry `errno` (negative, as
// libuv reports it), `code`, `syscall` and, where known, `address`/`port`;
// argument errors are TypeError/RangeError with an `ERR_*` code.
import { format, getSystemErrorMap, inspect, type InspectOptions } from 'node:util';
import { native } from './binding';

export interface SystemError extends Error {
  errno: number;
  code: string;
  syscall: string;
  /** `null` for a cluster worker's listen() without a host, as node:net's. */
  address?: string | null;
  port?: number;
  /** A connect from a bound local address and port names them (node:net's `localAddress`, `localPort`). */
  localAddress?: string;
  localPort?: number;
}

/**
 * Builds the error Node would throw for `syscall` failing with the positive
 * `errno` the binding reports: `connect ECONNREFUSED 127.0.0.1:7000`, or, as
 * Node words a failed listen, `listen EADDRINUSE: address already in use …`.
 * A port of 0 is left out of the message and of `.port`, a negative one
 * (-1, a cluster worker's Unix path) out of the message only, as Node does;
 * `local` (`address:port`) is added as node:net adds a connect's bound end.
 */
export function systemError(errno: number, syscall: string, address?: string | null, port?: number, local?: string): SystemError {
  let code: string;
  let detail: string | undefined;
  if (errno === native.FD_LIMIT_ERRNO) {
    code = 'EMFILE';
    detail = `select backend cannot watch fds at or above FD_SETSIZE (${native.FD_SETSIZE}); use the poll or mio backend`;
    errno = uvErrno('EMFILE');
  } else {
    const known = getSystemErrorMap().get(-errno);
    code = known?.[0] ?? `Unknown system error ${-errno}`;
    if (syscall === 'listen') detail = known?.[1];
  }
  if (!port) port = undefined;
  // As Node: a port in the message only if positive (a cluster worker's Unix path has -1, in
  // `.port` alone); a null address (a cluster worker's listen() without a host) is `null:port`.
  const named = port !== undefined && port > 0;
  let where = address === undefined || (address === null && !named) ? '' : named ? ` ${address}:${port}` : ` ${address}`;
  if (local !== undefined) where += ` - Local (${local})`;
  const err = new Error(`${syscall} ${code}${detail === undefined ? '' : `: ${detail}`}${where}`) as SystemError;
  err.errno = -errno;
  err.code = code;
  err.syscall = syscall;
  if (address !== undefined) err.address = address;
  if (port !== undefined) err.port = port;
  return err;
}

/**
 * Node's `SystemError` for a libuv call that failed with the positive
 * `errno`: `key` as its code, `${prefix}: ${syscall} returned ${code}
 * (${message})` as its message, `info` with the details, and `errno` and
 * `syscall` reading from it (as `ERR_SOCKET_BUFFER_SIZE` is built).
 */
export function libuvSystemError(key: string, prefix: string, errno: number, syscall: string): CodedError<Error> {
  const [code, message] = getSystemErrorMap().get(-errno) ?? [`Unknown system error ${-errno}`, 'unknown error'];
  const info = { errno: -errno, code, message, syscall };
  const err = new Error(`${prefix}: ${syscall} returned ${code} (${message})`);
  Object.defineProperty(err, 'name', { value: 'SystemError', writable: true, configurable: true });
  if (err.stack?.startsWith('Error:')) err.stack = `SystemError${err.stack.slice('Error'.length)}`;
  coded(err, key);
  Object.defineProperty(err, 'info', { value: info, enumerable: true, configurable: true });
  for (const field of ['errno', 'syscall'] as const) {
    Object.defineProperty(err, field, {
      get: () => info[field],
      set: (value: never) => (info[field] = value),
      enumerable: true,
      configurable: true,
    });
  }
  // As Node's SystemError is inspected: the getters' values shown (`errno: [Getter/Setter: -9]`).
  Object.defineProperty(err, inspect.custom, {
    value(this: Error, _depth: number, options: InspectOptions) {
      return inspect(this, { ...options, getters: true, customInspect: false });
    },
    configurable: true,
    writable: true,
  });
  return err as CodedError<Error>;
}

/**
 * The (positive) number libuv, and so the binding, gives the error `code`:
 * the errno on Unix, libuv's own number on Windows, where the C runtime's
 * `os.constants.errno` values differ.
 */
export function uvErrno(code: string): number {
  for (const [errno, [name]] of getSystemErrorMap()) if (name === code) return -errno;
  return 0;
}

export type CodedError<E extends Error> = E & { code: string };

/** `err` with Node's `code` property (`ERR_*`), named `TypeError [ERR_…]` in its stack and string as Node names it. */
export function coded<E extends Error>(err: E, code: string): CodedError<E> {
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  Object.defineProperty(err, 'toString', { value: () => `${err.name} [${code}]: ${err.message}`, configurable: true, writable: true });
  if (err.stack?.startsWith(`${err.name}:`)) err.stack = `${err.name} [${code}]${err.stack.slice(err.name.length)}`;
  return err as CodedError<E>;
}

/** A plain `Error` with Node's `code` (ERR_SOCKET_CLOSED, ERR_SERVER_NOT_RUNNING…). */
export function codedError(message: string, code: string): CodedError<Error> {
  return coded(new Error(message), code);
}

/** Node says "property" for a dotted name (`options.port`), "argument" otherwise. */
const kind = (name: string) => (name.includes('.') ? 'property' : 'argument');

export function invalidArgValue(name: string, value: unknown, reason: string): CodedError<TypeError> {
  return coded(new TypeError(`The ${kind(name)} '${name}' ${reason}. Received ${inspect(value)}`), 'ERR_INVALID_ARG_VALUE');
}

export function invalidArgType(name: string, expected: string, value: unknown): CodedError<TypeError> {
  return coded(new TypeError(`The "${name}" ${kind(name)} must be ${expected}. Received ${describe(value)}`), 'ERR_INVALID_ARG_TYPE');
}

export function outOfRange(name: string, range: string, value: unknown): CodedError<RangeError> {
  return coded(new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${String(value)}`), 'ERR_OUT_OF_RANGE');
}

export function missingArgs(...names: string[]): CodedError<TypeError> {
  return coded(new TypeError(`The ${names.map((n) => `"${n}"`).join(' or ')} argument must be specified`), 'ERR_MISSING_ARGS');
}

export function invalidIpAddress(value: unknown): CodedError<TypeError> {
  // Node's own %s: an object (a lookup's answer) is shown inspected, not as [object Object].
  return coded(new TypeError(format('Invalid IP address: %s', value)), 'ERR_INVALID_IP_ADDRESS');
}

export function invalidAddressFamily(family: unknown, host: unknown, port: unknown): CodedError<RangeError> & { host: unknown; port: unknown } {
  return Object.assign(coded(new RangeError(`Invalid address family: ${String(family)} ${String(host)}:${String(port)}`), 'ERR_INVALID_ADDRESS_FAMILY'), { host, port });
}

/** Node's AbortError: what an aborted `signal` fails with. */
export function abortError(cause: unknown): CodedError<Error> {
  const err = coded(new Error('The operation was aborted', { cause }), 'ABORT_ERR');
  err.name = 'AbortError';
  return err;
}

export function badPort(name: string, value: unknown, allowZero = true): CodedError<RangeError> {
  return coded(new RangeError(`${name} should be ${allowZero ? '>=' : '>'} 0 and < 65536. Received ${describe(value)}.`), 'ERR_SOCKET_BAD_PORT');
}

export function bufferOutOfBounds(name: string): CodedError<RangeError> {
  return coded(new RangeError(`"${name}" is outside of buffer bounds`), 'ERR_BUFFER_OUT_OF_BOUNDS');
}

/** Node 24's refusal of an address a `net.BlockList` holds (net and dgram alike). */
export function ipBlocked(ip: string): CodedError<Error> {
  return codedError(`IP(${ip}) is blocked by net.BlockList`, 'ERR_IP_BLOCKED');
}

export function socketClosed(): CodedError<Error> {
  return codedError('Socket is closed', 'ERR_SOCKET_CLOSED');
}

/** How Node's argument errors name the value they received (its `determineSpecificType`, Node 20.20 and 24). */
function describe(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
      return 'undefined';
    case 'function':
      return `function ${value.name}`;
    case 'object': {
      if (value === null) return 'null';
      const ctor = (value as { constructor?: { name?: string } }).constructor;
      return ctor && 'name' in ctor ? `an instance of ${ctor.name}` : inspect(value, { depth: -1 });
    }
    case 'string': {
      const shown = value.length > 28 ? `${value.slice(0, 25)}...` : value;
      return `type string (${shown.includes("'") ? JSON.stringify(shown) : `'${shown}'`})`;
    }
    case 'number':
      return `type number (${Object.is(value, -0) ? '-0' : value})`;
    case 'bigint':
      return `type bigint (${value}n)`;
    default:
      return `type ${typeof value} (${String(value)})`;
  }
}

/**
 * Errors said without an `onError` (a warning, a log line) that come in
 * bursts: out of fds, every retry and every waiting peer would say it again
 * (and a close's deadline cuts off every connection left), so each code is
 * said at most once in 10 s. `say` returns undefined for an error held
 * back, else how many were held back since it was last said.
 */
export class ErrorThrottle {
  private readonly said = new Map<string, { at: number; since: number }>();

  say(code: string): number | undefined {
    const last = this.said.get(code);
    const now = Date.now();
    if (last && now - last.at < 10_000) {
      last.since++;
      return undefined;
    }
    this.said.set(code, { at: now, since: 0 });
    return last?.since ?? 0;
  }
}
