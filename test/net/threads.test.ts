// Node 24.22 moves node:net's servers and sockets to worker threads
// (`port.postMessage(message, [server])`); muxnet's move too (src/threads.ts):
// a listening server and an accepted connection moved to a worker that
// serves them, each client answered with its own bytes only; what cannot
// move refused with node:net's error, the same cases as node:net refuses,
// and still working here; a post that fails moves nothing and leaks nothing.
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, expectSocketFdsBack, pattern, roundTrip, socketFds, waitFor } from '../helpers';
import * as muxnet from '../../src/net';

type Net = typeof muxnet;
const NODE_MOVES = Object.getOwnPropertySymbols(net.Server.prototype).some((s) => s.description === 'messaging_transfer_symbol');

/** The code of what `fn` throws (or 'moved'). */
function thrown(fn: () => unknown): string {
  try {
    fn();
    return 'moved';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

/** What `impl` refuses to move, and whether each refused object still works. */
async function refusals(impl: Net, backend: string): Promise<Record<string, unknown>> {
  const { port1, port2 } = new MessageChannel();
  const report: Record<string, unknown> = {};
  const fresh = impl.createServer({ backend } as muxnet.ServerOptions);
  report.notListening = thrown(() => port1.postMessage(null, [fresh as never]));
  const unix = impl.createServer({ backend } as muxnet.ServerOptions, (c) => c.end('unix'));
  unix.listen(path.join(os.tmpdir(), `muxnet-threads-${process.pid}-${backend}-${impl === muxnet}`));
  await once(unix, 'listening');
  report.unixServer = thrown(() => port1.postMessage(null, [unix as never]));
  const answer = await new Promise<string>((resolve) => {
    let got = '';
    net.connect(unix.address() as string).setEncoding('utf8').on('data', (d) => (got += d)).on('end', () => resolve(got));
  });
  report.unixStillServes = answer === 'unix';
  unix.close();

  // Connections: one read from, one written to, one still connecting.
  const server = impl.createServer({ backend } as muxnet.ServerOptions);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accept = async () => {
    const accepted = once(server, 'connection');
    const client = net.connect(port, '127.0.0.1');
    const [conn] = (await accepted) as muxnet.Socket[];
    return { client, conn };
  };
  const read = await accept();
  read.client.write('hello');
  await once(read.conn, 'data');
  report.readFrom = thrown(() => port1.postMessage(null, [read.conn as never]));
  const written = await accept();
  written.conn.write('to the client');
  await once(written.client, 'data');
  report.writtenTo = thrown(() => port1.postMessage(null, [written.conn as never]));
  read.conn.pipe(read.conn);
  report.stillWorks = (await roundTrip(read.client, Buffer.from('after'))).toString() === 'after';
  const connecting = impl.connect({ port, host: '127.0.0.1', backend } as never);
  report.connecting = thrown(() => port1.postMessage(null, [connecting as never]));
  await once(connecting, 'connect');
  for (const s of [connecting, read.client, read.conn, written.client, written.conn]) s.destroy();
  server.close();
  port1.close();
  port2.close();
  return report;
}

describe.skipIf(NODE_MOVES)('before Node 24.22', () => {
  it('node refuses to move a muxnet server as it refuses a node:net one', async () => {
    const { port1, port2 } = new MessageChannel();
    const refusal = async (server: net.Server | muxnet.Server) => {
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      let err: unknown;
      try {
        port1.postMessage(null, [server as never]);
      } catch (e) {
        err = e;
      }
      server.close();
      return [(err as Error).name, (err as NodeJS.ErrnoException).code];
    };
    expect(await refusal(muxnet.createServer())).toEqual(await refusal(net.createServer()));
    port1.close();
    port2.close();
  });
});

const SIZE_MOVED = 1 << 20;

/**
 * Three rounds of a worker (muxnet's built dist) moving an accepted
 * connection (`socket`: its client sends 1 MiB) or its listening server
 * (`server`: 40 clients connect meanwhile, each answered by whoever accepts
 * it) to this thread, which terminates the worker as soon as it arrives. The
 * worker is slowed for 20 ms after node's post returns, as a thread the OS
 * set aside there: bytes read here, connections answered here or by the
 * worker before the move, none closed unanswered.
 */
async function movedOutOfWorker(backend: string, what: 'socket' | 'server'): Promise<{ bytes: number } | { answered: number }> {
  let bytes = 0;
  let answered = 0;
  for (let round = 0; round < 3; round++) {
    const worker = new Worker(
      `const { parentPort, MessagePort } = require('node:worker_threads');
       // Before muxnet wraps it.
       const post = MessagePort.prototype.postMessage;
       MessagePort.prototype.postMessage = function (...args) {
         const r = post.apply(this, args);
         if (args[1]) for (const until = Date.now() + 20; Date.now() < until; );
         return r;
       };
       const server = require(${JSON.stringify(path.resolve(__dirname, '../../dist/net/index.js'))}).createServer({ backend: ${JSON.stringify(backend)} }, (c) =>
         ${what === 'socket' ? 'parentPort.postMessage({ moved: c }, [c])' : "c.end('worker')"});
       server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
       parentPort.once('message', () => parentPort.postMessage({ moved: server }, [server]));`,
      { eval: true },
    );
    const [port] = (await once(worker, 'message')) as [number];
    const arrived = once(worker, 'message').then(([{ moved }]) => {
      void worker.terminate();
      return moved as net.Socket | net.Server;
    });
    if (what === 'socket') {
      const client = net.connect(port, '127.0.0.1', () => client.end(Buffer.alloc(SIZE_MOVED, round)));
      client.on('error', () => undefined);
      const conn = (await arrived) as net.Socket;
      conn.on('data', (d: Buffer) => (bytes += d.length));
      await Promise.race([once(conn, 'end'), new Promise((resolve) => setTimeout(resolve, 5000))]);
      conn.destroy();
      client.destroy();
    } else {
      void arrived.then((server) => (server as net.Server).on('connection', (c) => c.end('main')));
      worker.postMessage('move');
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          new Promise<void>((resolve) => setTimeout(resolve, i)).then(
            () =>
              new Promise<string>((resolve) => {
                let got = '';
                const c = net.connect(port, '127.0.0.1');
                c.setEncoding('utf8').on('data', (d) => (got += d));
                c.on('error', () => undefined);
                const hung = setTimeout(() => c.destroy(), 5000);
                c.on('close', () => (clearTimeout(hung), resolve(got)));
              }),
          ),
        ),
      );
      // Which of the two answered one that came during the move is a race: that one did counts.
      answered += answers.filter((a) => a === 'main' || a === 'worker').length;
      ((await arrived) as net.Server).close();
    }
    await worker.terminate();
  }
  return what === 'socket' ? { bytes } : { answered };
}

describe.runIf(NODE_MOVES)('servers and sockets moved to worker threads (Node 24.22)', () => {
  let worker: Worker;
  let reference: Record<string, unknown>;

  beforeAll(() => {
    // Serves what it is given, with node:net's objects (as a node:net sender's would be).
    worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       const held = [];
       parentPort.on('message', ({ servers, map, set, boxed, err, socket, close }) => {
         if (err) parentPort.postMessage({ err: err instanceof Error && err.message });
         for (const server of [...(servers ?? []), ...(map?.values() ?? []), ...(set ?? []), ...(boxed ? [boxed.server] : [])]) {
           held.push(server.on('connection', (c) => c.pipe(c)));
           parentPort.postMessage({ listening: server.address().port });
         }
         if (socket) socket.pipe(socket);
         if (close) for (const server of held.splice(0)) server.close(() => parentPort.postMessage({ closed: true }));
       });`,
      { eval: true },
    );
  });
  afterAll(() => worker.terminate());

  it('node:net: what the muxnet runs are held to', async () => {
    const before = socketFds();
    reference = await refusals(net as unknown as Net, 'mio');
    const refused = 'ERR_WORKER_HANDLE_NOT_TRANSFERABLE';
    expect(reference).toEqual({ notListening: refused, unixServer: refused, unixStillServes: true, readFrom: refused, writtenTo: refused, stillWorks: true, connecting: refused });
    await waitFor(() => socketFds() <= before, 'node:net’s sockets closed');
  }, 20_000);

  for (const backend of BACKENDS) {
    describe(backend, () => {
      expectSocketFdsBack(backend);

      it('refuses what node:net refuses, and what it refused goes on working', async () => {
        expect(await refusals(muxnet, backend)).toEqual(reference);
      }, 20_000);

      it('a listening server moves: the worker accepts on its port, each client gets its own bytes', async () => {
        const server = muxnet.createServer({ backend }, (c) => c.end('not moved'));
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        const { port } = server.address() as net.AddressInfo;
        let closed = false;
        server.on('close', () => (closed = true));
        const listening = once(worker, 'message');
        // In a plain object inside an array, with the options form of the transfer list.
        worker.postMessage({ servers: [server] }, { transfer: [server] } as never);
        expect([server.listening, server.address()]).toEqual([false, null]);
        expect(await listening).toEqual([{ listening: port }]);
        const clients = await Promise.all(
          Array.from({ length: 50 }, async (_, i) => {
            const c = net.connect(port, '127.0.0.1');
            await once(c, 'connect');
            const bytes = pattern(i, 32 * 1024);
            const ok = (await roundTrip(c, bytes)).equals(bytes);
            c.destroy();
            return ok;
          }),
        );
        expect(clients.every(Boolean)).toBe(true);
        const closedThere = once(worker, 'message');
        worker.postMessage({ close: true });
        expect(await closedThere).toEqual([{ closed: true }]);
        // As node:net's: no 'close' until close(), which says the server was not running.
        expect(closed).toBe(false);
        const [err] = await new Promise<unknown[]>((resolve) => server.close((...args) => resolve(args)));
        expect((err as NodeJS.ErrnoException).code).toBe('ERR_SERVER_NOT_RUNNING');
        expect(closed).toBe(true);
      }, 20_000);

      // Found by a hunt (2026-12-05): only arrays and plain objects were looked into (DataCloneError).
      it("servers inside a Map, a Set and a class instance move, as node:net's do", async () => {
        const servers = await Promise.all(
          [0, 1, 2].map(async () => {
            const server = muxnet.createServer({ backend }, (c) => c.end('not moved'));
            server.listen(0, '127.0.0.1');
            await once(server, 'listening');
            return server;
          }),
        );
        const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
        class Box {
          constructor(readonly server: muxnet.Server) {}
        }
        const listening = new Promise<unknown[]>((resolve) => {
          const got: unknown[] = [];
          const take = (m: unknown) => (got.push(m), got.length === 4 && (worker.off('message', take), resolve(got)));
          worker.on('message', take);
        });
        // An Error beside them stays an Error (the clone's), not a plain object of its own properties.
        const err = Object.assign(new Error('boom'), { info: { code: 1 } });
        worker.postMessage({ map: new Map([['a', servers[0]]]), set: new Set([servers[1]]), boxed: new Box(servers[2]), err }, servers as never);
        expect(await listening).toEqual([{ err: 'boom' }, ...ports.map((port) => ({ listening: port }))]);
        for (const port of ports) {
          const c = net.connect(port, '127.0.0.1');
          await once(c, 'connect');
          expect((await roundTrip(c, Buffer.from('moved'))).toString()).toBe('moved');
          c.destroy();
        }
        const closedThere = new Promise<void>((resolve) => {
          let n = 0;
          const take = () => ++n === 3 && (worker.off('message', take), resolve());
          worker.on('message', take);
        });
        worker.postMessage({ close: true });
        await closedThere;
        for (const server of servers) server.close();
      }, 20_000);

      it('an accepted connection moves untouched: the worker echoes 1 MiB, no FIN from here', async () => {
        const server = muxnet.createServer({ backend });
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        const moved = new Promise<muxnet.Socket>((resolve) =>
          server.once('connection', (conn) => {
            worker.postMessage({ socket: conn }, [conn as never]);
            resolve(conn);
          }),
        );
        const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
        await once(client, 'connect');
        const conn = await moved;
        const [hadError] = await once(conn, 'close');
        expect([conn.destroyed, hadError]).toEqual([true, false]);
        expect(await new Promise((resolve) => server.getConnections((_, n) => resolve(n)))).toBe(0);
        const bytes = pattern(99, 1024 * 1024);
        expect((await roundTrip(client, bytes)).equals(bytes)).toBe(true);
        client.end();
        await once(client, 'close');
        server.close();
      }, 20_000);

      // Found by a hunt (2026-12-08): the sender let go only after the post, and a worker
      // terminated in between (its loop's last turn runs no JavaScript) read ~128 KiB of a moved
      // connection and dropped them (9 of 10 rounds), or accepted and closed connections owed to a
      // moved server (2 or 3 of 200).
      it('a worker terminated as soon as what it moved arrives took nothing: every byte and connection reaches the receiver', async () => {
        const rounds = await Promise.all([movedOutOfWorker(backend, 'socket'), movedOutOfWorker(backend, 'server')]);
        expect(rounds).toEqual([{ bytes: 3 * SIZE_MOVED }, { answered: 3 * 40 }]);
      }, 60_000);

      it('a post that fails moves nothing: the server keeps listening, a connection keeps reading, the copies are closed', async () => {
        const server = muxnet.createServer({ backend }, (c) => c.end('still here'));
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        const before = socketFds();
        const { port1, port2 } = new MessageChannel();
        // A function cannot be cloned: node throws after the copy was made.
        expect(() => port1.postMessage({ server, f: () => 0 }, [server as never])).toThrow(expect.objectContaining({ name: 'DataCloneError' }));
        port1.close();
        port2.close();
        expect(server.listening).toBe(true);
        await waitFor(() => socketFds() <= before, 'the copy closed');
        const answer = await new Promise<string>((resolve) => {
          let got = '';
          net.connect((server.address() as net.AddressInfo).port, '127.0.0.1').setEncoding('utf8').on('data', (d) => (got += d)).on('end', () => resolve(got));
        });
        expect(answer).toBe('still here');
        server.close();
        // An accepted connection too, flowing before a byte came (its stream asks nothing more): it
        // reads here again, as it did before the copy.
        const failed: unknown[] = [];
        const echo = muxnet.createServer({ backend }, (conn) => {
          conn.on('data', (d) => conn.write(d));
          setImmediate(() => {
            const channel = new MessageChannel();
            try {
              channel.port1.postMessage({ conn, f: () => 0 }, [conn as never]);
            } catch (err) {
              failed.push((err as Error).name);
            }
            channel.port1.close();
            channel.port2.close();
          });
        });
        echo.listen(0, '127.0.0.1');
        await once(echo, 'listening');
        const client = net.connect((echo.address() as net.AddressInfo).port, '127.0.0.1');
        await once(client, 'connect');
        await waitFor(() => failed.length > 0, 'the post tried');
        const bytes = pattern(7, 256 * 1024);
        expect((await roundTrip(client, bytes)).equals(bytes)).toBe(true);
        expect(failed).toEqual(['DataCloneError']);
        client.destroy();
        echo.close();
      }, 20_000);
    });
  }
});
