// Moving a connection between reactors by ticket (muxnet/fast transfer/adopt):
// what the workers' acceptor does, here between two backends of one thread.
import { randomBytes } from 'node:crypto';
import nodeNet from 'node:net';
import { describe, expect, it } from 'vitest';
import { adopt, connect as fastConnect, discardTransfer, listen, type Connection } from '../../src/fast';
import { BACKENDS, closeSocket, netConnect, roundTrip, waitFor } from '../helpers';

describe('transfer() and adopt()', () => {
  it('moves an accepted connection to another reactor, which serves it', async () => {
    const moved: Connection[] = [];
    const tickets: number[] = [];
    const server = listen({ port: 0, backend: 'mio' }, {
      onOpen(conn) {
        const ticket = conn.transfer();
        tickets.push(ticket);
        expect(conn.closed).toBe(true);
        expect(() => conn.transfer()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
        moved.push(adopt(ticket, { onData: (c, d) => void c.write(d) }, { backend: 'poll' }));
      },
      onData() {
        throw new Error('the acceptor must not hear of a transferred connection');
      },
    });
    try {
      const sock = await netConnect(server.port);
      await waitFor(() => moved.length === 1, 'the transfer');
      expect(server.connections).toBe(0);
      expect(moved[0].reactor.backend).toBe('poll');
      expect(moved[0].remotePort).toBe(sock.localPort);
      expect(String(await roundTrip(sock, Buffer.from('over here')))).toBe('over here');
      expect(() => adopt(tickets[0], {})).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'adopt' }));
      expect(() => adopt(0, {})).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
      await closeSocket(sock);
      await waitFor(() => moved[0].closed, 'the adopted connection closed');
    } finally {
      server.close();
    }
  });

  it('discards a ticket nobody adopts (the peer sees the close), and moves only idle connections', async () => {
    let ticket = 0;
    const server = listen({ port: 0 }, {
      onOpen(conn) {
        ticket = conn.transfer();
      },
    });
    try {
      const sock = await netConnect(server.port);
      await waitFor(() => ticket > 0, 'the transfer');
      const closed = new Promise((r) => sock.on('close', r));
      expect(discardTransfer(ticket)).toBe(true);
      expect(discardTransfer(ticket)).toBe(false);
      await closed;

      // Still connecting: not idle.
      const outgoing = fastConnect({ port: server.port }, {});
      expect(() => outgoing.transfer()).toThrow(expect.objectContaining({ syscall: 'transfer' }));
      outgoing.destroy();
    } finally {
      server.close();
    }
  });

  it.each(BACKENDS)('on %s, a transfer from onData with more of its bytes still in the batch throws EBUSY (they were lost), else moves it: every echo whole', async (backend) => {
    const other = backend === 'poll' ? 'mio' : 'poll';
    const outcomes: string[] = [];
    const echo = { onData: (c: Connection, d: Buffer) => void c.write(d), onEnd: (c: Connection) => c.end() };
    const server = listen({ port: 0, host: '127.0.0.1', backend }, {
      // Paused while the peer sends, then resumed: that turn reads the socket more than once.
      onOpen(conn) {
        conn.pause();
        setTimeout(() => conn.resume(), 50);
      },
      onData(conn, data) {
        conn.write(data);
        if (conn.data !== undefined) return;
        try {
          const ticket = conn.transfer();
          outcomes.push('moved');
          adopt(ticket, echo, { backend: other });
        } catch (err) {
          expect(err).toMatchObject({ code: 'EBUSY', syscall: 'transfer' });
          conn.data = 'kept';
          outcomes.push('kept');
        }
      },
      onEnd: (conn) => conn.end(),
    });
    try {
      const echoes = Array.from({ length: 6 }, () => new Promise<boolean>((resolve, reject) => {
        const body = randomBytes(1_500_000);
        const got: Buffer[] = [];
        const sock = nodeNet.connect(server.port, '127.0.0.1', () => sock.end(body));
        sock.on('data', (d) => got.push(d));
        sock.on('error', reject);
        sock.on('close', () => resolve(Buffer.concat(got).equals(body)));
      }));
      expect(await Promise.all(echoes)).toEqual(Array(6).fill(true));
      // The case met: some first onData had more of its bytes behind it in the batch.
      expect(outcomes).toContain('kept');
    } finally {
      server.close();
    }
  });
});
