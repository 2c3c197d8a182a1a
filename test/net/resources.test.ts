// The drop-in net and the process's resources: a process out of fds at its
// first listen or connect, and connections by the ten thousand leaving fds and memory
// where they were. Each in a child process (its own fd limit, --expose-gc),
// muxnet on each backend beside node:net.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers';

const run = promisify(execFile);
const fixture = (name: string) => path.join(__dirname, '..', 'fixtures', name);

const ROWS: [string, string, string][] = [['node:net', 'node', 'mio'], ...BACKENDS.map((b): [string, string, string] => [`muxnet (${b})`, 'muxnet', b])];

/** Connections through the soak; the first two waves warm up, the rest are measured. */
const CONNECTIONS = 20_000;
/**
 * What the measured connections may leave behind, per connection: half of
 * the 1 KiB a leak of one small object graph per connection would keep
 * (a run leaves some tens of bytes: a heap that settled a little differently).
 */
const LEAK_BOUND = 512;

describe.skipIf(process.platform !== 'linux').each(ROWS)('%s', (_name, impl, backend) => {
  const limits = backend === 'select' && impl === 'muxnet' ? ['a small ulimit -n', 'fds up to FD_SETSIZE'] : ['a small ulimit -n'];
  /** What test/fixtures/net-no-fds.js printed, its first `listen` or `connect` made with no fd free (`how`). */
  const outOfFds = async (first: string, how: string) => {
    const args = [fixture('net-no-fds.js'), impl, backend];
    const { stdout } =
      how === 'fds up to FD_SETSIZE'
        ? await run(process.execPath, [...args, '1024', first], { timeout: 15_000 })
        : await run('sh', ['-c', 'ulimit -n 128 && exec "$0" "$@"', process.execPath, ...args, String(2 ** 30), first], { timeout: 15_000 });
    return JSON.parse(stdout) as string[];
  };

  it.each(limits)('out of fds (%s): the first listen() emits listen EMFILE, the process lives, the server listens once fds are free', async (how) => {
    expect(await outOfFds('listen', how)).toEqual(['error EMFILE listen 127.0.0.1', 'listening', 'echoed hello', 'closed']);
  });

  it.each(limits)('out of fds (%s): the first connect() emits connect EMFILE (not thrown; with a localAddress, bind EMFILE and no attempt), the process lives, a connection goes through once fds are free', async (how) => {
    const seen = await outOfFds('connect', how);
    if (how === 'fds up to FD_SETSIZE') {
      // The socket was made, at or above FD_SETSIZE, and select could not watch it: an attempt, with the socket's own end.
      const unwatched = /^error EMFILE connect 127\.0\.0\.1 connect EMFILE: select backend cannot watch fds at or above FD_SETSIZE \(1024\); use the poll or mio backend 127\.0\.0\.1:\d+ - Local \(127\.0\.0\.1:0\)$/;
      expect(seen).toEqual(['error EMFILE connect 127.0.0.1 true Local (0.0.0.0:0)', 'connectionAttempt', expect.stringMatching(unwatched), 'echoed hello', 'closed']);
      return;
    }
    expect(seen).toEqual([
      'error EMFILE connect 127.0.0.1 true Local (undefined:undefined)',
      'error EMFILE bind 127.0.0.1 bind EMFILE 127.0.0.1',
      'echoed hello',
      'closed',
    ]);
  });

  it('chunks a listener keeps hold their own bytes: a trickle kept among 40 MiB of discarded traffic holds no read slab', async () => {
    const { stdout } = await run(process.execPath, ['--expose-gc', fixture('net-kept-chunks.js'), impl, backend, '50', '10', '4'], { timeout: 30_000 });
    const { chunks, bytes, spanned, before, after } = JSON.parse(stdout) as Record<string, number>;
    // 50 connections × 10 writes of 2 bytes; two writes of one connection may come as one chunk.
    expect(bytes).toBe(1000);
    expect(chunks).toBeGreaterThan(250);
    // node:net's chunks are each their own ArrayBuffer; a view of a 1 MiB slab would
    // span a slab per chunk here (the discarded traffic fills one between each two).
    expect(spanned).toBeLessThanOrEqual(16 * bytes);
    expect(after - before).toBeLessThan(8 * 1024 * 1024);
  });

  it(`${CONNECTIONS} connections opened, echoed and closed in waves: fds back where they were, heap and external memory within ${LEAK_BOUND} B per connection`, { timeout: 120_000 }, async () => {
    // select: both ends of each connection in one process, under FD_SETSIZE.
    const perWave = backend === 'select' && impl === 'muxnet' ? 200 : 500;
    const { stdout } = await run(process.execPath, ['--expose-gc', fixture('net-soak.js'), impl, backend, String(CONNECTIONS), String(perWave)], { timeout: 110_000 });
    const { connections, before, after } = JSON.parse(stdout) as { connections: number; before: Record<string, number>; after: Record<string, number> };
    expect(connections).toBe(CONNECTIONS - 2 * perWave);
    expect(after.fds).toBe(before.fds);
    const grown = after.heap + after.external - (before.heap + before.external);
    expect(grown).toBeLessThan(connections * LEAK_BOUND);
  });
});
