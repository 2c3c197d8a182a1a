// Moving a connection between reactors by ticket (muxnet/fast transfer/adopt):
// what the workers' acceptor does, here between two backends of one thread.
import { describe, expect, it } from 'vitest';
import { adopt, connect as fastConnect, discardTransfer, listen, type Connection } from '../../src/fast';
import { closeSocket, netConnect, roundTrip, waitFor } from '../helpers';

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
});
