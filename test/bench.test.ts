// `npm run bench` as a user runs it, each kind of cell once with every server it compares, for
// a fraction of a second: the figures mean nothing here (other tests share the cores), but every
// server must start, serve the load client's verified traffic and stop. The drop-in TCP echo
// server once failed to start (it required a module that had moved) and every TCP row of the
// tables said "failed" with no test noticing.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { FULL } from '../src/bench/cells';
import { markdown } from '../src/bench/report';
import { cpuAffinity, median, pinning, runMatrix, type Result } from '../src/bench/runner';
import type { ServerSpec } from '../src/bench/servers';

const BENCH = path.join(__dirname, '..', 'dist', 'bench', 'cli.js');
const PROXY_SERVER = path.join(__dirname, '..', 'dist', 'bench', 'proxy-server.js');
const FAULTY_ECHO = path.join(__dirname, 'fixtures', 'faulty-echo.js');
const CELLS = ['tcp-100x64B-d1', 'idle-1000+100', 'udp-16x64B', 'memory-2000', 'chat-1to100', 'proxy-100x64B-d1', 'proxy-memory-5000', 'file-256MiB'];

const out = mkdtempSync(path.join(os.tmpdir(), 'muxnet-bench-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function bench(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BENCH, ...args], { maxBuffer: 16 << 20, timeout: 280_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr.slice(-2000)}`)) : resolve({ stdout, stderr }),
    );
  });
}

it('every server of every kind of cell starts, serves verified traffic and stops', { timeout: 300_000 }, async () => {
  const { stdout } = await bench(['--cells', CELLS.join(','), '--duration', '0.3', '--warmup', '0.1', '--rounds', '1', '--out', out]);
  const json = readdirSync(out).filter((f) => f.endsWith('.json'));
  expect(json).toHaveLength(1);
  const { results } = JSON.parse(readFileSync(path.join(out, json[0]), 'utf8')) as { results: Result[] };
  expect(results.filter((r) => r.status === 'failed').map((r) => `${r.server} · ${r.cell}: ${r.reason}`)).toEqual([]);
  for (const r of results) {
    if (r.status === 'skipped') {
      expect(r.reason, `${r.server} · ${r.cell}`).toBeTruthy();
      continue;
    }
    const what = `${r.server} · ${r.cell}`;
    expect(r.load!.messages, what).toBeGreaterThan(0);
    // Where the server is pinned, what else ran on its CPU is measured.
    if (pinning().server.length > 0) expect(r.load!.server_core_other_s, what).toEqual(expect.any(Number));
    expect(r.load!.errors, what).toBe(0);
    expect(r.load!.verification_errors, what).toBe(0);
    // A datagram unanswered within the load client's 200 ms counts as lost: a stall of the server
    // behind other tests' processes can do that to a few; a server that does not answer loses all.
    if (typeof r.load!.lost === 'number') expect(r.load!.lost, what).toBeLessThanOrEqual(r.load!.messages / 100);
    // Every connection answered within the window (a starved one is in no latency sample).
    if (r.cell === 'tcp-100x64B-d1') expect(r.load!.starved, what).toBe(0);
    if (r.cell === 'memory-2000') expect(r.idleHeld, what).toBe(2000);
    if (r.cell === 'idle-1000+100') expect(r.idleHeld, what).toBe(1000);
  }
  // What the tables are for: node:net, the drop-in and the fast API side by side in each echo cell.
  const ran = (cell: string) => results.filter((r) => r.cell === cell && r.status === 'ok').map((r) => r.server);
  for (const cell of ['tcp-100x64B-d1', 'idle-1000+100', 'udp-16x64B', 'memory-2000']) expect(ran(cell)).toEqual(expect.arrayContaining(['node', 'net', 'mio']));
  expect(ran('chat-1to100')).toEqual(expect.arrayContaining(['chat-node', 'chat-muxnet']));
  expect(ran('proxy-100x64B-d1')).toEqual(expect.arrayContaining(['proxy-node', 'proxy-muxnet', 'proxy-rust', 'proxy-direct']));
  expect(ran('proxy-memory-5000')).toEqual(expect.arrayContaining(['proxy-node', 'proxy-muxnet']));
  expect(ran('file-256MiB')).toEqual(['file-node', 'file-muxnet']);
  expect(stdout).toContain('### tcp-100x64B-d1');
  // The plots go with the tables.
  expect(readdirSync(out).filter((f) => f.endsWith('.svg')).length).toBeGreaterThan(0);
});

it('a cell reports its median round by what it measures: throughput for an idle-scaling cell, bytes per connection for a memory cell', () => {
  // Three rounds whose throughput and memory rank in opposite orders (as they can: both hold idle connections).
  const round = (msgs: number, bytes: number): Result => ({
    server: 'mio',
    label: 'muxnet fast mio',
    wake: 'fd',
    cell: 'c',
    status: 'ok',
    bytesPerIdle: bytes,
    load: { duration_s: 1, messages: msgs, msgs_per_s: msgs, mb_per_s: 0, p50_us: 1, p99_us: 2, p999_us: 3, errors: 0, verification_errors: 0, server_cpu_s: 1, msgs_per_server_cpu_s: msgs, server_rss_kb: 0 },
  });
  const rounds = [round(398_060, 900), round(289_661, 1_000), round(376_262, 1_100)];
  expect(median(rounds, rounds[0], false).load!.msgs_per_s).toBe(376_262);
  expect(median(rounds, rounds[0], true).bytesPerIdle).toBe(1_000);
});

it("a row whose server shared its CPU with other work says so under the table", () => {
  const row = (server: string, other: number): Result => ({
    server,
    label: server,
    wake: 'fd',
    cell: 'tcp-100x64B-d1',
    status: 'ok',
    load: { duration_s: 2, messages: 1, msgs_per_s: 1, mb_per_s: 0, p50_us: 1, p99_us: 2, p999_us: 3, errors: 0, verification_errors: 0, server_cpu_s: 1, server_core_other_s: other, msgs_per_server_cpu_s: 1, server_rss_kb: 0 },
  });
  const table = markdown([row('quiet', 0.05), row('crowded', 0.6)], FULL.filter((c) => c.id === 'tcp-100x64B-d1'));
  expect(table).toContain("crowded: other work (processes, the hypervisor's steal) had 30 % of the server's CPU in the window");
  expect(table).not.toContain('quiet: other work');
});

// Until 2026-12-05 a row was "ok" whatever came back: a server echoing wrong bytes had its
// throughput tabled (errors in a column), one that died mid-cell had the messages before its
// death divided by the whole window, and one that stopped answering a connection showed no sign.
it('a server that echoes wrong bytes or dies has the cell failed, not measured; one that stops answering or resets a connection is told of under the table', { timeout: 60_000 }, async () => {
  const faulty = (mode: string): ServerSpec => ({
    id: mode,
    label: `echo that ${mode}s`,
    wake: 'fd',
    udp: false,
    kind: 'echo',
    command: (_protocol, host) => ({ cmd: process.execPath, args: [FAULTY_ECHO, mode, host] }),
  });
  const cells = FULL.filter((c) => c.id === 'tcp-100x64B-d1');
  // A request unanswered for half the window, a second at least, is a stall: the stalling
  // server answers for 300 ms, and 1.5 s leave its last request waiting over a second.
  const results = await runMatrix(['corrupt', 'die', 'stall', 'reset'].map(faulty), cells, { host: '127.0.0.1', warmup: 0.1, duration: 1.5, rounds: 1, onProgress() {} });
  const [corrupt, die, stall, reset] = results;
  expect(corrupt).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^\d+ bytes came back wrong/) });
  expect(die).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^the server exited \(code 3\)/) });
  expect(stall.status).toBe('ok');
  expect(stall.load).toMatchObject({ stalled: 1, starved: 0, verification_errors: 0 });
  // A connection reset is an error in its column, and the load client's words on it under the table.
  expect(reset.status).toBe('ok');
  expect(reset.load).toMatchObject({ errors: 1, said: expect.stringMatching(/connection \d+: Connection reset by peer/) });
  const table = markdown(results, cells);
  expect(table).toContain('echo that stalls: 0 connections got no echo in the measured window, 1 had a request waiting');
  expect(table).toMatch(/echo that resets: 1 connection errors; the load client: muxnet-loadgen: connection \d+: Connection reset by peer/);
});

// The proxy's figures were once taken with its upstream on the proxy's own core: the proxy,
// pinned to one CPU, found only that one in its affinity and started the upstream unpinned.
const pin = pinning();
it.skipIf(pin.server.length === 0)("a server's own helper (the proxy's upstream) runs on the load client's CPU, not the server's", async () => {
  const proxy = spawn(pin.server[0], [...pin.server.slice(1), process.execPath, PROXY_SERVER, 'muxnet', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      proxy.stdout!.on('data', (d: Buffer) => (out += d).includes('listening') && resolve());
      proxy.once('exit', (code) => reject(new Error(`proxy-server exited (${code}): ${out}`)));
    });
    // taskset execs node, so the proxy's pid is the spawned one; its one child is the upstream.
    const children = readFileSync(`/proc/${proxy.pid}/task/${proxy.pid}/children`, 'utf8').trim().split(/\s+/);
    expect(children).toHaveLength(1);
    expect(cpuAffinity(proxy.pid!)).toBe(pin.server[2]);
    expect(cpuAffinity(Number(children[0]))).toBe(pin.client[2]);
  } finally {
    proxy.kill();
  }
});
