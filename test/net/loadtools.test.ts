// Real C load tools and TLS peers against node:http, node:http2, node:https
// and node:tls servers fed with the drop-in's sockets on each backend,
// against a tls.connect({ socket }) client on a drop-in socket, and through
// the `muxnet proxy` CLI: wrk (many connections), ab (with and without
// keep-alive), h2load (HTTP/1.1 pipelining, h2c streams, bulk bodies both
// ways), openssl s_client and s_server (hashes both ways, session resumption,
// renegotiation, peers that die mid-stream or close without close_notify).
// Each case asserts on errors, completeness, bytes and fds, never on speed.
// .ci/install-test-programs installs the tools; outside CI a missing one skips its cases.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import nodeNet from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import * as muxnet from '../../src/net';
import { BACKENDS, expectSocketFdsBack, runCli, socketFds, waitFor } from '../helpers';
import { program, skipWithout, within } from './daemons';

const KEY_PATH = join(__dirname, '../fixtures/tls/key.pem');
const CERT_PATH = join(__dirname, '../fixtures/tls/cert.pem');
const KEY_CERT = { key: readFileSync(KEY_PATH), cert: readFileSync(CERT_PATH) };
const secureContext = tls.createSecureContext(KEY_CERT);

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// Outside CI a missing tool skips its cases, saying so; under CI it fails them.
const NO_WRK = skipWithout(program('wrk'));
const NO_AB = skipWithout(program('ab'));
const NO_H2LOAD = skipWithout(program('h2load'));
const NO_OPENSSL = skipWithout(program('openssl'));

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

/** Runs `bin args`, feeding it `input`; SIGKILLed and failed after `ms`. */
function run(bin: string, args: string[], input?: Buffer, ms = 20_000): Promise<Ran> {
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('latin1').on('data', (d: string) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  child.stdin.on('error', () => {}); // a tool that exits before reading all of it
  child.stdin.end(input);
  const exited = new Promise<Ran>((resolve) => child.on('close', (code) => resolve({ code, out, err })));
  return within(exited, `${bin} ${args.join(' ')}`, ms).catch((e: unknown) => {
    child.kill('SIGKILL');
    throw e;
  });
}

/** The number in `text` that `re`'s first group matches; fails naming `re` when absent. */
function field(text: string, re: RegExp): number {
  const m = re.exec(text);
  if (!m) throw new Error(`no ${re} in:\n${text}`);
  return Number(m[1]);
}

/** `openssl s_server` for one session on a free loopback port, its stdout kept (the session's bytes among its lines). */
async function sServer() {
  const server = spawn('openssl', ['s_server', '-accept', '127.0.0.1:0', '-key', KEY_PATH, '-cert', CERT_PATH, '-naccept', '1', '-ign_eof'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((r) => server.on('close', r));
  server.stdin.on('error', () => {}); // written to after it exits, if a case fails
  let log = '';
  server.stderr.on('data', (d) => (log += d));
  const stdout: Buffer[] = [];
  server.stdout.on('data', (d: Buffer) => stdout.push(d));
  let port = 0;
  try {
    await waitFor(() => (port = Number(/ACCEPT 127\.0\.0\.1:(\d+)/.exec(Buffer.concat(stdout).toString('latin1'))?.[1] ?? 0)) > 0, 's_server listening', 10_000);
  } catch (e) {
    server.kill('SIGKILL');
    throw e;
  }
  return { server, port, stdout, log: () => log, exited };
}

/** Writes to `s` as fast as it drains, and SIGKILLs the peer process a moment in: it dies with bytes unread. */
function streamUntilKilled(s: tls.TLSSocket, peer: () => ChildProcess | undefined): void {
  const chunk = Buffer.alloc(256 << 10, 7);
  const pump = () => {
    while (!s.destroyed && s.write(chunk));
  };
  s.on('drain', pump);
  pump();
  setTimeout(() => peer()?.kill('SIGKILL'), 100);
}

const BODY = 'hello from node:http on muxnet\n';

/** A node:http app answering every request with BODY (with a content-length, so ab's HTTP/1.0 keep-alive holds), counting them. */
function httpApp() {
  const served = { requests: 0 };
  const app = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      served.requests++;
      res.setHeader('content-length', Buffer.byteLength(BODY));
      res.end(BODY);
    });
  });
  return { app, served };
}

const closeServer = (server: { close(cb: () => void): unknown }) =>
  within(new Promise<void>((resolve) => server.close(() => resolve())), 'server.close()');

describe.each(BACKENDS)('muxnet (%s) under C load tools', (backend) => {
  /** A drop-in server on this backend feeding `app` (http, http2 or tls) its sockets. */
  const feed = async (app: { emit(event: 'connection', socket: nodeNet.Socket): unknown }) => {
    const accepted: muxnet.Socket[] = [];
    const server = muxnet.createServer({ backend }, (socket) => {
      accepted.push(socket);
      app.emit('connection', socket as unknown as nodeNet.Socket);
    });
    server.listen(0, '127.0.0.1');
    await within(once(server, 'listening'), 'listening');
    const port = (server.address() as nodeNet.AddressInfo).port;
    const connections = () => new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
    return { server, port, accepted, connections };
  };

  expectSocketFdsBack(backend);

  /** Every accepted socket closed, the server's count at 0, its close() done, the process's socket fds back. */
  const settle = async (srv: Awaited<ReturnType<typeof feed>>, fds: number) => {
    await waitFor(() => srv.accepted.every((s) => s.destroyed), 'every accepted socket closed', 10_000);
    expect(await srv.connections()).toBe(0);
    await closeServer(srv.server);
    await waitFor(() => socketFds() <= fds, `socket fds back to ${fds}`);
  };

  it.skipIf(NO_WRK)('wrk with 300 connections: no socket errors, every response 2xx', async () => {
    const fds = socketFds();
    const { app, served } = httpApp();
    const srv = await feed(app);
    // A generous per-request timeout: a loaded 2-core box is slow, not wrong.
    const { code, out } = await run('wrk', ['-t2', '-c300', '-d1s', '--timeout', '10s', `http://127.0.0.1:${srv.port}/`]);
    expect(code).toBe(0);
    // wrk prints these lines only when there is something to count.
    expect(out).not.toMatch(/Socket errors|Non-2xx/);
    const done = field(out, /(\d+) requests in/);
    expect(done).toBeGreaterThan(0);
    // Each one wrk counted was answered in full by the app (wrk drops those in flight at the end).
    expect(served.requests).toBeGreaterThanOrEqual(done);
    expect(field(out, /([\d.]+)\w*B read/)).toBeGreaterThan(0);
    // Every connection wrk made is accepted — one a turn, as libuv: those still in the backlog
    // when wrk stops (it made them all at once) come after.
    await waitFor(() => srv.accepted.length >= 300, `every connection accepted (${srv.accepted.length} of 300)`, 10_000);
    await settle(srv, fds);
  });

  it.skipIf(NO_H2LOAD)('h2load --h1 pipelining 16 deep on 100 connections: every response complete', async () => {
    const fds = socketFds();
    const { app, served } = httpApp();
    const srv = await feed(app);
    const n = 16_000;
    const { code, out } = await run('h2load', ['--h1', '-n', String(n), '-c', '100', '-m', '16', `http://127.0.0.1:${srv.port}/`]);
    expect(code).toBe(0);
    expect(out).toContain(`requests: ${n} total, ${n} started, ${n} done, ${n} succeeded, 0 failed, 0 errored, 0 timeout`);
    expect(out).toContain(`status codes: ${n} 2xx, 0 3xx, 0 4xx, 0 5xx`);
    // Every body arrived whole: h2load counts the body bytes it read.
    expect(field(out, /\((\d+)\) data/)).toBe(n * Buffer.byteLength(BODY));
    expect(served.requests).toBe(n);
    expect(srv.accepted.length).toBe(100);
    await settle(srv, fds);
  });

  it.skipIf(NO_H2LOAD)('h2load h2c, 50 connections of 20 concurrent streams, to node:http2', async () => {
    const fds = socketFds();
    const h2 = http2.createServer();
    let served = 0;
    h2.on('stream', (stream, headers) => {
      served++;
      stream.respond({ ':status': 200 });
      stream.end(`h2 ${headers[':path']}`);
    });
    const srv = await feed(h2);
    const n = 10_000;
    const { code, out } = await run('h2load', ['-n', String(n), '-c', '50', '-m', '20', `http://127.0.0.1:${srv.port}/x`]);
    expect(code).toBe(0);
    expect(out).toContain(`requests: ${n} total, ${n} started, ${n} done, ${n} succeeded, 0 failed, 0 errored, 0 timeout`);
    expect(out).toContain(`status codes: ${n} 2xx, 0 3xx, 0 4xx, 0 5xx`);
    expect(field(out, /\((\d+)\) data/)).toBe(n * Buffer.byteLength('h2 /x'));
    expect(served).toBe(n);
    await settle(srv, fds);
  });

  it.skipIf(NO_H2LOAD)('256 KiB responses and 512 KiB uploads, HTTP/1.1 pipelined and h2c: every byte counted, every upload whole', async () => {
    const fds = socketFds();
    const dir = mkdtempSync(join(tmpdir(), 'muxnet-loadtools-'));
    try {
      const upload = randomBytes(512 << 10);
      const uploadPath = join(dir, 'upload.bin');
      writeFileSync(uploadPath, upload);
      const download = randomBytes(256 << 10);
      const uploads: string[] = [];
      let downloads = 0;
      /** GET: `download`; POST: the upload's hash, kept to compare. */
      const answer = (method: string | undefined, body: Buffer[], send: (b: Buffer | string) => void) => {
        if (method === 'POST') {
          const hash = sha(Buffer.concat(body));
          uploads.push(hash);
          send(hash);
        } else {
          downloads++;
          send(download);
        }
      };
      const h1 = http.createServer((req, res) => {
        const body: Buffer[] = [];
        req.on('data', (d: Buffer) => body.push(d));
        req.on('end', () => answer(req.method, body, (b) => res.end(b)));
      });
      const h2 = http2.createServer();
      h2.on('stream', (stream, headers) => {
        const body: Buffer[] = [];
        stream.on('data', (d: Buffer) => body.push(d));
        stream.on('end', () =>
          answer(headers[':method'], body, (b) => {
            stream.respond({ ':status': 200 });
            stream.end(b);
          }),
        );
      });
      const servers = [await feed(h1), await feed(h2)];
      const [gets, posts] = [200, 40];
      for (const [srv, mode] of [[servers[0], ['--h1', '-m', '4']], [servers[1], ['-m', '8']]] as const) {
        const url = `http://127.0.0.1:${srv.port}/bulk`;
        const down = await run('h2load', [...mode, '-n', String(gets), '-c', '10', url]);
        expect(down.code).toBe(0);
        expect(down.out).toContain(`requests: ${gets} total, ${gets} started, ${gets} done, ${gets} succeeded, 0 failed, 0 errored, 0 timeout`);
        expect(field(down.out, /\((\d+)\) data/)).toBe(gets * download.length);
        const up = await run('h2load', [...mode, '-n', String(posts), '-c', '5', '-d', uploadPath, url]);
        expect(up.code).toBe(0);
        expect(up.out).toContain(`requests: ${posts} total, ${posts} started, ${posts} done, ${posts} succeeded, 0 failed, 0 errored, 0 timeout`);
        expect(up.out).toContain(`status codes: ${posts} 2xx, 0 3xx, 0 4xx, 0 5xx`);
      }
      expect(downloads).toBe(2 * gets);
      expect(uploads).toEqual(new Array<string>(2 * posts).fill(sha(upload)));
      for (const srv of servers) await settle(srv, fds + 1); // the other server's listener
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await waitFor(() => socketFds() <= fds, `socket fds back to ${fds}`);
  });

  it.skipIf(NO_AB)('ab with keep-alive (one connection per client) and without (one per request)', async () => {
    const fds = socketFds();
    const { app, served } = httpApp();
    const srv = await feed(app);
    const url = `http://127.0.0.1:${srv.port}/ab`;
    const kept = await run('ab', ['-q', '-k', '-n', '3000', '-c', '30', url]);
    expect(kept.code).toBe(0);
    expect(field(kept.out, /Complete requests:\s+(\d+)/)).toBe(3000);
    expect(field(kept.out, /Failed requests:\s+(\d+)/)).toBe(0);
    expect(field(kept.out, /Keep-Alive requests:\s+(\d+)/)).toBe(3000);
    expect(kept.out).not.toMatch(/Non-2xx|Write errors/);
    expect(field(kept.out, /HTML transferred:\s+(\d+) bytes/)).toBe(3000 * Buffer.byteLength(BODY));
    // ab opens a few more connections than it needs, against node:net too.
    expect(srv.accepted.length).toBeGreaterThanOrEqual(30);
    const keptConnections = srv.accepted.length;

    const fresh = await run('ab', ['-q', '-n', '1000', '-c', '20', url]);
    expect(fresh.code).toBe(0);
    expect(field(fresh.out, /Complete requests:\s+(\d+)/)).toBe(1000);
    expect(field(fresh.out, /Failed requests:\s+(\d+)/)).toBe(0);
    expect(fresh.out).not.toMatch(/Non-2xx|Write errors/);
    expect(srv.accepted.length).toBeGreaterThanOrEqual(keptConnections + 1000);
    expect(served.requests).toBe(4000);
    await settle(srv, fds);
  });

  describe.skipIf(NO_OPENSSL)('openssl', () => {
    /** A drop-in server running TLS on its sockets; `onSecure` gets each TLS socket. */
    const tlsServer = (onSecure: (s: tls.TLSSocket) => void) => {
      const tlsSockets: tls.TLSSocket[] = [];
      return feed({
        emit: (_event: 'connection', raw: nodeNet.Socket) => {
          const s = new tls.TLSSocket(raw, { isServer: true, secureContext });
          tlsSockets.push(s);
          s.on('secure', () => onSecure(s));
          return true;
        },
      }).then((srv) => ({ ...srv, tlsSockets }));
    };

    it('s_client to a TLS server on drop-in sockets: 2 MiB each way by hash, close_notify then FIN', async () => {
      const fds = socketFds();
      const size = 2 << 20;
      const up = randomBytes(size);
      const down = randomBytes(size);
      const got = createHash('sha256');
      let received = 0;
      const ended = { end: false, error: undefined as Error | undefined };
      const srv = await tlsServer((s) => {
        s.on('data', (d: Buffer) => {
          got.update(d);
          received += d.length;
          // All of the upload in: answer, then close_notify and FIN.
          if (received === size) s.end(down);
        });
        s.on('end', () => (ended.end = true));
        s.on('error', (e) => (ended.error = e));
      });
      // -quiet implies -ign_eof: s_client reads on until the server's close_notify.
      const { code, out, err } = await run('openssl', ['s_client', '-connect', `127.0.0.1:${srv.port}`, '-quiet'], up);
      expect(code, err).toBe(0);
      const reply = Buffer.from(out, 'latin1');
      expect(reply.length).toBe(size);
      expect(sha(reply)).toBe(sha(down));
      expect(received).toBe(size);
      expect(got.digest('hex')).toBe(sha(up));
      await waitFor(() => srv.tlsSockets[0].destroyed, 'the TLS socket closed');
      expect(ended.error).toBeUndefined();
      await settle(srv, fds);
    });

    it('s_client resumes its session (-sess_out, then -sess_in) with an https.Server on drop-in sockets, TLS 1.2 and 1.3', async () => {
      const fds = socketFds();
      const app = https.createServer(KEY_CERT, (req, res) => res.end(`secure ${req.url}`));
      const srv = await feed(app);
      const dir = mkdtempSync(join(tmpdir(), 'muxnet-loadtools-'));
      try {
        const get = async (version: string, sessionArg: '-sess_out' | '-sess_in') => {
          const { code, out, err } = await run(
            'openssl',
            ['s_client', '-connect', `127.0.0.1:${srv.port}`, version, sessionArg, join(dir, version), '-ign_eof'],
            Buffer.from(`GET /${version} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`),
          );
          expect(code, err).toBe(0);
          expect(out).toContain(`secure /${version}`);
          return /^(New|Reused), TLS/m.exec(out)?.[1];
        };
        for (const version of ['-tls1_2', '-tls1_3']) {
          expect(await get(version, '-sess_out')).toBe('New');
          expect(await get(version, '-sess_in')).toBe('Reused');
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      await settle(srv, fds);
    });

    it('s_client with TLS 1.2, no tickets, renegotiating mid-stream: data before and after intact', async () => {
      const fds = socketFds();
      const lines: string[] = [];
      const srv = await tlsServer((s) => {
        s.setEncoding('utf8');
        s.on('data', (d: string) => {
          lines.push(d);
          s.write(`echo ${d}`);
        });
        s.on('error', () => {});
      });
      const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${srv.port}`, '-tls1_2', '-no_ticket'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.stdin.on('error', () => {});
      const exited = new Promise<number | null>((r) => child.on('close', r));
      try {
        await waitFor(() => out.includes('---\n') && /Verify return code/.test(out), 'the handshake', 10_000);
        child.stdin.write('before\n');
        await waitFor(() => out.includes('echo before'), 'the first echo', 10_000);
        child.stdin.write('R\n'); // s_client's command: renegotiate
        await waitFor(() => out.includes('RENEGOTIATING'), 'the renegotiation', 10_000);
        child.stdin.write('after\n');
        await waitFor(() => out.includes('echo after'), 'the echo after renegotiating', 10_000);
        child.stdin.end(); // s_client sends close_notify and exits
        expect(await within(exited, 's_client exit')).toBe(0);
      } finally {
        child.kill('SIGKILL');
      }
      // s_client may send a line written during the renegotiation twice (it
      // retries the write); each record the server decrypted is whole.
      expect(lines.join('')).toMatch(/^before\n(after\n)+$/);
      await settle(srv, fds);
    });

    it('an s_client killed while the server streams (a reset mid-record): the server closes, nothing leaks', async () => {
      const fds = socketFds();
      const closed: Promise<unknown>[] = [];
      let proc: ChildProcess | undefined;
      const srv = await tlsServer((s) => {
        closed.push(new Promise((resolve) => s.on('close', resolve))); // once() would reject on the 'error'
        s.on('error', () => {}); // ECONNRESET or EPIPE, as the kill lands
        streamUntilKilled(s, () => proc);
      });
      proc = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${srv.port}`, '-quiet'], { stdio: ['pipe', 'ignore', 'ignore'] });
      await within(once(proc, 'close'), 's_client killed');
      await waitFor(() => closed.length === 1, 'the TLS session');
      await within(closed[0], 'the TLS socket closed');
      await settle(srv, fds);
    });

    it('tls.connect({ socket }) on a drop-in socket to s_server: 2 MiB each way by hash, then a clean close', async () => {
      const fds = socketFds();
      const size = 2 << 20;
      const up = randomBytes(size);
      // Digits only: s_server takes a letter that starts what it reads from
      // its stdin as a command (Q quits, r renegotiates...).
      const down = Buffer.from(randomBytes(size).map((b) => 0x30 + (b % 10)));
      const { server, port, stdout, log, exited } = await sServer();
      try {
        const skip = Buffer.concat(stdout).length; // what s_server printed before the session
        const raw = muxnet.connect({ port, host: '127.0.0.1', backend });
        const client = tls.connect({ socket: raw as unknown as nodeNet.Socket, ca: readFileSync(CERT_PATH), servername: 'localhost' });
        const got = createHash('sha256');
        let received = 0;
        const errors: Error[] = [];
        client.on('error', (e) => errors.push(e));
        const clientClosed = once(client, 'close');
        client.on('data', (d: Buffer) => {
          got.update(d);
          received += d.length;
          if (received === size) client.end(); // close_notify, then FIN
        });
        await within(once(client, 'secureConnect'), 'the handshake');
        client.write(up);
        server.stdin.write(down);
        await within(clientClosed, 'the client closed');
        expect(errors).toEqual([]);
        expect(received).toBe(size);
        expect(got.digest('hex')).toBe(sha(down));
        expect(client.authorized).toBe(true);
        expect(raw.destroyed).toBe(true);
        await within(exited, 's_server exit');
        // s_server prints the session's bytes among its own lines: the upload is in there whole.
        const printed = Buffer.concat(stdout).subarray(skip);
        expect(printed.indexOf(up)).toBeGreaterThanOrEqual(0);
        expect(log()).not.toMatch(/error/i);
      } finally {
        server.kill('SIGKILL');
      }
      await waitFor(() => socketFds() <= fds, `socket fds back to ${fds}`);
    });

    // TLS over any stream without a libuv handle runs on Node's JS-stream
    // path (JSStreamSocket): there node:net's own sockets (given to
    // tls.connect() before they connect) give a peer's FIN without
    // close_notify as 'end', then an EPIPE 'error' (the TLS layer answering
    // with its close_notify on a socket the FIN ended), then 'close'. The
    // drop-in's socket leaves its end to the wrapper (since 2026-12-05): the
    // events of node:net's native path, 'end' and 'close'.
    it("tls.connect({ socket }) when s_server dies (FIN without close_notify): the events of node:net's native path", async () => {
      const fds = socketFds();
      const session = async (dial: (port: number) => nodeNet.Socket) => {
        const { server, port } = await sServer();
        try {
          const events: string[] = [];
          // TLS 1.2: the server's Finished comes last, so by 'secureConnect'
          // s_server has read all the client sent, and its death is a FIN.
          const client = tls.connect({ socket: dial(port), ca: readFileSync(CERT_PATH), servername: 'localhost', maxVersion: 'TLSv1.2' });
          client.on('error', (e: NodeJS.ErrnoException) => events.push(`error ${e.code}`));
          client.on('end', () => events.push('end'));
          const closed = new Promise((resolve) => client.on('close', resolve));
          await within(once(client, 'secureConnect'), 'the handshake');
          server.kill('SIGKILL');
          await within(closed, 'the client closed');
          return events;
        } finally {
          server.kill('SIGKILL');
        }
      };
      // Connecting, it has its libuv handle: tls.connect runs on it natively.
      const viaNodeNet = await session((port) => nodeNet.connect(port, '127.0.0.1'));
      const viaMuxnet = await session((port) => muxnet.connect({ port, host: '127.0.0.1', backend }) as unknown as nodeNet.Socket);
      expect(viaNodeNet).toEqual(['end']);
      expect(viaMuxnet).toEqual(viaNodeNet);
      await waitFor(() => socketFds() <= fds, `socket fds back to ${fds}`);
    });
  });
});

/**
 * `muxnet proxy` (the CLI, its own process) in front of `origin`: its port,
 * its open fds (Linux: /proc; elsewhere 0), and what it said on SIGTERM once it exited.
 */
async function startProxy(originPort: number) {
  const proxy = runCli(
    // No health probe in the test's time: the origin counts every connection it accepts.
    ['proxy', '--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${originPort}`, '--health-interval', '3600'],
    60_000,
  );
  let port = 0;
  await waitFor(() => (port = Number(/listening on tcp 127\.0\.0\.1:(\d+)/.exec(proxy.output())?.[1] ?? 0)) > 0, `the proxy:\n${proxy.output()}`, 10_000);
  const fdDir = `/proc/${proxy.child.pid}/fd`;
  const fds = () => (existsSync(fdDir) ? readdirSync(fdDir).length : 0);
  /** SIGTERM, then its final stats line's figures once it exited (code 0). */
  const stop = async () => {
    proxy.child.kill('SIGTERM');
    expect(await within(proxy.exited, 'the proxy exit')).toBe(0);
    await waitFor(() => /stopped: /.test(proxy.output()), 'the final stats');
    const m = /stopped: (\d+) live, (\d+) accepted, (\d+) bytes up, (\d+) bytes down; .*\/(\d+) failed/.exec(proxy.output());
    if (!m) throw new Error(`no final stats in:\n${proxy.output()}`);
    const [live, accepted, bytesUp, bytesDown, failed] = m.slice(1).map(Number);
    return { live, accepted, bytesUp, bytesDown, failed };
  };
  const kill = async () => {
    proxy.child.kill('SIGKILL');
    await proxy.exited;
  };
  return { port, fds, stop, kill };
}

describe.skipIf(NO_H2LOAD || NO_AB)('C load tools through `muxnet proxy` to node:http', () => {
  it('h2load pipelined and ab without keep-alive: no errors; the proxy counts what the upstream saw', async () => {
    // The upstream counts, per connection, the bytes it read and wrote.
    const { app, served } = httpApp();
    const upstream = { accepted: 0, closed: 0, read: 0, written: 0 };
    const origin = nodeNet.createServer((s) => {
      upstream.accepted++;
      s.on('close', () => {
        upstream.closed++;
        upstream.read += s.bytesRead;
        upstream.written += s.bytesWritten;
      });
      app.emit('connection', s);
    });
    origin.listen(0, '127.0.0.1');
    await within(once(origin, 'listening'), 'the upstream listening');
    const originPort = (origin.address() as nodeNet.AddressInfo).port;
    const proxy = await startProxy(originPort);
    const { port } = proxy;
    try {
      const fdsIdle = proxy.fds();

      const n = 8_000;
      const h2 = await run('h2load', ['--h1', '-n', String(n), '-c', '40', '-m', '8', `http://127.0.0.1:${port}/p`]);
      expect(h2.code).toBe(0);
      expect(h2.out).toContain(`requests: ${n} total, ${n} started, ${n} done, ${n} succeeded, 0 failed, 0 errored, 0 timeout`);
      expect(h2.out).toContain(`status codes: ${n} 2xx, 0 3xx, 0 4xx, 0 5xx`);
      const ab = await run('ab', ['-q', '-n', '1000', '-c', '20', `http://127.0.0.1:${port}/p`]);
      expect(ab.code).toBe(0);
      expect(field(ab.out, /Complete requests:\s+(\d+)/)).toBe(1000);
      expect(field(ab.out, /Failed requests:\s+(\d+)/)).toBe(0);
      expect(ab.out).not.toMatch(/Non-2xx|Write errors/);
      expect(served.requests).toBe(n + 1000);

      // Every pair closed: the upstream's sockets all closed, the proxy's fds back to idle.
      await waitFor(() => upstream.closed === upstream.accepted, `every upstream connection closed: ${JSON.stringify(upstream)}`, 10_000);
      expect(upstream.accepted).toBeGreaterThanOrEqual(40 + 1000);
      await waitFor(() => proxy.fds() === fdsIdle, `the proxy's fds back to ${fdsIdle}`, 10_000);

      // h2load and ab both report every byte they received; the proxy relayed
      // exactly what the upstream wrote down, and what it read up.
      const received = field(h2.out, /traffic: .*?\((\d+)\) total/) + field(ab.out, /Total transferred:\s+(\d+) bytes/);
      const { live, accepted, bytesUp, bytesDown, failed } = await proxy.stop();
      expect({ live, accepted, failed }).toEqual({ live: 0, accepted: upstream.accepted, failed: 0 });
      expect(bytesDown).toBe(received);
      expect(bytesDown).toBe(upstream.written);
      expect(bytesUp).toBe(upstream.read);
    } finally {
      await proxy.kill();
      await closeServer(origin);
    }
  });
});

describe.skipIf(NO_OPENSSL)('openssl s_client through `muxnet proxy` to a node:tls server', () => {
  /** A node:tls server whose sessions `onSecure` drives; counts its sockets' errors and closes. */
  const origin = async (onSecure: (s: tls.TLSSocket) => void) => {
    const seen = { errors: [] as string[], closed: 0 };
    const server = tls.createServer(KEY_CERT, (s) => {
      s.on('error', (e: NodeJS.ErrnoException) => seen.errors.push(String(e.code)));
      s.on('close', () => seen.closed++);
      onSecure(s);
    });
    server.listen(0, '127.0.0.1');
    await within(once(server, 'listening'), 'the upstream listening');
    return { server, seen, port: (server.address() as nodeNet.AddressInfo).port };
  };

  it('2 MiB each way by hash, end to end; the proxy counts at least the TLS payload', async () => {
    const size = 2 << 20;
    const up = randomBytes(size);
    const down = randomBytes(size);
    let uploaded = '';
    const tlsOrigin = await origin((s) => {
      const got = createHash('sha256');
      let received = 0;
      s.on('data', (d: Buffer) => {
        got.update(d);
        received += d.length;
        if (received === size) {
          uploaded = got.digest('hex');
          s.end(down);
        }
      });
    });
    const proxy = await startProxy(tlsOrigin.port);
    try {
      const { code, out, err } = await run('openssl', ['s_client', '-connect', `127.0.0.1:${proxy.port}`, '-quiet'], up);
      expect(code, err).toBe(0);
      const reply = Buffer.from(out, 'latin1');
      expect(reply.length).toBe(size);
      expect(sha(reply)).toBe(sha(down));
      expect(uploaded).toBe(sha(up));
      await waitFor(() => tlsOrigin.seen.closed === 1, 'the upstream session closed');
      expect(tlsOrigin.seen.errors).toEqual([]);
      const stats = await proxy.stop();
      expect(stats).toMatchObject({ live: 0, accepted: 1, failed: 0 });
      // Records and handshake on top of the payload.
      expect(stats.bytesUp).toBeGreaterThan(size);
      expect(stats.bytesDown).toBeGreaterThan(size);
    } finally {
      await proxy.kill();
      await closeServer(tlsOrigin.server);
    }
  });

  it('an s_client killed while the upstream streams: the reset reaches the upstream, the pair closes, fds back', async () => {
    let client: ChildProcess | undefined;
    const tlsOrigin = await origin((s) => {
      streamUntilKilled(s, () => client);
    });
    const proxy = await startProxy(tlsOrigin.port);
    try {
      const fdsIdle = proxy.fds();
      client = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${proxy.port}`, '-quiet'], { stdio: ['pipe', 'ignore', 'ignore'] });
      await within(once(client, 'close'), 's_client killed');
      await waitFor(() => tlsOrigin.seen.closed === 1, 'the upstream session closed');
      // The unread bytes in the killed client's socket made its close a
      // reset; the proxy passes it on rather than a clean FIN (after which
      // the upstream would end its side without an error). Reading or
      // writing, as the reset lands.
      expect(tlsOrigin.seen.errors).toHaveLength(1);
      expect(tlsOrigin.seen.errors[0]).toMatch(/^(ECONNRESET|EPIPE)$/);
      await waitFor(() => proxy.fds() === fdsIdle, `the proxy's fds back to ${fdsIdle}`, 10_000);
      const stats = await proxy.stop();
      expect(stats).toMatchObject({ live: 0, accepted: 1, failed: 0 });
      expect(stats.bytesDown).toBeGreaterThan(0);
    } finally {
      await proxy.kill();
      await closeServer(tlsOrigin.server);
    }
  });
});
