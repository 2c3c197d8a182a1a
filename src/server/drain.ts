// A server's graceful close, in one place: what `Server.close({ timeout })`
// runs, and what the apps built on `muxnet/fast` directly (echo, proxy,
// receive) run on SIGINT/SIGTERM.
import { invalidArgType } from '../errors';
import { validateInteger, validateObject, validateType } from '../options';

export interface CloseOptions {
  /** Milliseconds the live connections (or handlers) get to finish before they are closed. */
  timeout?: number;
}

/** `options.timeout`, checked (an integer of ms, 0 to 2^31-1), or `fallback`. */
export function closeTimeout(options: CloseOptions | undefined, fallback: number): number {
  return validateInteger((validateObject(options, 'options') as CloseOptions).timeout, 'options.timeout', fallback, 0, MAX_TIMEOUT_MS);
}

/** The longest delay `setTimeout` keeps (it turns a longer one into 1 ms). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * The live members of a server — connections, sessions, running handlers
 * — and its graceful close. `drain(timeout, expire)` resolves once the set
 * is empty; the members still in it after `timeout` ms go to `expire`,
 * which ends them (and so takes them out of the set).
 *
 * ```ts
 * import { listen } from 'muxnet/fast';
 * import { LiveSet } from 'muxnet/server';
 * const live = new LiveSet<Connection>();
 * const server = listen({ port: 7000 }, {
 *   onOpen: (conn) => live.add(conn),
 *   onData: (conn, chunk) => conn.write(chunk),
 *   onClose: (conn) => live.delete(conn),
 * });
 * process.once('SIGTERM', () => {
 *   server.close(); // no new connections; the live ones get 5 s
 *   void live.drain(5000, (conn) => conn.destroy());
 * });
 * ```
 */
export class LiveSet<T> implements Iterable<T> {
  private readonly members = new Set<T>();
  private draining: Promise<void> | undefined;
  /** While draining: settles the drain when the last member leaves. */
  private emptied: (() => void) | undefined;
  /** While draining: when the members left expire, and the timer that expires them. */
  private deadline = Infinity;
  private expiry: NodeJS.Timeout | undefined;

  get size(): number {
    return this.members.size;
  }

  add(member: T): void {
    this.members.add(member);
  }

  has(member: T): boolean {
    return this.members.has(member);
  }

  /** Takes `member` out; while draining, the last one out settles the drain. */
  delete(member: T): boolean {
    if (!this.members.delete(member)) return false;
    if (this.members.size === 0) this.emptied?.();
    return true;
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.members.values();
  }

  /**
   * Resolves once every member has left; at `timeout` ms (at once for 0)
   * each one left goes to `expire`. A second call while it runs returns
   * its promise; if its deadline comes sooner (a second SIGTERM: stop now),
   * the members left go to its `expire` then. Once settled, the next call
   * is a drain of its own.
   */
  drain(timeout: number, expire: (member: T) => void): Promise<void> {
    validateType(timeout, 'timeout', 'number');
    validateInteger(timeout, 'timeout', 0, 0, MAX_TIMEOUT_MS);
    if (typeof expire !== 'function') throw invalidArgType('expire', 'of type function', expire);
    if (this.draining === undefined) {
      // Nothing to wait for: done, and a later drain is one of its own.
      if (this.members.size === 0) return Promise.resolve();
      this.draining = new Promise<void>((resolve) => {
        this.emptied = () => {
          clearTimeout(this.expiry);
          this.emptied = undefined;
          this.draining = undefined;
          this.deadline = Infinity;
          resolve();
        };
      });
    }
    // Kept: expired at once, the members may all leave below, and the drain settles and is forgotten.
    const draining = this.draining;
    const deadline = Date.now() + timeout;
    if (this.emptied && deadline < this.deadline) {
      this.deadline = deadline;
      clearTimeout(this.expiry);
      // A copy: `expire` takes members out while this walks them.
      const expireAll = () => {
        for (const member of [...this.members]) expire(member);
      };
      if (timeout === 0) expireAll();
      else this.expiry = setTimeout(expireAll, timeout);
    }
    return draining;
  }
}

/**
 * The graceful close of a `muxnet/fast` listener whose connections are in
 * `live`: stops listening at once, then drains `live` for `options.timeout`
 * ms (default `fallback`) and destroys the connections left.
 */
export async function closeGracefully(listener: { close(): void }, live: LiveSet<{ destroy(): void }>, options?: CloseOptions, fallback = 0): Promise<void> {
  if (typeof (listener as Partial<typeof listener> | null)?.close !== 'function') throw invalidArgType('listener', 'an object with a close() method', listener);
  if (!(live instanceof LiveSet)) throw invalidArgType('live', 'an instance of LiveSet', live);
  const timeout = closeTimeout(options, fallback);
  listener.close();
  await live.drain(timeout, (conn) => conn.destroy());
}
