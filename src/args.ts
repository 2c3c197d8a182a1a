import { lookup } from 'node:dns/promises';
import { isIP } from './builtins';

/**
 * Numbers given on a command line (`muxnet echo`, `muxnet chat`, the
 * benchmark), checked strictly: `abc`, `-1` or `2.5` where they make no
 * sense are a usage error, never a NaN that quietly switches a limit off.
 */

/** A command line that makes no sense: the CLI prints it with its usage and exits 2. */
export class UsageError extends Error {
  readonly code = 'ERR_MUXNET_USAGE';
}

export interface NumberRule {
  /** Whole numbers only. */
  integer?: boolean;
  /** The smallest value allowed (default 0). */
  min?: number;
  /** `min` itself is not allowed: `{ min: 0, exclusive: true }` is a positive number. */
  exclusive?: boolean;
  /** The largest value allowed (default: none). */
  max?: number;
}

/** A positive number (rates, durations the process measures itself). */
export const POSITIVE: NumberRule = { min: 0, exclusive: true };
/** The longest wait Node's timers keep, in whole seconds (2^31 - 1 ms, 24.8 days). */
const TIMER_MAX_S = 2_147_483;
/** Seconds a timer waits: positive, at most `TIMER_MAX_S`. */
export const DURATION: NumberRule = { min: 0, exclusive: true, max: TIMER_MAX_S };
/** Seconds a timer waits, where 0 means at once (drain deadlines). */
export const ZERO_OR_DURATION: NumberRule = { max: TIMER_MAX_S };
/** A port to listen on: 0 (any free one) to 65535, named by its option rather than the API's `options.port`. */
export const PORT: NumberRule = { integer: true, max: 65535 };

/**
 * `argv` with `--option -1` written `--option=-1`: `util.parseArgs` takes a
 * value that starts with a dash for another option and answers with three
 * lines about ambiguity, where the user typed a negative number that the
 * option's own check refuses in one line (`--port must be … not '-1'`).
 */
export function negativesJoined(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const [arg, next] = [argv[i], argv[i + 1]];
    if (arg === '--') return [...out, ...argv.slice(i)];
    if (/^--[^=]+$/.test(arg) && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** Plain decimal notation, as a user types it: `7000`, `0.5`, `1e3`; not `0x10`, `''` or `Infinity`. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * The value of `option` as a number that keeps `rule`, or `fallback` if the
 * option was not given. Throws a `UsageError` naming the option otherwise.
 */
export function numberArg(option: string, text: string | undefined, fallback: number, rule: NumberRule = {}): number {
  if (text === undefined) return fallback;
  const { integer = false, min = 0, exclusive = false, max = Infinity } = rule;
  const n = DECIMAL.test(text) ? Number(text) : NaN;
  if (Number.isFinite(n) && (!integer || Number.isInteger(n)) && (exclusive ? n > min : n >= min) && n <= max) return n;
  const kind = integer ? 'a whole number' : 'a number';
  const range = max === Infinity ? `${exclusive ? '>' : '>='} ${min}` : exclusive ? `over ${min} and at most ${max}` : `from ${min} to ${max}`;
  throw new UsageError(`${option} must be ${kind} ${range}, not '${text}'`);
}

/**
 * `--OPTION S`: seconds a timer waits (positive, or from 0 with `ZERO_OR_DURATION`),
 * as whole milliseconds; `fallback` if not given. Past 2^31 - 1 ms Node's timers
 * fire after 1 ms, so a longer duration is a usage error rather than a busy loop.
 */
export function secondsArg(option: string, text: string | undefined, fallback: number, rule: NumberRule = DURATION): number {
  return Math.ceil(numberArg(option, text, fallback, rule) * 1000);
}

/** `host:port`, `[v6]:port`: what parseTarget reads. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * `host:port`, `[v6]:port`, or a host alone (a bare IPv6 address has
 * several colons), as `[host, port]`; the host defaults to 127.0.0.1 and
 * the port to `defaultPort`. The port must be from `minPort` to 65535; it
 * is called `portName` in the error.
 */
export function parseTarget(target: string | undefined, defaultPort: number, portName = 'the port', minPort = 1): [string, number] {
  if (!target) return ['127.0.0.1', defaultPort];
  const m = /^\[([^\]]*)\](?::(.*))?$/.exec(target) ?? /^([^:]*):([^:]*)$/.exec(target);
  const [host, port] = m ? [m[1], m[2]] : [target, undefined];
  return [host || '127.0.0.1', numberArg(portName, port, defaultPort, { integer: true, min: minPort, max: 65535 })];
}

/**
 * Where a client command connects: an IP address (or `localhost`) as it
 * is, a host name through the system's resolver (`dns.lookup`, its first
 * address; node:net's `connect` would try each in turn): the fast API
 * takes addresses only. A name that does not resolve rejects with the
 * resolver's error (`ENOTFOUND`, …).
 */
export async function resolveHost(host: string): Promise<string> {
  if (host === 'localhost' || isIP(host) !== 0) return host;
  return (await lookup(host)).address;
}
