// What the parity suites of the drop-in (test/net/reentry.test.ts,
// test/net/dgram-reentry.test.ts) share: a log of each object's events,
// calls and callbacks, and how two runs' logs are compared.

export type Log = Record<string, string[]>;

/** An error as the logs compare it: its class and code (or message when it has none). */
export function errName(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  return `${err.constructor.name}(${code ?? err.message})`;
}

/** Records named objects' events into one log each; consecutive 'data' merge into one entry. */
export class Recorder {
  readonly logs: Log = {};
  private reconnected = new Set<string>();

  add(name: string, entry: string): void {
    const log = (this.logs[name] ??= []);
    // A socket connected again from its own events ('close', 'error') lives on: node:net's order is the spec there.
    if (entry.startsWith('call reconnect')) this.reconnected.add(name);
    // Calls made after the close, and their callbacks, may come after it; a server may listen again.
    if (name !== 'server' && this.closes(name) > 0 && !/^call | cb /.test(entry) && !this.reconnected.has(name)) log.push('AFTER CLOSE:');
    const last = log[log.length - 1];
    if (entry.startsWith('data ') && last?.startsWith('data ')) log[log.length - 1] = last + entry.slice(5);
    else log.push(entry);
  }

  /** The 'close' events `name` had. */
  closes(name: string): number {
    return (this.logs[name] ?? []).filter((e) => e.startsWith('close')).length;
  }

  /** Listens to `events` on `target` (before anyone else does, so the log shows each event before what it caused). */
  watch(name: string, target: NodeJS.EventEmitter, events: string[]): void {
    for (const event of events) {
      target.on(event, (...args: unknown[]) => {
        if (event === 'data') this.add(name, `data ${String(args[0])}`);
        else if (event === 'error') this.add(name, `error ${errName(args[0])}`);
        else if (event === 'close') this.add(name, `close${args.length && typeof args[0] === 'boolean' ? `(${args[0]})` : ''}`);
        else if (event === 'lookup') this.add(name, `lookup ${errName(args[0])} ${typeof args[1]} ${typeof args[2]}`);
        else this.add(name, event);
      });
    }
  }

  /**
   * A callback that logs how it was called: a failure in the object's log
   * (its order against 'error' and 'close' is node:net's), a success in
   * `NAME callbacks` (against the peer's bytes it is a race in node:net too).
   */
  cb(name: string, what: string): (err?: unknown) => void {
    return (err?: unknown) => (err ? this.add(name, `${what} cb ${errName(err)}`) : this.add(`${name} callbacks`, `${what} cb ok`));
  }
}

/** What a call returned, as a log shows it: `this` for the object itself. */
export function summary(value: unknown, socket: unknown): string {
  if (value === socket) return 'this';
  if (value === undefined) return 'undefined';
  return String(value);
}

/** Bounded waits: until `done()`, then a few turns more for late events. */
export async function settle(done: () => boolean, rec: Recorder, ms = 4000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) {
      rec.add('harness', 'TIMED OUT');
      return;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 20));
}

/** Where two runs' logs differ, one line per object; `reference` names the expected run. */
export function differences(expected: Log, got: Log, reference = 'node:net'): string[] {
  const out: string[] = [];
  for (const name of new Set([...Object.keys(expected), ...Object.keys(got)])) {
    const [a, b] = [JSON.stringify(expected[name] ?? []), JSON.stringify(got[name] ?? [])];
    if (a !== b) out.push(`${name}: ${reference.padEnd(8)} ${a}\n${' '.repeat(name.length)}  ${'muxnet'.padEnd(Math.max(8, reference.length))} ${b}`);
  }
  return out;
}

/**
 * A call on a closed socket that node:dgram makes on its handle, gone:
 * node:dgram's TypeError, muxnet's ERR_SOCKET_DGRAM_NOT_RUNNING (README).
 */
export function nullHandle(log: Log): Log {
  const named = (e: string) => e.replace(/threw TypeError\(Cannot read properties of null \(reading '\w+'\)\)/, 'threw Error(ERR_SOCKET_DGRAM_NOT_RUNNING)');
  return Object.fromEntries(Object.entries(log).map(([k, v]) => [k, v.map(named)]));
}
