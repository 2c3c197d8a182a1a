// A connection's bytes, events and calls never reach another connection,
// even when a socket closes and a new one takes its slot within one batch
// of events; an accept whose listener closed earlier in the batch is
// closed, not orphaned. Through the fast API and the drop-in layer, on
// every backend.
import { once } from 'node:events';
import nodeNet from 'node:net';
import { describe, expect, it } from 'vitest';
import { connect, listen, type Connection } from '../src/fast';
import * as muxnet from '../src/net';
import { BACKENDS, netConnect, sleep, socketFds, waitFor } from './helpers';

/** A node:net server that records, per connection, every byte it got. */
async function sink() {
  const got: Buffer[][] = [];
  const sockets: nodeNet.Socket[] = [];
  const server = nodeNet.createServer((s) => {
    const mine: Buffer[] = [];
    got.push(mine);
    sockets.push(s);
    s.on('data', (d) => mine.push(d));
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  return { got, port: (server.address() as nodeNet.AddressInfo).port, close };
}

/** Collects what a node:net client receives. */
function received(sock: nodeNet.Socket): Buffer[] {
  const chunks: Buffer[] = [];
  sock.on('data', (d) => chunks.push(d));
  sock.on('error', () => {});
  return chunks;
}

describe.each(BACKENDS)('identity on %s', (backend) => {
  it('fast API: a write to a peer reset in the same turn fails with ECONNRESET and reaches nobody else', async () => {
    // W and X on one listener; Y arrives on a second listener, made after
    // X, so the turn that reports X's reset can accept Y into X's slot.
    const closes: (string | undefined)[] = [];
    const conns: Connection[] = [];
    let x: Connection | undefined;
    const first = listen(
      { port: 0, host: '127.0.0.1', backend },
      {
        onOpen: (c) => void conns.push(c),
        // W's data: write to X, whose reset is further down this batch.
        onData: (c, chunk) => {
          if (c !== x && x && !x.closed) x.write(`for X, after ${chunk}`);
        },
        onClose: (c, err) => {
          if (c === x) closes.push((err as NodeJS.ErrnoException | undefined)?.code);
        },
      },
    );
    const yEvents: string[] = [];
    const second = listen(
      { port: 0, host: '127.0.0.1', backend },
      { onOpen: () => void yEvents.push('open'), onData: (_c, d) => void yEvents.push(`data ${d}`) },
    );
    const w = await netConnect(first.port);
    const xPeer = await netConnect(first.port);
    xPeer.on('error', () => {});
    await waitFor(() => conns.length === 2, 'two accepts');
    x = conns[1];

    xPeer.resetAndDestroy();
    const yPeer = nodeNet.connect(second.port, '127.0.0.1');
    const yGot = received(yPeer);
    w.write('w');
    await waitFor(() => closes.length === 1 && yEvents.includes('open'), "X's close and Y's accept");
    await sleep(100);
    expect(closes).toEqual(['ECONNRESET']);
    expect(yGot).toEqual([]);
    expect(yEvents).toEqual(['open']);
    for (const s of [w, yPeer]) s.destroy();
    first.close();
    second.close();
    await waitFor(() => first.connections === 0 && second.connections === 0, 'the server side to close');
  });

  it('fast API: destroy B and connect in one batch; the new connection gets none of B\'s bytes or events', async () => {
    const target = await sink();
    const events: string[] = [];
    const conns: Connection[] = [];
    let replaced: Connection | undefined;
    const server = listen(
      { port: 0, host: '127.0.0.1', backend },
      {
        onOpen: (c) => void conns.push(c),
        onData: (c, chunk) => {
          events.push(`server ${chunk}`);
          const b = conns[1];
          if (c === conns[0] && !replaced) {
            b.destroy();
            // Takes B's slot if anything does; B's data record follows in this batch.
            replaced = connect({ port: target.port, host: '127.0.0.1', backend }, {
              onOpen: (n) => events.push(`new open ${n === b}`),
              onData: (_n, d) => events.push(`new data ${d}`),
              onClose: (_n, err) => events.push(`new close ${err}`),
            });
          }
        },
        onClose: (c) => events.push(`closed ${conns.indexOf(c)}`),
      },
    );
    const a = await netConnect(server.port);
    const b = await netConnect(server.port);
    b.on('error', () => {});
    await waitFor(() => conns.length === 2, 'two accepts');
    a.write('A');
    b.write('B');
    await waitFor(() => events.includes('new open false'), 'the new connection');
    await sleep(100);
    expect(events.filter((e) => e.startsWith('new'))).toEqual(['new open false']);
    expect(events.filter((e) => e === 'closed 1')).toHaveLength(1);
    expect(events).not.toContain('server B');
    replaced!.destroy();
    a.destroy();
    b.destroy();
    server.close();
    await target.close();
    await waitFor(() => server.connections === 0, 'the server side to close');
  });

  it('drop-in: destroy B and connect in one batch; calls on B never reach the new socket', async () => {
    const target = await sink();
    const sockets: muxnet.Socket[] = [];
    const newGot: string[] = [];
    let fresh: muxnet.Socket | undefined;
    const server = muxnet.createServer({ backend }, (s) => {
      sockets.push(s);
      s.on('error', () => {});
      s.on('data', (chunk) => {
        const b = sockets[1];
        if (s === sockets[0] && !fresh) {
          b.destroy();
          fresh = muxnet.connect({ port: target.port, host: '127.0.0.1', backend });
          fresh.on('data', (d) => newGot.push(String(d)));
          // Calls on the destroyed socket are no-ops, whatever took its slot.
          b.setNoDelay(true);
          b.setKeepAlive(true);
          b.pause();
          b.resume();
          b.write('from B after destroy', () => {});
        } else if (s === sockets[1]) {
          newGot.push(`B's data reached B's listener after destroy: ${chunk}`);
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as nodeNet.AddressInfo).port;
    const a = await netConnect(port);
    const b = await netConnect(port);
    const bGot = received(b);
    await waitFor(() => sockets.length === 2, 'two accepts');
    a.write('A');
    b.write('B');
    await waitFor(() => fresh !== undefined && !fresh.connecting, 'the new socket to connect');
    fresh!.write('fresh');
    await waitFor(() => target.got.length === 1 && Buffer.concat(target.got[0]).length === 5, "the new socket's own bytes");
    await sleep(100);
    expect(Buffer.concat(target.got[0]).toString()).toBe('fresh');
    expect(newGot).toEqual([]);
    expect(Buffer.concat(bGot).toString()).toBe('');
    fresh!.destroy();
    a.destroy();
    b.destroy();
    await target.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('closing a listener while the batch holds more of its accepts closes them, leaking no fd', async () => {
    let opened = 0;
    const server = listen(
      { port: 0, host: '127.0.0.1', backend },
      {
        onOpen: (c) => {
          opened++;
          server.close();
          c.destroy();
        },
      },
    );
    // The reactor (and its own fds) exists now; the listener is one fd.
    const fdsBefore = socketFds() - 1;
    // Both connect in one tick: both are accepted in one turn.
    const peers = [nodeNet.connect(server.port, '127.0.0.1'), nodeNet.connect(server.port, '127.0.0.1')];
    const ended = peers.map((p) => new Promise<void>((resolve) => {
      p.on('error', () => resolve());
      p.on('close', () => resolve());
      p.resume();
    }));
    await Promise.race([Promise.all(ended), sleep(5000).then(() => { throw new Error('an accepted socket was left open'); })]);
    expect(opened).toBe(1);
    await waitFor(() => socketFds() === fdsBefore, 'every socket fd to be closed');
  });
});
