// The drop-in layer against hostile peers and churn: resets with bytes
// still queued, sockets destroyed and reused within one tick. Every fd is
// released and no connection's bytes or events reach another. On every
// backend; where node:net behaves the same, it runs the same case.
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import * as muxnet from '../../src/net';
import { BACKENDS, sink, sleep, socketFds, waitFor } from '../helpers';

/** Makes the backend's reactor (its own wake-up fds count as sockets on some backends) before fds are counted. */
async function warm(backend: string): Promise<void> {
  const server = muxnet.createServer({ backend } as muxnet.ServerOptions);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  await new Promise((resolve) => server.close(resolve));
}

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
