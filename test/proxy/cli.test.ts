// `npx muxnet proxy` as a user runs it: a real process, real signals.
import { afterEach, describe, expect, it } from 'vitest';
import { closeSocket, downPort, loopbackName, netConnect, roundTrip, runCli, waitFor, type Running } from '../helpers';
import { exchange, nodeEcho, randomBytes, sha, type TestUpstream } from './upstreams';
import { resolveBackend } from '../../src/options';

/** The backend a proxy started without `--backend` runs on (`$MUXNET_BACKEND`'s, else mio). */
const DEFAULT_BACKEND = resolveBackend(undefined);

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const stop of cleanup.splice(0).reverse()) await stop();
});

function run(args: string[]): Running {
  const proxy = runCli(['proxy', ...args], 20_000);
  cleanup.push(() => {
    proxy.child.kill('SIGKILL');
    return proxy.exited;
  });
  return proxy;
}

async function startProxy(args: string[]): Promise<Running & { port: number }> {
  const running = run(['--listen', '127.0.0.1:0', ...args]);
  let port = 0;
  await waitFor(() => {
    port = Number(/listening on tcp 127\.0\.0\.1:(\d+)/.exec(running.output())?.[1] ?? 0);
    return port > 0;
  }, `the proxy to listen:\n${running.output()}`, 10_000);
  return { ...running, port };
}

async function echo(): Promise<TestUpstream> {
  const up = await nodeEcho();
  cleanup.push(() => up.close());
  return up;
}

describe('muxnet proxy', () => {
  it('relays to weighted upstreams past a down one, and drains on SIGTERM', async () => {
    const [a, b] = [await echo(), await echo()];
    const down = await downPort();
    const proxy = await startProxy([
      '--upstream', `127.0.0.1:${a.port}`,
      '--upstream', `127.0.0.1:${down}`,
      '--upstream', `127.0.0.1:${b.port},weight=2`,
      '--strategy', 'weighted', '--health-interval', '0.1', '--connect-timeout', '1',
    ]);
    expect(proxy.output()).toContain(`(weighted, 3 upstreams, backend ${DEFAULT_BACKEND})`);
    for (let i = 0; i < 8; i++) {
      const payload = randomBytes(50_000);
      const { data, error } = await exchange(proxy.port, payload);
      expect(error).toBeUndefined();
      expect(sha(data)).toBe(sha(payload));
    }
    expect(a.accepted()).toBeGreaterThan(0);
    expect(b.accepted()).toBeGreaterThan(a.accepted());
    await waitFor(() => proxy.output().includes(`upstream 127.0.0.1:${down} down`), 'the down upstream to be reported');
    // A pair live at SIGTERM keeps relaying until it ends; then the process exits by itself.
    const live = await netConnect(proxy.port);
    await roundTrip(live, Buffer.from('before'));
    proxy.child.kill('SIGTERM');
    await waitFor(() => proxy.output().includes('SIGTERM, draining 1 pairs'), 'the drain to start');
    expect((await roundTrip(live, Buffer.from('during the drain'))).toString()).toBe('during the drain');
    await closeSocket(live);
    expect(await proxy.exited).toBe(0);
    expect(proxy.output()).toMatch(/stopped: 0 live, 9 accepted/);
  });

  // Found 2026-12-05: its stats line left out the clients it turned away.
  it('the stats line counts clients over --max-connections and those no upstream would take', async () => {
    const a = await echo();
    const proxy = await startProxy(['--upstream', `127.0.0.1:${a.port}`, '--max-connections', '1', '--health-interval', '0.1', '--connect-timeout', '1']);
    const held = await netConnect(proxy.port);
    await roundTrip(held, Buffer.from('held'));
    // Over the limit: closed at once, nothing relayed.
    const over = await exchange(proxy.port, Buffer.from('turned away'));
    expect(over.data.length).toBe(0);
    await closeSocket(held);
    await a.close();
    await waitFor(() => proxy.output().includes(`upstream 127.0.0.1:${a.port} down`), 'the upstream reported down');
    const none = await exchange(proxy.port, Buffer.from('nowhere to go'));
    expect(none.data.length).toBe(0);
    await waitFor(() => proxy.output().includes('no upstream for'), 'the unavailable client reported');
    proxy.child.kill('SIGTERM');
    expect(await proxy.exited).toBe(0);
    expect(proxy.output()).toMatch(/stopped: 0 live, \d+ accepted, 1 rejected \(max connections\), 1 unavailable \(no upstream\), \d+ bytes up/);
  });

  it('relays with --splice', async () => {
    const a = await echo();
    const proxy = await startProxy(['--upstream', `127.0.0.1:${a.port}`, '--splice']);
    expect(proxy.output()).toContain(`(round-robin, 1 upstream, backend ${DEFAULT_BACKEND}, bulk spliced)`);
    const payload = randomBytes(1 << 20);
    expect(sha((await exchange(proxy.port, payload)).data)).toBe(sha(payload));
  });

  it.each([['poll'], ['select']])('relays on --backend %s', async (backend) => {
    const a = await echo();
    const proxy = await startProxy(['--upstream', `127.0.0.1:${a.port}`, '--backend', backend]);
    expect(proxy.output()).toContain(`backend ${backend}`);
    const payload = randomBytes(300_000);
    expect(sha((await exchange(proxy.port, payload)).data)).toBe(sha(payload));
  });

  it('destroys pairs still open after --drain-timeout', async () => {
    const a = await echo();
    const proxy = await startProxy(['--upstream', `127.0.0.1:${a.port}`, '--drain-timeout', '0.3']);
    const live = await netConnect(proxy.port);
    live.on('error', () => {});
    await roundTrip(live, Buffer.from('hold'));
    const closed = new Promise((r) => live.on('close', r));
    proxy.child.kill('SIGINT');
    expect(await proxy.exited).toBe(0);
    await closed;
  });

  it.each([
    [['--upstream', '127.0.0.1:9001', '--health-interval', 'abc'], /--health-interval must be a number over 0 and at most 2147483, not 'abc'/],
    [['--upstream', '127.0.0.1:9001', '--connect-timeout=-1'], /--connect-timeout must be a number over 0 and at most 2147483, not '-1'/],
    [['--upstream', '127.0.0.1:9001', '--health-interval', '1e7'], /--health-interval must be a number over 0 and at most 2147483, not '1e7'/],
    [['--upstream', '127.0.0.1:9001', '--max-connections', '2.5'], /--max-connections must be a whole number from 1 to 2147483647, not '2.5'/],
    [['--upstream', '127.0.0.1:9001', '--max-connections', '1e20'], /--max-connections must be a whole number from 1 to 2147483647, not '1e20'/],
    [['--upstream', '127.0.0.1:9001', '--max-failures', '0'], /--max-failures must be a whole number >= 1, not '0'/],
    [['--upstream', '127.0.0.1:9001,weight=abc'], /weight must be a whole number from 1 to 1000, not 'abc'/],
    [['--upstream', '127.0.0.1:http'], /--upstream port must be a whole number from 1 to 65535, not 'http'/],
    [['--upstream', '127.0.0.1'], /--upstream must be HOST:PORT\[,weight=N\], not '127.0.0.1'/],
    [['--upstream', '127.0.0.1:9001,color=red'], /unknown parameter 'color=red'/],
    [['--listen', '127.0.0.1:99999', '--upstream', '127.0.0.1:9001'], /--listen port must be a whole number from 0 to 65535, not '99999'/],
    [['--upstream', '127.0.0.1:9001', '--strategy', 'fastest'], /--strategy must be one of round-robin, random, weighted, least-connections, source-hash, not fastest/],
    [[], /give at least one --upstream HOST:PORT/],
  ])('%j: a usage error, exit code 2', async (args, message) => {
    const running = run(args);
    expect(await running.exited).toBe(2);
    expect(running.output()).toMatch(message);
    expect(running.output()).toMatch(/^usage: /m);
  });

  // Found 2026-12-06 (a note's list): --upstream and --listen took IP addresses only (a host
  // name was a usage error), where a user writes backend names.
  it('takes host names, looked up once at start; one that does not resolve exits 1', async (ctx) => {
    const nowhere = run(['--upstream', 'nothing.invalid:80']);
    expect(await nowhere.exited).toBe(1);
    expect(nowhere.output()).toMatch(/muxnet proxy: getaddrinfo (ENOTFOUND|EAI_AGAIN) nothing\.invalid/);
    const name = await loopbackName();
    // Said, not passed quietly: this machine has no name for 127.0.0.1 but localhost.
    if (!name) return ctx.skip();
    const a = await echo();
    const running = run(['--listen', `${name}:0`, '--upstream', `${name}:${a.port}`]);
    let port = 0;
    await waitFor(() => (port = Number(/listening on tcp 127\.0\.0\.1:(\d+)/.exec(running.output())?.[1] ?? 0)) > 0, `the proxy to listen:\n${running.output()}`, 10_000);
    const payload = randomBytes(100_000);
    expect(sha((await exchange(port, payload)).data)).toBe(sha(payload));
  });

  it('a proxy that cannot listen exits 1', async () => {
    const a = await echo();
    const running = run(['--listen', `127.0.0.1:${a.port}`, '--upstream', `127.0.0.1:${a.port}`]);
    expect(await running.exited).toBe(1);
    expect(running.output()).toContain(`listen EADDRINUSE: address already in use 127.0.0.1:${a.port}`);
  });
});
