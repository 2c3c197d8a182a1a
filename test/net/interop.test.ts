// Real clients and servers over the drop-in layer: Node's own http and http2 on
// muxnet sockets, and big transfers between node:net and muxnet.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import nodeNet from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import * as muxnet from '../../src/net';

/** GET through `agent`: the body, and the socket that carried it. */
function httpGet(port: number, path: string, agent: http.Agent): Promise<{ body: string; socket: unknown }> {
  return new Promise((resolve, reject) => {
    http
      .get({ port, host: '127.0.0.1', path, agent }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        const { socket } = res; // detached once the response ends
        res.on('end', () => resolve({ body, socket }));
      })
      .on('error', reject);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function collect(sock: nodeNet.Socket | muxnet.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  return new Promise((resolve, reject) => {
    sock.on('end', () => resolve(Buffer.concat(chunks)));
    sock.on('error', reject);
  });
}

describe('node:http over muxnet', () => {
  it('http.Server answers requests on muxnet sockets, keep-alive included', async () => {
    const app = http.createServer((req, res) => res.end(`you asked for ${req.url}`));
    const server = muxnet.createServer((socket) => app.emit('connection', socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as nodeNet.AddressInfo;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string) => httpGet(port, path, agent);
    const first = await get('/one');
    const second = await get('/two');
    expect(first.body).toBe('you asked for /one');
    expect(second.body).toBe('you asked for /two');
    // Both requests travelled over one kept-alive connection.
    expect(second.socket).toBe(first.socket);
    const connections = await new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
    expect(connections).toBe(1);
    agent.destroy();
    await new Promise((r) => server.close(r));
  });

  it('http.request({ createConnection }) fetches from a node:http server', async () => {
    const app = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => res.end(`echo: ${body}`));
    });
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    const { port } = app.address() as nodeNet.AddressInfo;
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        { port, host: '127.0.0.1', method: 'POST', path: '/', createConnection: muxnet.createConnection as never },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
      req.end('over muxnet');
    });
    expect(body).toBe('echo: over muxnet');
    await new Promise((r) => app.close(r));
  });

  it('a keep-alive http.Agent creating muxnet connections reuses them', async () => {
    const app = http.createServer((req, res) => res.end(`got ${req.url}`));
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    const { port } = app.address() as nodeNet.AddressInfo;
    // The agent hands createConnection `path: null` among its options.
    const agent = Object.assign(new http.Agent({ keepAlive: true, maxSockets: 2 }), { createConnection: muxnet.createConnection });
    const get = (path: string) => httpGet(port, path, agent);
    const results = [await get('/1'), await get('/2'), ...(await Promise.all(['/3', '/4', '/5'].map(get)))];
    expect(results.map((r) => r.body)).toEqual(['got /1', 'got /2', 'got /3', 'got /4', 'got /5']);
    expect(results[1].socket).toBe(results[0].socket);
    for (const { socket } of results) expect(socket).toBeInstanceOf(muxnet.Socket);
    agent.destroy();
    app.closeAllConnections();
    await new Promise((r) => app.close(r));
  });

  it('node:http2 runs over muxnet sockets on both ends (h2c)', async () => {
    const h2 = http2.createServer();
    h2.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(`h2 ${headers[':path']}`);
    });
    const server = muxnet.createServer((socket) => h2.emit('connection', socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as nodeNet.AddressInfo;
    const client = http2.connect(`http://127.0.0.1:${port}`, { createConnection: () => muxnet.connect(port, '127.0.0.1') as unknown as Duplex });
    const fetch = (path: string) =>
      new Promise<string>((resolve, reject) => {
        const req = client.request({ ':path': path });
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (d) => (body += d));
        req.on('end', () => resolve(body));
        req.on('error', reject);
      });
    expect(await Promise.all(['/a', '/b', '/c'].map(fetch))).toEqual(['h2 /a', 'h2 /b', 'h2 /c']);
    client.close();
    h2.close();
    await new Promise((r) => server.close(r));
  });
});

describe('8 MiB transfers between node:net and muxnet, verified by hash', () => {
  const payload = randomBytes(8 << 20);

  it('node:net client → muxnet server → back', async () => {
    const server = muxnet.createServer((s) => s.pipe(s));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = nodeNet.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    const received = collect(client);
    client.end(payload);
    expect(sha(await received)).toBe(sha(payload));
    await new Promise((r) => server.close(r));
  });

  it('muxnet client → node:net server → back', async () => {
    const server = nodeNet.createServer((s) => s.pipe(s));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = muxnet.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    const received = collect(client);
    client.end(payload);
    expect(sha(await received)).toBe(sha(payload));
    await new Promise((r) => server.close(r));
  });
});

// Found by pac-proxy-agent's own suite through the drop-in (2026-12-07): it checks what an agent
// gives with `instanceof net.Socket`, and a TLS socket (node's, extending node:net's) was not one.
describe("node's sockets and servers are instances of the drop-in's classes, as of node:net's", () => {
  it("a TLS socket and node:net's socket are a net.Socket, an http server a net.Server; a subclass takes its own only", () => {
    const tlsSocket = new tls.TLSSocket(undefined as unknown as Duplex);
    const httpServer = http.createServer();
    class Mine extends muxnet.Socket {}
    for (const net of [nodeNet, muxnet as unknown as typeof nodeNet]) {
      expect([tlsSocket instanceof net.Socket, new nodeNet.Socket() instanceof net.Socket, httpServer instanceof net.Server]).toEqual([true, true, true]);
      expect([httpServer instanceof net.Socket, tlsSocket instanceof net.Server]).toEqual([false, false]);
    }
    expect([tlsSocket instanceof Mine, new Mine() instanceof Mine, new Mine() instanceof muxnet.Socket, muxnet.Socket() instanceof muxnet.Socket]).toEqual([false, true, true, true]);
    tlsSocket.destroy();
  });
});

describe("node:net and node:dgram mapped to muxnet for every module, its own included (jest's moduleNameMapper, a bundler's alias)", () => {
  // Found by a hunt (2026-12-07): muxnet's modules got muxnet back for node's and failed to load (a circular require).
  it('it loads, and a TCP echo and a UDP echo answer (test/fixtures/aliased-builtins.js; built dist)', () => {
    const fixture = join(__dirname, '..', 'fixtures', 'aliased-builtins.js');
    const out = execFileSync(process.execPath, [fixture], { encoding: 'utf8', timeout: 20_000 });
    expect(JSON.parse(out)).toEqual({ muxnet: true, tcp: 'tcp', udp: 'udp' });
  });
});

describe('what is not supported says so', () => {
  it.runIf(process.platform !== 'win32')("net.Socket({ fd }) of a FIFO (node:net wraps it as a Pipe) throws ERR_MUXNET_UNSUPPORTED; the fd stays the caller's", () => {
    const dir = mkdtempSync(join(tmpdir(), 'muxnet-fifo-'));
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // Read and write: opening a FIFO so does not wait for the other end.
    const fd = openSync(fifo, 'r+');
    try {
      expect(() => new muxnet.Socket({ fd })).toThrow(expect.objectContaining({ code: 'ERR_MUXNET_UNSUPPORTED' }));
      expect(fstatSync(fd).isFIFO()).toBe(true);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true });
    }
  });
});
