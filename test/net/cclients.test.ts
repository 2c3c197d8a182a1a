// Real C programs against muxnet, run as a user runs them: curl against
// node:http fed with the drop-in's sockets; the drop-in as a client of a real
// redis-server; the proxy (createProxy and the `muxnet proxy` CLI) in front of
// redis-server and PostgreSQL, driven by redis-benchmark, redis-cli, pgbench,
// psql, curl, and a redis replica syncing from its master through it.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import nodeNet from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as muxnet from '../../src/net';
import type { BackendName } from '../../src/fast';
import { createProxy, type ProxyServer } from '../../src/proxy';
import { getReactor } from '../../src/reactor';
import { PADS_ABSTRACT_NAMES } from '../../src/options';
import { BACKENDS, runCli, socketFds, waitFor, type Running } from '../helpers';
import { POSTGRES, POSTGRES_USER, REDIS, postgresDirs, program, runDuring, skipWithout, within, type Daemon, type Program } from './daemons';

const CURL = program('curl');
const H2LOAD = program('h2load');
const REDIS_CLI = program('redis-cli', REDIS.binDir ? [REDIS.binDir] : undefined);
const REDIS_BENCHMARK = program('redis-benchmark', REDIS.binDir ? [REDIS.binDir] : undefined);
const PGBENCH = program('pgbench', postgresDirs());
const PSQL = program('psql', postgresDirs());

/** Whether any of `programs` is missing (and the cases needing them are skipped, outside CI). */
const without = (...programs: Program[]) => programs.map(skipWithout).some(Boolean);

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface Ran {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `prog` with `args` (and `input` on its stdin) to its exit, killed after `ms`: its exit code and output. */
function run(prog: Program, args: string[], { input, ms = 60_000 }: { input?: Buffer; ms?: number } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(join(prog.binDir!, prog.name), args, { timeout: ms, maxBuffer: 256 << 20, encoding: 'buffer' }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr: stderr.toString() });
    });
    child.stdin!.on('error', () => {}); // it may exit before reading it all: its exit code says why
    child.stdin!.end(input);
  });
}

/** `run`, failing with its output unless it exits 0; gives its stdout. */
async function runOk(prog: Program, args: string[], opts?: { input?: Buffer; ms?: number }): Promise<Buffer> {
  const r = await run(prog, args, opts);
  if (r.code !== 0) throw new Error(`${prog.name} ${args.join(' ')} exited ${r.code}:\n${r.stdout.toString().slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** `runOk`'s stdout as text. */
const runText = async (prog: Program, args: string[], opts?: { input?: Buffer; ms?: number }) => (await runOk(prog, args, opts)).toString('latin1');

// One 64 MiB body of random bytes, in memory and in a file, for every transfer below.
const BIG = randomBytes(64 << 20);
const BIG_SHA = sha(BIG);
let dir = '';
let bigFile = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'muxnet-cclients-'));
  bigFile = join(dir, 'big.bin');
  writeFileSync(bigFile, BIG);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The app the http cases serve: GET /bytes/N sends the first N bytes of BIG
 * (honouring backpressure), GET /hello/X
 * answers `hello X`, and any other request answers `LENGTH SHA256` of its body.
 */
function app() {
  /** The peak of a socket's queue after a write; how far the last response cut short had got. */
  const stats = { peakQueued: 0, closedEarly: 0, sentWhenCut: 0 };
  const server = http.createServer((req, res) => {
    const bytes = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
    if (req.method === 'GET' && bytes) {
      const n = Number(bytes[1]);
      res.setHeader('content-length', n);
      let sent = 0;
      res.on('close', () => {
        if (res.writableFinished) return;
        stats.closedEarly++;
        stats.sentWhenCut = sent;
      });
      const pump = () => {
        while (sent < n && !res.destroyed) {
          const chunk = BIG.subarray(sent, Math.min(n, sent + 65536));
          sent += chunk.length;
          const more = res.write(chunk);
          stats.peakQueued = Math.max(stats.peakQueued, req.socket.writableLength);
          if (!more) return void res.once('drain', pump);
        }
        if (sent === n) res.end();
      };
      return pump();
    }
    const hello = /^\/hello\/(\w+)$/.exec(req.url ?? '');
    if (hello) return void res.end(`hello ${hello[1]}\n`);
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (d: Buffer) => {
      h.update(d);
      n += d.length;
    });
    req.on('end', () => res.end(`${n} ${h.digest('hex')}`));
  });
  return { server, stats };
}

describe.skipIf(without(CURL)).each(BACKENDS)('curl against node:http on muxnet sockets (%s)', (backend) => {
  let fdsBefore = 0;
  let base = '';
  let listener: muxnet.Server;
  const accepted: muxnet.Socket[] = [];
  const { server: httpServer, stats } = app();
  beforeAll(async () => {
    getReactor(backend); // its own fds, kept for the process
    fdsBefore = socketFds();
    listener = muxnet.createServer({ backend }, (socket) => {
      accepted.push(socket);
      httpServer.emit('connection', socket);
    });
    listener.listen(0, '127.0.0.1');
    await within(once(listener, 'listening'), 'listening');
    base = `http://127.0.0.1:${(listener.address() as nodeNet.AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => listener.close(resolve));
    // Every accepted socket was closed: curl's, and the aborted ones.
    await waitFor(() => socketFds() <= fdsBefore, `socket fds back to ${fdsBefore}`);
  });

  /** Fails unless every socket accepted so far closes. */
  const allClosed = () => waitFor(() => accepted.every((s) => s.destroyed), 'every accepted socket to close');

  it('downloads and uploads 64 MiB byte for byte (curl -o, --data-binary @file, chunked, Expect: 100-continue)', async () => {
    const out = join(dir, `down-${backend}.bin`);
    expect(await runText(CURL, ['-sS', '-o', out, '-w', '%{http_code} %{size_download}', `${base}/bytes/${BIG.length}`])).toBe(`200 ${BIG.length}`);
    expect(sha(readFileSync(out))).toBe(BIG_SHA);
    rmSync(out);
    expect(await runText(CURL, ['-sS', '--data-binary', `@${bigFile}`, `${base}/upload`])).toBe(`${BIG.length} ${BIG_SHA}`);
    // -T with a chunked request body: no content-length, curl frames it.
    expect(await runText(CURL, ['-sS', '-T', bigFile, '-H', 'Transfer-Encoding: chunked', `${base}/chunked`])).toBe(`${BIG.length} ${BIG_SHA}`);
    // curl waits for node:http's interim 100 before it sends the body.
    const expect100 = await run(CURL, ['-sS', '-v', '-H', 'Expect: 100-continue', '--data-binary', `@${bigFile}`, `${base}/expect`]);
    expect(expect100.code).toBe(0);
    expect(expect100.stderr).toMatch(/< HTTP\/1\.1 100 Continue/);
    expect(expect100.stdout.toString()).toBe(`${BIG.length} ${BIG_SHA}`);
    await allClosed();
  });

  it('serves curl --unix-socket (and on Linux --abstract-unix-socket) from a server listening on a path, 64 MiB each way', async () => {
    // An abstract name where node:net binds the name curl dials: not on Node 20 (see PADS_ABSTRACT_NAMES).
    const abstract = process.platform === 'linux' && !PADS_ABSTRACT_NAMES;
    const paths = [join(dir, `http-${backend}.sock`), ...(abstract ? [`\0muxnet-cclients-${process.pid}-${backend}`] : [])];
    for (const path of paths) {
      const local = muxnet.createServer({ backend }, (socket) => {
        accepted.push(socket);
        httpServer.emit('connection', socket);
      });
      local.listen(path);
      await within(once(local, 'listening'), 'listening on a path');
      const via = path.startsWith('\0') ? ['--abstract-unix-socket', path.slice(1)] : ['--unix-socket', path];
      const down = await runOk(CURL, ['-sS', ...via, `http://localhost/bytes/${BIG.length}`]);
      expect(sha(down)).toBe(BIG_SHA);
      expect(await runText(CURL, ['-sS', ...via, '--data-binary', `@${bigFile}`, 'http://localhost/upload'])).toBe(`${BIG.length} ${BIG_SHA}`);
      await new Promise((resolve) => local.close(resolve));
    }
    await allClosed();
  });

  it('keeps one connection alive across several URLs in one curl', async () => {
    const before = accepted.length;
    const urls = ['a', 'b', 'c', 'd'].flatMap((x) => [`${base}/hello/${x}`, `${base}/bytes/100000`]);
    const outs = urls.map((_u, i) => join(dir, `ka-${backend}-${i}`));
    const stdout = await runText(CURL, ['-sS', '-w', '%{num_connects} %{size_download}\n', ...urls.flatMap((u, i) => ['-o', outs[i], u])]);
    // One connect for the first URL, none after.
    expect(stdout.trim().split('\n')).toEqual(urls.map((u, i) => `${i === 0 ? 1 : 0} ${u.includes('hello') ? 8 : 100000}`));
    expect(accepted.length - before).toBe(1);
    for (const [i, u] of urls.entries()) {
      const body = readFileSync(outs[i]);
      expect(body.equals(u.includes('hello') ? Buffer.from(`hello ${u.slice(-1)}\n`) : BIG.subarray(0, 100000))).toBe(true);
      rmSync(outs[i]);
    }
    await allClosed();
  });

  it('a slow reader (--limit-rate) holds the server to a bounded queue, and --max-time aborting it mid-transfer frees the socket', async () => {
    const before = accepted.length;
    const closedEarly = stats.closedEarly;
    stats.peakQueued = 0;
    const r = await run(CURL, ['-sS', '-o', '/dev/null', '--limit-rate', '2M', '--max-time', '1.5', '-w', '%{size_download}', `${base}/bytes/${BIG.length}`]);
    expect(r.code).toBe(28); // curl: operation timed out
    const got = Number(r.stdout.toString());
    expect(got).toBeGreaterThan(0);
    expect(got).toBeLessThan(BIG.length);
    expect(accepted.length - before).toBe(1);
    await allClosed();
    // The response saw the client go. Backpressure held the server: it had
    // written what curl read, the kernel's buffers and a bounded queue
    // (a 64 KiB write past the high-water mark), far from the 64 MiB.
    // ('close' follows `destroyed` by a tick or more.)
    await waitFor(() => stats.closedEarly === closedEarly + 1, 'the response to see the client go');
    expect(stats.sentWhenCut).toBeLessThan(got + (24 << 20));
    expect(stats.peakQueued).toBeLessThan(1 << 20);
  });

  it('serves many curls in parallel, each upload and download byte for byte', async () => {
    const n = 24;
    const size = 1 << 20;
    const small = join(dir, `small-${backend}.bin`);
    writeFileSync(small, BIG.subarray(0, size));
    const outs = await Promise.all(
      Array.from({ length: n }, (_v, i) =>
        runText(CURL, ['-sS', '--data-binary', `@${small}`, `${base}/up/${i}`, '--next', '-sS', `${base}/bytes/${size + i}`, '-w', '\n%{size_download}']),
      ),
    );
    const want = sha(BIG.subarray(0, size));
    for (const [i, out] of outs.entries()) {
      const upload = out.slice(0, out.indexOf(' ') + 65);
      expect(upload).toBe(`${size} ${want}`);
      const body = Buffer.from(out.slice(upload.length, out.lastIndexOf('\n')), 'latin1');
      expect(body.length).toBe(size + i);
      expect(body.equals(BIG.subarray(0, size + i))).toBe(true);
    }
    rmSync(small);
    await allClosed();
  });
});

describe.skipIf(without(H2LOAD)).each(BACKENDS)('h2load against node:http2 on muxnet sockets (%s)', (backend) => {
  it('multiplexes thousands of requests with bodies over 20 connections, every one answered whole', async () => {
    const reply = BIG.subarray(0, 16 << 10);
    const upload = BIG.subarray(1 << 20, (1 << 20) + (8 << 10));
    const uploadFile = join(dir, `h2-upload-${backend}.bin`);
    writeFileSync(uploadFile, upload);
    let wrong = 0;
    const app = http2.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        if (!Buffer.concat(chunks).equals(upload)) wrong++;
        res.end(reply);
      });
    });
    const sockets: muxnet.Socket[] = [];
    const server = muxnet.createServer({ backend }, (socket) => {
      sockets.push(socket);
      app.emit('connection', socket);
    });
    server.listen(0, '127.0.0.1');
    await within(once(server, 'listening'), 'listening');
    const n = 4000;
    const out = await runText(H2LOAD, ['-n', String(n), '-c', '20', '-m', '16', '-d', uploadFile, `http://127.0.0.1:${(server.address() as nodeNet.AddressInfo).port}/`]);
    expect(out).toContain(`requests: ${n} total, ${n} started, ${n} done, ${n} succeeded, 0 failed, 0 errored, 0 timeout`);
    expect(out).toContain(`status codes: ${n} 2xx`);
    expect(out).toMatch(new RegExp(`^traffic: .*\\(${n * reply.length}\\) data$`, 'm'));
    expect(wrong).toBe(0);
    expect(sockets.length).toBe(20);
    await waitFor(() => sockets.every((s) => s.destroyed), 'h2load\'s connections to close');
    await new Promise((resolve) => server.close(resolve));
    rmSync(uploadFile);
  });
});

/** Resolves with the first `n` bytes `sock` receives; `onChunk` sees each chunk as it comes. */
function readBytes(sock: Duplex, n: number, onChunk?: (got: number) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      onChunk?.(got);
      if (got < n) return;
      sock.off('data', onData);
      sock.off('error', reject);
      const all = Buffer.concat(chunks);
      if (got > n) sock.unshift(all.subarray(n));
      resolve(all.subarray(0, n));
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
}

/** One RESP command. */
const resp = (...args: (string | Buffer)[]) =>
  Buffer.concat([Buffer.from(`*${args.length}\r\n`), ...args.flatMap((a) => [Buffer.from(`$${Buffer.byteLength(a)}\r\n`), Buffer.from(a), Buffer.from('\r\n')])]);

describe.skipIf(skipWithout(REDIS)).each(BACKENDS)('the drop-in as a client of redis-server (%s)', (backend) => {
  const port = runDuring(REDIS);

  it('writes a pipeline of 10 000 commands in one go and reads a 64 MiB reply, paused midway, byte for byte', async () => {
    const sock = muxnet.connect({ port: port(), host: '127.0.0.1', backend });
    await within(once(sock, 'connect'), 'connect');
    const n = 10_000;
    const key = `pipeline-${backend}`;
    const pipeline = Buffer.concat(Array.from({ length: n }, (_v, i) => resp('RPUSH', key, `value ${i}`)));
    sock.write(pipeline);
    const replies = (await within(readBytes(sock, Array.from({ length: n }, (_v, i) => `:${i + 1}\r\n`).join('').length), 'the pipeline replies')).toString();
    expect(replies).toBe(Array.from({ length: n }, (_v, i) => `:${i + 1}\r\n`).join(''));
    // What redis kept is what was sent, in order.
    sock.write(resp('LRANGE', key, '0', '-1'));
    const items = Array.from({ length: n }, (_v, i) => `value ${i}`);
    const listReply = `*${n}\r\n${items.map((v) => `$${v.length}\r\n${v}\r\n`).join('')}`;
    expect((await within(readBytes(sock, listReply.length), 'LRANGE')).toString()).toBe(listReply);

    // 64 MiB up in one write, then back: the reader pauses midway, and
    // while it does the socket holds a bounded buffer, not the reply.
    const big = `big-${backend}`;
    sock.write(Buffer.concat([resp('SET', big, BIG), resp('GET', big)]));
    expect((await within(readBytes(sock, 5), 'SET')).toString()).toBe('+OK\r\n');
    const header = `$${BIG.length}\r\n`;
    let paused: Promise<void> | undefined;
    let heldWhilePaused = 0;
    const reply = readBytes(sock, header.length + BIG.length + 2, (got) => {
      if (paused || got < 16 << 20) return;
      sock.pause();
      paused = (async () => {
        // Long enough for redis to fill every kernel buffer between us.
        for (let i = 0; i < 20; i++) {
          await new Promise((r) => setTimeout(r, 10));
          heldWhilePaused = Math.max(heldWhilePaused, sock.readableLength);
        }
        sock.resume();
      })();
    });
    const got = await within(reply, 'the 64 MiB reply', 30_000);
    await paused;
    expect(got.subarray(0, header.length).toString()).toBe(header);
    expect(sha(got.subarray(header.length, header.length + BIG.length))).toBe(BIG_SHA);
    expect(got.subarray(-2).toString()).toBe('\r\n');
    expect(paused).toBeDefined();
    expect(heldWhilePaused).toBeLessThan(1 << 20);

    sock.write(resp('DEL', key, big));
    expect((await within(readBytes(sock, 4), 'DEL')).toString()).toBe(':2\r\n');
    sock.end(resp('QUIT'));
    expect((await within(readBytes(sock, 5), 'QUIT')).toString()).toBe('+OK\r\n');
    await within(once(sock, 'close'), 'close');
  });
});

/** A proxy on `backend` in front of `upstreamPort`, closed after the suite. */
function proxyDuring(backend: BackendName, upstreamPort: () => number): () => ProxyServer {
  let proxy: ProxyServer | undefined;
  beforeAll(() => {
    proxy = createProxy({ port: 0, backend, upstreams: [{ port: upstreamPort() }] });
  });
  afterAll(async () => {
    const stats = await proxy?.close({ timeout: 1000 });
    // Every pair was booked, none reset.
    expect(stats?.live).toBe(0);
    expect(stats?.buffered).toBe(0);
    expect(stats?.upstreams[0].errors).toBe(0);
  });
  return () => proxy!;
}

/** The proxy's stats once every pair it took has closed. */
async function settled(proxy: ProxyServer) {
  await waitFor(() => proxy.stats().live === 0, 'every pair to close', 10_000);
  return proxy.stats();
}

/** What redis-server counts of its clients' traffic (`INFO stats`), asked over a node:net connection. */
async function redisCounters(port: number): Promise<{ input: number; output: number; replyLength: number }> {
  const sock = nodeNet.connect(port, '127.0.0.1');
  try {
    sock.write(resp('INFO', 'stats'));
    let all = Buffer.alloc(0);
    for await (const chunk of sock) {
      all = Buffer.concat([all, chunk as Buffer]);
      const end = all.indexOf('\r\n');
      if (end > 0 && all.length >= end + 2 + Number(all.subarray(1, end).toString()) + 2) break;
    }
    const text = all.toString();
    const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(text)?.[1]);
    return { input: field('total_net_input_bytes'), output: field('total_net_output_bytes'), replyLength: all.length };
  } finally {
    sock.destroy();
  }
}

describe.skipIf(without(REDIS, REDIS_CLI, REDIS_BENCHMARK)).each(BACKENDS)('the proxy in front of redis-server (%s)', (backend) => {
  const port = runDuring(REDIS);
  const proxy = proxyDuring(backend, port);

  it('carries redis-benchmark (200 clients, pipelines of 16, 16 KiB values) without an error, its byte counts equal to redis-server\'s', async () => {
    const before = proxy().stats();
    const counted = await redisCounters(port());
    const bench = (args: string[]) => runText(REDIS_BENCHMARK, ['-h', '127.0.0.1', '-p', String(proxy().port), '-q', ...args], { ms: 60_000 });
    const outputs = [
      await bench(['-c', '50', '-P', '16', '-d', '16384', '-n', '4000', '-t', 'set,get']),
      await bench(['-c', '200', '-P', '16', '-d', '64', '-n', '40000', '-r', '1000', '-t', 'set,get,incr,lpush,lpop']),
    ].join('\n');
    // Each test ran to its summary line; redis-benchmark prints the connection errors it meets.
    for (const test of ['SET', 'GET', 'INCR', 'LPUSH', 'LPOP']) expect(outputs).toMatch(new RegExp(`^${test}: [\\d.]+ requests per second`, 'm'));
    expect(outputs).not.toMatch(/error/i);
    const after = await settled(proxy());
    const clients = after.accepted - before.accepted;
    expect(clients).toBeGreaterThanOrEqual(250);
    expect(after.upstreams[0].pairs - before.upstreams[0].pairs).toBe(clients);
    expect(after.upstreams[0].failures).toBe(0);
    // What the proxy says it relayed is what redis-server read and wrote
    // (less this check's own INFO: one command in, the first reply out).
    const now = await redisCounters(port());
    expect(after.bytesUp - before.bytesUp).toBe(now.input - counted.input - resp('INFO', 'stats').length);
    expect(after.bytesDown - before.bytesDown).toBe(now.output - counted.output - counted.replyLength);
  });

  it('passes a 16 MiB value from redis-cli -x and back with --raw, byte for byte', async () => {
    const value = BIG.subarray(0, 16 << 20);
    const cli = (args: string[], input?: Buffer) => runOk(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(proxy().port), ...args], { input });
    expect((await cli(['-x', 'SET', `value-${backend}`], value)).toString()).toBe('OK\n');
    expect((await cli(['STRLEN', `value-${backend}`])).toString()).toBe(`${value.length}\n`);
    const got = await cli(['--raw', 'GET', `value-${backend}`]);
    expect(got.length).toBe(value.length + 1); // --raw ends the reply with a newline
    expect(sha(got.subarray(0, value.length))).toBe(sha(value));
  });
});

describe.skipIf(without(CURL)).each(BACKENDS)('curl through the proxy to node:http (%s)', (backend) => {
  const { server: httpServer } = app();
  const counted = { read: 0, written: 0, open: 0 };
  let upstream: nodeNet.Server;
  beforeAll(async () => {
    upstream = nodeNet.createServer((s) => {
      counted.open++;
      s.on('close', () => {
        counted.open--;
        counted.read += s.bytesRead;
        counted.written += s.bytesWritten;
      });
      httpServer.emit('connection', s);
    });
    upstream.listen(0, '127.0.0.1');
    await within(once(upstream, 'listening'), 'listening');
  });
  afterAll(() => new Promise((resolve) => upstream.close(resolve)));
  const proxy = proxyDuring(backend, () => (upstream.address() as nodeNet.AddressInfo).port);

  it('downloads and uploads 64 MiB, with parallel clients, byte for byte; the proxy counts what the server read and wrote', async () => {
    const base = `http://127.0.0.1:${proxy().port}`;
    const out = join(dir, `proxied-${backend}.bin`);
    expect(await runText(CURL, ['-sS', '-o', out, `${base}/bytes/${BIG.length}`, '-w', '%{size_download}'])).toBe(String(BIG.length));
    expect(sha(readFileSync(out))).toBe(BIG_SHA);
    rmSync(out);
    expect(await runText(CURL, ['-sS', '--data-binary', `@${bigFile}`, `${base}/upload`])).toBe(`${BIG.length} ${BIG_SHA}`);
    const bodies = await Promise.all(Array.from({ length: 16 }, (_v, i) => runOk(CURL, ['-sS', `${base}/bytes/${(1 << 20) + i}`])));
    for (const [i, body] of bodies.entries()) expect(body.equals(BIG.subarray(0, (1 << 20) + i))).toBe(true);
    const stats = await settled(proxy());
    await waitFor(() => counted.open === 0, 'the server\'s sockets to close');
    expect(stats.accepted).toBe(18);
    expect(stats.bytesUp).toBe(counted.read);
    expect(stats.bytesDown).toBe(counted.written);
  });
});

describe.skipIf(without(POSTGRES, PGBENCH, PSQL))('the proxy in front of PostgreSQL', () => {
  const port = runDuring(POSTGRES);

  describe.each(BACKENDS)('%s', (backend) => {
    const proxy = proxyDuring(backend, port);
    const conn = () => ['-h', '127.0.0.1', '-p', String(proxy().port), '-U', POSTGRES_USER];

    it('runs pgbench (init, 16 clients, a new connection per transaction too) with no failed transaction', async () => {
      await runOk(PGBENCH, [...conn(), '-i', '-s', '1', '-q', 'postgres']);
      const clients = 16;
      const each = 40;
      const outputs = [
        await runText(PGBENCH, [...conn(), '-c', String(clients), '-j', '2', '-t', String(each), '-M', 'extended', 'postgres']),
        await runText(PGBENCH, [...conn(), '-C', '-c', '4', '-j', '2', '-t', '10', 'postgres']),
      ];
      expect(outputs[0]).toContain(`number of transactions actually processed: ${clients * each}/${clients * each}`);
      expect(outputs[1]).toContain('number of transactions actually processed: 40/40');
      // pgbench 15 and later count failures; earlier ones stop at the first.
      for (const out of outputs) expect(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? '0').toBe('0');
      // Each client says goodbye and closes as PostgreSQL does: both ends at
      // once, and every pair closed in order, none counted as reset.
      const stats = await settled(proxy());
      expect(stats.upstreams[0].pairs).toBeGreaterThanOrEqual(clients + 40);
      expect(stats.upstreams[0].errors).toBe(0);
    });

    it('copies a few MiB in and out with psql \\copy, byte for byte', async () => {
      // 100 000 rows of hex from BIG: 7.3 MiB of CSV.
      const rows = Array.from({ length: 100_000 }, (_v, i) => `${i},${BIG.toString('hex', i * 32, i * 32 + 32)}\n`).join('');
      const csv = join(dir, `rows-${backend}.csv`);
      writeFileSync(csv, rows);
      const psql = (...commands: string[]) => runText(PSQL, [...conn(), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres', ...commands.flatMap((c) => ['-c', c])]);
      const table = `copied_${backend}`;
      await psql(`DROP TABLE IF EXISTS ${table}`, `CREATE TABLE ${table} (i int PRIMARY KEY, s text)`, `\\copy ${table} FROM '${csv}' CSV`);
      expect(await psql(`\\copy (SELECT * FROM ${table} ORDER BY i) TO STDOUT CSV`)).toBe(rows);
      rmSync(csv);
      expect((await settled(proxy())).upstreams[0].errors).toBe(0);
    });
  });
});

describe.skipIf(without(REDIS, REDIS_CLI))('a redis replica syncing from its master through `muxnet proxy`', () => {
  const running: (Running | Daemon)[] = [];
  afterAll(async () => {
    for (const r of running.reverse()) {
      if ('child' in r) {
        r.child.kill('SIGKILL');
        await r.exited;
      } else await r.stop();
    }
  });

  /** `muxnet proxy` listening on `port` (0: a free one) in front of `upstream`. */
  async function startProxy(port: number, upstream: number): Promise<Running & { port: number }> {
    const proxy = runCli(['proxy', '--listen', `127.0.0.1:${port}`, '--upstream', `127.0.0.1:${upstream}`], 60_000);
    running.push(proxy);
    let listening = 0;
    await waitFor(() => {
      listening = Number(/listening on tcp 127\.0\.0\.1:(\d+)/.exec(proxy.output())?.[1] ?? 0);
      return listening > 0;
    }, `the proxy to listen:\n${proxy.output()}`, 10_000);
    return { ...proxy, port: listening };
  }

  const cli = (port: number, args: string[], input?: Buffer) => runOk(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...args], { input });
  /** SETs of `keys`, each to a value of `size` bytes drawn from BIG at `i`, as RESP for redis-cli --pipe. */
  const sets = (keys: string[], size: number) => Buffer.concat(keys.map((k, i) => resp('SET', k, BIG.subarray(i * 997, i * 997 + size))));
  /** The values of `keys` on the redis at `port`, as redis-cli prints them. */
  const values = (port: number, keys: string[]) => cli(port, ['--no-raw', 'MGET', ...keys]);
  const linkUp = async (port: number) => (await cli(port, ['INFO', 'replication'])).toString().includes('master_link_status:up');

  it('fully syncs a few MiB, follows a live write stream, and resyncs after the proxy is killed mid-stream', { timeout: 90_000 }, async () => {
    // No delay before a full sync: the replica starts syncing at once.
    const master = await REDIS.start(undefined, ['--repl-diskless-sync-delay', '0']);
    running.push(master);
    const bulk = Array.from({ length: 1500 }, (_v, i) => `bulk:${i}`);
    await cli(master.port, ['--pipe'], sets(bulk, 4096)); // 6 MiB
    let proxy = await startProxy(0, master.port);
    const replica = await REDIS.start(undefined, ['--replicaof', '127.0.0.1', String(proxy.port)]);
    running.push(replica);
    const synced = async (keys: string[]) => {
      const want = await values(master.port, keys);
      let got: Buffer = Buffer.alloc(0);
      for (let tries = 0; tries < 300; tries++) {
        got = await values(replica.port, keys);
        if (got.equals(want)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`the replica differs from its master on ${keys.length} keys:\n${got.toString().slice(0, 500)}`);
    };
    await synced(bulk);
    expect(await linkUp(replica.port)).toBe(true);

    // A live stream of writes; the proxy is killed in the middle of it and
    // started again on the same port: the replica reconnects through it.
    const live = Array.from({ length: 3000 }, (_v, i) => `live:${i}`);
    const batches = 30;
    const per = live.length / batches;
    for (let b = 0; b < batches; b++) {
      await cli(master.port, ['--pipe'], sets(live.slice(b * per, (b + 1) * per), 512 + b));
      if (b === batches / 2) {
        proxy.child.kill('SIGKILL');
        await proxy.exited;
        proxy = await startProxy(proxy.port, master.port);
      }
    }
    await synced(live);
    await synced(bulk);
    expect(await linkUp(replica.port)).toBe(true);
    expect((await cli(replica.port, ['DBSIZE'])).toString()).toBe((await cli(master.port, ['DBSIZE'])).toString());
  });
});
