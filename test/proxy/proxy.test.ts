// The proxy over real loopback upstreams: bytes, strategies, faults, drain.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startEcho } from '../../src/apps/echo';
import { createProxy, type ProxyServer, type ProxyOptions, type Upstream } from '../../src/proxy';
import { stats as reactorStats } from '../../src/stats';
import { BACKENDS, downPort, fixtureJson, flood, netConnect, roundTrip, closeSocket, sleep, socketFds, waitFor } from '../helpers';
import { blackhole, exchange, halfCloseServer, neverReads, nodeEcho, nodeServer, randomBytes, resetter, sha, type TestUpstream } from './upstreams';

/** Everything a test started, stopped after it whatever happened. */
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const stop of cleanup.splice(0).reverse()) await stop();
});

function proxyFor(options: ProxyOptions): ProxyServer {
  const proxy = createProxy({ healthIntervalMs: 100, healthTimeoutMs: 200, ...options });
  cleanup.push(() => proxy.close({ timeout: 0 }));
  return proxy;
}

async function upstream<U extends TestUpstream>(make: Promise<U>): Promise<U> {
  const up = await make;
  cleanup.push(() => up.close());
  return up;
}

function muxnetEcho(backend?: (typeof BACKENDS)[number], port = 0): TestUpstream {
  const echo = startEcho({ port, backend });
  cleanup.push(() => echo.close());
  return { port: echo.port, accepted: () => echo.stats.accepted, close: async () => echo.close() };
}

describe.each(BACKENDS)('the proxy on %s', (backend) => {
  it('relays 2 MiB each way to a muxnet echo and to a node:net echo, hashes equal', async () => {
    const ups = [muxnetEcho(backend), await upstream(nodeEcho())];
    const proxy = proxyFor({ backend, upstreams: ups.map((u) => ({ port: u.port })) });
    const splicedBefore = reactorStats(backend).spliced;
    for (let i = 0; i < 2; i++) {
      const payload = randomBytes(2 << 20);
      const { data, error } = await exchange(proxy.port, payload);
      expect(error).toBeUndefined();
      expect(sha(data)).toBe(sha(payload));
    }
    expect(ups.map((u) => u.accepted() > 0)).toEqual([true, true]);
    await waitFor(() => proxy.stats().live === 0, 'the pairs to close');
    const stats = proxy.stats();
    expect([stats.bytesUp, stats.bytesDown]).toEqual([4 << 20, 4 << 20]);
    expect(stats.upstreams.map((u) => u.pairs)).toEqual([1, 1]);
    // On Linux with MUXNET_SPLICE=1 the bulk went through splice(2); else it was copied (CI runs both).
    const spliced = reactorStats(backend).spliced - splicedBefore;
    if (process.platform === 'linux' && process.env.MUXNET_SPLICE === '1') expect(spliced).toBeGreaterThan(0);
    else expect(spliced).toBe(0);
  });

  it('`splice` decides for its own pairs, whatever MUXNET_SPLICE says', async () => {
    const echo = muxnetEcho(backend);
    for (const splice of [true, false]) {
      const proxy = proxyFor({ backend, upstreams: [{ port: echo.port }], splice });
      const splicedBefore = reactorStats(backend).spliced;
      const payload = randomBytes(2 << 20);
      const { data, error } = await exchange(proxy.port, payload);
      expect(error).toBeUndefined();
      expect(sha(data)).toBe(sha(payload));
      await waitFor(() => proxy.stats().live === 0, 'the pair to close');
      const spliced = reactorStats(backend).spliced - splicedBefore;
      // Most of the 4 MiB relayed is bulk (reads of 8 KiB or more).
      if (splice && process.platform === 'linux') expect(spliced).toBeGreaterThan(1 << 20);
      else expect(spliced).toBe(0);
    }
    expect(() => createProxy({ backend, upstreams: [{ port: echo.port }], splice: 'yes' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('options.splice') }),
    );
  });

  it('passes a half-close through: the upstream answers after the client’s FIN, different bytes each way', async () => {
    const reply = randomBytes(1 << 20);
    const up = await upstream(halfCloseServer(reply));
    // No health probe during the exchange: the upstream would count its
    // connect-and-close as one more (empty) stream received.
    const proxy = proxyFor({ backend, upstreams: [{ port: up.port }], healthIntervalMs: 60_000 });
    const payload = randomBytes(3 << 20);
    const { data, error } = await exchange(proxy.port, payload);
    expect(error).toBeUndefined();
    expect(up.received).toEqual([sha(payload)]);
    expect(sha(data)).toBe(sha(reply));
  });

  it('a client and an upstream that end together (a goodbye, as psql and PostgreSQL part): every pair closes in order, none counted as an error', async () => {
    // The upstream greets, and ends on the client's goodbye; the client ends
    // right after it, so both FINs often reach the proxy in one turn.
    const up = await upstream(
      nodeServer((s) => {
        s.write('hello');
        s.on('data', () => s.end());
      }),
    );
    const proxy = proxyFor({ backend, upstreams: [{ port: up.port }], healthIntervalMs: 60_000 });
    const part = () =>
      new Promise<boolean>((resolve) => {
        const c = net.connect(proxy.port, '127.0.0.1');
        c.once('data', () => {
          c.write('bye');
          setImmediate(() => c.end());
        });
        c.on('error', () => {});
        c.on('close', (hadError) => resolve(hadError));
        c.resume();
      });
    const hadErrors: boolean[] = [];
    for (let i = 0; i < 20; i++) hadErrors.push(...(await Promise.all(Array.from({ length: 10 }, part))));
    expect(hadErrors.filter(Boolean)).toEqual([]);
    await waitFor(() => proxy.stats().live === 0, 'the pairs to close');
    expect(proxy.stats().upstreams[0]).toMatchObject({ pairs: 200, errors: 0 });
  });
});

describe.each(BACKENDS)('hostile peers on %s', (backend) => {
  it('150 clients leave at once, half by FIN and half by RST, while 10 others relay 1 MiB each way: survivors intact, resets passed on, nothing left', async () => {
    const up = await upstream(nodeEcho());
    // No probes: each would be one more connection to count.
    const proxy = proxyFor({ backend, upstreams: [{ port: up.port }], healthIntervalMs: 60_000 });
    await sleep(100);
    const before = socketFds();
    const leavers = await Promise.all(Array.from({ length: 150 }, () => netConnect(proxy.port)));
    // Each is joined to its upstream (its bytes came back through the pipe).
    await Promise.all(leavers.map((s, i) => roundTrip(s, Buffer.from(`leaver ${i}`))));
    const closed = leavers.map((s) => new Promise<boolean>((resolve) => s.on('close', resolve)));
    const payloads = Array.from({ length: 10 }, () => randomBytes(1 << 20));
    const survivors = payloads.map((p) => exchange(proxy.port, p));
    // Joined (counted at the join): a survivor may be done already, its pair closed (live drops).
    await waitFor(() => proxy.stats().upstreams[0].pairs === 160, 'the survivors joined');
    leavers.forEach((s, i) => (i % 2 === 0 ? s.end() : s.resetAndDestroy()));
    const results = await Promise.all(survivors);
    expect(results.map((r) => r.error)).toEqual(payloads.map(() => undefined));
    expect(results.map((r) => sha(r.data))).toEqual(payloads.map(sha));
    // A FIN comes back as a FIN (the echo ends too): no error on the client.
    expect((await Promise.all(closed)).filter((hadError, i) => i % 2 === 0 && hadError)).toEqual([]);
    await waitFor(() => proxy.stats().live === 0, 'every pair closed');
    // Each reset reached the upstream, and was counted once per pair.
    expect(proxy.stats().upstreams[0]).toMatchObject({ pairs: 160, errors: 75, live: 0 });
    await waitFor(() => socketFds() <= before, `sockets back to ${before} (now ${socketFds()})`);
  });

  it('an upstream that resets while the client streams into it (bytes held in the relay): the client is reset, the process lives, the next pair relays', async () => {
    // Reads 1 MiB, then resets with the rest of the stream on its way (a short stream is ended).
    const up = await upstream(
      nodeServer((s) => {
        let got = 0;
        s.on('data', (d) => {
          got += d.length;
          if (got >= 1 << 20) s.resetAndDestroy();
        });
        s.on('end', () => s.end());
      }),
    );
    const proxy = proxyFor({ backend, upstreams: [{ port: up.port }], healthIntervalMs: 60_000 });
    const splicedBefore = reactorStats(backend).spliced;
    const sock = await netConnect(proxy.port);
    const block = randomBytes(64 * 1024);
    let failed: NodeJS.ErrnoException | undefined;
    sock.on('error', (err) => (failed = err));
    flood(sock, block);
    await new Promise((resolve) => sock.on('close', resolve));
    expect(['ECONNRESET', 'EPIPE']).toContain(failed?.code);
    // Spliced with MUXNET_SPLICE=1 (a splice into the reset socket raises SIGPIPE, which Node ignores).
    if (process.platform === 'linux' && process.env.MUXNET_SPLICE === '1') expect(reactorStats(backend).spliced).toBeGreaterThan(splicedBefore);
    await waitFor(() => proxy.stats().live === 0, 'the pair closed');
    expect(proxy.stats().upstreams[0]).toMatchObject({ pairs: 1, errors: 1 });
    // The proxy goes on: the next client is served.
    const { data, error } = await exchange(proxy.port, Buffer.from('still here'));
    expect(error).toBeUndefined();
    expect(data.length).toBe(0);
    expect(proxy.stats().upstreams[0].pairs).toBe(2);
  });
});

describe.each(BACKENDS)('a side held back, then reset, on %s', (backend) => {
  // Reading stopped while the other side takes nothing: the reset can only be seen as an error on
  // the socket (mio and poll watch a held side for that); select cannot watch errors alone, so
  // there the pair waits for the other side to read (README, the proxy).
  const breaksAtOnce = backend !== 'select';

  /** Waits until nothing more moves: `progress` unchanged over 300 ms. */
  async function stalled(progress: () => number) {
    const deadline = Date.now() + 10_000;
    for (let last = -1; progress() !== last; await sleep(300)) {
      if (Date.now() > deadline) throw new Error('the relay never held');
      last = progress();
    }
  }

  it('clients that reset while their upstream reads nothing: the pairs close, the fds and queues go', async () => {
    const sink = await upstream(neverReads());
    const proxy = proxyFor({ backend, upstreams: [{ port: sink.port }], healthIntervalMs: 60_000 });
    await sleep(100);
    const before = socketFds();
    const clients = await Promise.all(Array.from({ length: 8 }, () => netConnect(proxy.port)));
    const block = Buffer.alloc(64 * 1024, 3);
    for (const sock of clients) sock.on('error', () => {});
    const written = clients.map((sock) => flood(sock, block));
    await stalled(() => written.reduce((sum, count) => sum + count(), 0));
    expect(proxy.stats()).toMatchObject({ live: 8 });
    expect(proxy.stats().buffered).toBeGreaterThan(0);
    for (const sock of clients) sock.resetAndDestroy();
    if (breaksAtOnce) {
      await waitFor(() => proxy.stats().live === 0, 'every pair closed');
      expect(proxy.stats()).toMatchObject({ buffered: 0 });
      expect(proxy.stats().upstreams[0]).toMatchObject({ pairs: 8, errors: 8 });
      // What is left is the upstream's own end of each connection (paused: it sees no reset).
      await waitFor(() => socketFds() <= before + 8, `sockets back to ${before} + 8 (now ${socketFds()})`);
    } else {
      await sleep(500);
      expect(proxy.stats()).toMatchObject({ live: 8 });
    }
  });

  it.each([false, true])('an upstream that resets while its client reads nothing (the client half-closed first: %s): the pair closes', async (halfClosed) => {
    const chunk = Buffer.alloc(64 * 1024, 5);
    let sent = () => 0;
    const firehoses: net.Socket[] = [];
    const up = await upstream(
      nodeServer((s) => {
        firehoses.push(s);
        sent = flood(s, chunk);
      }),
    );
    const proxy = proxyFor({ backend, upstreams: [{ port: up.port }], healthIntervalMs: 60_000 });
    const sock = await netConnect(proxy.port);
    sock.on('error', () => {});
    sock.pause();
    // Its FIN passed on, the upstream's side keeps being watched while held.
    if (halfClosed) sock.end();
    await stalled(() => sent());
    expect(firehoses).toHaveLength(1);
    firehoses[0].resetAndDestroy();
    if (breaksAtOnce) {
      await waitFor(() => proxy.stats().live === 0, 'the pair closed');
      expect(proxy.stats().upstreams[0]).toMatchObject({ pairs: 1, errors: 1 });
    } else {
      await sleep(500);
      expect(proxy.stats()).toMatchObject({ live: 1 });
    }
    sock.destroy();
  });
});

describe('failover', () => {
  it.each(BACKENDS)('on %s, a client never sees a refusal or a timeout while a healthy upstream remains, and its early bytes arrive', async (backend) => {
    const down = await downPort();
    const hole = await upstream(blackhole());
    const echo = muxnetEcho();
    const events: string[] = [];
    const proxy = proxyFor({
      backend,
      upstreams: [{ port: down }, { port: hole.port }, { port: echo.port }],
      connectTimeoutMs: 300,
      healthIntervalMs: 60_000,
      maxFailures: 100,
    });
    proxy.on('connect-failed', (u: Upstream, err: Error & { code?: string }) => events.push(`${u.port} ${err.code}`));
    // Round-robin: the first client is offered the down one, the second the blackhole. 1 MiB
    // each, sent at once: more than the proxy keeps while it waits (it pauses the client).
    let maxBuffered = 0;
    const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, proxy.stats().buffered)), 20);
    cleanup.push(() => clearInterval(sampler));
    for (let i = 0; i < 3; i++) {
      const payload = randomBytes((1 << 20) + i);
      const { data, error } = await exchange(proxy.port, payload);
      expect(error).toBeUndefined();
      expect(sha(data)).toBe(sha(payload));
    }
    expect(events).toContain(`${down} ECONNREFUSED`);
    expect(events).toContain(`${hole.port} ETIMEDOUT`);
    expect(proxy.stats().upstreams.map((u) => u.pairs)).toEqual([0, 0, 3]);
    expect(maxBuffered).toBeGreaterThan(0);
    expect(maxBuffered).toBeLessThan(768 * 1024);
  });

  it('ejects a dead upstream, probes it with backoff and re-admits it; live pairs elsewhere carry on', async () => {
    const a = await upstream(nodeEcho());
    const b = await upstream(nodeEcho());
    const proxy = proxyFor({ upstreams: [{ port: a.port }, { port: b.port }], maxFailures: 2 });
    const down: string[] = [];
    const up: string[] = [];
    proxy.on('upstream-down', (u: Upstream) => down.push(u.address));
    proxy.on('upstream-up', (u: Upstream) => up.push(u.address));
    const live = await Promise.all(Array.from({ length: 10 }, () => netConnect(proxy.port)));
    for (const s of live) s.on('error', () => {});
    await Promise.all(live.map((s) => roundTrip(s, Buffer.from('before'))));
    await waitFor(() => a.accepted() >= 5 && b.accepted() >= 5, 'both upstreams to get pairs');
    const bPort = b.port;
    await b.close();
    // b's pairs are gone; a's keep working while b is down.
    await waitFor(() => down.length === 1, 'b to be ejected');
    expect(down).toEqual([`127.0.0.1:${bPort}`]);
    const survivors = live.filter((s) => !s.destroyed);
    expect(survivors.length).toBeGreaterThanOrEqual(5);
    for (const s of survivors) expect((await roundTrip(s, Buffer.from('during'))).toString()).toBe('during');
    for (let i = 0; i < 10; i++) {
      const { data, error } = await exchange(proxy.port, Buffer.from(`new ${i}`));
      expect(error).toBeUndefined();
      expect(data.toString()).toBe(`new ${i}`);
    }
    // Back on the same port: a probe re-admits it, and it gets clients again.
    const again = await upstream(nodeEcho(bPort));
    await waitFor(() => up.length === 1, 'b to be re-admitted', 10_000);
    for (let i = 0; i < 4; i++) await exchange(proxy.port, Buffer.from('after'));
    expect(again.accepted()).toBeGreaterThanOrEqual(2);
    for (const s of survivors) await closeSocket(s);
  });

  it('probes a down upstream with backoff: intervals double, up to 16 intervals', async () => {
    const proxy = proxyFor({ upstreams: [{ port: await downPort() }], healthIntervalMs: 100, maxFailures: 1 });
    const down: number[] = [];
    proxy.on('upstream-down', () => down.push(Date.now()));
    await sleep(1650);
    // Probes at 100 ms (it goes down), then 200, 400, 800 ms later: about 4, where a fixed interval makes 16.
    const { failures, healthy } = proxy.stats().upstreams[0];
    expect(healthy).toBe(false);
    expect(down.length).toBe(1);
    expect(failures).toBeGreaterThanOrEqual(3);
    expect(failures).toBeLessThanOrEqual(5);
  });

  it('an upstream that accepts and resets: the client is reset, counted, nothing leaks', async () => {
    const bad = await upstream(resetter());
    const proxy = proxyFor({ upstreams: [{ port: bad.port }] });
    const fdsBefore = socketFds();
    for (let i = 0; i < 5; i++) {
      const { data } = await exchange(proxy.port, Buffer.from('hi'));
      expect(data.length).toBe(0);
    }
    await waitFor(() => proxy.stats().live === 0, 'the pairs to close');
    expect(proxy.stats().upstreams[0].errors).toBeGreaterThan(0);
    await waitFor(() => socketFds() <= fdsBefore, 'sockets to be closed');
  });

  it('closes a client no upstream takes, and says so', async () => {
    const proxy = proxyFor({ upstreams: [{ port: await downPort() }] });
    const unavailable: string[] = [];
    proxy.on('unavailable', (client: string) => unavailable.push(client));
    const { data } = await exchange(proxy.port, Buffer.from('anyone?'));
    expect(data.length).toBe(0);
    expect(unavailable).toEqual(['127.0.0.1']);
    expect(proxy.stats().unavailable).toBe(1);
  });
});

describe('strategies, live', () => {
  it('weighted 1:3 over 400 short connections gives 100 and 300', async () => {
    const ups = [await upstream(nodeEcho()), await upstream(nodeEcho())];
    const proxy = proxyFor({ upstreams: [{ port: ups[0].port }, { port: ups[1].port, weight: 3 }], strategy: 'weighted' });
    for (let i = 0; i < 400; i += 20) {
      await Promise.all(Array.from({ length: 20 }, () => exchange(proxy.port, Buffer.from('x'))));
    }
    await waitFor(() => proxy.stats().live === 0, 'the pairs to close');
    expect(proxy.stats().upstreams.map((u) => u.pairs)).toEqual([100, 300]);
  });

  it('least-connections spreads held connections evenly; source-hash keeps one client on one upstream', async () => {
    const ups = [await upstream(nodeEcho()), await upstream(nodeEcho()), await upstream(nodeEcho())];
    const specs = ups.map((u) => ({ port: u.port }));
    const least = proxyFor({ upstreams: specs, strategy: 'least-connections' });
    const held: net.Socket[] = [];
    for (let i = 0; i < 30; i++) {
      const s = await netConnect(least.port);
      held.push(s);
      await roundTrip(s, Buffer.from('hold'));
    }
    expect(least.stats().upstreams.map((u) => u.live)).toEqual([10, 10, 10]);
    await Promise.all(held.map(closeSocket));
    const hash = proxyFor({ upstreams: specs, strategy: 'source-hash' });
    for (let i = 0; i < 20; i++) await exchange(hash.port, Buffer.from('same client'));
    expect(hash.stats().upstreams.map((u) => u.pairs).sort()).toEqual([0, 0, 20]);
  });
});

describe('resources', () => {
  it('a client that never reads from a fast upstream: the proxy holds a bounded queue, the upstream is slowed', async () => {
    let sent = () => 0;
    const chunk = Buffer.alloc(64 * 1024, 7);
    const firehose = await upstream(nodeServer((s) => (sent = flood(s, chunk))));
    // No probes: each would get its own firehose.
    const proxy = proxyFor({ upstreams: [{ port: firehose.port }], healthIntervalMs: 60_000 });
    const sock = await netConnect(proxy.port);
    sock.pause();
    await sleep(1500);
    const { buffered } = proxy.stats();
    const sentThen = sent();
    await sleep(500);
    // The pipe's high-water mark (256 KiB) plus a read chunk, not the stream's length.
    expect(buffered).toBeLessThan(1 << 20);
    expect(sent() - sentThen).toBe(0);
    expect(sentThen).toBeLessThan(32 << 20);
    sock.destroy();
  });

  it('a client that sends to an upstream that never reads is held too', async () => {
    const sink = await upstream(neverReads());
    const proxy = proxyFor({ upstreams: [{ port: sink.port }] });
    const sock = await netConnect(proxy.port);
    const written = flood(sock, Buffer.alloc(64 * 1024));
    await sleep(1500);
    const writtenThen = written();
    await sleep(500);
    // Kernel buffers (a few MiB) and the pipe's high-water mark, then nothing moves.
    expect(written() - writtenThen).toBe(0);
    expect(written()).toBeLessThan(32 << 20);
    expect(proxy.stats().buffered).toBeLessThan(1 << 20);
    expect(sock.writableLength).toBeGreaterThan(0);
    sock.destroy();
  });

  it('sockets are back to where they started after 300 connections of churn, maxConnections rejects the excess', async () => {
    const echo = muxnetEcho();
    const proxy = proxyFor({ upstreams: [{ port: echo.port }], maxConnections: 5 });
    await sleep(200);
    const before = socketFds();
    for (let i = 0; i < 300; i += 30) {
      await Promise.all(Array.from({ length: 30 }, (_, j) => exchange(proxy.port, Buffer.from(`churn ${i + j}`))));
    }
    // A client done with its exchange may be ahead of the proxy closing its pair (the next
    // turn's, on a backend whose waiter thread polls): until then the pair counts against
    // maxConnections, and the held five would be turned away.
    await waitFor(() => proxy.stats().live === 0, "the churn's pairs to close");
    const held = await Promise.all(Array.from({ length: 5 }, () => netConnect(proxy.port)));
    await Promise.all(held.map((s) => roundTrip(s, Buffer.from('in'))));
    const { data } = await exchange(proxy.port, Buffer.from('one too many'));
    expect(data.length).toBe(0);
    expect(proxy.stats().rejected).toBeGreaterThanOrEqual(1);
    await Promise.all(held.map(closeSocket));
    await waitFor(() => proxy.stats().live === 0, 'the pairs to close');
    await waitFor(() => socketFds() <= before, `sockets back to ${before} (now ${socketFds()})`);
  });
});

describe('close()', () => {
  it('stops accepting, lets a live pair finish within the deadline, destroys what is left after it', async () => {
    const echo = muxnetEcho();
    const proxy = proxyFor({ upstreams: [{ port: echo.port }] });
    const finishing = await netConnect(proxy.port);
    const stuck = await netConnect(proxy.port);
    stuck.on('error', () => {});
    await roundTrip(finishing, Buffer.from('a'));
    await roundTrip(stuck, Buffer.from('b'));
    const stuckClosed = new Promise((r) => stuck.on('close', r));
    const started = Date.now();
    const closed = proxy.close({ timeout: 800 });
    // New clients are refused; the live pair still relays.
    await expect(netConnect(proxy.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect((await roundTrip(finishing, Buffer.from('still here'))).toString()).toBe('still here');
    await closeSocket(finishing);
    const stats = await closed;
    await stuckClosed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    expect(stats.live).toBe(0);
    expect(stats.accepted).toBe(2);
  });

  // Found by a hunt (2026-12-05): the second close's deadline was ignored (the first's 5 s ran out).
  it('a second close() whose deadline comes sooner (a second SIGTERM) destroys what is left then, and returns the same promise', async () => {
    const echo = muxnetEcho();
    const proxy = proxyFor({ upstreams: [{ port: echo.port }] });
    const stuck = await netConnect(proxy.port);
    stuck.on('error', () => {});
    await roundTrip(stuck, Buffer.from('b'));
    const started = Date.now();
    const first = proxy.close({ timeout: 5000 });
    await new Promise((r) => setTimeout(r, 50));
    expect(proxy.close({ timeout: 0 })).toBe(first);
    expect((await first).live).toBe(0);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('rejects bad options (as the servers do), closing nothing; a good close then works', async () => {
    const proxy = proxyFor({ upstreams: [{ port: await downPort() }] });
    await expect(proxy.close({ timeout: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(proxy.close(null as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    // Still listening.
    const sock = await netConnect(proxy.port);
    sock.destroy();
    expect((await proxy.close({ timeout: 0 })).accepted).toBe(1);
  });
});

describe('out of fds', () => {
  /** A proxy in a child process with `ulimit -n limit`, driven until it runs out of fds; what it printed. */
  async function starve(limit: number, echoPort: number): Promise<string> {
    const dist = JSON.stringify(require.resolve('../../dist/proxy'));
    const code = `
      const { createProxy } = require(${dist});
      const proxy = createProxy({ port: 0, upstreams: [{ port: ${echoPort} }], maxFailures: 1, healthIntervalMs: 60000 });
      proxy.on('error', (err) => console.log('ERROR ' + err.code + ' ' + err.syscall));
      proxy.on('upstream-down', (u) => console.log('DOWN ' + u.address));
      console.log('PORT ' + proxy.port);`;
    const child = spawn('sh', ['-c', `ulimit -n ${limit} && exec "${process.execPath}" -e "$0"`, code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const exited = new Promise((r) => child.once('exit', r));
    const held: net.Socket[] = [];
    try {
      await waitFor(() => /PORT \d+/.test(out), 'the proxy to listen');
      const port = Number(/PORT (\d+)/.exec(out)![1]);
      for (let i = 0; i < 40 && !out.includes('ERROR'); i++) {
        const sock = await netConnect(port);
        sock.on('error', () => {});
        held.push(sock);
        await roundTrip(sock, Buffer.from('fd'), 1000).catch(() => {});
      }
      expect(out).toMatch(/ERROR E[MN]FILE/);
      for (const s of held.splice(0)) s.destroy();
      // Service comes back once fds are free (accepting resumes by itself).
      let served = false;
      for (let i = 0; i < 20 && !served; i++) {
        served = (await exchange(port, Buffer.from('again'), 2000)).data.toString() === 'again';
        if (!served) await sleep(100);
      }
      expect(served).toBe(true);
      return out;
    } finally {
      for (const s of held) s.destroy();
      child.kill('SIGKILL');
      await exited;
    }
  }

  it('EMFILE in the proxy, on accept or on the upstream connect, ejects no upstream and passes', async () => {
    const echo = await upstream(nodeEcho());
    // A pair costs two fds: of two limits one runs out on accept, the other on the connect.
    const outs = [await starve(48, echo.port), await starve(49, echo.port)].join('');
    expect(outs).not.toContain('DOWN');
    expect(outs).toMatch(/ERROR EMFILE connect/);
    expect(outs).toMatch(/ERROR EMFILE accept/);
  });
});

/** test/fixtures/proxy-throw.js, `throw` or `quiet` (its own process: the throws must reach its 'uncaughtException'). */
const throwingRun = (mode: 'throw' | 'quiet') => fixtureJson<{ logs: Record<string, string[]>; planned: number; caught: number; stray: string[] }>('proxy-throw.js', [mode]);

describe('a throw from each listener of the proxy (test/fixtures/proxy-throw.js; built dist)', () => {
  it("reaches 'uncaughtException' and the proxy goes on as without it: every event emitted, every client echoed or closed, close() resolves", async () => {
    const [quiet, threw] = [await throwingRun('quiet'), await throwingRun('throw')];
    expect(quiet.logs['throws in connect-failed']).toEqual(['upstream-down dead', 'connect-failed dead', 'client hi 0', 'client hi 1', 'client hi 2', 'close 3 accepted']);
    expect(quiet.logs['throws in unavailable'].filter((e) => e.startsWith('client'))).toEqual(['client closed', 'client closed', 'client closed']);
    expect(quiet.logs['throws in upstream-up'].slice(3)).toEqual(['client closed', 'upstream-up upstream', 'client hi 0', 'client hi 1', 'close 3 accepted']);
    expect(quiet.logs['throws in close']).toEqual(['client hi', 'close 1 accepted', 'close() resolved, 1 accepted']);
    expect(threw.logs).toEqual(quiet.logs);
    expect(threw.stray).toEqual([]);
    expect([threw.planned, threw.caught]).toEqual([5, 5]);
  }, 60_000);
});
