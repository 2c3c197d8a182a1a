// The fast API and the handler toolkit against hostile peers and churn:
// thousands of peers resetting in one turn beside peers streaming, a peer
// that ends and then resets while bytes are queued to it, peers resetting
// while they wait their turn, a server closed while a crowd connects.
// Survivors get every byte, in order, and only their own; every handler
// finishes once; every fd is released. On every backend.
import { describe, expect, it } from 'vitest';
import nodeNet from 'node:net';
import { listen, type Connection } from '../src/fast';
import { ConnectionHandler, serve } from '../src/server';
import { connect as asyncConnect } from '../src/async';
import { backingBytes, BACKENDS, netClients, netConnect, resetWhileStreaming, socketFds, waitFor } from './helpers';

describe.each(BACKENDS)('fast API under churn on %s', (backend) => {
  it('thousands of peers reset in one turn while 20 stream 2 MiB each way: the 20 get their own bytes back, every fd is released', async () => {
    // select takes fds below FD_SETSIZE (1024): both ends of each connection live in this process.
    const leaving = backend === 'select' ? 300 : 2000;
    const resets: string[] = [];
    const server = listen(
      { port: 0, host: '127.0.0.1', backend },
      {
        onData(conn, chunk) {
          if (!conn.write(chunk)) conn.pause();
        },
        onDrain(conn) {
          conn.resume();
        },
        onClose(_conn, err) {
          if (err) resets.push((err as NodeJS.ErrnoException).code!);
        },
      },
    );
    // The reactor's lazy state (slab, wake-up fds) exists before fds are counted.
    const warm = await netConnect(server.port);
    warm.destroy();
    await waitFor(() => server.connections === 0, 'the warm-up connection to close');
    const before = socketFds();
    const streaming = await resetWhileStreaming(server.port, leaving, () => server.connections);
    expect(resets.every((code) => code === 'ECONNRESET' || code === 'EPIPE')).toBe(true);
    for (const s of streaming) s.end();
    await waitFor(() => server.connections === 0, 'the streaming connections to close');
    await waitFor(() => socketFds() === before, `socket fds back to ${before} (now ${socketFds()})`);
    server.close();
  });

  it('a peer that ends, then resets while bytes are queued to it: onClose says the write met it, the server serves on', async () => {
    const closes: (NodeJS.ErrnoException | undefined)[] = [];
    const ends: Connection[] = [];
    const server = listen(
      { port: 0, host: '127.0.0.1', backend },
      {
        onOpen(conn) {
          // More than the socket buffers hold: the rest is queued in Rust.
          conn.write(Buffer.alloc(16 << 20, 1));
        },
        onEnd(conn) {
          ends.push(conn);
        },
        onClose(_conn, err) {
          closes.push(err as NodeJS.ErrnoException | undefined);
        },
      },
    );
    const hostile = await netConnect(server.port);
    hostile.on('error', () => {});
    hostile.pause();
    hostile.end();
    await waitFor(() => ends.length === 1, 'the end');
    expect(ends[0].bufferedAmount).toBeGreaterThan(0);
    hostile.resetAndDestroy();
    await waitFor(() => closes.length === 1, 'the close');
    expect(closes[0]).toMatchObject({ syscall: 'write' });
    expect(['EPIPE', 'ECONNRESET']).toContain(closes[0]!.code);
    expect(closes[0]!.message).toBe(`write ${closes[0]!.code}`);
    const next = await netConnect(server.port);
    const first = await new Promise<Buffer>((resolve) => next.once('data', resolve));
    expect(first[0]).toBe(1);
    next.destroy();
    await waitFor(() => server.connections === 0, 'the server side to close');
    server.close();
  });
});

describe.each(BACKENDS)('muxnet/async with connections nobody reads on %s', (backend) => {
  it('a byte trickled to each keeps no read slab alive while other traffic fills new ones', async () => {
    const peers: nodeNet.Socket[] = [];
    const trickler = nodeNet.createServer((s) => void peers.push(s));
    const echo = nodeNet.createServer((s) => s.on('data', (d) => s.write(d)));
    for (const server of [trickler, echo]) server.listen(0, '127.0.0.1');
    await Promise.all([trickler, echo].map((server) => new Promise((resolve) => server.once('listening', resolve))));
    const portOf = (server: nodeNet.Server) => (server.address() as nodeNet.AddressInfo).port;
    const idle = await Promise.all(Array.from({ length: 100 }, () => asyncConnect({ port: portOf(trickler), host: '127.0.0.1', backend })));
    // On the same reactor: the echo's megabytes fill read slabs, one after another.
    const traffic = await asyncConnect({ port: portOf(echo), host: '127.0.0.1', backend });
    await waitFor(() => peers.length === 100, 'every peer');
    for (const p of peers) {
      p.write('x');
      await traffic.write(Buffer.alloc(1 << 20, 2));
      for (let got = 0; got < 1 << 20; ) got += (await traffic.read())!.length;
    }
    await waitFor(() => idle.every((c) => c.readableLength === 1), 'each byte held');
    const held = await Promise.all(idle.map((c) => c.read() as Promise<Buffer>));
    expect(held.map(String)).toEqual(Array(100).fill('x'));
    expect(backingBytes(held)).toBeLessThan(1 << 20);
    for (const c of [traffic, ...idle]) c.destroy();
    for (const p of peers) p.destroy();
    await Promise.all([trickler, echo].map((server) => new Promise((resolve) => server.close(resolve))));
  });
});

describe.each(BACKENDS)('muxnet/server under churn on %s', (backend) => {
  it('serial mode: half the peers reset while they wait their turn; handlers never overlap, each finishes once, the others are answered, every fd is released', async () => {
    let running = 0;
    let most = 0;
    let finished = 0;
    class OneLine extends ConnectionHandler {
      async handle() {
        most = Math.max(most, ++running);
        try {
          for await (const line of this.stream.frames('line')) return await this.stream.write(`echo ${line}\n`);
        } finally {
          running--;
        }
      }
      finish() {
        finished++;
      }
    }
    const server = await serve(OneLine, { port: 0, backend, mode: 'serial', onError: () => {} });
    const before = socketFds();
    const peers = await netClients(server.port, 60);
    const got = peers.map(() => '');
    peers.forEach((p, i) => {
      p.on('error', () => {});
      p.on('data', (d) => (got[i] += d));
      p.write(`line ${i}\n`);
    });
    // Reset in one tick, while the first few are served and the rest wait.
    peers.forEach((p, i) => i % 2 === 1 && p.resetAndDestroy());
    await waitFor(() => got.every((g, i) => i % 2 === 1 || g === `echo line ${i}\n`), 'an answer for every peer that stayed', 10_000);
    await waitFor(() => finished === 60, `every handler to finish (${finished})`);
    expect(most).toBe(1);
    // A peer served before its reset got its own answer; none got another's.
    expect(got.every((g, i) => g === '' || g === `echo line ${i}\n`)).toBe(true);
    for (const p of peers) p.destroy();
    await server.close({ timeout: 0 });
    await waitFor(() => socketFds() === before - 1, `socket fds back to ${before - 1} (now ${socketFds()})`);
  });

  it('close({ timeout }) while a crowd connects and every third handler throws: the process lives, close resolves, each started handler finishes once, every fd is released', async () => {
    let started = 0;
    let finished = 0;
    const reported: string[] = [];
    class Picky extends ConnectionHandler {
      async handle() {
        started++;
        for await (const chunk of this.stream) {
          if (String(chunk).startsWith('bad')) throw new Error('a bad message');
          await this.stream.write(chunk);
        }
      }
      finish() {
        finished++;
      }
    }
    const server = await serve(Picky, { port: 0, backend, onError: (err) => reported.push((err as NodeJS.ErrnoException).code ?? err.message) });
    // With the listener (and the reactor's own fds) open.
    const before = socketFds();
    const port = server.port;
    const crowd = backend === 'select' ? 300 : 1000;
    const closed: Promise<void>[] = [];
    for (let i = 0; i < crowd; i++) {
      const c = nodeNet.connect(port, '127.0.0.1');
      c.on('error', () => {});
      c.resume();
      c.write(i % 3 === 0 ? 'bad' : 'good');
      closed.push(new Promise((resolve) => c.on('close', () => resolve())));
      if (i === crowd / 2) await waitFor(() => started > 0, 'a first handler');
    }
    await server.close({ timeout: 200 });
    expect(finished).toBe(started);
    expect(reported.every((r) => r === 'a bad message' || r === 'ERR_MUXNET_SERVER_CLOSED' || r === 'ECONNRESET')).toBe(true);
    await Promise.all(closed);
    await waitFor(() => socketFds() === before - 1, `socket fds back to ${before - 1} (now ${socketFds()})`);
  });
});
