// Node 24's `net.BoundSocket` adopted by the drop-in: a server listening on
// one (`listen(bound)`, `listen({ handle: bound })`), a client connecting
// from one (`new Socket({ handle: bound })`, `net.connect({ handle })`), over
// TCP and Unix-domain paths, and one moved to a worker thread that listens
// on it with muxnet. Each scenario runs on node:net and on muxnet (each
// backend): the reports must be equal, and the fds all given back.
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS, expectSocketFdsBack, pattern, roundTrip, socketFds, waitFor } from '../helpers';
import * as muxnet from '../../src/net';

type Net = typeof muxnet;
const NodeBound = (net as unknown as { BoundSocket?: Net['BoundSocket'] }).BoundSocket;
const dir = mkdtempSync(path.join(os.tmpdir(), 'muxnet-bound-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The code of what `fn` throws (or 'no throw'). */
function thrown(fn: () => unknown): string {
  try {
    fn();
    return 'no throw';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

/** An echo server of `impl`'s, listening on `bound` by the call `listen` makes. */
async function echoOn(impl: Net, backend: string, listen: (s: muxnet.Server) => void): Promise<muxnet.Server> {
  const server = impl.createServer({ backend } as muxnet.ServerOptions, (c) => c.pipe(c));
  listen(server);
  await once(server, 'listening');
  return server;
}

/** `bytes` sent through a node:net connection to `to` and back. */
async function echoed(to: net.NetConnectOpts, bytes: Buffer): Promise<boolean> {
  const c = net.connect(to);
  await once(c, 'connect');
  const back = await roundTrip(c, bytes);
  c.destroy();
  return back.equals(bytes);
}

async function scenario(impl: Net, backend: string, tag: string): Promise<Record<string, unknown>> {
  const Bound = impl.BoundSocket!;
  const bytes = pattern(7, 256 * 1024);
  const report: Record<string, unknown> = {};

  // A server adopting a TCP BoundSocket: its port reserved at once, the BoundSocket spent.
  const bound = new Bound({ host: '127.0.0.1', port: 0 });
  const { port } = bound.address() as net.AddressInfo;
  const server = await echoOn(impl, backend, (s) => s.listen(bound, 5));
  report.server = {
    port: (server.address() as net.AddressInfo).port === port,
    spent: [thrown(() => bound.address()), thrown(() => bound.fd()), thrown(() => bound.close())],
    again: thrown(() => impl.createServer().listen(bound)),
    echoed: await echoed({ port, host: '127.0.0.1' }, bytes),
  };
  server.close();

  const target = net.createServer((c) => c.pipe(c)).listen(0, '127.0.0.1');
  await once(target, 'listening');
  const targetPort = (target.address() as net.AddressInfo).port;
  const peers: number[] = [];
  target.on('connection', (c) => peers.push(c.remotePort!));

  // A client connecting from one: its address known when connect() returns, and the peer sees it.
  const from = new Bound({ host: '127.0.0.1', port: 0 });
  const fromPort = (from.address() as net.AddressInfo).port;
  const client = new impl.Socket({ handle: from, backend } as muxnet.SocketOptions);
  const spentAtOnce = thrown(() => from.address());
  client.connect({ host: '127.0.0.1', port: targetPort });
  const atOnce = [client.localAddress, client.localPort === fromPort];
  await once(client, 'connect');
  // Echoed: the target has accepted it by then.
  const clientEchoed = (await roundTrip(client as unknown as net.Socket, bytes)).equals(bytes);
  report.client = { spentAtOnce, atOnce, peer: peers.at(-1) === fromPort, echoed: clientEchoed };
  client.destroy();

  // net.connect({ handle }) is the same adoption; localAddress/localPort are refused with one.
  const viaConnect = impl.connect({ handle: new Bound({ host: '127.0.0.1' }), host: '127.0.0.1', port: targetPort, backend } as never);
  await once(viaConnect, 'connect');
  await roundTrip(viaConnect as unknown as net.Socket, Buffer.from('ping'));
  report.viaConnect = viaConnect.localPort === peers.at(-1);
  viaConnect.destroy();
  const refusing = new impl.Socket({ handle: new Bound({ host: '127.0.0.1' }), backend } as muxnet.SocketOptions);
  report.localPortRefused = thrown(() => refusing.connect({ host: '127.0.0.1', port: targetPort, localPort: 0 }));
  refusing.destroy();
  target.close();

  // An IPv4 bind cannot reach an IPv6 peer: 'error' later, never a throw.
  const v4 = new impl.Socket({ handle: new Bound({ host: '127.0.0.1' }), backend } as muxnet.SocketOptions);
  const failed = once(v4, 'error');
  v4.connect({ host: '::1', port: 1 });
  const [mismatch] = (await failed) as NodeJS.ErrnoException[];
  report.familyMismatch = { code: mismatch.code, syscall: mismatch.syscall, local: mismatch.message.includes(' - Local (127.0.0.1:') };

  // Unix-domain: a server on a bound path (the file goes with it), a client from a bound source path.
  const dst = path.join(dir, `${tag}-dst`);
  const src = path.join(dir, `${tag}-src`);
  const unixServer = await echoOn(impl, backend, (s) => s.listen({ handle: new Bound({ path: dst }) }));
  const fromPath = new impl.Socket({ handle: new Bound({ path: src }), backend } as muxnet.SocketOptions);
  fromPath.connect({ path: dst });
  const unixAtOnce = fromPath.localAddress;
  await once(fromPath, 'connect');
  report.unix = {
    address: unixServer.address() === dst,
    atOnce: unixAtOnce === src,
    connected: [fromPath.localAddress === src, JSON.stringify(fromPath.address()) === JSON.stringify({ address: src })],
    echoed: (await roundTrip(fromPath as unknown as net.Socket, bytes)).equals(bytes),
  };
  // A Unix-domain BoundSocket's socket connects to a path only.
  const pathless = new impl.Socket({ handle: new Bound({ path: `${src}2` }), backend } as muxnet.SocketOptions);
  report.needsPath = thrown(() => pathless.connect({ port: 1 }));
  pathless.destroy();
  fromPath.destroy();
  await once(fromPath, 'close');
  unixServer.close();
  await once(unixServer, 'close');
  report.unixFilesAfterClose = [existsSync(dst), existsSync(src), existsSync(`${src}2`)];

  // Adopted, then destroyed before any connect: the socket is let go.
  new impl.Socket({ handle: new Bound({ host: '127.0.0.1' }), backend } as muxnet.SocketOptions).destroy();
  return report;
}

describe('net.BoundSocket', () => {
  it('is node:net’s own class, or undefined as there', () => {
    expect(muxnet.BoundSocket).toBe(NodeBound);
  });
});

describe.runIf(NodeBound !== undefined)('adopting a net.BoundSocket (Node 24)', () => {
  let reference: Record<string, unknown>;

  it('node:net: what the muxnet runs are held to', async () => {
    const before = socketFds();
    reference = await scenario(net as unknown as Net, 'mio', 'node');
    expect(reference.server).toEqual({ port: true, spent: Array(3).fill('ERR_SOCKET_HANDLE_ADOPTED'), again: 'ERR_SOCKET_HANDLE_ADOPTED', echoed: true });
    expect(reference.unixFilesAfterClose).toEqual([false, false, false]);
    expect(reference.needsPath).toBe('ERR_INVALID_ARG_TYPE');
    await waitFor(() => socketFds() <= before, 'node:net’s sockets closed');
  }, 20_000);

  for (const backend of BACKENDS) {
    describe(backend, () => {
      expectSocketFdsBack(backend);

      it('listens and connects from it as node:net does', async () => {
        const got = await scenario(muxnet, backend, backend);
        expect(got).toEqual(reference);
      }, 20_000);

      it('listens in a worker thread on a BoundSocket moved there', async () => {
        const bound = new NodeBound!({ host: '127.0.0.1', port: 0 });
        const { port } = bound.address() as net.AddressInfo;
        const entry = path.join(__dirname, '..', '..', 'dist', 'net', 'index.js');
        const worker = new Worker(
          `const { parentPort } = require('node:worker_threads');
           const net = require(${JSON.stringify(entry)});
           parentPort.once('message', ({ bound }) => {
             const server = net.createServer({ backend: ${JSON.stringify(backend)} }, (c) => { c.end('from the worker'); server.close(); });
             server.listen(bound, () => parentPort.postMessage(server.address().port));
           });`,
          { eval: true },
        );
        worker.postMessage({ bound }, [bound as never]);
        expect(thrown(() => bound.address())).toBe('ERR_SOCKET_HANDLE_ADOPTED');
        const [listening] = await once(worker, 'message');
        expect(listening).toBe(port);
        const c = net.connect(port, '127.0.0.1');
        let answer = '';
        c.setEncoding('utf8').on('data', (d) => (answer += d));
        await once(c, 'end');
        expect(answer).toBe('from the worker');
        c.destroy();
        await worker.terminate();
      }, 20_000);
    });
  }
});
