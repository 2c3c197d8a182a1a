// muxnet lives inside Node's event loop: it never holds the process open
// on its own, never blocks timers or promises, and a throwing handler is
// an uncaught exception, not a dead reactor.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import nodeNet from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { listen } from '../src/fast';
import { BACKENDS, netConnect, roundTrip } from './helpers';

const run = promisify(execFile);
const fixture = (name: string) => path.join(__dirname, 'fixtures', name);

describe.each(BACKENDS)('inside Node on %s', (backend) => {
  it('the process exits by itself once no ref’d handle is open', async () => {
    const { stdout } = await run(process.execPath, [fixture('exits-by-itself.js'), backend], { timeout: 10_000 });
    expect(stdout.trim()).toBe('closed true');
  });

  it('an open fast connection holds the process until unref(), again after ref(); a closed one never', async () => {
    const { stdout } = await run(process.execPath, [fixture('connection-ref.js'), backend], { timeout: 10_000 });
    expect(stdout.trim()).toBe('held true');
  });

  // Found by a hunt (2026-12-05): unref()ed, a connection let the process exit with its queue
  // dropped (the peer saw an orderly end after ~4 MB of 16 MiB), a file half sent, or before it
  // connected; paused, one held the process for ever. As node:net's socket: what it owes holds
  // the process, unref()ed or not; paused with nothing owed, nothing does.
  it.each([
    ['write', 16 << 20],
    ['broadcast', 16 << 20],
    ['broadcast-end', 16 << 20],
    ['sendfile', 8 << 20],
    ['connecting', 'connected'.length],
    ['paused', 'paused'.length],
  ] as const)('an unref()ed connection holds the process while it owes bytes; a paused one only then (%s)', async (mode, bytes) => {
    const sink = nodeNet.createServer().listen(0, '127.0.0.1');
    await once(sink, 'listening');
    const received = new Promise<number>((resolve) =>
      sink.once('connection', (peer) => {
        let got = 0;
        // A slow reader: the writer's queue stays in Rust a while.
        peer.pause();
        setTimeout(() => peer.resume(), 300);
        peer.on('data', (d) => (got += d.length)).on('end', () => resolve(got));
      }),
    );
    try {
      const { stdout } = await run(process.execPath, [fixture('connection-owes.js'), backend, String((sink.address() as nodeNet.AddressInfo).port), mode], { timeout: 10_000 });
      expect(stdout.trim()).toBe(mode === 'sendfile' ? `sent ${bytes}` : '');
      expect(await received).toBe(bytes);
    } finally {
      sink.close();
    }
  });

  // Found by a review (2026-12-05): a Drain the reactor recorded before a reply written in the same
  // batch queued again still came: onDrain with bytes queued, and an unref()ed connection let the
  // process exit with them (muxnet/async's write promises resolved early too).
  it('onDrain never comes with bytes still queued (a reply written in the batch that emptied the queue)', async () => {
    const { stdout } = await run(process.execPath, [fixture('drain-stale.js'), backend, '3000'], { timeout: 15_000 });
    expect(JSON.parse(stdout)).toMatchObject({ stale: 0 });
  });

  it('a throwing handler reaches uncaughtException; other connections keep echoing', async () => {
    const { stdout } = await run(process.execPath, [fixture('throwing-handler.js'), backend], { timeout: 15_000 });
    expect(JSON.parse(stdout)).toEqual({ caught: ['handler threw'], echoed: 50 });
  });

  it('a socket a handler opens never takes the slot of one the same turn closed: its data and close still arrive', async () => {
    const { stdout } = await run(process.execPath, [fixture('slot-reuse.js'), backend], { timeout: 10_000 });
    expect(JSON.parse(stdout)).toEqual({ firstData: 'hello', firstClosed: true, outgoing: true });
  });

  it('worker threads get their own reactor, torn down cleanly with the worker', async () => {
    const { stdout } = await run(process.execPath, [fixture('worker-reactor.js'), backend], { timeout: 15_000 });
    expect(JSON.parse(stdout)).toEqual({ terminated: 1, mainStillEchoes: true });
  });

  it('terminating a worker with a busy reactor says nothing on stderr (10 tries)', async () => {
    for (let i = 0; i < 10; i++) {
      const { stdout, stderr } = await run(process.execPath, [fixture('worker-terminate-busy.js'), backend], { timeout: 15_000 });
      expect(JSON.parse(stdout)).toEqual({ terminated: 1 });
      expect(stderr).toBe('');
    }
  });

  it('a panic in the binding is a JS error, thrown or uncaught, and the reactor keeps echoing', async () => {
    const { stdout } = await run(process.execPath, [fixture('panic-barrier.js'), backend], { timeout: 15_000 });
    expect(JSON.parse(stdout)).toEqual({
      echoes: ['before', 'after a method', 'after a write', 'after a turn'],
      // napi-rs's own barrier (#[napi(catch_unwind)]) names no code of ours.
      method: 'GenericFailure naming the panic',
      write: 'ERR_MUXNET_PANIC naming the panic',
      turn: 'ERR_MUXNET_PANIC naming the panic',
    });
  });

  it.each(['server', 'udp', 'udp-unbound'])("an unref'd %s closed from 'beforeExit' keeps the loop one more turn: 'beforeExit' comes again, as node's", async (kind) => {
    const count = async (impl: string) => (await run(process.execPath, [fixture('before-exit-close.js'), impl, kind, backend], { timeout: 10_000 })).stdout.trim();
    const expected = await count('node');
    expect(expected).toBe('2');
    expect(await count('muxnet')).toBe(expected);
  });

  it('timers, promises and node:net keep running beside it', async () => {
    const server = listen({ port: 0, backend }, { onData: (c, d) => c.write(d) });
    const sock = await netConnect(server.port);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    for (let i = 0; i < 200; i++) {
      await Promise.resolve();
      await roundTrip(sock, Buffer.from(String(i)));
    }
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
    sock.destroy();
    server.close();
  });
});

// Found by a hunt (2026-12-07): on poll and select (and mio with its waiter thread, as on
// Windows) a loopback datagram or an echoed byte reached its listener up to thousands of
// loop turns late while the loop spun on setImmediate, where node:net's take 1 to 3: the
// waiter thread had not been run. node-coap's suite, which ticks a fake clock each turn, failed.
// (A look at every socket each such turn is spaced by its cost: see README, Backends.)
describe.each([
  ['node:net', undefined, undefined] as const,
  ...BACKENDS.map((b) => ['muxnet', b, undefined] as const),
  ...(process.platform === 'win32' ? [] : [['muxnet', 'mio', 'thread'] as const]),
])('a loop spinning on setImmediate (%s %s, wake %s)', (impl, backend, wake) => {
  // node:net's take 1 (udp) and 3 (tcp); a look at the sockets is spaced by 8 times its cost.
  it.each(['udp', 'tcp'] as const)('hears loopback %s input within a few dozen loop turns', async (protocol) => {
    const env = { ...process.env, MUXNET_BACKEND: backend ?? '', MUXNET_WAKE: wake ?? '' };
    const { stdout } = await run(process.execPath, [fixture('busy-loop-turns.js'), impl === 'node:net' ? 'node' : 'muxnet', protocol], { env, timeout: 30_000 });
    expect(Number(stdout)).toBeLessThanOrEqual(32);
  });
});
