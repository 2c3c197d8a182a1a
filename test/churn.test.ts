// The fast API against hostile peers and churn: thousands of peers
// resetting in one turn beside peers streaming, a peer that ends and then
// resets while bytes are queued to it. Survivors get every byte, in order,
// and only their own; every fd is released. On every backend.
import { describe, expect, it } from 'vitest';
import { listen, type Connection } from '../src/fast';
import { BACKENDS, netConnect, resetWhileStreaming, socketFds, waitFor } from './helpers';

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
    server.close();
  });
});
