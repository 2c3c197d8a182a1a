// node:cluster apps on muxnet's drop-in net and dgram, beside the same app
// on node:net/node:dgram: the workers share one port (round-robin or the
// primary's shared socket; UDP always shared), every byte comes back from
// some worker, no fd is left behind, and cluster.disconnect() lets the
// workers exit by themselves. Each case is a real primary with two forked
// workers (test/fixtures/cluster-echo.js).
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const fixture = path.join(__dirname, '..', 'fixtures', 'cluster-echo.js');
const root = path.join(__dirname, '..', '..');

interface Seen {
  addresses: number[];
  served: Record<string, number>;
  corrupt: number;
  fds: { listening: number; now: number }[];
  exits: { code: number | null; signal: string | null; afterDisconnect: boolean }[];
}

async function run(impl: string, policy: string, kind: string, backend: string): Promise<Seen> {
  const { stdout } = await promisify(execFile)(process.execPath, [fixture, impl, policy, kind, backend], { cwd: root, timeout: 20_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Seen;
}

/**
 * No fd left behind in any worker: no more open than once listening. (Not equal: on a loaded
 * machine a node:net worker once had one more open at 'listening' than after, 26 then 25.)
 */
function expectFdsBack(seen: Seen): void {
  for (const fds of seen.fds) expect(fds.now).toBeLessThanOrEqual(fds.listening);
}

/** Each of `count` requests answered whole, by some worker, and every worker gone by itself after the disconnect. */
function expectServed(seen: Seen, count: number): void {
  expect(Object.values(seen.served).reduce((a, b) => a + b, 0)).toBe(count);
  expect(seen.corrupt).toBe(0);
  expect(seen.exits.every((e) => e.code === 0 && e.afterDisconnect)).toBe(true);
}

const ROWS: [string, string, string][] = [
  ['node', 'mio', 'tcp'],
  ['muxnet', 'mio', 'tcp'],
  ['muxnet', 'poll', 'tcp'],
  ['muxnet', 'select', 'tcp'],
];

describe.skipIf(process.platform === 'win32')('cluster workers share sockets', () => {
  describe.each(ROWS)('%s (%s)', (impl, backend) => {
    it('round-robin: one port, connections handed to both workers, bytes intact both ways, fds back, exit on disconnect', async () => {
      const seen = await run(impl, 'rr', 'tcp', backend);
      expect(seen.addresses[0]).toBeGreaterThan(0);
      expect(seen.addresses[1]).toBe(seen.addresses[0]);
      expectServed(seen, 24);
      expect(Object.keys(seen.served)).toHaveLength(2);
      expectFdsBack(seen);
      expect(seen.exits).toEqual([0, 1].map(() => ({ code: 0, signal: null, afterDisconnect: true })));
    }, 30_000);

    it('SCHED_NONE: the primary\'s socket shared, accepted by the workers themselves', async () => {
      const seen = await run(impl, 'none', 'tcp', backend);
      expect(seen.addresses[1]).toBe(seen.addresses[0]);
      expectServed(seen, 24);
      expectFdsBack(seen);
    }, 30_000);

    it('UDP: one shared socket, each datagram answered once, by some worker', async () => {
      const seen = await run(impl, 'rr', 'udp', backend);
      expect(seen.addresses[1]).toBe(seen.addresses[0]);
      expectServed(seen, 60);
      expectFdsBack(seen);
    }, 30_000);

    it('a Unix-domain path, round-robin and shared', async () => {
      for (const policy of ['rr', 'none']) {
        const seen = await run(impl, policy, 'pipe', backend);
        expectServed(seen, 24);
      }
    }, 30_000);

    it('round-robin past a worker\'s maxConnections: the primary hands the connection to another worker', async () => {
      const seen = await run(impl, 'rr', 'max', backend);
      expectServed(seen, 24);
      expect(Object.keys(seen.served).every((pid) => /^\d+$/.test(pid))).toBe(true);
    }, 30_000);

    it('exclusive: each worker binds its own port', async () => {
      const seen = await run(impl, 'rr', 'exclusive', backend);
      expect(seen.addresses).toHaveLength(2);
      expect(seen.addresses[1]).not.toBe(seen.addresses[0]);
    }, 30_000);
  });
});

const cases = path.join(__dirname, '..', 'fixtures', 'cluster-cases.js');

interface Case {
  worker: Record<string, unknown>[];
  port?: number;
  path?: string;
  aliveWhileConnected?: boolean;
  echoed?: string[];
  exit: { code: number | null; signal: string | null; afterDisconnect: boolean };
  timeout?: true;
}

async function runCase(impl: string, policy: string, kase: string, backend: string): Promise<Case> {
  const { stdout } = await promisify(execFile)(process.execPath, [cases, impl, policy, kase, backend], { cwd: root, timeout: 20_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Case;
}

// Each case on node:net (its row shows what is expected is Node's) and on muxnet's every backend.
describe.skipIf(process.platform === 'win32')('cluster workers, as node:net in the same case', () => {
  describe.each(ROWS)('%s (%s)', (impl, backend) => {
    describe.each(['rr', 'none'])('%s', (policy) => {
      it('the primary cannot bind: the error names the syscall, address (null for no host, as node:net) and port (-1 for a path)', async () => {
        const seen = await runCase(impl, policy, 'bind-error', backend);
        const port = seen.port!;
        const error = (address: string | null, where: string, p: number) => ({ code: 'EADDRINUSE', errno: -os.constants.errno.EADDRINUSE, syscall: 'bind', address, port: p, message: `bind EADDRINUSE ${where}` });
        expect(seen.worker).toEqual([
          { withHost: error('127.0.0.1', `127.0.0.1:${port}`, port), listening: false },
          { anyHost: error(null, `null:${port}`, port), listening: false },
          { onPath: error(seen.path!, seen.path!, -1), listening: false },
        ]);
      }, 30_000);

      it('worker.disconnect() waits for a long-lived connection, which is still served, then the worker exits', async () => {
        const seen = await runCase(impl, policy, 'disconnect', backend);
        expect(seen.aliveWhileConnected).toBe(true);
        expect(seen.echoed).toEqual(['before', 'after']);
        expect(seen.exit).toEqual({ code: 0, signal: null, afterDisconnect: true });
      }, 30_000);

      it('close() with a connection in flight, then listen() on the same port again: served, after \'close\' and at once (ten times)', async () => {
        const seen = await runCase(impl, policy, 'relisten', backend);
        expect(seen.worker).toEqual([
          { afterClose: true, served: 'served' },
          { atOnce: Array.from({ length: 10 }, () => 'served') },
        ]);
      }, 30_000);

      it("unref() before listen() or bind() holds for the primary's handles too", async () => {
        const seen = await runCase(impl, policy, 'unref', backend);
        expect(seen.worker).toEqual([{ held: [] }]);
      }, 30_000);

      it('listen on :: with ipv6Only: IPv6 served, IPv4 refused', async () => {
        const seen = await runCase(impl, policy, 'ipv6-only', backend);
        expect(seen.worker).toEqual([{ family: 'IPv6', six: 'six', four: 'ECONNREFUSED' }]);
      }, 30_000);
    });
  });
});
