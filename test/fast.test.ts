// The fast API over real loopback sockets, once per backend.
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { connect, listen, type Connection } from '../src/fast';
import { BACKENDS, closeSocket, netConnect, roundTrip, waitFor } from './helpers';

/** An echo server that records what it saw. */
function echoServer(backend: string, extra: { allowHalfOpen?: boolean; host?: string } = {}) {
  const seen = { opened: 0, closed: 0, ended: 0, errors: [] as (Error | undefined)[] };
  const server = listen(
    { port: 0, backend: backend as never, ...extra },
    {
      onOpen() {
        seen.opened++;
      },
      onData(conn, chunk) {
        if (!conn.write(chunk)) conn.pause();
      },
      onDrain(conn) {
        conn.resume();
      },
      onEnd() {
        seen.ended++;
      },
      onClose(_conn, err) {
        seen.closed++;
        seen.errors.push(err);
      },
    },
  );
  return { server, seen };
}

describe.each(BACKENDS)('fast API on %s', (backend) => {
  it('echoes to node:net clients, many at once, byte for byte', async () => {
    const { server, seen } = echoServer(backend);
    const clients = await Promise.all(Array.from({ length: 50 }, () => netConnect(server.port)));
    await Promise.all(
      clients.map(async (sock, i) => {
        for (let round = 0; round < 5; round++) {
          const msg = Buffer.from(`client ${i} round ${round} `.repeat(1 + ((i + round) % 7)));
          expect((await roundTrip(sock, msg)).equals(msg)).toBe(true);
        }
      }),
    );
    expect(seen.opened).toBe(50);
    expect(server.connections).toBe(50);
    await Promise.all(clients.map(closeSocket));
    await waitFor(() => seen.closed === 50, 'all server connections to close');
    expect(seen.ended).toBe(50);
    expect(seen.errors.every((e) => e === undefined)).toBe(true);
    expect(server.connections).toBe(0);
    server.close();
  });

  it('moves 8 MiB each way with backpressure, verified by hash', async () => {
    const { server } = echoServer(backend);
    const payload = randomBytes(8 << 20);
    const sock = await netConnect(server.port);
    const back = await roundTrip(sock, payload, 20_000);
    expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
    await closeSocket(sock);
    server.close();
  });

  it('connects as a client: onOpen, data both ways, orderly close', async () => {
    const received: Buffer[] = [];
    const nodeServer = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', r));
    const port = (nodeServer.address() as net.AddressInfo).port;
    const events: string[] = [];
    const done = new Promise<Error | undefined>((resolve) => {
      connect(
        { port, backend: backend as never },
        {
          onOpen(conn) {
            events.push('open');
            expect(conn.remotePort).toBe(port);
            expect(conn.remoteAddress).toBe('127.0.0.1');
            conn.write('ping');
          },
          onData(conn, chunk) {
            received.push(Buffer.from(chunk));
            if (Buffer.concat(received).toString() === 'ping') conn.end();
          },
          onEnd() {
            events.push('end');
          },
          onClose(_conn, err) {
            events.push('close');
            resolve(err);
          },
        },
      );
    });
    expect(await done).toBeUndefined();
    expect(Buffer.concat(received).toString()).toBe('ping');
    expect(events).toEqual(['open', 'end', 'close']);
    nodeServer.close();
  });

  it('reports ECONNREFUSED like node:net', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const err = await new Promise<Error | undefined>((resolve) => {
      connect({ port, backend: backend as never }, { onOpen: () => resolve(new Error('connected?')), onClose: (_c, e) => resolve(e) });
    });
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect', address: '127.0.0.1', port, errno: -constants.errno.ECONNREFUSED });
    expect(err!.message).toContain(`connect ECONNREFUSED`);
    expect(err!.message).toContain(`127.0.0.1:${port}`);
  });

  it('supports half-open connections when asked', async () => {
    let serverConn: Connection | undefined;
    const server = listen(
      { port: 0, backend: backend as never, allowHalfOpen: true },
      {
        onOpen(conn) {
          serverConn = conn;
        },
        onEnd(conn) {
          // The peer is done sending; we can still answer.
          expect(conn.writable).toBe(true);
          conn.write('late reply');
          conn.end();
          expect(conn.writable).toBe(false);
          expect(() => conn.write('too late')).toThrow(expect.objectContaining({ code: 'ERR_STREAM_WRITE_AFTER_END' }));
        },
      },
    );
    const sock = await netConnect(server.port);
    const chunks: Buffer[] = [];
    sock.on('data', (c) => chunks.push(c));
    const closed = new Promise((r) => sock.on('close', r));
    sock.end();
    await closed;
    expect(Buffer.concat(chunks).toString()).toBe('late reply');
    await waitFor(() => serverConn!.closed, 'server side to close');
    server.close();
  });

  it('pause() stops reading and resume() delivers what arrived meanwhile', async () => {
    const got: string[] = [];
    let conn: Connection | undefined;
    const server = listen(
      { port: 0, backend: backend as never },
      {
        onOpen(c) {
          conn = c;
          c.pause();
        },
        onData(_c, chunk) {
          got.push(chunk.toString());
        },
      },
    );
    const sock = await netConnect(server.port);
    await waitFor(() => conn !== undefined, 'accept');
    sock.write('while paused');
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([]);
    conn!.resume();
    await waitFor(() => got.join('') === 'while paused', 'data after resume');
    sock.destroy();
    server.close();
  });

  it('listens on IPv6 loopback', async () => {
    const { server } = echoServer(backend, { host: '::1' });
    expect(server.address()).toMatchObject({ address: '::1', family: 'IPv6' });
    const sock = await netConnect(server.port, '::1');
    expect((await roundTrip(sock, Buffer.from('v6'))).toString()).toBe('v6');
    await closeSocket(sock);
    server.close();
  });
});
