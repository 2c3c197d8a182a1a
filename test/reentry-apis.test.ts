// The higher APIs called from inside their own events and awaits:
// muxnet/async (leaving a for-await mid-stream, a read pending when the
// connection closes, two readers at once), muxnet/server (a throw, a
// close() inside setup, handle and finish), muxnet/client (close() inside
// 'open' and 'reconnecting', sends while reconnecting, a server that
// restarts mid-message) and muxnet/proxy (close() inside its own events,
// an upstream that resets as it connects, stats() while draining). Each
// checks the bytes, that every callback comes once, and the fds.
import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { connect as connectAsync } from '../src/async';
import { connect as connectClient, type ClosedEvent } from '../src/client';
import { listen, type Connection } from '../src/fast';
import { createProxy } from '../src/proxy';
import { ConnectionHandler, serve } from '../src/server';
import { expectSocketFdsBack, pattern, sleep, waitFor } from './helpers';

/** A fast-API server: 'one' on open, then 'two' and 'three' (and its end) on each 'next'. */
function stepServer() {
  return listen(
    { port: 0, host: '127.0.0.1' },
    {
      onOpen: (conn: Connection<number>) => {
        conn.data = 0;
        conn.write('one');
      },
      onData: (conn: Connection<number>, chunk: Buffer) => {
        for (const _ of String(chunk).matchAll(/next/g)) {
          conn.data = conn.data! + 1;
          conn.write(conn.data === 1 ? 'two' : 'three');
          if (conn.data === 2) conn.end();
        }
      },
    },
  );
}

describe('muxnet/async re-entered', () => {
  expectSocketFdsBack();

  it('leaving a for-await after the first chunk loses nothing: read() and a second loop take the rest, in order', async () => {
    const body = pattern(7, 256 * 1024);
    const server = listen({ port: 0, host: '127.0.0.1' }, { onOpen: (conn) => conn.end(body) });
    const conn = await connectAsync({ port: server.port, host: '127.0.0.1' });
    const got: Buffer[] = [];
    for await (const chunk of conn) {
      got.push(Buffer.from(chunk));
      break;
    }
    got.push(Buffer.from((await conn.read())!));
    for await (const chunk of conn) got.push(Buffer.from(chunk));
    expect(Buffer.concat(got).equals(body)).toBe(true);
    expect(await conn.read()).toBeNull();
    server.close();
  });

  it('a read pending when the connection is destroyed settles: null for destroy(), the error for destroy(err); later reads agree', async () => {
    const server = listen({ port: 0, host: '127.0.0.1' }, {});
    const plain = await connectAsync({ port: server.port, host: '127.0.0.1' });
    const pending = plain.read();
    plain.destroy();
    expect(await pending).toBeNull();
    expect(await plain.read()).toBeNull();
    const failing = await connectAsync({ port: server.port, host: '127.0.0.1' });
    const err = Object.assign(new Error('mine'), { code: 'EMINE' });
    const two = [failing.read(), failing.read()];
    failing.destroy(err);
    for (const p of two) await expect(p).rejects.toBe(err);
    server.close();
  });

  it('a read pending when the peer ends resolves null, and when this side ends it the peer’s end still arrives', async () => {
    const server = stepServer();
    const conn = await connectAsync({ port: server.port, host: '127.0.0.1' });
    expect(String(await conn.read())).toBe('one');
    const pending = conn.read();
    await conn.end();
    // allowHalfOpen false on the fast server: our end makes it end too.
    expect(await pending).toBeNull();
    server.close();
  });

  it('two readers at once get the chunks in the order they asked, each once', async () => {
    const server = stepServer();
    const conn = await connectAsync({ port: server.port, host: '127.0.0.1' });
    const [first, second, third] = [conn.read(), conn.read(), conn.read()];
    expect(String(await first)).toBe('one');
    await conn.write('next');
    expect(String(await second)).toBe('two');
    await conn.write('next');
    expect(String(await third)).toBe('three');
    expect(await conn.read()).toBeNull();
    server.close();
  });

  it('destroy() inside a for-await body ends the loop without an error', async () => {
    const server = stepServer();
    const conn = await connectAsync({ port: server.port, host: '127.0.0.1' });
    const seen: string[] = [];
    for await (const chunk of conn) {
      seen.push(String(chunk));
      conn.destroy();
    }
    expect(seen).toEqual(['one']);
    server.close();
  });

  it.each([
    ['line', ['a', 'bb', '', 'ccc', 'dddd'], (f: string) => `${f}\r\n`],
    ['length', ['a', 'bb', '', 'ccc', 'dddd'], (f: string) => Buffer.concat([Buffer.from([0, 0, 0, f.length]), Buffer.from(f)])],
  ] as const)('leaving a %s frames() loop at any frame, with any split of the stream: read() and the next frames() get every byte after it', async (framing, payloads, encode) => {
    const wire = Buffer.concat(payloads.map((p) => Buffer.from(encode(p))));
    // The stream cut at each place in turn (so frames start, end or lie across chunks), left after each frame.
    for (let cut = 1; cut < wire.length; cut += 3) {
      for (let leaveAt = 0; leaveAt < payloads.length - 1; leaveAt++) {
        const server = listen({ port: 0, host: '127.0.0.1', noDelay: true }, {
          onOpen: (conn) => conn.write(wire.subarray(0, cut)),
          // The rest once the client asks: most often a chunk of its own.
          onData: (conn) => conn.end(wire.subarray(cut)),
        });
        const conn = await connectAsync({ port: server.port, host: '127.0.0.1' });
        await conn.write('more');
        const first: string[] = [];
        for await (const frame of conn.frames(framing)) {
          first.push(String(frame));
          if (first.length === leaveAt + 1) break;
        }
        const again: string[] = [];
        for await (const frame of conn.frames(framing)) again.push(String(frame));
        expect([...first, ...again], `cut at ${cut}, left after frame ${leaveAt}`).toEqual(payloads);
        server.close();
      }
    }
  });
});

/** A node:net client's whole conversation: it sends `data` and its end, then reads until the server closes; what came back and how it ended. */
function converse(port: number, data: string): Promise<{ got: string; ended: string }> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => sock.end(data));
    let got = '';
    let ended = 'close';
    sock.on('data', (d) => (got += String(d)));
    sock.on('end', () => (ended = 'end'));
    sock.on('error', (err: NodeJS.ErrnoException) => (ended = err.code ?? err.message));
    sock.on('close', () => resolve({ got, ended }));
  });
}

describe('muxnet/server re-entered', () => {
  expectSocketFdsBack();

  it.each(['setup', 'handle', 'finish'] as const)('a throw in %s: finish runs once per connection, the error reaches onError once, the next client is served', async (place) => {
    const finishes: string[] = [];
    const errors: string[] = [];
    class Thrower extends ConnectionHandler {
      override setup(): void {
        if (place === 'setup') throw new Error(`boom in ${place}`);
      }
      async handle(): Promise<void> {
        if (place === 'handle') throw new Error(`boom in ${place}`);
        for await (const chunk of this.stream) await this.stream.write(chunk);
      }
      override finish(err?: Error): void {
        finishes.push(err ? err.message : 'ok');
        if (place === 'finish') throw new Error(`boom in ${place}`);
      }
    }
    const server = await serve(Thrower, { port: 0, host: '127.0.0.1', onError: (err) => errors.push(err.message) });
    for (let i = 0; i < 2; i++) {
      const { got } = await converse(server.port, 'x');
      // The echo ran unless setup or handle threw.
      expect(got).toBe(place === 'finish' ? 'x' : '');
    }
    await waitFor(() => finishes.length === 2 && errors.length === 2, 'two finishes and two reports');
    expect(finishes).toEqual(place === 'finish' ? ['ok', 'ok'] : [`boom in ${place}`, `boom in ${place}`]);
    expect(errors).toEqual([`boom in ${place}`, `boom in ${place}`]);
    await server.close({ timeout: 1000 });
  });

  it.each(['setup', 'handle', 'finish'] as const)('server.close() inside %s: the connection is served to its end, finish runs once, close resolves, no new client is taken', async (place) => {
    const finishes: string[] = [];
    let closing: Promise<void> | undefined;
    class Closer extends ConnectionHandler {
      override setup(): void {
        if (place === 'setup') closing = this.server.close({ timeout: 2000 });
      }
      async handle(): Promise<void> {
        if (place === 'handle') closing = this.server.close({ timeout: 2000 });
        await this.stream.write(`bye ${String(await this.stream.read())}`);
      }
      override finish(err?: Error): void {
        finishes.push(err ? err.message : 'ok');
        if (place === 'finish') closing = this.server.close({ timeout: 2000 });
      }
    }
    const server = await serve(Closer, { port: 0, host: '127.0.0.1' });
    const { port } = server;
    expect(await converse(port, 'x')).toEqual({ got: 'bye x', ended: 'end' });
    await waitFor(() => closing !== undefined, 'the close');
    await closing;
    expect(finishes).toEqual(['ok']);
    expect(server.closed).toBe(true);
    expect((await converse(port, 'y')).ended).toBe('ECONNREFUSED');
  });
});

describe('muxnet/client re-entered', () => {
  expectSocketFdsBack();

  it("close() inside 'open': one 'closed', no cause, nothing unsent, no reconnect", async () => {
    const server = listen({ port: 0, host: '127.0.0.1' }, {});
    const client = connectClient({ port: server.port, host: '127.0.0.1', reconnect: { initialDelay: 10 } });
    const events: string[] = [];
    client.on('open', () => {
      events.push('open');
      client.close();
    });
    client.on('reconnecting', () => events.push('reconnecting'));
    const closed: ClosedEvent[] = [];
    client.on('closed', (e: ClosedEvent) => closed.push(e));
    await waitFor(() => closed.length > 0, "'closed'");
    await sleep(50);
    expect(events).toEqual(['open']);
    expect(closed).toEqual([{ cause: undefined, unsent: [] }]);
    expect(client.state).toBe('closed');
    server.close();
  });

  it("close() inside 'reconnecting': one 'closed' with what was queued, and no attempt after it", async () => {
    const server = listen({ port: 0, host: '127.0.0.1' }, {});
    const port = server.port;
    server.close();
    const client = connectClient({ port, host: '127.0.0.1', reconnect: { initialDelay: 10 } });
    let attempts = 0;
    client.on('connecting', () => attempts++);
    expect(client.send('queued')).toBe(true);
    client.on('reconnecting', () => client.close());
    const closed: ClosedEvent[] = [];
    client.on('closed', (e: ClosedEvent) => closed.push(e));
    await waitFor(() => closed.length > 0, "'closed'");
    await sleep(50);
    expect(attempts).toBe(1);
    expect(closed).toHaveLength(1);
    expect(closed[0].unsent.map(String)).toEqual(['queued']);
  });

  it('sends made while reconnecting, and a server that drops the connection mid-message: what follows the break arrives once, in order, on the next connection', async () => {
    const connections: string[] = [];
    let server = listen({ port: 0, host: '127.0.0.1' }, {});
    const port = server.port;
    server.close();
    // The first connection is dropped on its first bytes, a server restarting mid-message.
    const serve = () =>
      listen({ port, host: '127.0.0.1' }, {
        onOpen: (conn: Connection<number>) => {
          conn.data = connections.push('') - 1;
        },
        onData: (conn: Connection<number>, chunk) => {
          connections[conn.data!] += String(chunk);
          if (conn.data === 0) conn.destroy();
        },
      });
    const client = connectClient({ port, host: '127.0.0.1', reconnect: { initialDelay: 10, maxDelay: 20 } });
    let reconnects = 0;
    client.send('m1;');
    client.on('reconnecting', ({ attempt }: { attempt: number }) => {
      reconnects++;
      client.send(`r${reconnects};`);
      if (attempt === 2 && connections.length === 0) server = serve();
    });
    let opens = 0;
    client.on('open', () => ++opens === 2 && client.send('after-open;'));
    await waitFor(() => connections.length === 2 && connections[1].includes('after-open;') && connections[1].split(';').length > 2, 'the second connection', 5000);
    const last = connections[1].split(';').filter(Boolean);
    // Each message whole and once; those sent once the break was seen all there, in order.
    expect(new Set(last).size).toBe(last.length);
    const afterBreak = last.slice(last.indexOf(`r${reconnects}`));
    expect(afterBreak).toEqual([`r${reconnects}`, 'after-open']);
    const closed = once(client, 'closed');
    client.close();
    await closed;
    server.close();
  });
});

describe('muxnet/proxy re-entered', () => {
  expectSocketFdsBack();

  it('an upstream that resets as the pair connects: the client is closed, the pair counted out, and the proxy serves the next', async () => {
    const upstream = net.createServer((s) => s.resetAndDestroy());
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const proxy = createProxy({ port: 0, host: '127.0.0.1', upstreams: [{ host: '127.0.0.1', port: (upstream.address() as net.AddressInfo).port }], healthIntervalMs: 60_000 });
    proxy.on('error', () => undefined);
    for (let i = 0; i < 3; i++) expect((await converse(proxy.port, 'x')).got).toBe('');
    await waitFor(() => proxy.stats().live === 0, 'no live pair');
    const stats = await proxy.close({ timeout: 0 });
    expect(stats.live).toBe(0);
    await new Promise((r) => upstream.close(r));
  });

  it.each(['unavailable', 'connect-failed', 'upstream-down'] as const)("close() inside its own '%s': one close, its stats, the client closed", async (event) => {
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as net.AddressInfo).port;
    await new Promise((r) => dead.close(r));
    const proxy = createProxy({ port: 0, host: '127.0.0.1', upstreams: [{ host: '127.0.0.1', port }], maxFailures: 1, healthIntervalMs: 60_000 });
    proxy.on('error', () => undefined);
    let closing: Promise<unknown> | undefined;
    const closes: unknown[] = [];
    // Inside its own 'close' too: the same promise, nothing more.
    proxy.on('close', (s) => closes.push(s, proxy.close() === closing));
    proxy.on(event, () => (closing ??= proxy.close({ timeout: 100 })));
    const { got } = await converse(proxy.port, 'x');
    expect(got).toBe('');
    await waitFor(() => closing !== undefined, `'${event}'`);
    const stats = (await closing) as { live: number };
    expect(stats.live).toBe(0);
    expect(closes).toEqual([stats, true]);
  });

  it('stats() while close() drains a live pair: the pair counted until it ends, the bytes relayed, then close resolves', async () => {
    const echo = listen({ port: 0, host: '127.0.0.1' }, { onData: (conn, chunk) => conn.write(chunk) });
    const proxy = createProxy({ port: 0, host: '127.0.0.1', upstreams: [{ host: '127.0.0.1', port: echo.port }], healthIntervalMs: 60_000 });
    const client = await new Promise<net.Socket>((resolve) => {
      const s = net.connect(proxy.port, '127.0.0.1', () => resolve(s));
    });
    client.write('ping');
    await once(client, 'data');
    const closing = proxy.close({ timeout: 5000 });
    let settled = false;
    void closing.then(() => (settled = true));
    await sleep(20);
    const during = proxy.stats();
    expect(settled).toBe(false);
    expect(during.live).toBe(1);
    expect(during.bytesUp).toBe(4);
    // Still relaying while it drains.
    client.write('pong');
    expect(String((await once(client, 'data'))[0])).toBe('pong');
    client.end();
    const final = await closing;
    expect(final.live).toBe(0);
    expect([final.bytesUp, final.bytesDown]).toEqual([8, 8]);
    client.destroy();
    echo.close();
  });
});
