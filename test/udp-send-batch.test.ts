// Datagrams sent from a handler leave together when the batch of events
// ends (one sendmmsg per socket on Linux): every one arrives whole and in
// order, and each send's own result reaches its own callback or error.
import nodeDgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { bind, stats } from '../src/fast';
import * as muxnetDgram from '../src/dgram';
import { BACKENDS, fixtureJson, sleep } from './helpers';

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
  it('fast API: all arrive in order with their boundaries; only the oversized one fails, thrown at once', async () => {
    const client = await nodeClient();
    const errors: Error[] = [];
    const returned: (boolean | string)[] = [];
    let callsBefore = 0;
    const server = bind(
      { port: 0, host: '127.0.0.1', backend },
      {
        onMessage(_msg, rinfo, socket) {
          callsBefore = stats(backend).sends.calls;
          for (let i = 0; i < REPLIES; i++) {
            try {
              returned.push(socket.send(i === OVERSIZED_AT ? Buffer.alloc(OVERSIZED) : reply(i), rinfo.port, rinfo.address));
            } catch (err) {
              returned.push((err as NodeJS.ErrnoException).code!);
              expect(err).toMatchObject({ syscall: 'send', address: '127.0.0.1', port: rinfo.port });
            }
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
    expect(returned).toEqual(Array.from({ length: REPLIES }, (_, i) => (i === OVERSIZED_AT ? 'EMSGSIZE' : true)));
    // Nothing failed when the batch left.
    expect(errors).toEqual([]);
    if (process.platform === 'linux') {
      // One sendmmsg per 64.
      expect(stats(backend).sends.calls - callsBefore).toBeLessThanOrEqual(Math.ceil((REPLIES - 1) / 64));
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

  // Found 2026-12-06 (a hunt): thrown after the batch, it named no destination (the one thrown
  // at once and the one onSendError gets do).
  it.runIf(process.platform === 'linux')('fast API without onSendError: a reply refused when the batch leaves is thrown naming its destination', async () => {
    expect(await fixtureJson('fast-send-unheard.js', [backend])).toEqual({ code: 'EACCES', syscall: 'send', address: '255.255.255.255', port: 9999 });
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

  it('a connected socket sends at once in a batch too: the peer’s refusal reaches the send that meets it, as in node:dgram', async () => {
    const run = async (dgram: typeof nodeDgram) => {
      const probe = nodeDgram.createSocket('udp4');
      await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
      const closedPort = probe.address().port;
      await new Promise<void>((r) => probe.close(() => r()));
      const trigger = dgram.createSocket('udp4');
      const sender = dgram.createSocket('udp4');
      const log: string[] = [];
      sender.on('error', (err: NodeJS.ErrnoException) => log.push(`error ${err.code}`));
      await new Promise<void>((r) => trigger.bind(0, '127.0.0.1', r));
      await new Promise<void>((r) => sender.connect(closedPort, '127.0.0.1', r));
      const done = new Promise<void>((resolve) => {
        trigger.on('message', () => {
          for (let i = 0; i < 4; i++) sender.send(Buffer.from(`x${i}`), (err: NodeJS.ErrnoException | null) => (log.push(err ? err.code! : 'ok'), log.length === 4 && resolve()));
        });
      });
      const go = nodeDgram.createSocket('udp4');
      go.send('go', trigger.address().port, '127.0.0.1', () => go.close());
      await done;
      await new Promise((r) => setTimeout(r, 50));
      trigger.close();
      sender.close();
      return log;
    };
    const muxnet = await run({ ...muxnetDgram, createSocket: (type: string) => muxnetDgram.createSocket({ type, backend } as never) } as never);
    expect(muxnet).toContain('ECONNREFUSED');
    expect(muxnet).toEqual(await run(nodeDgram));
  });

  it('fast API: an IPv6 address from an IPv4 socket is refused at once in a handler too', async () => {
    const client = await nodeClient();
    const thrown: unknown[] = [];
    const server = bind(
      { port: 0, host: '127.0.0.1', backend },
      {
        onMessage(_msg, rinfo, socket) {
          for (const host of ['::1', '::1']) {
            try {
              socket.send('x', rinfo.port, host);
            } catch (err) {
              thrown.push(err);
            }
          }
          socket.send('ok', rinfo.port, rinfo.address);
        },
      },
    );
    const heard = collect(client, 1);
    client.send('go', server.address()!.port, '127.0.0.1');
    expect(await heard).toEqual([Buffer.from('ok').toString('hex')]);
    expect(thrown).toEqual([
      expect.objectContaining({ code: 'EAFNOSUPPORT', syscall: 'send', address: '::1', port: client.address().port }),
      expect.objectContaining({ code: 'EAFNOSUPPORT', syscall: 'send', address: '::1' }),
    ]);
    server.close();
    client.close();
  });
});

/**
 * A reply to a message's sender names it by its place in the batch (no
 * address text parsed). Senders on three loopback addresses; each asks for
 * some replies at once and some later, after other batches (other senders)
 * came in: every reply must reach the sender that asked for it, whichever
 * batch is current when it leaves.
 */
describe.each(BACKENDS)('replies reach their own sender, %s', { timeout: 10_000 }, (backend) => {
  const SENDERS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
  const ROUNDS = 20;

  /** Each sender asks ROUNDS times, alternately for an immediate and a delayed answer; gives what each heard. */
  async function exchange(serverPort: number, serverHost: string): Promise<Map<string, string[]>> {
    const clients = await Promise.all(
      SENDERS.map(
        (address) =>
          new Promise<nodeDgram.Socket>((resolve) => {
            const s = nodeDgram.createSocket('udp4');
            s.bind(0, address, () => resolve(s));
          }),
      ),
    );
    const heard = new Map<string, string[]>();
    const all = clients.map((client, c) => {
      heard.set(SENDERS[c], []);
      return new Promise<void>((resolve) => {
        client.on('message', (msg) => {
          const got = heard.get(SENDERS[c])!;
          got.push(msg.toString());
          if (got.length === ROUNDS) resolve();
        });
      });
    });
    for (let round = 0; round < ROUNDS; round++) {
      clients.forEach((client, c) => client.send(`${round % 2 ? 'later' : 'now'} ${SENDERS[c]}:${client.address().port} #${round}`, serverPort, serverHost));
      await sleep(2);
    }
    await Promise.race([Promise.all(all), sleep(5_000)]);
    for (const client of clients) client.close();
    return heard;
  }

  /** What each sender should have heard: its own requests back, in any order (delayed ones come later). */
  const answered = (heard: Map<string, string[]>) => new Map([...heard].map(([sender, got]) => [sender, [...got].sort()]));
  const expectedFor = (heard: Map<string, string[]>) =>
    new Map([...heard].map(([sender, got]) => [sender, Array.from({ length: ROUNDS }, (_, r) => `${r % 2 ? 'later' : 'now'} ${sender}:${got[0]?.split(/[: ]/)[2]} #${r}`).sort()]));

  for (const serverHost of ['127.0.0.1', '::']) {
    it(`fast API bound on ${serverHost}`, async () => {
      const server = bind(
        { port: 0, host: serverHost, backend },
        {
          onMessage(msg, rinfo, socket) {
            const text = msg.toString();
            if (text.startsWith('now')) socket.send(text, rinfo.port, rinfo.address);
            else setTimeout(() => socket.send(text, rinfo.port, rinfo.address), 20);
          },
        },
      );
      const heard = await exchange(server.address()!.port, '127.0.0.1');
      server.close();
      expect(answered(heard)).toEqual(expectedFor(heard));
    });

    it(`drop-in dgram bound on ${serverHost}`, async () => {
      const server = muxnetDgram.createSocket({ type: serverHost === '::' ? 'udp6' : 'udp4', backend });
      await new Promise<void>((resolve) => server.bind(0, serverHost, resolve));
      server.on('message', (msg, rinfo) => {
        const text = msg.toString();
        if (text.startsWith('now')) server.send(text, rinfo.port, rinfo.address);
        else setTimeout(() => server.send(text, rinfo.port, rinfo.address), 20);
      });
      const heard = await exchange(server.address().port, '127.0.0.1');
      server.close();
      expect(answered(heard)).toEqual(expectedFor(heard));
    });
  }
});
