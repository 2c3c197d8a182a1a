// The drop-in layer against hostile peers and churn: resets with bytes
// still queued, sockets destroyed and reused within one tick. Every fd is
// released and no connection's bytes or events reach another. On every
// backend; where node:net behaves the same, it runs the same case.
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import nodeNet from 'node:net';
import * as muxnet from '../../src/net';
import { BACKENDS, netConnect, resetWhileStreaming, sink, sleep, socketFds, waitFor } from '../helpers';

type Net = typeof nodeNet;

/** Makes the backend's reactor (its own wake-up fds count as sockets on some backends) before fds are counted. */
async function warm(backend: string): Promise<void> {
  const server = muxnet.createServer({ backend } as muxnet.ServerOptions);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  await new Promise((resolve) => server.close(resolve));
}

/**
 * A server on `net` writes more than the socket buffers hold to a client
 * that reads none of it, sends FIN, and once the server has seen it, RST:
 * what the server's socket says, in order.
 */
async function finThenReset(net: Net, backend?: string): Promise<string[]> {
  const events: string[] = [];
  const server = net.createServer({ backend } as nodeNet.ServerOpts, (s) => {
    s.on('end', () => events.push('end'));
    s.on('error', (err: NodeJS.ErrnoException) => events.push(`error ${err.code} ${err.syscall}: ${err.message}`));
    s.on('close', (hadError) => events.push(`close ${hadError}`));
    s.write(Buffer.alloc(16 << 20, 1));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = await netConnect((server.address() as nodeNet.AddressInfo).port);
  client.on('error', () => {});
  client.pause();
  client.end();
  await waitFor(() => events.includes('end'), "the server's end");
  client.resetAndDestroy();
  await waitFor(() => events.some((e) => e.startsWith('close')), "the server socket's close");
  await new Promise((resolve) => server.close(resolve));
  return events;
}

describe('a peer that sends FIN, then RST while bytes are queued to it', () => {
  it('node:net: end, then the write error (write EPIPE on Linux), then close(true)', async () => {
    const events = await finThenReset(nodeNet);
    expect(events).toHaveLength(3);
    expect(events[0]).toBe('end');
    expect(events[1]).toMatch(/^error E\w+ write: write E\w+$/);
    expect(events[2]).toBe('close true');
  });

  it.each(BACKENDS)('muxnet on %s: the same events as node:net, the error named by the write that met it', async (backend) => {
    expect(await finThenReset(muxnet as unknown as Net, backend)).toEqual(await finThenReset(nodeNet));
  });
});

const IMPLS: [string, Net, string | undefined][] = [['node:net', nodeNet, undefined], ...BACKENDS.map((b): [string, Net, string] => [`muxnet (${b})`, muxnet as unknown as Net, b])];

describe.each(IMPLS)('%s under churn', (_name, net, backend) => {
  it('thousands of peers reset in one tick while 20 stream 2 MiB each way through an echo: the 20 get their own bytes back, every fd is released', async () => {
    // select takes fds below FD_SETSIZE (1024): both ends of each connection live in this process.
    const leaving = backend === 'select' ? 300 : 2000;
    const errors: string[] = [];
    const open = new Set<nodeNet.Socket>();
    const server = net.createServer({ backend } as nodeNet.ServerOpts, (s) => {
      open.add(s);
      s.on('data', (d) => {
        if (!s.write(d)) s.pause();
      });
      s.on('drain', () => s.resume());
      s.on('error', (err: NodeJS.ErrnoException) => errors.push(err.code!));
      s.on('close', () => open.delete(s));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as nodeNet.AddressInfo).port;
    // The reactor's lazy state (slab, wake-up fds) exists before fds are counted.
    const warm = await netConnect(port);
    warm.destroy();
    await waitFor(() => open.size === 0, 'the warm-up connection to close');
    const before = socketFds();
    const streaming = await resetWhileStreaming(port, leaving, () => open.size);
    expect(errors.every((code) => code === 'ECONNRESET' || code === 'EPIPE')).toBe(true);
    for (const s of streaming) s.end();
    await waitFor(() => open.size === 0, 'the streaming connections to close');
    await new Promise((resolve) => server.close(resolve));
    await waitFor(() => socketFds() === before - 1, `socket fds back to ${before - 1} (now ${socketFds()})`);
  });
});

describe.each(BACKENDS)('drop-in against hostile peers on %s', (backend) => {
  it.each(['127.0.0.1', 'localhost'])('destroy() then connect() again in one tick (host %s): only the second connection is made, no fd is left', async (host) => {
    await warm(backend);
    const before = socketFds();
    const first = await sink();
    const second = await sink();
    const socket = new muxnet.Socket({ backend });
    const errors: string[] = [];
    socket.on('error', (err) => errors.push(err.message));
    socket.connect(first.port, host);
    socket.destroy();
    socket.connect(second.port, host);
    await once(socket, 'connect');
    socket.end('to the second');
    await waitFor(() => second.got.length === 1 && Buffer.concat(second.got[0]).toString() === 'to the second', "the second server's bytes");
    // The abandoned connect's address is never dialled: no connection there to leak.
    await sleep(100);
    expect(first.got).toEqual([]);
    socket.destroy();
    await first.close();
    await second.close();
    await waitFor(() => socketFds() === before, `socket fds back to ${before} (now ${socketFds()})`);
    expect(errors).toEqual([]);
  });
});
