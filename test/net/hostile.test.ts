// The drop-in layer against hostile peers and churn: resets with bytes
// still queued, sockets destroyed and reused within one tick. Every fd is
// released and no connection's bytes or events reach another. On every
// backend; where node:net behaves the same, it runs the same case.
import { once } from 'node:events';
import nodeNet from 'node:net';
import { describe, expect, it } from 'vitest';
import * as muxnet from '../../src/net';
import { BACKENDS, sleep, socketFds, waitFor } from '../helpers';

/** Makes the backend's reactor (its own wake-up fds count as sockets on some backends) before fds are counted. */
async function warm(backend: string): Promise<void> {
  const server = muxnet.createServer({ backend } as muxnet.ServerOptions);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  await new Promise((resolve) => server.close(resolve));
}

/** A node:net server that records, per connection, what it got. */
async function recorder() {
  const conns: { got: Buffer[] }[] = [];
  const sockets: nodeNet.Socket[] = [];
  const server = nodeNet.createServer((s) => {
    const conn = { got: [] as Buffer[] };
    conns.push(conn);
    sockets.push(s);
    s.on('data', (d) => conn.got.push(d));
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  return { conns, port: (server.address() as nodeNet.AddressInfo).port, close };
}

describe.each(BACKENDS)('drop-in against hostile peers on %s', (backend) => {
  it.each(['127.0.0.1', 'localhost'])('destroy() then connect() again in one tick (host %s): only the second connection is made, no fd is left', async (host) => {
    await warm(backend);
    const before = socketFds();
    const first = await recorder();
    const second = await recorder();
    const socket = new muxnet.Socket({ backend });
    const errors: string[] = [];
    socket.on('error', (err) => errors.push(err.message));
    socket.connect(first.port, host);
    socket.destroy();
    socket.connect(second.port, host);
    await once(socket, 'connect');
    socket.end('to the second');
    await waitFor(() => second.conns.length === 1 && Buffer.concat(second.conns[0].got).toString() === 'to the second', "the second server's bytes");
    // The abandoned connect's address is never dialled: no connection there to leak.
    await sleep(100);
    expect(first.conns).toEqual([]);
    socket.destroy();
    await first.close();
    await second.close();
    await waitFor(() => socketFds() === before, `socket fds back to ${before} (now ${socketFds()})`);
    expect(errors).toEqual([]);
  });
});
