// Errors shaped like Node's own: system errors carry `errno` (negative, as
// libuv reports it), `code`, `syscall` and, where known, `address`/`port`;
// argument errors are TypeError/RangeError with an `ERR_*` code.
import { getSystemErrorMap } from 'node:util';
import { native } from './binding';

export interface SystemError extends Error {
  errno: number;
  code: string;
  syscall: string;
  address?: string;
  port?: number;
}

/**
 * Builds the error Node would throw for `syscall` failing with the positive
 * `errno` the binding reports: `connect ECONNREFUSED 127.0.0.1:7000`, or, as
 * Node words a failed listen, `listen EADDRINUSE: address already in use …`.
 */
export function systemError(errno: number, syscall: string, address?: string, port?: number): SystemError {
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
  const where = address === undefined ? '' : port === undefined ? ` ${address}` : ` ${address}:${port}`;
  const err = new Error(`${syscall} ${code}${detail === undefined ? '' : `: ${detail}`}${where}`) as SystemError;
  err.errno = -errno;
  err.code = code;
  err.syscall = syscall;
  if (address !== undefined) err.address = address;
  if (port !== undefined) err.port = port;
  return err;
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

type CodedError<E extends Error> = E & { code: string };

function coded<E extends Error>(err: E, code: string): CodedError<E> {
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  return err as CodedError<E>;
}

export function invalidArgValue(name: string, value: unknown, reason: string): CodedError<TypeError> {
  return coded(new TypeError(`The argument '${name}' ${reason}. Received ${describe(value)}`), 'ERR_INVALID_ARG_VALUE');
}

export function invalidArgType(name: string, expected: string, value: unknown): CodedError<TypeError> {
  return coded(new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(value)}`), 'ERR_INVALID_ARG_TYPE');
}

export function badPort(name: string, value: unknown): CodedError<RangeError> {
  return coded(new RangeError(`${name} should be >= 0 and < 65536. Received ${describe(value)}.`), 'ERR_SOCKET_BAD_PORT');
}

export function socketClosed(): CodedError<Error> {
  return coded(new Error('Socket is closed'), 'ERR_SOCKET_CLOSED');
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'string') return `type string ('${value.length > 28 ? value.slice(0, 25) + '...' : value}')`;
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`;
  return `type ${typeof value} (${String(value)})`;
}
