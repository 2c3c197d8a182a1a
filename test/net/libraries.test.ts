// Third-party clients and servers that take a socket factory or a stream,
// unchanged, over muxnet's drop-in on each backend, with node:net as the
// baseline: node:http (a keep-alive Agent, http.Server), node:https (TLS over
// the sockets), node:http2, undici, the `ws` package, and ioredis and pg
// against a real redis-server and PostgreSQL started here.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import nodeNet from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { AbstractConnector, Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { Agent as UndiciAgent, fetch as undiciFetch, request as undiciRequest, type buildConnector } from 'undici';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import * as muxnet from '../../src/net';
import { BACKENDS, downPort, expectSocketFdsBack, pattern, sleep, tcpOptionsOf, waitFor } from '../helpers';
import { POSTGRES, POSTGRES_USER, REDIS, runDuring, skipWithout, within } from './daemons';

type Net = typeof nodeNet;
type Dial = (opts: nodeNet.NetConnectOpts, listener?: () => void) => nodeNet.Socket;
const IMPLS: [string, Net, string | undefined][] = [
  ['node:net', nodeNet, undefined],
  ...BACKENDS.map((b): [string, Net, string] => [`muxnet (${b})`, muxnet as unknown as Net, b]),
];

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// Self-signed for localhost and 127.0.0.1, valid for 100 years: made with
// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500
//  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1`.
const TLS_KEY = readFileSync(join(__dirname, '../fixtures/tls/key.pem'));
const TLS_CERT = readFileSync(join(__dirname, '../fixtures/tls/cert.pem'));

const SKIP_REDIS = skipWithout(REDIS);
const SKIP_POSTGRES = skipWithout(POSTGRES);

const closeServer = (server: { close(cb: () => void): unknown }) =>
  within(new Promise<void>((resolve) => server.close(() => resolve())), 'server close');

/** A node:tls server that answers a connection's first data with `echo:<data>` and ends it. */
const echoTls = () => tls.createServer({ key: TLS_KEY, cert: TLS_CERT }, (s) => s.on('error', () => {}).on('data', (d) => s.end(`echo:${d}`)));

/** `echoTls()` listening on loopback. */
async function echoTlsServer(): Promise<{ secure: tls.Server; port: number }> {
  const secure = echoTls();
  secure.listen(0, '127.0.0.1');
  await within(once(secure, 'listening'), 'listening');
  return { secure, port: (secure.address() as nodeNet.AddressInfo).port };
}

describe.each(IMPLS)('%s', (_name, net, backend) => {
  // node:net ignores the muxnet-only `backend` option.
  const dial: Dial = (opts, listener) => net.createConnection({ ...opts, backend } as unknown as nodeNet.NetConnectOpts, listener);
  /** A server of this implementation whose connections go to `app` (an http or https Server). */
  const feed = async (app: nodeNet.Server, accepted: nodeNet.Socket[] = []) => {
    const server = net.createServer({ backend } as nodeNet.ServerOpts, (socket) => {
      accepted.push(socket);
      app.emit('connection', socket);
    });
    server.listen(0, '127.0.0.1');
    await within(once(server, 'listening'), 'listening');
    return { server, port: (server.address() as nodeNet.AddressInfo).port };
  };

  // Every client, server and accepted socket of this implementation is closed.
  expectSocketFdsBack(backend);

  /**
   * What the http and https servers on this implementation's sockets answer: a POST
   * streams the body back chunk by chunk, GET /chunks/N/SIZE sends N chunks
   * of pattern bytes; both chunked (no content-length).
   */
  const handler: http.RequestListener = (req, res) => {
    if (req.method === 'POST') {
      req.on('data', (d: Buffer) => res.write(d));
      req.on('end', () => res.end());
    } else {
      const [, n, size] = /^\/chunks\/(\d+)\/(\d+)$/.exec(req.url ?? '') ?? [];
      for (let i = 0; i < Number(n); i++) res.write(pattern(i, Number(size)));
      res.end();
    }
  };
  const app = http.createServer(handler);

  describe('node:http', () => {
    type Reply = { status: number; chunked: boolean; body: Buffer; socket: nodeNet.Socket };
    const request = (agent: http.Agent, port: number, method: string, path: string, body?: Buffer) =>
      within(
        new Promise<Reply>((resolve, reject) => {
          // An https.Agent makes it an https request.
          const protocol = (agent as http.Agent & { protocol: string }).protocol;
          const req = http.request({ protocol, host: '127.0.0.1', port, method, path, agent }, (res) => {
            const socket = res.socket; // back in the Agent's pool (res.socket null) by 'end'
            const parts: Buffer[] = [];
            res.on('data', (d: Buffer) => parts.push(d));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                chunked: res.headers['transfer-encoding'] === 'chunked',
                body: Buffer.concat(parts),
                socket,
              }),
            );
            res.on('error', reject);
          });
          req.on('error', reject);
          req.end(body);
        }),
        `${method} ${path}`,
      );

    /**
     * A keep-alive Agent whose sockets come from this implementation, counted;
     * with `secure`, an https.Agent running TLS over them (tls.connect({ socket })).
     */
    const keepAliveAgent = (maxSockets: number, secure?: tls.ConnectionOptions) => {
      const agent = secure ? new https.Agent({ keepAlive: true, maxSockets }) : new http.Agent({ keepAlive: true, maxSockets });
      const made: nodeNet.Socket[] = [];
      // The options as the Agent passes them (with its `path: null`).
      (agent as unknown as { createConnection: Dial }).createConnection = (opts, listener) => {
        const socket = dial(opts, secure ? undefined : listener);
        made.push(socket);
        return secure ? tls.connect({ ...secure, socket }, listener) : socket;
      };
      return { agent, made };
    };

    // http.Agent hands createConnection `path: null` (the Agent constructor
    // sets `this.options.path = null`): TCP, as node:net reads it (`!!path`).
    it('an Agent whose createConnection is the implementation\'s, as is, fetches', async () => {
      const { server, port } = await feed(app);
      const agent = new http.Agent({ keepAlive: true });
      (agent as unknown as { createConnection: Dial }).createConnection = dial;
      try {
        const reply = await request(agent, port, 'GET', '/chunks/2/10');
        expect(reply.body.equals(Buffer.concat([pattern(0, 10), pattern(1, 10)]))).toBe(true);
      } finally {
        agent.destroy();
        await closeServer(server);
      }
    });

    it('a keep-alive Agent reuses one socket for sequential requests, bodies and chunked replies byte for byte', async () => {
      const accepted: nodeNet.Socket[] = [];
      const { server, port } = await feed(app, accepted);
      const { agent, made } = keepAliveAgent(1);
      for (let i = 0; i < 20; i++) {
        const body = randomBytes(1 + ((i * 7919) % (256 << 10)));
        const echo = await request(agent, port, 'POST', '/echo', body);
        expect(echo.status).toBe(200);
        expect(echo.chunked).toBe(true);
        expect(echo.body.equals(body)).toBe(true);
        const chunks = await request(agent, port, 'GET', `/chunks/${i + 1}/${1000 * i + 1}`);
        expect(chunks.chunked).toBe(true);
        expect(chunks.body.equals(Buffer.concat(Array.from({ length: i + 1 }, (_v, k) => pattern(k, 1000 * i + 1))))).toBe(true);
        expect(chunks.socket).toBe(made[0]);
      }
      expect(made).toHaveLength(1);
      expect(made[0]).toBeInstanceOf(net.Socket);
      expect(accepted).toHaveLength(1);
      expect(accepted[0]).toBeInstanceOf(net.Socket);
      agent.destroy();
      await waitFor(() => accepted[0].destroyed, 'the server side to close');
      await closeServer(server);
    });

    it('a keep-alive Agent spreads concurrent requests over at most maxSockets sockets, each answered whole', async () => {
      const accepted: nodeNet.Socket[] = [];
      const { server, port } = await feed(app, accepted);
      const { agent, made } = keepAliveAgent(4);
      const bodies = Array.from({ length: 48 }, (_v, i) => randomBytes(1 + i * 4099));
      const replies = await Promise.all(
        bodies.map((body, i) => (i % 2 ? request(agent, port, 'POST', '/echo', body) : request(agent, port, 'GET', `/chunks/8/${body.length}`))),
      );
      replies.forEach((reply, i) => {
        const want = i % 2 ? bodies[i] : Buffer.concat(Array.from({ length: 8 }, (_v, k) => pattern(k, bodies[i].length)));
        expect(sha(reply.body), `reply ${i}`).toBe(sha(want));
      });
      expect(made).toHaveLength(4);
      expect(new Set(replies.map((r) => r.socket)).size).toBe(4);
      expect(accepted).toHaveLength(4);
      agent.destroy();
      await waitFor(() => accepted.every((s) => s.destroyed), 'the server sides to close');
      await closeServer(server);
    });

    it('runs https: TLS over these sockets, from an https.Agent to an https.Server fed with them', async () => {
      const secureApp = https.createServer({ key: TLS_KEY, cert: TLS_CERT }, handler);
      const accepted: nodeNet.Socket[] = [];
      const { server, port } = await feed(secureApp, accepted);
      const { agent, made } = keepAliveAgent(2, { ca: TLS_CERT, servername: 'localhost' });
      const bodies = [1, 1000, 70_000, 5 << 20].map((n) => randomBytes(n));
      const replies = await Promise.all(bodies.map((body) => request(agent, port, 'POST', '/echo', body)));
      replies.forEach((reply, i) => {
        expect(sha(reply.body), `reply ${i}`).toBe(sha(bodies[i]));
        expect((reply.socket as tls.TLSSocket).authorized).toBe(true);
      });
      const chunks = await request(agent, port, 'GET', '/chunks/5/100000');
      expect(chunks.body.equals(Buffer.concat(Array.from({ length: 5 }, (_v, k) => pattern(k, 100_000))))).toBe(true);
      expect(made).toHaveLength(2);
      made.forEach((socket) => expect(socket).toBeInstanceOf(net.Socket));
      expect(accepted).toHaveLength(2);
      agent.destroy();
      await waitFor(() => [...made, ...accepted].every((s) => s.destroyed), 'every socket to close');
      await closeServer(server);
    });

    // Found by a hunt (2026-12-05): muxnet's socket ended itself at the FIN, and the TLS layer's
    // close_notify then met it: an EPIPE 'error', which pg and mysql2 over TLS re-emit (a
    // process ended by mysql2's conn.end() or a PostgreSQL restart). node:net's native path has none.
    // Found by the hunt of drivers over TLS (2026-12-06): the socket's own listeners, from before the
    // upgrade, heard 'end' and 'finish' (mysql2's Connection said 'end' again), and its 'close' came
    // after the TLS socket's at a destroy (pg's Client said 'end' after). node:net's TLS takes the handle.
    it("TLS over a connected socket whose peer closes without close_notify: end and close, no error, the socket's own listeners hear its 'close' alone", async () => {
      const raw = nodeNet.createServer((sock) => {
        const secure = new tls.TLSSocket(sock, { isServer: true, key: TLS_KEY, cert: TLS_CERT });
        secure.on('error', () => {});
        // The TCP side goes with a FIN alone, the TLS layer never told.
        secure.on('secure', () => secure.write('hello', () => setTimeout(() => sock.end(), 20)));
      });
      raw.listen(0, '127.0.0.1');
      await within(once(raw, 'listening'), 'listening');
      const socket = dial({ port: (raw.address() as nodeNet.AddressInfo).port, host: '127.0.0.1' });
      await within(once(socket, 'connect'), 'connect');
      const events: string[] = [];
      for (const e of ['end', 'finish', 'error', 'close']) socket.on(e, () => events.push(`socket ${e}`));
      const client = tls.connect({ socket, ca: TLS_CERT, servername: 'localhost' });
      for (const e of ['secureConnect', 'data', 'end', 'error', 'close']) client.on(e, (x?: unknown) => events.push(e === 'data' ? `data ${x}` : e === 'error' ? `error ${(x as NodeJS.ErrnoException).code}` : e));
      await within(once(client, 'close'), 'close');
      await waitFor(() => socket.destroyed, 'the raw socket to close');
      expect(events).toEqual(['secureConnect', 'data hello', 'end', 'socket close', 'close']);
      // Half-open for the wrapper's sake only then: connected again, it ends at a FIN.
      expect(socket.allowHalfOpen).toBe(false);
      await closeServer(raw);
    });

    it("TLS over a socket, destroyed mid-stream: the socket says 'close' just before the TLS socket, and nothing else", async () => {
      const secure = tls.createServer({ key: TLS_KEY, cert: TLS_CERT }, (s) => s.on('error', () => {}).write(Buffer.alloc(4 << 20)));
      secure.listen(0, '127.0.0.1');
      await within(once(secure, 'listening'), 'listening');
      const socket = dial({ port: (secure.address() as nodeNet.AddressInfo).port, host: '127.0.0.1' });
      const events: string[] = [];
      for (const e of ['end', 'finish', 'error', 'close']) socket.on(e, () => events.push(`socket ${e}`));
      const client = tls.connect({ socket, ca: TLS_CERT, servername: 'localhost' });
      for (const e of ['end', 'error', 'close']) client.on(e, () => events.push(`tls ${e}`));
      client.once('data', () => client.destroy());
      await within(Promise.all([client, socket].map((s) => new Promise((closed) => s.on('close', closed)))), 'close');
      expect(events).toEqual(['socket close', 'tls close']);
      await closeServer(secure);
    });

    // Found 2026-12-06 (the last note's list): node:http leaves its own on() on a socket it parsed,
    // past muxnet's, and the TLS wrapper then listened as any listener (its records to every 'data'
    // listener; the socket said 'finish', and 'close' after the TLS socket).
    it("TLS over a socket node:http handed out (CONNECT, as a MITM proxy): the socket's own listeners hear its 'close' alone, first", async () => {
      const events: string[] = [];
      const proxy = http.createServer();
      proxy.on('connect', (_req: http.IncomingMessage, socket: nodeNet.Socket) => {
        for (const e of ['data', 'end', 'finish', 'error', 'close']) socket.on(e, () => events.push(`socket ${e}`));
        socket.write('HTTP/1.1 200 Connection established\r\n\r\n', () => {
          const secure = new tls.TLSSocket(socket, { isServer: true, key: TLS_KEY, cert: TLS_CERT });
          secure.on('error', () => {}).on('data', (d) => secure.end(`echo:${d}`));
          for (const e of ['end', 'close']) secure.on(e, () => events.push(`tls ${e}`));
        });
      });
      const { server, port } = await feed(proxy);
      const tunnel = nodeNet.connect(port, '127.0.0.1', () => tunnel.write('CONNECT example:443 HTTP/1.1\r\nHost: example:443\r\n\r\n'));
      await within(once(tunnel, 'data'), 'the tunnel');
      const client = tls.connect({ socket: tunnel, ca: TLS_CERT, servername: 'localhost' }, () => client.write('hi'));
      const [echo] = await within(once(client, 'data'), 'the echo');
      expect(String(echo)).toBe('echo:hi');
      await within(waitFor(() => events.includes('tls close'), 'the TLS socket to close'), 'close');
      expect(events).toEqual(['tls end', 'socket close', 'tls close']);
      await closeServer(server);
    });

    it("a plain socket whose 'end' listener calls some parser's emitEOF() still ends at the peer's FIN", async () => {
      const server = nodeNet.createServer((peer) => peer.end('bye'));
      server.listen(0, '127.0.0.1');
      await within(once(server, 'listening'), 'listening');
      const parser = { ended: false, emitEOF() { this.ended = true; } };
      const socket = dial({ port: (server.address() as nodeNet.AddressInfo).port, host: '127.0.0.1' });
      socket.resume().on('end', () => parser.emitEOF());
      await within(once(socket, 'close'), 'close');
      expect([parser.ended, socket.writableEnded]).toEqual([true, true]);
      await closeServer(server);
    });

    // Found by a hunt (2026-12-05): basic-ftp's FTPS (and any line protocol's STARTTLS) gives the
    // plain socket an encoding first; Node's JS-stream wrapper refused its string chunks
    // (ERR_STREAM_WRAP) and the upgrade failed. node:net's TLS reads the native handle.
    it('STARTTLS on a socket that had setEncoding(): the TLS layer gets its bytes', async () => {
      const secure = tls.createServer({ key: TLS_KEY, cert: TLS_CERT }, (s) => s.on('error', () => {}).on('data', (d) => s.write(`echo:${d}`)));
      const plain = nodeNet.createServer((c) => {
        c.write('220 ready\r\n');
        c.once('data', () => c.write('220 go ahead\r\n', () => secure.emit('connection', c)));
      });
      plain.listen(0, '127.0.0.1');
      await within(once(plain, 'listening'), 'listening');
      const socket = dial({ port: (plain.address() as nodeNet.AddressInfo).port, host: '127.0.0.1' });
      socket.setEncoding('utf8');
      const [greeting] = await within(once(socket, 'data'), 'the greeting');
      socket.write('STARTTLS\r\n');
      const [goAhead] = await within(once(socket, 'data'), 'the go-ahead');
      expect([greeting, goAhead]).toEqual(['220 ready\r\n', '220 go ahead\r\n']);
      const client = tls.connect({ socket, ca: TLS_CERT, servername: 'localhost' });
      await within(once(client, 'secureConnect'), 'the handshake');
      client.write('hello');
      const [echo] = await within(once(client, 'data'), 'the echo');
      expect(String(echo)).toBe('echo:hello');
      client.end();
      await within(once(socket, 'close'), 'the raw socket to close');
      await Promise.all([closeServer(plain), closeServer(secure)]);
    });

    // Found by a hunt (2026-12-06, ftp-srv's and proxy-chain's own suites): node:net's TLS takes a
    // connected socket's handle, and its listeners hear no TLS byte again; muxnet's emitted every read
    // as 'data' — ftp-srv's command parser took the client's hello for a command (AUTH TLS answered
    // 502), and the plaintext ftp-srv re-emits on the socket reached the TLS layer as records.
    // Found by a review of the fix below (2026-12-06): what waited in the socket when the wrapper came
    // (bytes peeked and unshift()ed to sniff the protocol, as httpolyglot does) went to no one.
    it('a socket whose first bytes were peeked and unshift()ed, then handed to a TLS server: the handshake completes', async () => {
      const secure = echoTls();
      const sniffed: number[] = [];
      const server = net.createServer({ backend } as nodeNet.ServerOpts, (raw) =>
        raw.once('data', (first: Buffer) => {
          sniffed.push(first[0]!);
          raw.pause();
          raw.unshift(first);
          secure.emit('connection', raw);
        }),
      );
      server.listen(0, '127.0.0.1');
      await within(once(server, 'listening'), 'listening');
      const client = tls.connect({ port: (server.address() as nodeNet.AddressInfo).port, host: '127.0.0.1', ca: TLS_CERT, servername: 'localhost' }, () => client.write('hi'));
      const [echo] = await within(once(client, 'data'), 'the echo');
      // 0x16: a TLS handshake record.
      expect([String(echo), sniffed]).toEqual(['echo:hi', [0x16]]);
      await within(once(client, 'close'), 'close');
      await Promise.all([closeServer(server), closeServer(secure)]);
    });

    it("STARTTLS server: the socket's own 'data' listener hears the command, then only what is re-emitted on it", async () => {
      const heard: string[] = [];
      let secure: tls.TLSSocket | undefined;
      const server = net.createServer({ backend } as nodeNet.ServerOpts, (raw) => {
        raw.on('data', (d) => {
          heard.push(String(d));
          if (String(d) === 'QUIT\r\n') secure?.end('221 bye\r\n');
          if (String(d) !== 'STARTTLS\r\n') return;
          raw.write('220 go ahead\r\n', () => {
            secure = new tls.TLSSocket(raw, { isServer: true, key: TLS_KEY, cert: TLS_CERT });
            secure.on('error', () => {});
            // ftp-srv's way: the TLS socket's plaintext re-emitted on the raw socket, whose listener reads on.
            secure.on('data', (plain) => raw.emit('data', plain));
          });
        });
      });
      server.listen(0, '127.0.0.1');
      await within(once(server, 'listening'), 'listening');
      const socket = dial({ port: (server.address() as nodeNet.AddressInfo).port, host: '127.0.0.1' });
      socket.write('STARTTLS\r\n');
      const [goAhead] = await within(once(socket, 'data'), 'the go-ahead');
      expect(String(goAhead)).toBe('220 go ahead\r\n');
      const client = tls.connect({ socket, ca: TLS_CERT, servername: 'localhost' });
      await within(once(client, 'secureConnect'), 'the handshake');
      client.write('QUIT\r\n');
      const [bye] = await within(once(client, 'data'), 'the answer');
      expect(String(bye)).toBe('221 bye\r\n');
      client.end();
      await within(once(socket, 'close'), 'the raw socket to close');
      expect(heard).toEqual(['STARTTLS\r\n', 'QUIT\r\n']);
      await closeServer(server);
    });

    // Found by the same hunt (proxy-chain's WebSockets over a CONNECT tunnel, faye-websocket's client):
    // the socket stayed piped into the CONNECT parser, which refuses every write once done; its pause()
    // at the tunnel's answer, and the TLS records it got, starved the handshake. node:net's TLS reads on.
    it('TLS over a socket still piped into a writer that refuses writes: the handshake completes, the pipe hears no record', async () => {
      const secure = echoTls();
      const tunnel = nodeNet.createServer((c) => c.write('HTTP/1.1 200 Connection established\r\n\r\n', () => secure.emit('connection', c)));
      tunnel.listen(0, '127.0.0.1');
      await within(once(tunnel, 'listening'), 'listening');
      const socket = dial({ port: (tunnel.address() as nodeNet.AddressInfo).port, host: '127.0.0.1' });
      // Instrumentation's own emit on the socket stays its own, under TLS and after.
      const seen: (string | symbol)[] = [];
      const userEmit = function (this: nodeNet.Socket, event: string | symbol, ...args: unknown[]) {
        seen.push(event);
        return Reflect.apply(nodeNet.Socket.prototype.emit, this, [event, ...args]) as boolean;
      };
      socket.emit = userEmit;
      const parsed: string[] = [];
      let client: tls.TLSSocket | undefined;
      // The tunnel's answer starts TLS from inside the parser's write, which then refuses (a pause).
      const parser = new Writable({
        highWaterMark: 1,
        write(chunk: Buffer) {
          parsed.push(String(chunk));
          client ??= tls.connect({ socket, ca: TLS_CERT, servername: 'localhost' }, () => client!.write('hi'));
        },
      });
      socket.pipe(parser, { end: false });
      await within(waitFor(() => client !== undefined, 'the tunnel'), 'the tunnel');
      const [echo] = await within(once(client!, 'data'), 'the echo');
      expect(String(echo)).toBe('echo:hi');
      expect(parsed).toEqual(['HTTP/1.1 200 Connection established\r\n\r\n']);
      await within(once(socket, 'close'), 'the raw socket to close');
      expect([socket.emit === userEmit, seen.includes('connect'), seen.includes('close')]).toEqual([true, true, true]);
      await Promise.all([closeServer(tunnel), closeServer(secure)]);
    });

    // Found 2026-12-06 (the last note's list): node:net's TLS reads the handle, whatever is done to
    // the socket's own stream after; here a removeAllListeners('data') took the wrapper's listener
    // (no handshake), a setEncoding() turned its records into strings (ERR_STREAM_WRAP), and a
    // pause() not the wrapper's was dropped whole (no 'pause', isPaused() false).
    it("TLS over a socket, which is then stripped of its 'data' listeners, given an encoding and paused: the TLS socket reads on", async () => {
      const { secure, port } = await echoTlsServer();
      const socket = dial({ port, host: '127.0.0.1' });
      const client = tls.connect({ socket, ca: TLS_CERT, servername: 'localhost' }, () => client.write('hi'));
      socket.removeAllListeners('data');
      socket.setEncoding('utf8');
      const paused = once(socket, 'pause');
      socket.pause();
      await within(paused, "the socket's 'pause'");
      expect([socket.isPaused(), socket.readableEncoding]).toEqual([true, 'utf8']);
      const [echo] = await within(once(client, 'data'), 'the echo');
      expect(String(echo)).toBe('echo:hi');
      await within(once(client, 'close'), 'close');
      await closeServer(secure);
    });

    // From the last note's list (2026-12-06): TLS over a socket made with `onread` never handshook —
    // its reads went to the callback, none to the wrapper.
    it('TLS over a socket made with onread: the handshake completes, the callback hears no record', async () => {
      const { secure, port } = await echoTlsServer();
      let heard = 0;
      const onread = { buffer: Buffer.alloc(1024), callback: (n: number) => ((heard += n), true) };
      const socket = dial({ port, host: '127.0.0.1', onread } as nodeNet.NetConnectOpts);
      const client = tls.connect({ socket, ca: TLS_CERT, servername: 'localhost' }, () => client.write('hi'));
      const [echo] = await within(once(client, 'data'), 'the echo');
      expect([String(echo), heard]).toEqual(['echo:hi', 0]);
      await within(once(client, 'close'), 'close');
      await closeServer(secure);
    });

    // Found by a hunt (2026-12-06, drivers over TLS): the TLS socket's handle was Node's JSStream,
    // which answers none of a TCP handle's calls — no addresses (smtp-server's onSecure, ftp-srv's
    // passive FTPS connections refused), setKeepAlive() and setNoDelay() reached no socket.
    it("TLS over a socket: the TLS socket has the socket's addresses, and its setNoDelay() and setKeepAlive() reach it", async () => {
      const { secure, port } = await echoTlsServer();
      const socket = dial({ port, host: '127.0.0.1' });
      const client = tls.connect({ socket, ca: TLS_CERT, servername: 'localhost' });
      await within(once(client, 'secureConnect'), 'the handshake');
      const addresses = (s: nodeNet.Socket) => [s.remoteAddress, s.remotePort, s.remoteFamily, s.localAddress, s.localPort, s.address()];
      expect(addresses(client)).toEqual(addresses(socket));
      expect(client.remotePort).toBe(port);
      client.setNoDelay(true);
      client.setKeepAlive(true, 7_000);
      // (Read through the fd given to a child as its stdio: the socket reads no more, as node:net's.)
      const { noDelay, keepAlive } = await tcpOptionsOf(socket);
      expect([noDelay, keepAlive[0], keepAlive[1]]).toEqual([1, 1, 7]);
      client.destroy();
      await within(once(socket, 'close'), 'close');
      await closeServer(secure);
    });

    // Found by the same hunt: pg's Client said 'error' twice for one reset over SSL, and mysql2
    // took a reset in the handshake for ECONNRESET, not its HANDSHAKE_SSL_ERROR — their listeners
    // on the socket, from before the upgrade, heard the socket's error too.
    it("TLS over a socket: a reset reaches the TLS socket's 'error' alone, not the socket's own listeners", async () => {
      // The server says hello over TLS, then resets the connection.
      const plain = nodeNet.createServer((c) => {
        c.on('error', () => {});
        const s = new tls.TLSSocket(c, { isServer: true, key: TLS_KEY, cert: TLS_CERT }).on('error', () => {});
        s.on('secure', () => s.write('hello', () => setTimeout(() => c.resetAndDestroy(), 50)));
      });
      plain.listen(0, '127.0.0.1');
      await within(once(plain, 'listening'), 'listening');
      const socket = dial({ port: (plain.address() as nodeNet.AddressInfo).port, host: '127.0.0.1' });
      const heard: string[] = [];
      socket.on('error', (err: NodeJS.ErrnoException) => heard.push(`socket ${err.code}`));
      const client = tls.connect({ socket, ca: TLS_CERT, servername: 'localhost' });
      client.on('error', (err: NodeJS.ErrnoException) => heard.push(`tls ${err.code}`));
      const [hello] = await within(once(client, 'data'), 'the hello');
      expect(String(hello)).toBe('hello');
      // (Not once(): it rejects at an 'error'.)
      const [, socketHadError] = await within(Promise.all([client, socket].map((s) => new Promise((closed) => s.on('close', closed)))), 'close');
      expect([heard, socketHadError]).toEqual([['tls ECONNRESET'], false]);
      await closeServer(plain);
    });

    // The reviewer of the fix: lent by way of process.binding(), deprecated — a warning under
    // --pending-deprecation, and --throw-deprecation ended the process; under --frozen-intrinsics
    // (no call sites to read) the owner's pause() was taken for TLS's own, and TLS stalled.
    it.each([
      ['', []],
      [', under --pending-deprecation --throw-deprecation, saying nothing', ['--pending-deprecation', '--throw-deprecation']],
      [", under --frozen-intrinsics, the socket paused by its owner", ['--frozen-intrinsics'], 'pause-socket'],
    ])('TLS over a socket: the TLS socket unref()ed holds the process no more%s', async (_title, flags, mode = '') => {
      const fixture = join(__dirname, '..', 'fixtures', 'tls-unref-exits.js');
      const run = promisify(execFile)(process.execPath, [...flags, fixture, backend ? 'muxnet' : 'node:net', backend ?? 'mio', mode], { timeout: 10_000 });
      const { stdout, stderr } = await run;
      expect([stdout.trim(), stderr.replace(/.*(ExperimentalWarning|--trace-warnings).*\n/g, '')]).toEqual(['echoed', '']);
    });

    // The reviewer of the fix above: errors of the socket's own reached the TLS socket alone.
    it("TLS over a socket still connecting, refused: the socket's own 'error' listener and the TLS socket both hear it", async () => {
      const socket = dial({ port: await downPort(), host: '127.0.0.1' });
      const heard: string[] = [];
      socket.on('error', (err: NodeJS.ErrnoException) => heard.push(`socket ${err.code}`));
      const client = tls.connect({ socket, ca: TLS_CERT, servername: 'localhost' });
      client.on('error', (err: NodeJS.ErrnoException) => heard.push(`tls ${err.code}`));
      await within(Promise.all([client, socket].map((s) => new Promise((closed) => s.on('close', closed)))), 'close');
      expect(heard.sort()).toEqual(['socket ECONNREFUSED', 'tls ECONNREFUSED']);
    });

    it("TLS over a socket holds its reads back while the TLS socket is paused (the wrapper's own pause)", async () => {
      const size = 32 << 20;
      const secure = tls.createServer({ key: TLS_KEY, cert: TLS_CERT }, (s) => s.on('error', () => {}).end(Buffer.alloc(size, 7)));
      secure.listen(0, '127.0.0.1');
      await within(once(secure, 'listening'), 'listening');
      const socket = dial({ port: (secure.address() as nodeNet.AddressInfo).port, host: '127.0.0.1' });
      // A user's wrapper around pause() (instrumentation) stands between the wrapper and the socket.
      const { pause } = socket;
      socket.pause = function (this: nodeNet.Socket) {
        return pause.call(this);
      };
      const client = tls.connect({ socket, ca: TLS_CERT, servername: 'localhost' });
      await within(once(client, 'secureConnect'), 'the handshake');
      client.pause();
      // Until the reads stop (none for 100 ms): at the TLS socket's high-water mark, not the 32 MiB sent.
      let last = -1;
      for (let i = 0; i < 100 && socket.bytesRead !== last; i++) {
        last = socket.bytesRead;
        await sleep(100);
      }
      expect(socket.bytesRead).toBeLessThan(size / 4);
      let got = 0;
      client.on('data', (d: Buffer) => (got += d.length)).resume();
      await within(once(client, 'end'), 'the rest');
      expect(got).toBe(size);
      client.end();
      await closeServer(secure);
    });

    // Found by a review (2026-12-05): the dead TLS wrapper's listeners stayed on the socket, which
    // was then taken for its transport at the plain peer's FIN: half-open, it never ended or closed.
    it('a socket whose TLS handshake failed, connected again for plain TCP, ends and closes at the FIN', async () => {
      const secure = tls.createServer({ key: TLS_KEY, cert: TLS_CERT }, (s) => s.on('error', () => {}));
      const plain = nodeNet.createServer((peer) => peer.end('plain bye'));
      secure.listen(0, '127.0.0.1');
      plain.listen(0, '127.0.0.1');
      await within(Promise.all([once(secure, 'listening'), once(plain, 'listening')]), 'listening');
      const socket = dial({ port: (secure.address() as nodeNet.AddressInfo).port, host: '127.0.0.1' });
      socket.on('error', () => {});
      await within(once(socket, 'connect'), 'connect');
      // Self-signed, not trusted: the handshake fails and the wrapper goes, with the raw socket.
      const closed = once(socket, 'close');
      const client = tls.connect({ socket, servername: 'localhost' });
      const [err] = await within(once(client, 'error'), 'the handshake to fail');
      expect((err as NodeJS.ErrnoException).code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
      await within(closed, 'the raw socket to close');
      let got = '';
      socket.on('data', (d) => (got += d));
      socket.connect((plain.address() as nodeNet.AddressInfo).port, '127.0.0.1');
      await within(once(socket, 'close'), 'the plain connection to close');
      expect([got, socket.writableEnded, socket.allowHalfOpen]).toEqual(['plain bye', true, false]);
      await Promise.all([closeServer(secure), closeServer(plain)]);
    });

    it('http.Server closes a kept-alive socket idle past keepAliveTimeout, and the Agent dials anew', async () => {
      const idleApp = http.createServer((_req, res) => res.end('ok'));
      // It announces `Keep-Alive: timeout=2`; the Agent keeps the socket with
      // no idle timeout of its own (it drops sockets announced below 2 s).
      idleApp.keepAliveTimeout = 2000;
      const accepted: nodeNet.Socket[] = [];
      const { server, port } = await feed(idleApp, accepted);
      const { agent, made } = keepAliveAgent(1);
      expect((await request(agent, port, 'GET', '/')).body.toString()).toBe('ok');
      const idleSince = Date.now();
      await waitFor(() => made[0].destroyed && accepted[0].destroyed, 'the idle connection to close');
      expect(Date.now() - idleSince).toBeGreaterThanOrEqual(1800);
      expect((await request(agent, port, 'GET', '/')).body.toString()).toBe('ok');
      expect(made).toHaveLength(2);
      agent.destroy();
      await waitFor(() => accepted.every((s) => s.destroyed), 'the server sides to close');
      await closeServer(server);
    });
  });

  describe('node:http2', () => {
    it('multiplexes concurrent streams over one socket each way, bodies byte for byte', async () => {
      // Cleartext HTTP/2: the session runs over the socket the app is given.
      const h2 = http2.createServer((req, res) => {
        const parts: Buffer[] = [];
        req.on('data', (d: Buffer) => parts.push(d));
        req.on('end', () => res.end(sha(Buffer.concat(parts))));
      });
      const accepted: nodeNet.Socket[] = [];
      const { server, port } = await feed(h2, accepted);
      const made: nodeNet.Socket[] = [];
      const session = http2.connect(`http://127.0.0.1:${port}`, {
        createConnection: () => {
          const socket = dial({ port, host: '127.0.0.1' });
          made.push(socket);
          return socket;
        },
      });
      const bodies = Array.from({ length: 16 }, (_v, i) => randomBytes(1 + i * 40_000));
      const digests = await within(
        Promise.all(
          bodies.map(
            (body) =>
              new Promise<string>((resolve, reject) => {
                const stream = session.request({ ':method': 'POST', ':path': '/' });
                const parts: Buffer[] = [];
                stream.on('data', (d: Buffer) => parts.push(d));
                stream.on('end', () => resolve(Buffer.concat(parts).toString()));
                stream.on('error', reject);
                stream.end(body);
              }),
          ),
        ),
        'every HTTP/2 stream',
      );
      expect(digests).toEqual(bodies.map(sha));
      expect(made).toHaveLength(1);
      expect(made[0]).toBeInstanceOf(net.Socket);
      expect(accepted).toHaveLength(1);
      await within(new Promise<void>((resolve) => session.close(() => resolve())), 'the session to close');
      await waitFor(() => made[0].destroyed && accepted[0].destroyed, 'both sides to close');
      await closeServer(server);
    });
  });

  describe('undici', () => {
    it('an Agent with a connector of this implementation pipelines requests, bodies byte for byte', async () => {
      const accepted: nodeNet.Socket[] = [];
      const { server, port } = await feed(app, accepted);
      const made: nodeNet.Socket[] = [];
      // undici's connector contract: call back with the socket once connected.
      const connect: buildConnector.connector = (opts, callback) => {
        const socket = dial({ host: opts.hostname, port: Number(opts.port) });
        made.push(socket);
        socket.once('connect', () => callback(null, socket));
        socket.once('error', (err) => callback(err, null));
      };
      const dispatcher = new UndiciAgent({ connect, connections: 2, pipelining: 4 });
      const bodies = Array.from({ length: 40 }, (_v, i) => randomBytes(1 + i * 3001));
      const replies = await within(
        Promise.all(
          bodies.map(async (body, i) => {
            const res = i % 2
              ? await undiciRequest(`http://127.0.0.1:${port}/`, { method: 'POST', body, dispatcher })
              : await undiciRequest(`http://127.0.0.1:${port}/chunks/4/${body.length}`, { dispatcher });
            return Buffer.from(await res.body.arrayBuffer());
          }),
        ),
        'every undici reply',
      );
      replies.forEach((reply, i) => {
        const want = i % 2 ? bodies[i] : Buffer.concat(Array.from({ length: 4 }, (_v, k) => pattern(k, bodies[i].length)));
        expect(sha(reply), `reply ${i}`).toBe(sha(want));
      });
      const fetched = await within(undiciFetch(`http://127.0.0.1:${port}/chunks/3/5`, { dispatcher }), 'fetch');
      expect(Buffer.from(await fetched.arrayBuffer()).equals(Buffer.concat([0, 1, 2].map((k) => pattern(k, 5))))).toBe(true);
      expect(made).toHaveLength(2);
      made.forEach((socket) => expect(socket).toBeInstanceOf(net.Socket));
      await within(dispatcher.close(), 'the undici Agent to close');
      await waitFor(() => accepted.every((s) => s.destroyed), 'the server sides to close');
      await closeServer(server);
    });
  });

  describe('ws', () => {
    /**
     * A WebSocketServer on an http.Server fed with this implementation's
     * server sockets. It echoes every message as it came (text or binary);
     * 'ping me' makes it ping, 'close me' makes it close with 4001 'bye'.
     */
    const start = async () => {
      const upgrades = http.createServer();
      const wss = new WebSocketServer({ server: upgrades });
      const upgraded: nodeNet.Socket[] = [];
      const closes: [number, string][] = [];
      const pongs: string[] = [];
      wss.on('connection', (peer, req) => {
        upgraded.push(req.socket);
        peer.on('message', (data: RawData, isBinary) => {
          if (!isBinary && data.toString() === 'ping me') peer.ping('from server');
          else if (!isBinary && data.toString() === 'close me') peer.close(4001, 'bye');
          else peer.send(data, { binary: isBinary });
        });
        peer.on('pong', (data) => pongs.push(data.toString()));
        peer.on('close', (code, reason) => closes.push([code, reason.toString()]));
      });
      const fed = await feed(upgrades);
      return { ...fed, wss, upgraded, closes, pongs };
    };
    const open = async (port: number) => {
      const client = new WebSocket(`ws://127.0.0.1:${port}/chat?room=1`, { createConnection: dial as never });
      const upgrade = once(client, 'upgrade') as Promise<[http.IncomingMessage]>;
      await within(once(client, 'open'), 'the WebSocket to open');
      const [res] = await upgrade;
      expect(res.socket).toBeInstanceOf(net.Socket);
      return client;
    };
    const next = (client: WebSocket) =>
      within(once(client, 'message') as Promise<[Buffer, boolean]>, 'a message').then(([data, isBinary]) => ({ data, isBinary }));
    const stop = async (server: nodeNet.Server, wss: WebSocketServer) => {
      await within(new Promise<void>((r, j) => wss.close((err) => (err ? j(err) : r()))), 'the WebSocketServer to close');
      await closeServer(server);
    };

    it('carries text and multi-MiB binary messages both ways, pings and pongs', async () => {
      const { server, port, wss, upgraded, pongs } = await start();
      const client = await open(port);
      expect(upgraded).toHaveLength(1);
      expect(upgraded[0]).toBeInstanceOf(net.Socket);
      for (const text of ['hello', 'ünïcødé ✓', 'x'.repeat(70_000)]) {
        client.send(text);
        const got = await next(client);
        expect(got.isBinary).toBe(false);
        expect(got.data.toString()).toBe(text);
      }
      for (const size of [1, 125, 126, 65_536, 3 << 20]) {
        const payload = randomBytes(size);
        client.send(payload);
        const got = await next(client);
        expect(got.isBinary).toBe(true);
        expect(sha(got.data)).toBe(sha(payload));
      }
      client.ping('from client');
      const [pong] = await within(once(client, 'pong'), 'a pong');
      expect(pong.toString()).toBe('from client');
      client.send('ping me');
      const [ping] = await within(once(client, 'ping'), 'a ping');
      expect(ping.toString()).toBe('from server');
      await waitFor(() => pongs.length === 1, 'the client to answer the ping');
      expect(pongs).toEqual(['from server']);
      client.close(1000, 'done');
      const [code, reason] = await within(once(client, 'close'), 'the close handshake');
      expect([code, reason.toString()]).toEqual([1000, 'done']);
      await waitFor(() => upgraded[0].destroyed, 'the server side to close');
      await stop(server, wss);
    });

    it('reports the close code and reason the server sends, on both sides', async () => {
      const { server, port, wss, upgraded, closes } = await start();
      const client = await open(port);
      client.send('close me');
      const [code, reason] = await within(once(client, 'close'), 'the close handshake');
      expect([code, reason.toString()]).toEqual([4001, 'bye']);
      await waitFor(() => closes.length === 1, 'the server to see the close');
      expect(closes).toEqual([[4001, 'bye']]);
      await waitFor(() => upgraded[0].destroyed, 'the server side to close');
      await stop(server, wss);
    });
  });

  describe.skipIf(SKIP_REDIS)('ioredis with a Connector of this implementation, against redis-server', () => {
    const port = runDuring(REDIS);

    /** An ioredis client whose every connection (reconnects too) is `dial`'s; `made` lists them. */
    const client = async () => {
      const made: nodeNet.Socket[] = [];
      class Connector extends AbstractConnector {
        private readonly target: { port: number; host: string };
        constructor(options: unknown) {
          const redisOptions = options as { port: number; host: string; disconnectTimeout: number };
          super(redisOptions.disconnectTimeout);
          this.target = redisOptions;
        }
        connect() {
          this.connecting = true;
          this.stream = dial({ port: this.target.port, host: this.target.host });
          made.push(this.stream);
          return Promise.resolve(this.stream);
        }
      }
      const redis = new Redis({ port: port(), host: '127.0.0.1', Connector, retryStrategy: () => 20, maxRetriesPerRequest: 1 });
      await within(once(redis, 'ready'), 'ioredis to be ready');
      return { redis, made };
    };
    const quit = async (redis: Redis, made: nodeNet.Socket[]) => {
      expect(await redis.quit()).toBe('OK');
      await waitFor(() => made.every((s) => s.destroyed), 'the sockets to close');
    };

    it('runs commands, a pipeline, concurrent commands and a 4 MiB value byte for byte', async () => {
      const { redis, made } = await client();
      expect(await redis.set('greeting', 'hello ✓')).toBe('OK');
      expect(await redis.get('greeting')).toBe('hello ✓');
      const big = randomBytes(4 << 20);
      expect(await redis.set('big', big)).toBe('OK');
      expect(sha((await redis.getBuffer('big')) ?? Buffer.alloc(0))).toBe(sha(big));
      const pipeline = redis.pipeline();
      for (let i = 0; i < 500; i++) pipeline.incr('counter');
      expect(await pipeline.exec()).toEqual(Array.from({ length: 500 }, (_v, i) => [null, i + 1]));
      const values = Array.from({ length: 200 }, (_v, i) => pattern(i, 1 + i * 37));
      await Promise.all(values.map((v, i) => redis.set(`k${i}`, v)));
      const back = await Promise.all(values.map((_v, i) => redis.getBuffer(`k${i}`)));
      back.forEach((b, i) => expect(b?.equals(values[i]), `k${i}`).toBe(true));
      expect(made).toHaveLength(1);
      expect(made[0]).toBeInstanceOf(net.Socket);
      await quit(redis, made);
    });

    it('delivers pub/sub messages in order, text and binary', async () => {
      const sub = await client();
      const pub = await client();
      const got: Buffer[] = [];
      sub.redis.on('messageBuffer', (_channel: Buffer, message: Buffer) => got.push(message));
      expect(await sub.redis.subscribe('news')).toBe(1);
      const sent = Array.from({ length: 100 }, (_v, i) => (i % 2 ? randomBytes(i * 100) : Buffer.from(`message ${i}`)));
      for (const m of sent) expect(await pub.redis.publish('news', m)).toBe(1);
      await waitFor(() => got.length === sent.length, 'every message');
      got.forEach((m, i) => expect(m.equals(sent[i]), `message ${i}`).toBe(true));
      await quit(sub.redis, sub.made);
      await quit(pub.redis, pub.made);
    });

    it('reconnects through the Connector when the server kills the connection', async () => {
      const { redis, made } = await client();
      const admin = await client();
      const id = await redis.client('ID');
      // Listening before the kill: the close may arrive before its reply.
      const readyAgain = once(redis, 'reconnecting').then(() => once(redis, 'ready'));
      expect(await admin.redis.client('KILL', 'ID', String(id))).toBe(1);
      await within(readyAgain, 'ioredis to reconnect and be ready again');
      expect(await redis.client('ID')).not.toBe(id);
      expect(await redis.ping()).toBe('PONG');
      expect(made).toHaveLength(2);
      expect(made[0].destroyed).toBe(true);
      await quit(redis, made);
      await quit(admin.redis, admin.made);
    });
  });

  describe.skipIf(SKIP_POSTGRES)('pg with a stream of this implementation, against PostgreSQL', () => {
    const port = runDuring(POSTGRES);

    /** A connected pg.Client on an unconnected Socket of this implementation (pg calls its connect). */
    const client = async () => {
      const made: nodeNet.Socket[] = [];
      const db = new pg.Client({
        host: '127.0.0.1',
        port: port(),
        user: POSTGRES_USER,
        database: 'postgres',
        keepAlive: true, // pg calls setKeepAlive on the connected stream
        stream: () => {
          const socket = new net.Socket({ backend } as nodeNet.SocketConstructorOpts);
          made.push(socket);
          return socket;
        },
      });
      await within(db.connect(), 'pg to connect');
      return { db, made };
    };

    it('runs parameterized and concurrent queries and a 4 MiB bytea byte for byte', async () => {
      const { db, made } = await client();
      expect((await db.query('SELECT $1::text || $2::text AS s', ['hello ', 'ünïcødé'])).rows).toEqual([{ s: 'hello ünïcødé' }]);
      const blob = randomBytes(4 << 20);
      const { rows } = await db.query<{ b: Buffer; n: number }>('SELECT $1::bytea AS b, length($1::bytea) AS n', [blob]);
      expect(rows[0].n).toBe(blob.length);
      expect(sha(rows[0].b)).toBe(sha(blob));
      const sums = await Promise.all(Array.from({ length: 200 }, (_v, i) => db.query<{ n: number }>('SELECT $1::int + 1 AS n', [i])));
      expect(sums.map((r) => r.rows[0].n)).toEqual(Array.from({ length: 200 }, (_v, i) => i + 1));
      const series = await db.query<{ g: number }>('SELECT g FROM generate_series(1, 100000) g');
      expect(series.rows.length).toBe(100_000);
      expect(series.rows[99_999].g).toBe(100_000);
      await expect(db.query('SELEKT 1')).rejects.toMatchObject({ code: '42601' });
      expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      expect(made).toHaveLength(1);
      expect(made[0]).toBeInstanceOf(net.Socket);
      await within(db.end(), 'pg to end');
      expect(made[0].destroyed).toBe(true);
    });

    it('reports a backend terminated by the server as an error, then ends', async () => {
      const victim = await client();
      const admin = await client();
      const pid = (await victim.db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const errors: (Error & { code?: string })[] = [];
      victim.db.on('error', (err) => errors.push(err));
      // (events.once would reject on the first 'error')
      const ended = new Promise((resolve) => victim.db.once('end', resolve));
      expect((await admin.db.query('SELECT pg_terminate_backend($1) AS ok', [pid])).rows).toEqual([{ ok: true }]);
      await within(ended, 'the client to end');
      // The server's FATAL, then the stream's end while pg was not ending it.
      expect(errors.map((e) => e.code ?? e.message)).toEqual(['57P01', 'Connection terminated unexpectedly']);
      await waitFor(() => victim.made[0].destroyed, 'the socket to close');
      await within(admin.db.end(), 'pg to end');
    });
  });
});
