// node:cluster apps on muxnet's drop-in net and dgram, beside the same app
// on node:net/node:dgram: the workers share one port (round-robin or the
// primary's shared socket; UDP always shared), every byte comes back from
// some worker, no fd is left behind, and cluster.disconnect() lets the
// workers exit by themselves. Each case is a real primary with two forked
// workers (test/fixtures/cluster-echo.js).
import { execFile } from 'node:child_process';
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

const total = (seen: Seen) => Object.values(seen.served).reduce((a, b) => a + b, 0);

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
      expect(total(seen)).toBe(24);
      expect(Object.keys(seen.served)).toHaveLength(2);
      expect(seen.corrupt).toBe(0);
      for (const fds of seen.fds) expect(fds.now).toBe(fds.listening);
      expect(seen.exits).toEqual([0, 1].map(() => ({ code: 0, signal: null, afterDisconnect: true })));
    }, 30_000);

    it('SCHED_NONE: the primary\'s socket shared, accepted by the workers themselves', async () => {
      const seen = await run(impl, 'none', 'tcp', backend);
      expect(seen.addresses[1]).toBe(seen.addresses[0]);
      expect(total(seen)).toBe(24);
      expect(seen.corrupt).toBe(0);
      for (const fds of seen.fds) expect(fds.now).toBe(fds.listening);
      expect(seen.exits.every((e) => e.code === 0 && e.afterDisconnect)).toBe(true);
    }, 30_000);

    it('UDP: one shared socket, each datagram answered once, by some worker', async () => {
      const seen = await run(impl, 'rr', 'udp', backend);
      expect(seen.addresses[1]).toBe(seen.addresses[0]);
      expect(total(seen)).toBe(60);
      expect(seen.corrupt).toBe(0);
      for (const fds of seen.fds) expect(fds.now).toBe(fds.listening);
      expect(seen.exits.every((e) => e.code === 0 && e.afterDisconnect)).toBe(true);
    }, 30_000);

    it('a Unix-domain path, round-robin and shared', async () => {
      for (const policy of ['rr', 'none']) {
        const seen = await run(impl, policy, 'pipe', backend);
        expect(total(seen)).toBe(24);
        expect(seen.corrupt).toBe(0);
        expect(seen.exits.every((e) => e.code === 0 && e.afterDisconnect)).toBe(true);
      }
    }, 30_000);

    it('round-robin past a worker\'s maxConnections: the primary hands the connection to another worker', async () => {
      const seen = await run(impl, 'rr', 'max', backend);
      expect(total(seen)).toBe(24);
      expect(Object.keys(seen.served).every((pid) => /^\d+$/.test(pid))).toBe(true);
      expect(seen.corrupt).toBe(0);
      expect(seen.exits.every((e) => e.code === 0 && e.afterDisconnect)).toBe(true);
    }, 30_000);

    it('exclusive: each worker binds its own port', async () => {
      const seen = await run(impl, 'rr', 'exclusive', backend);
      expect(seen.addresses).toHaveLength(2);
      expect(seen.addresses[1]).not.toBe(seen.addresses[0]);
    }, 30_000);
  });
});
