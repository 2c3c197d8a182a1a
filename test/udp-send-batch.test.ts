// Datagrams sent from a handler leave together when the batch of events
// ends (one sendmmsg per socket on Linux): every one arrives whole and in
// order, and each send's own result reaches its own callback or error.
import { execFile } from 'node:child_process';
import nodeDgram from 'node:dgram';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { bind, stats } from '../src/fast';
import * as muxnetDgram from '../src/dgram';
import { BACKENDS } from './helpers';

/** More than two sendmmsg batches (64 each), few enough for a default receive buffer. */
const REPLIES = 130;
/** Where the oversized reply goes: inside the second batch. */
const OVERSIZED_AT = 70;
/** Over IPv4's largest UDP payload (65 507 bytes): EMSGSIZE. */
const OVERSIZED = 70_000;

/** Reply `i`: its own length (0 to 99 bytes, empty too) and bytes, so boundaries and order show. */
const reply = (i: number) => Buffer.alloc((i * 37) % 100, `${i}|`);
const expected = () => Array.from({ length: REPLIES }, (_, i) => i).filter((i) => i !== OVERSIZED_AT).map((i) => reply(i).toString('hex'));

function nodeClient(): Promise<nodeDgram.Socket> {
  return new Promise((resolve) => {
    const s = nodeDgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => resolve(s));
  });
}

/** Collects what `client` hears until `count` datagrams came. */
function collect(client: nodeDgram.Socket, count: number): Promise<string[]> {
  const got: string[] = [];
  return new Promise((resolve) => {
    client.on('message', (msg) => {
      got.push(msg.toString('hex'));
      if (got.length === count) resolve(got);
    });
  });
}

describe.each(BACKENDS)('replies sent from a handler, %s', { timeout: 10_000 }, (backend) => {
  it('fast API: all arrive in order with their boundaries; only the oversized one errors, to onSendError', async () => {
    const client = await nodeClient();
    const errors: NodeJS.ErrnoException[] = [];
    const returned: boolean[] = [];
    let callsBefore = 0;
    const server = bind(
      { port: 0, host: '127.0.0.1', backend },
      {
        onMessage(_msg, rinfo, socket) {
          callsBefore = stats(backend).sends.calls;
          for (let i = 0; i < REPLIES; i++) {
            returned.push(socket.send(i === OVERSIZED_AT ? Buffer.alloc(OVERSIZED) : reply(i), rinfo.port, rinfo.address));
          }
          // Nothing left yet: the replies wait for the end of the batch.
          expect(stats(backend).sends.calls).toBe(callsBefore);
        },
        onSendError(err) {
          errors.push(err);
        },
      },
    );
    const heard = collect(client, REPLIES - 1);
    client.send('go', server.address()!.port, '127.0.0.1');
    expect(await heard).toEqual(expected());
    expect(returned).toEqual(Array(REPLIES).fill(true));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'EMSGSIZE', syscall: 'send', address: '127.0.0.1', port: client.address().port });
    if (process.platform === 'linux') {
      // One sendmmsg per 64, plus the one that met the oversized datagram and went on after it.
      expect(stats(backend).sends.calls - callsBefore).toBeLessThanOrEqual(Math.ceil(REPLIES / 64) + 1);
    }
    server.close();
    client.close();
  });

  it('fast API: outside a handler a send leaves at once, and an error is thrown there', async () => {
    const client = await nodeClient();
    const server = bind({ port: 0, host: '127.0.0.1', backend }, {});
    const heard = collect(client, 1);
    const before = stats(backend).sends.calls;
    expect(server.send('now', client.address().port, '127.0.0.1')).toBe(true);
    expect(stats(backend).sends.calls).toBe(before + 1);
    expect(() => server.send(Buffer.alloc(OVERSIZED), client.address().port, '127.0.0.1')).toThrow(expect.objectContaining({ code: 'EMSGSIZE' }));
    expect(await heard).toEqual([Buffer.from('now').toString('hex')]);
    server.close();
    client.close();
  });

  it('fast API: a reply sent and then the socket closed in the same handler still leaves', async () => {
    const client = await nodeClient();
    const server = bind(
      { port: 0, host: '127.0.0.1', backend },
      {
        onMessage(msg, rinfo, socket) {
          socket.send(msg, rinfo.port, rinfo.address);
          socket.close();
        },
      },
    );
    const heard = collect(client, 1);
    client.send('last words', server.address()!.port, '127.0.0.1');
    expect(await heard).toEqual([Buffer.from('last words').toString('hex')]);
    expect(server.address()).toBeNull();
    client.close();
  });

  it('drop-in dgram: each send callback hears its own result, in order, after the batch', async () => {
    const client = await nodeClient();
    const server = muxnetDgram.createSocket({ type: 'udp4', backend });
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
    const results: [number, string | null, number | undefined][] = [];
    let callsBefore = 0;
    server.on('message', (_msg, rinfo) => {
      callsBefore = stats(backend).sends.calls;
      for (let i = 0; i < REPLIES; i++) {
        const data = i === OVERSIZED_AT ? Buffer.alloc(OVERSIZED) : reply(i);
        server.send(data, rinfo.port, rinfo.address, (err, bytes) => results.push([i, err ? (err as NodeJS.ErrnoException).code! : null, bytes]));
      }
    });
    const heard = collect(client, REPLIES - 1);
    client.send('go', server.address().port, '127.0.0.1');
    expect(await heard).toEqual(expected());
    await expect.poll(() => results.length).toBe(REPLIES);
    expect(results).toEqual(Array.from({ length: REPLIES }, (_, i) => (i === OVERSIZED_AT ? [i, 'EMSGSIZE', undefined] : [i, null, reply(i).length])));
    if (process.platform === 'linux') {
      // Batched: far fewer send syscalls than datagrams (one sendmmsg per 64, one more after the oversized one).
      expect(stats(backend).sends.calls - callsBefore).toBeLessThanOrEqual(Math.ceil(REPLIES / 64) + 1);
    }
    server.close();
    client.close();
  });

  it('drop-in dgram: a connected socket that sends and then disconnects in its handler still delivers, as node:dgram does', async () => {
    const peer = await nodeClient();
    const sock = muxnetDgram.createSocket({ type: 'udp4', backend });
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => sock.connect(peer.address().port, '127.0.0.1', () => resolve()));
    const result = new Promise<[string | null, number | undefined]>((resolve) => {
      sock.on('message', () => {
        // Queued (no lookup for a connected send); the disconnect must not strand it without a destination.
        sock.send('bye', (err, bytes) => resolve([err ? (err as NodeJS.ErrnoException).code! : null, bytes]));
        sock.disconnect();
      });
    });
    const heard = collect(peer, 1);
    peer.send('go', sock.address().port, '127.0.0.1');
    expect(await result).toEqual([null, 3]);
    expect(await heard).toEqual([Buffer.from('bye').toString('hex')]);
    sock.close();
    peer.close();
  });

  it('drop-in dgram: the same replies through node:dgram arrive the same (the reference)', async () => {
    const client = await nodeClient();
    const server = nodeDgram.createSocket('udp4');
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
    const codes: (string | null)[] = [];
    server.on('message', (_msg, rinfo) => {
      for (let i = 0; i < REPLIES; i++) {
        server.send(i === OVERSIZED_AT ? Buffer.alloc(OVERSIZED) : reply(i), rinfo.port, rinfo.address, (err) => codes.push(err ? (err as NodeJS.ErrnoException).code! : null));
      }
    });
    const heard = collect(client, REPLIES - 1);
    client.send('go', server.address().port, '127.0.0.1');
    expect(await heard).toEqual(expected());
    await expect.poll(() => codes.length).toBe(REPLIES);
    expect(codes.filter((c) => c !== null)).toEqual(['EMSGSIZE']);
    expect(codes.indexOf('EMSGSIZE')).toBe(OVERSIZED_AT);
    server.close();
    client.close();
  });
});

describe('a queued datagram with no onSendError', () => {
  it('fails as an uncaught error of its own, not from another socket’s close() that sent it', async () => {
    // Its own process: the error must reach 'uncaughtException'. Runs the built package (dist/).
    const program = `
      const { bind } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'fast.js'))});
      const events = [];
      process.on('uncaughtException', (err) => {
        events.push('uncaught ' + err.code + ' ' + err.syscall);
        console.log(JSON.stringify(events));
        process.exit(0);
      });
      const other = bind({ port: 0, host: '127.0.0.1' }, {});
      const server = bind({ port: 0, host: '127.0.0.1' }, {
        onMessage(msg, rinfo, socket) {
          events.push('queued ' + socket.send(Buffer.alloc(70000), rinfo.port, rinfo.address));
          try { other.close(); events.push('closed'); } catch (err) { events.push('close threw ' + err.code); }
          socket.close();
        },
      });
      const client = bind({ port: 0, host: '127.0.0.1' }, {});
      client.send('go', server.address().port, '127.0.0.1');
      setTimeout(() => process.exit(1), 5000).unref();
      client.unref();
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', program], { timeout: 10_000 });
    expect(JSON.parse(stdout)).toEqual(['queued true', 'closed', 'uncaught EMSGSIZE send']);
  });
});
