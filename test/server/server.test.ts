// muxnet/server on this thread (reactor and serial modes, datagrams) over
// real loopback sockets: every lifecycle edge ends in exactly one finish().
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connect } from '../../src/async';
import { bind } from '../../src/fast';
import { ConnectionHandler, DatagramHandler, serve, type ErrorSource, type Server } from '../../src/server';
import { closeSocket, netConnect, roundTrip, sleep, socketFds, udpClient, waitFor } from '../helpers';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ timeout: 0 })));
});

/** What the handlers of one test did, in order, and what was reported. */
function recorder() {
  return { log: [] as string[], finished: [] as (Error | undefined)[], errors: [] as [Error, ErrorSource][] };
}

async function start(Handler: Parameters<typeof serve>[0], options: Parameters<typeof serve>[1] & { rec: ReturnType<typeof recorder> }) {
  const { rec, ...rest } = options;
  const server = await serve(Handler, { port: 0, onError: (err, source) => rec.errors.push([err, source]), ...rest });
  servers.push(server);
  return server;
}

/** A client that sends `data` and waits until the server closes it (a handler that fails on it). */
async function sendUntilClosed(port: number, data: string): Promise<void> {
  const sock = await netConnect(port);
  sock.on('error', () => {});
  const closed = new Promise((r) => sock.on('close', r));
  sock.write(data);
  await closed;
}

/** A handle() server that answers a client's first line with `reply` and returns, whatever else it sent. */
function startOneShot(reply: Buffer, rec: ReturnType<typeof recorder>, mode: 'reactor' | 'serial') {
  class OneShot extends ConnectionHandler {
    async handle() {
      for await (const _line of this.stream.frames('line')) return this.stream.write(reply);
    }
    finish(err?: Error) {
      rec.finished.push(err);
    }
  }
  return start(OneShot, { rec, mode });
}

describe('muxnet/server, reactor mode', () => {
  it('serves async and callback handlers, finish() once after a clean close', async () => {
    const rec = recorder();
    class AsyncEcho extends ConnectionHandler {
      async handle() {
        for await (const line of this.stream.frames('line')) await this.stream.write(`${line}\n`);
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    class CallbackEcho extends ConnectionHandler {
      onData(chunk: Buffer) {
        this.connection.write(chunk);
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    for (const Handler of [AsyncEcho, CallbackEcho]) {
      const server = await start(Handler, { rec });
      const clients = await Promise.all(Array.from({ length: 10 }, () => netConnect(server.port)));
      const replies = await Promise.all(clients.map((c, i) => roundTrip(c, Buffer.from(`client ${i}\n`))));
      expect(replies.map(String)).toEqual(clients.map((_, i) => `client ${i}\n`));
      await Promise.all(clients.map(closeSocket));
      await waitFor(() => rec.finished.length === 10, 'ten finishes');
      expect(rec.finished).toEqual(Array(10).fill(undefined));
      rec.finished.length = 0;
    }
    expect(rec.errors).toEqual([]);
  });

  it('handle() reads to the peer\'s end and still replies (half-open until it returns)', async () => {
    const rec = recorder();
    class Count extends ConnectionHandler {
      async handle() {
        let bytes = 0;
        for await (const chunk of this.stream) bytes += chunk.length;
        await this.stream.write(`${bytes} bytes\n`);
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    const server = await start(Count, { rec });
    const conn = await connect({ port: server.port });
    await conn.write('x'.repeat(100_000));
    await conn.end();
    const reply: Buffer[] = [];
    for await (const chunk of conn) reply.push(chunk);
    expect(String(Buffer.concat(reply))).toBe('100000 bytes\n');
    await waitFor(() => rec.finished.length === 1, 'the finish');
    expect(rec.finished).toEqual([undefined]);
  });

  it.each(['reactor', 'serial'] as const)('%s: handle() returning with input unread lingers: the reply arrives whole, then the end, not a reset; the next client is served meanwhile', async (mode) => {
    const rec = recorder();
    const reply = randomBytes(1 << 20);
    const server = await startOneShot(reply, rec, mode);
    const before = socketFds();
    // Asks, then sends 4 MiB the handler never reads, reading nothing for a while; it keeps its
    // side open after the server's end (allowHalfOpen), so only the server's linger closes it.
    const client = net.connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true });
    const got: Buffer[] = [];
    let failed: Error | undefined;
    client.on('error', (err) => (failed = err));
    client.on('data', (d) => got.push(d));
    const ended = new Promise((resolve) => client.on('end', resolve));
    const closed = new Promise((resolve) => client.on('close', resolve));
    client.write('get\n');
    client.write(Buffer.alloc(4 << 20, 0x78));
    client.pause();
    await waitFor(() => rec.finished.length === 1, 'the handler finished');
    await sleep(200);
    client.resume();
    await ended;
    expect(Buffer.concat(got).equals(reply)).toBe(true);
    expect(failed).toBeUndefined();
    // Lingering, it holds up nobody (a serial server serves the next).
    const next = await connect({ port: server.port });
    await next.write('get\n');
    const second: Buffer[] = [];
    for await (const chunk of next) second.push(chunk);
    expect(Buffer.concat(second).equals(reply)).toBe(true);
    // Idle, the lingering connection is closed (2–4 s without input): only the client's socket is left.
    await waitFor(() => socketFds() <= before + 1, `the server's sockets closed (${socketFds()} > ${before} + 1)`, 6000);
    client.end();
    await closed;
    expect(failed).toBeUndefined();
    expect(rec.finished).toEqual([undefined, undefined]);
    expect(rec.errors).toEqual([]);
  });

  it.each(['reactor', 'serial'] as const)('%s: a client that sends again after handle() returned, before it reads the reply, still gets the reply whole (the close lingers)', async (mode) => {
    const rec = recorder();
    const reply = randomBytes(1 << 20);
    const server = await startOneShot(reply, rec, mode);
    const before = socketFds();
    const client = net.connect({ port: server.port, host: '127.0.0.1' });
    const got: Buffer[] = [];
    let failed: Error | undefined;
    client.on('error', (err) => (failed = err));
    client.on('data', (d) => got.push(d));
    const closed = new Promise((resolve) => client.on('close', resolve));
    client.pause();
    client.write('get\n');
    // Only once handle() has returned, and so after nothing was left unread: more of the request.
    await waitFor(() => rec.finished.length === 1, 'the handler finished');
    await new Promise<void>((resolve) => client.write(Buffer.alloc(64 << 10, 0x78), () => resolve()));
    await sleep(100);
    client.resume();
    await closed;
    expect(failed).toBeUndefined();
    expect(Buffer.concat(got).equals(reply)).toBe(true);
    // The client closed on the server's end, so the linger ended with it.
    await waitFor(() => socketFds() <= before, `the server's socket closed (${socketFds()} > ${before})`, 1000);
    expect(rec.errors).toEqual([]);
  });

  // Found 2026-12-06 (a hunt): close() destroyed lingering connections at once, and the client's
  // body still arriving made the kernel reset them: 0 of 20 early answers arrived (node:net 20/20).
  it('close() gives a lingering connection up to its deadline: an early reply to a client still uploading arrives; past the deadline it is closed', async () => {
    const rec = recorder();
    const server = await startOneShot(Buffer.from('413 too large\n'), rec, 'reactor');
    const before = socketFds();
    /** Uploads 2 MiB in 64 KiB steps every 10 ms, reading only at its end, as a blocking client does. */
    const upload = () => {
      const client = net.connect({ port: server.port, host: '127.0.0.1' });
      client.pause();
      let answer = '';
      let failed: string | undefined;
      client.on('data', (d) => (answer += d));
      client.on('error', (err: NodeJS.ErrnoException) => (failed = err.code));
      const done = new Promise<{ answer: string; failed?: string }>((resolve) => client.on('close', () => resolve({ answer, failed })));
      client.on('connect', async () => {
        client.write('PUT\n');
        for (let sent = 0; sent < 2 << 20 && !client.destroyed; sent += 64 << 10) {
          if (!client.write(Buffer.alloc(64 << 10, 0x78))) await new Promise((r) => (client.once('drain', r), client.once('close', r)));
          await sleep(10);
        }
        client.end();
        client.resume();
      });
      return { client, done };
    };
    const clients = [upload(), upload(), upload()];
    await waitFor(() => rec.finished.length === 3, 'the handlers answered and finished');
    await server.close({ timeout: 10_000 });
    for (const { done } of clients) expect(await done).toEqual({ answer: '413 too large\n', failed: undefined });
    expect(rec.errors).toEqual([]);

    // Past the deadline, a lingering connection is closed (a client that never ends does not hold the close).
    const rec2 = recorder();
    const second = await startOneShot(Buffer.from('bye\n'), rec2, 'reactor');
    const client = await connect({ port: second.port, allowHalfOpen: true });
    await client.write(`get\n${'x'.repeat(1 << 20)}`);
    expect(String(await client.read())).toBe('bye\n');
    expect(await client.read()).toBeNull();
    const t0 = Date.now();
    await second.close({ timeout: 300 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    await client.end();
    await waitFor(() => socketFds() <= before, 'every socket closed', 2000);
    expect(rec2.errors).toEqual([]);
  });

  // Found 2026-12-06 (a review): a handler that finished during the close started lingering
  // after the drain was set up: close() resolved before the deadline, the connection lingered on.
  it('close(): a connection that starts lingering during the close is closed by its deadline too', async () => {
    const rec = recorder();
    class Slow extends ConnectionHandler {
      async handle() {
        for await (const _line of this.stream!.frames('line')) {
          await sleep(300);
          return this.stream!.write('bye\n');
        }
      }
    }
    const server = await start(Slow, { rec });
    const before = socketFds();
    // Half-open: it reads the reply and the end, and goes on sending (only the linger closes it).
    const client = net.connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true });
    let answer = '';
    let closed = false;
    client.on('data', (d) => (answer += d));
    client.on('error', () => {});
    client.on('close', () => (closed = true));
    await once(client, 'connect');
    client.write('get\n');
    // Still uploading: it never ends its side.
    const trickle = setInterval(() => client.write('x'.repeat(1024)), 100);
    try {
      await sleep(50);
      const t0 = Date.now();
      await server.close({ timeout: 800 });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
      expect(answer).toBe('bye\n');
      await waitFor(() => closed && socketFds() <= before, 'the lingering connection closed at the deadline', 1000);
    } finally {
      clearInterval(trickle);
      client.destroy();
    }
    expect(rec.errors).toEqual([]);
  });

  // Found 2026-12-06 (a hunt): the first of two writes met the peer's reset and closed the
  // connection, the second threw ERR_SOCKET_CLOSED, and that was taken for the handler's error:
  // finish() never heard the reset, and each connection printed a stack (node:net: ECONNRESET).
  it('a peer reset met by one of several writes in a callback is the connection\'s error, not the handler\'s; writing after its own destroy() is the handler\'s', async () => {
    const rec = recorder();
    class Reply extends ConnectionHandler {
      onData(chunk: Buffer) {
        for (const line of String(chunk).split('\n').filter(Boolean)) {
          if (line === 'self') this.connection.destroy();
          this.connection.write(`HEADER ${line}\n`);
          this.connection.write(Buffer.alloc(256 << 10, 0x61));
        }
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    const server = await start(Reply, { rec });
    await Promise.all(
      Array.from({ length: 20 }, () =>
        new Promise<void>((resolve) => {
          const sock = net.connect(server.port, '127.0.0.1', () => {
            sock.write('a\n');
            setTimeout(() => {
              sock.write('b\nc\nd\n');
              sock.resetAndDestroy();
            }, 30);
          });
          sock.pause();
          sock.on('error', () => {});
          sock.on('close', () => resolve());
        }),
      ),
    );
    await waitFor(() => rec.finished.length === 20, 'every handler finished');
    const codes = rec.finished.map((e) => (e as NodeJS.ErrnoException | undefined)?.code);
    expect(codes.filter((c) => c === 'ECONNRESET' || c === 'EPIPE').length).toBeGreaterThan(0);
    expect(codes.filter((c) => c === 'ERR_SOCKET_CLOSED')).toEqual([]);
    expect(rec.errors.filter(([, source]) => !source.connection)).toEqual([]);
    // Its own destroy(), then a write: that is the handler's doing.
    const sock = await netConnect(server.port);
    sock.on('error', () => {});
    sock.write('self\n');
    await waitFor(() => rec.finished.length === 21, 'the handler that destroyed its own connection finished');
    expect(rec.finished[20]).toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    expect(rec.errors.filter(([, source]) => !source.connection).map(([e]) => (e as NodeJS.ErrnoException).code)).toEqual(['ERR_SOCKET_CLOSED']);
    sock.destroy();
  });

  it('an async setup() gets what arrived meanwhile, the peer\'s end included, once it resolves', async () => {
    const rec = recorder();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    class Late extends ConnectionHandler {
      async setup() {
        await released;
        rec.log.push('setup done');
      }
      onData(chunk: Buffer) {
        rec.log.push(`data ${chunk}`);
      }
      onEnd() {
        rec.log.push('end');
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    const server = await start(Late, { rec });
    const sock = await netConnect(server.port);
    const closed = new Promise((r) => sock.on('close', r));
    sock.end('early');
    // The reactor reads the data and the FIN meanwhile; the handler is not ready.
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.log).toEqual([]);
    release();
    await closed;
    await waitFor(() => rec.finished.length === 1, 'the finish');
    expect(rec.log).toEqual(['setup done', 'data early', 'end']);
  });

  it('an async setup() hears, once it resolves, the drain that came while it ran', async () => {
    const rec = recorder();
    const big = Buffer.alloc(8 << 20, 'x');
    class Banner extends ConnectionHandler {
      async setup() {
        // More than the kernel takes at once: the rest queues, and the
        // peer reads it all while setup() is still running.
        rec.log.push(`queued ${!this.connection.write(big)}`);
        await waitFor(() => this.connection.bufferedAmount === 0, 'the queue flushed');
        rec.log.push('setup done');
      }
      onDrain() {
        rec.log.push('drain');
        this.connection.end('done');
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    const server = await start(Banner, { rec });
    const sock = await netConnect(server.port);
    let got = 0;
    let ended = false;
    sock.on('data', (chunk: Buffer) => (got += chunk.length));
    sock.on('end', () => (ended = true));
    // Without the drain, the handler never ends the connection.
    await waitFor(() => ended, "the handler's end after its drain");
    sock.end();
    expect(got).toBe(big.length + 'done'.length);
    await waitFor(() => rec.finished.length === 1, 'the finish');
    expect(rec.log).toEqual(['queued true', 'setup done', 'drain']);
  });

  it('finish(err) after handle() throws: reported once, the client is closed, the server serves on', async () => {
    const rec = recorder();
    const boom = new Error('handler failed');
    class Picky extends ConnectionHandler {
      async handle() {
        for await (const line of this.stream.frames('line')) {
          if (String(line) === 'bad') throw boom;
          await this.stream.write('ok\n');
        }
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    const server = await start(Picky, { rec });
    await sendUntilClosed(server.port, 'bad\n');
    await waitFor(() => rec.finished.length === 1, 'a finish');
    expect(rec.finished[0]).toBe(boom);
    expect(rec.errors.map(([e]) => e)).toEqual([boom]);
    expect(rec.errors[0][1].remoteAddress).toBe('127.0.0.1');

    const good = await connect({ port: server.port });
    await good.write('fine\n');
    expect(String(await good.read())).toBe('ok\n');
    await good.end();
  });

  it('finish(err) after a callback throws, and after setup() throws', async () => {
    const rec = recorder();
    class Throws extends ConnectionHandler {
      setup() {
        if (this.remotePort! % 2 === 0 && rec.log.length === 0) rec.log.push('setup');
      }
      onData() {
        throw new Error('onData failed');
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    const server = await start(Throws, { rec });
    await sendUntilClosed(server.port, 'x');
    await waitFor(() => rec.finished.length === 1, 'a finish');
    expect(rec.finished[0]?.message).toBe('onData failed');
    expect(rec.errors).toHaveLength(1);

    class BadSetup extends ConnectionHandler {
      setup() {
        throw new Error('setup failed');
      }
      handle() {
        rec.log.push('handle ran');
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    const other = await start(BadSetup, { rec });
    const s2 = await netConnect(other.port);
    s2.on('error', () => {});
    await new Promise((r) => s2.on('close', r));
    await waitFor(() => rec.finished.length === 2, 'a second finish');
    expect(rec.finished[1]?.message).toBe('setup failed');
    expect(rec.log).not.toContain('handle ran');
  });

  // Found 2026-12-05 (a hunt): an async onData's rejection was unhandled, and ended the process.
  it("an async onData that rejects: a throw, reported once to finish and onError; the server serves on", async () => {
    const rec = recorder();
    class Rejects extends ConnectionHandler {
      async onData(chunk: Buffer) {
        await sleep(1);
        if (String(chunk) === 'bad') throw new Error('onData rejected');
        this.connection.write(chunk);
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    const server = await start(Rejects, { rec });
    await sendUntilClosed(server.port, 'bad');
    await waitFor(() => rec.finished.length === 1, 'a finish');
    expect(rec.finished[0]?.message).toBe('onData rejected');
    expect(rec.errors.map(([err]) => err.message)).toEqual(['onData rejected']);
    // Another client is served as before.
    const next = await netConnect(server.port);
    next.write('good');
    expect(String(await new Promise((r) => next.once('data', r)))).toBe('good');
    await closeSocket(next);
  });

  it('an async onEnd that rejects after the connection closed: reported to onError, not an unhandled rejection', async () => {
    const rec = recorder();
    class Rejects extends ConnectionHandler {
      async onEnd() {
        await sleep(20);
        throw new Error('onEnd rejected');
      }
    }
    const server = await start(Rejects, { rec });
    const sock = await netConnect(server.port);
    await closeSocket(sock);
    await waitFor(() => rec.errors.length === 1, 'the error reported');
    expect(rec.errors[0][0].message).toBe('onEnd rejected');
  });

  it('finish(err) after the peer resets', async () => {
    const rec = recorder();
    class Reader extends ConnectionHandler {
      async handle() {
        for await (const chunk of this.stream) rec.log.push(String(chunk));
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    class Callback extends ConnectionHandler {
      onData(chunk: Buffer) {
        rec.log.push(String(chunk));
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    for (const Handler of [Reader, Callback]) {
      // The peer's address is known after the reset though nothing read it before.
      Handler.prototype.finish = function (this: ConnectionHandler, err?: Error) {
        rec.finished.push(err);
        rec.log.push(`finish for ${this.remoteAddress}`);
      };
      rec.log.length = rec.finished.length = rec.errors.length = 0;
      const server = await start(Handler, { rec });
      const sock = await netConnect(server.port);
      sock.write('hello');
      await waitFor(() => rec.log.length === 1, 'the data');
      sock.resetAndDestroy();
      await waitFor(() => rec.finished.length === 1, 'a finish');
      expect(rec.finished[0]).toMatchObject({ code: 'ECONNRESET' });
      expect(rec.errors).toHaveLength(1);
      expect(rec.errors[0][0]).toBe(rec.finished[0]);
      expect(rec.errors[0][1].remoteAddress).toBe('127.0.0.1');
      expect(rec.log[1]).toBe('finish for 127.0.0.1');
    }
  });

  it('a setup() or finish() returning a thenable whose then() throws: that handler\'s error, reported; the process and the server live on', async () => {
    const rec = recorder();
    // Typed as the promise a handler may return: what a thenable library gives.
    const broken = {
      then: () => {
        throw new Error('then threw');
      },
    } as unknown as Promise<void>;
    class BadSetup extends ConnectionHandler {
      setup() {
        return broken;
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    class BadFinish extends ConnectionHandler {
      onData() {}
      finish() {
        rec.log.push('finish');
        return broken;
      }
    }
    for (const Handler of [BadSetup, BadFinish]) {
      rec.finished.length = rec.errors.length = 0;
      const server = await start(Handler, { rec });
      // A second client is served (and fails the same way) after the first.
      for (const n of [1, 2]) {
        const sock = await netConnect(server.port);
        sock.on('error', () => {});
        sock.end('x');
        await new Promise((r) => sock.on('close', r));
        await waitFor(() => rec.errors.length === n, 'the error reported');
        expect(rec.errors[n - 1][0].message).toBe('then threw');
      }
    }
    expect(rec.finished[0]).toBeUndefined();
    class BadDatagram extends DatagramHandler {
      handle() {}
      finish() {
        return broken;
      }
    }
    rec.errors.length = 0;
    const udp = await start(BadDatagram, { rec });
    const client = dgram.createSocket('udp4');
    client.send('x', udp.port, '127.0.0.1');
    await waitFor(() => rec.errors.length === 1, 'the datagram handler\'s error reported');
    expect(rec.errors[0][0].message).toBe('then threw');
    client.close();
  });

  it('close({ timeout }): stops accepting, lets handlers finish, then closes the rest', async () => {
    const rec = recorder();
    class Session extends ConnectionHandler {
      async handle() {
        for await (const line of this.stream.frames('line')) {
          if (String(line) === 'bye') return;
          await this.stream.write('ack\n');
        }
      }
      finish(err?: Error) {
        rec.finished.push(err);
        rec.log.push(`finish ${err ? (err as Error & { code: string }).code : 'ok'}`);
      }
    }
    const server = await start(Session, { rec });
    const polite = await connect({ port: server.port });
    const stubborn = await connect({ port: server.port });
    await polite.write('hi\n');
    await stubborn.write('hi\n');
    expect(String(await polite.read())).toBe('ack\n');
    expect(String(await stubborn.read())).toBe('ack\n');

    const port = server.port;
    const closing = server.close({ timeout: 3000 });
    expect(server.closed).toBe(true);
    await expect(connect({ port })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    // Within the deadline a handler still works and ends by itself.
    await polite.write('more\n');
    expect(String(await polite.read())).toBe('ack\n');
    await polite.write('bye\n');
    expect(await polite.read()).toBeNull();
    await waitFor(() => rec.log.length === 1, "the polite handler's finish");
    expect(rec.log).toEqual(['finish ok']);
    // The stubborn one is closed at the deadline.
    await closing;
    expect(rec.log).toEqual(['finish ok', 'finish ERR_MUXNET_SERVER_CLOSED']);
    expect(await stubborn.read()).toBeNull();
  });

  it('close() called again with a sooner deadline (a second SIGTERM) cuts the rest off then', async () => {
    const rec = recorder();
    class Stays extends ConnectionHandler {
      async handle() {
        for await (const _line of this.stream.frames('line')) await this.stream.write('ack\n');
      }
      finish(err?: Error) {
        rec.log.push(`finish ${err ? (err as Error & { code: string }).code : 'ok'}`);
      }
    }
    const server = await start(Stays, { rec });
    const client = await connect({ port: server.port });
    await client.write('hi\n');
    expect(String(await client.read())).toBe('ack\n');
    const first = server.close({ timeout: 60_000 });
    await sleep(50);
    expect(rec.log).toEqual([]);
    expect(server.close({ timeout: 0 })).toBe(first);
    await first;
    expect(rec.log).toEqual(['finish ERR_MUXNET_SERVER_CLOSED']);
    expect(await client.read()).toBeNull();
  });

  it.each(['mio', 'poll'] as const)('close({ timeout }) is not held by a handler that never settles (setup, handle, finish; a datagram handler too), whose finish still runs, on %s', async (backend) => {
    const rec = recorder();
    const never = new Promise<void>(() => {});
    let releaseSetup!: () => void;
    const lateSetup = new Promise<void>((r) => (releaseSetup = r));
    const record = (kind: string, err?: Error) => {
      rec.finished.push(err);
      rec.log.push(`finish ${kind} ${(err as NodeJS.ErrnoException | undefined)?.code ?? 'ok'}`);
    };
    const asyncKinds = ['handle', 'finish', 'late-setup', 'double-destroy'];
    class Stubborn extends ConnectionHandler {
      private readonly kind = asyncKinds[rec.log.filter((l) => l.startsWith('setup ')).length];
      setup() {
        rec.log.push(`setup ${this.kind}`);
        return this.kind === 'late-setup' ? lateSetup : undefined;
      }
      async handle() {
        rec.log.push(`handle ${this.kind}`);
        if (this.kind === 'double-destroy') {
          this.connection.destroy();
          this.connection.destroy();
          return;
        }
        await never;
      }
      finish(err?: Error) {
        record(this.kind, err);
        return this.kind === 'finish' ? never : undefined;
      }
    }
    class StubbornSetup extends ConnectionHandler {
      setup() {
        rec.log.push('callback setup');
        return never;
      }
      onData() {
        rec.log.push('callback onData');
      }
      finish(err?: Error) {
        record('callback-setup', err);
      }
    }
    class StubbornDatagram extends DatagramHandler {
      async handle() {
        rec.log.push('datagram handle');
        await never;
      }
      finish(err?: Error) {
        record('datagram', err);
      }
    }
    const servers = [await start(Stubborn, { rec, backend }), await start(StubbornSetup, { rec, backend }), await start(StubbornDatagram, { rec, backend })];
    const udp = await udpClient();
    udp.socket.send('x', servers[2].port, '127.0.0.1');
    await waitFor(() => rec.log.includes('datagram handle'), 'the datagram handler running');
    udp.socket.close();
    const clients = [];
    for (const kind of asyncKinds) {
      const c = await netConnect(servers[0].port);
      c.on('error', () => {});
      clients.push(c);
      await waitFor(() => rec.log.includes(`setup ${kind}`), `the ${kind} handler set up`);
    }
    const waiting = await netConnect(servers[1].port);
    waiting.on('error', () => {});
    waiting.write('x');
    clients.push(waiting);
    await waitFor(() => rec.log.includes('callback setup'), 'the callback handler set up');
    // The one that closed itself twice finished once, as a clean close.
    await waitFor(() => rec.log.includes('finish double-destroy ok'), 'the double destroy finished');
    const closing = Promise.all(servers.map((s) => s.close({ timeout: 100 })));
    expect(await Promise.race([closing.then(() => 'closed'), sleep(5000).then(() => 'still waiting')])).toBe('closed');
    for (const kind of ['handle', 'finish', 'late-setup', 'callback-setup', 'datagram']) expect(rec.log).toContain(`finish ${kind} ERR_MUXNET_SERVER_CLOSED`);
    expect(rec.finished).toHaveLength(6);
    // Each cut off handler's error is reported once, the datagram's as the connections'.
    const cutOff = rec.errors.filter(([err]) => (err as NodeJS.ErrnoException).code === 'ERR_MUXNET_SERVER_CLOSED');
    expect(cutOff.map(([, source]) => source.remoteAddress)).toEqual(Array(5).fill('127.0.0.1'));
    // A setup that settles after its handler was let go starts no handle(); a callback one heard nothing.
    releaseSetup();
    await sleep(20);
    expect(rec.log).not.toContain('handle late-setup');
    expect(rec.log).not.toContain('callback onData');
    await Promise.all(clients.map((c) => new Promise((r) => (c.destroyed ? r(null) : c.on('close', r)))));
  });

  it('without onError, the handlers a close cuts off are said in one line, not one per connection', async () => {
    let setUp = 0;
    class Waits extends ConnectionHandler {
      async handle() {
        setUp++;
        await new Promise<void>(() => {});
      }
    }
    const server = await serve(Waits, { port: 0 });
    const clients = await Promise.all(Array.from({ length: 20 }, () => netConnect(server.port)));
    await waitFor(() => setUp === 20, 'twenty handlers running');
    const said = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      await server.close({ timeout: 50 });
      const lines = said.mock.calls.map((args) => args.join(' '));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^muxnet\/server: closing on thread \d+: The server closed before the handler finished$/);
    } finally {
      said.mockRestore();
    }
    await Promise.all(clients.map(closeSocket));
  });

  // Found 2026-12-05 (a hunt): 500 resets printed 5 000 lines of stack traces.
  it("without onError, peers' resets are said in one line per 10 s, not a stack trace each", async () => {
    let finished = 0;
    class Reader extends ConnectionHandler {
      async handle() {
        for await (const _ of this.stream);
      }
      finish() {
        finished++;
      }
    }
    const server = await serve(Reader, { port: 0 });
    const said = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const clients = await Promise.all(Array.from({ length: 20 }, () => netConnect(server.port)));
      for (const c of clients) c.resetAndDestroy();
      await waitFor(() => finished === 20, 'twenty handlers finished');
      const lines = said.mock.calls.map((args) => args.join(' '));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^muxnet\/server: connection from 127\.0\.0\.1 on thread \d+: read ECONNRESET$/);
    } finally {
      said.mockRestore();
    }
    await server.close();
  });

  it("without onError, a handler's own error is said each time with its stack, whatever its code", async () => {
    class Upstream extends ConnectionHandler {
      onData() {
        throw Object.assign(new Error('the upstream reset'), { code: 'ECONNRESET' });
      }
    }
    const server = await serve(Upstream, { port: 0 });
    const said = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      for (let i = 0; i < 3; i++) {
        const sock = await netConnect(server.port);
        sock.on('error', () => {});
        sock.write('x');
        await new Promise((r) => sock.on('close', r));
      }
      await waitFor(() => said.mock.calls.length === 3, 'three reports');
      for (const [line, err] of said.mock.calls) {
        expect(line).toMatch(/^muxnet\/server: handler for 127\.0\.0\.1 on thread \d+:$/);
        expect(err).toMatchObject({ message: 'the upstream reset', stack: expect.stringContaining('onData') });
      }
    } finally {
      said.mockRestore();
    }
    await server.close();
  });

  it('rejects bad arguments and a taken port with Node codes', async () => {
    const rec = recorder();
    class Plain extends ConnectionHandler {}
    await expect(serve(class NotAHandler {} as never, { port: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(serve(Plain, { port: 0, mode: 'threads' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(serve(Plain, { port: 0, workers: 2 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(serve(Plain, { port: 0, onError: 'log' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    const server = await start(Plain, { rec });
    await expect(serve(Plain, { port: server.port })).rejects.toMatchObject({ code: 'EADDRINUSE', syscall: 'listen', port: server.port });
    await expect(server.close({ timeout: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    // A callback handler has no stream.
    let stateError: unknown;
    class NoStream extends ConnectionHandler {
      setup() {
        try {
          void this.stream;
        } catch (err) {
          stateError = err;
        }
      }
    }
    const s2 = await start(NoStream, { rec });
    await closeSocket(await netConnect(s2.port));
    await waitFor(() => stateError !== undefined, 'setup ran');
    expect(stateError).toMatchObject({ code: 'ERR_INVALID_STATE' });
  });
});

describe('muxnet/server, serial mode', () => {
  it('serves one connection at a time: the second waits until the first finishes', async () => {
    const rec = recorder();
    let next = 0;
    class Numbered extends ConnectionHandler {
      readonly n = ++next;
      setup() {
        rec.log.push(`setup ${this.n}`);
      }
      async handle() {
        for await (const line of this.stream.frames('line')) await this.stream.write(`${this.n}:${line}\n`);
      }
      finish() {
        rec.log.push(`finish ${this.n}`);
      }
    }
    const server = await start(Numbered, { rec, mode: 'serial' });
    const first = await connect({ port: server.port });
    await first.write('a\n');
    expect(String(await first.read())).toBe('1:a\n');
    // The second connects (the kernel's backlog completes it) and asks...
    const second = await connect({ port: server.port });
    await second.write('b\n');
    const answer = second.read();
    // ...while the first is still served.
    await first.write('again\n');
    expect(String(await first.read())).toBe('1:again\n');
    expect(rec.log).toEqual(['setup 1']);
    await first.end();
    expect(await first.read()).toBeNull();
    expect(String(await answer)).toBe('2:b\n');
    expect(rec.log).toEqual(['setup 1', 'finish 1', 'setup 2']);
    await second.end();
    await waitFor(() => rec.log.length === 4, 'the second finish');
  });

  it('never overlaps handlers, even for connections accepted together', async () => {
    const rec = recorder();
    let active = 0;
    let most = 0;
    class Counted extends ConnectionHandler {
      async handle() {
        most = Math.max(most, ++active);
        for await (const chunk of this.stream) await this.stream.write(chunk);
      }
      finish() {
        active--;
        rec.finished.push(undefined);
      }
    }
    const server = await start(Counted, { rec, mode: 'serial' });
    // Ten clients connect before any is served; each closes after its echo.
    const clients = await Promise.all(Array.from({ length: 10 }, () => netConnect(server.port)));
    await Promise.all(
      clients.map(async (c, i) => {
        expect(String(await roundTrip(c, Buffer.from(`${i}`)))).toBe(`${i}`);
        await closeSocket(c);
      }),
    );
    await waitFor(() => rec.finished.length === 10, 'ten finishes');
    expect(most).toBe(1);
  });
});

describe('muxnet/server, resources', () => {
  it('releases every socket: served, waiting (serial) and cut off at shutdown', async () => {
    const before = socketFds();
    class Hold extends ConnectionHandler {
      async handle() {
        for await (const chunk of this.stream) await this.stream.write(chunk);
      }
    }
    for (const mode of ['reactor', 'serial'] as const) {
      const server = await serve(Hold, { port: 0, mode, onError: () => {} });
      const clients = await Promise.all(Array.from({ length: 5 }, () => netConnect(server.port)));
      for (const c of clients) c.on('error', () => {});
      expect(String(await roundTrip(clients[0], Buffer.from('hi')))).toBe('hi');
      await server.close({ timeout: 0 });
      await Promise.all(clients.map((c) => new Promise((r) => (c.destroyed ? r(null) : c.on('close', r)))));
    }
    // At most what was open before (an earlier test's sockets may close meanwhile).
    await waitFor(() => socketFds() <= before, 'the socket count back where it was');
  });
});

describe('muxnet/server, datagrams', () => {
  it('a handler per datagram, reply() to the sender, finish(err) after a throw', async () => {
    const rec = recorder();
    class Upper extends DatagramHandler {
      async handle(msg: Buffer) {
        if (String(msg) === 'throw') throw new Error('bad datagram');
        await Promise.resolve();
        this.reply(String(msg).toUpperCase());
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    const server = await start(Upper, { rec });
    const client = dgram.createSocket('udp4');
    const got: string[] = [];
    client.on('message', (m) => got.push(String(m)));
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
    client.send('throw', server.port, '127.0.0.1');
    await waitFor(() => rec.finished.length === 1, 'the first finish');
    expect(rec.finished[0]?.message).toBe('bad datagram');
    expect(rec.errors[0][1].remoteAddress).toBe('127.0.0.1');
    client.send('hello', server.port, '127.0.0.1');
    await waitFor(() => got.length === 1, 'a reply');
    expect(got).toEqual(['HELLO']);
    expect(rec.finished[1]).toBeUndefined();
    client.close();
  });

  it('a reply too long for UDP, sent in handle(), fails that handler (finish and onError), not the process', async () => {
    const rec = recorder();
    class Big extends DatagramHandler {
      handle(msg: Buffer) {
        this.reply(String(msg) === 'big' ? Buffer.alloc(70_000) : 'small');
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    const server = await start(Big, { rec });
    const client = await udpClient();
    await client.send('big', server.port);
    await waitFor(() => rec.finished.length === 1, 'the first finish');
    expect(rec.finished[0]).toMatchObject({ code: 'EMSGSIZE', syscall: 'send' });
    expect(rec.errors.map(([err]) => (err as NodeJS.ErrnoException).code)).toEqual(['EMSGSIZE']);
    await client.send('next', server.port);
    await waitFor(() => client.got.length === 1, 'a reply');
    expect(client.got).toEqual(['small']);
    client.socket.close();
  });

  it('serial: one datagram handled at a time, in order per sender (reactor mode overlaps them)', async () => {
    const rec = recorder();
    let active = 0;
    let most = 0;
    class Slow extends DatagramHandler {
      async handle(msg: Buffer) {
        most = Math.max(most, ++active);
        // Several turns of the loop, long enough for the others to arrive.
        await new Promise((r) => setTimeout(r, 2));
        await new Promise((r) => setImmediate(r));
        this.reply(msg);
      }
      finish(err?: Error) {
        active--;
        rec.finished.push(err);
      }
    }
    for (const mode of ['reactor', 'serial'] as const) {
      most = 0;
      rec.finished.length = 0;
      const server = await start(Slow, { rec, mode });
      const clients = await Promise.all([0, 1, 2].map(() => udpClient()));
      for (let i = 0; i < 5; i++) for (const [c, client] of clients.entries()) client.socket.send(`${c}.${i}`, server.port, '127.0.0.1');
      await waitFor(() => clients.every((c) => c.got.length === 5), `fifteen replies (${mode})`);
      for (const [c, client] of clients.entries()) expect(client.got).toEqual([0, 1, 2, 3, 4].map((i) => `${c}.${i}`));
      await waitFor(() => rec.finished.length === 15, 'fifteen finishes');
      expect(rec.finished).toEqual(Array(15).fill(undefined));
      if (mode === 'serial') expect(most).toBe(1);
      else expect(most).toBeGreaterThan(1);
      for (const c of clients) c.socket.close();
    }
    expect(rec.errors).toEqual([]);
  });

  it.runIf(process.platform === 'linux')('serial: while a handler runs, the next datagrams wait in the kernel', async () => {
    const rec = recorder();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const handled: string[] = [];
    class Held extends DatagramHandler {
      async handle(msg: Buffer) {
        handled.push(String(msg));
        if (String(msg) === 'first') await released;
        this.reply(msg);
      }
    }
    const server = await start(Held, { rec, mode: 'serial' });
    // Another socket on the same reactor: once it has its datagram, sent
    // last, the reactor has had a turn with the server's datagrams ready.
    let canaryHeard = false;
    const canary = bind({ port: 0, host: '127.0.0.1' }, { onMessage: () => (canaryHeard = true) });
    const client = await udpClient();
    await client.send('first', server.port);
    await waitFor(() => handled.length === 1, 'the first handler');
    for (const m of ['second', 'third']) await client.send(m, server.port);
    await client.send('canary', canary.address()!.port);
    await waitFor(() => canaryHeard, 'the canary');
    expect(handled).toEqual(['first']);
    expect(udpReceiveQueue(server.port)).toBeGreaterThan(0);
    release();
    await waitFor(() => client.got.length === 3, 'three replies');
    expect(client.got).toEqual(['first', 'second', 'third']);
    expect(udpReceiveQueue(server.port)).toBe(0);
    canary.close();
    client.socket.close();
  });

  it('close({ timeout }): no new datagram is handled, running handlers may still reply, then the socket closes', async () => {
    const rec = recorder();
    let release!: () => void;
    let released: Promise<void>;
    const handled: string[] = [];
    class Late extends DatagramHandler {
      async handle(msg: Buffer) {
        handled.push(String(msg));
        if (String(msg) !== 'stuck') await released;
        this.reply(`late ${msg}`);
      }
      finish(err?: Error) {
        rec.finished.push(err);
      }
    }
    const before = socketFds();
    for (const mode of ['reactor', 'serial'] as const) {
      handled.length = rec.finished.length = 0;
      released = new Promise<void>((r) => (release = r));
      const server = await serve(Late, { port: 0, mode, onError: (err, source) => rec.errors.push([err, source]) });
      const client = await udpClient();
      await client.send('slow', server.port);
      await waitFor(() => handled.length === 1, 'the handler');
      const closing = server.close({ timeout: 10_000 });
      await client.send('ignored', server.port);
      release();
      await closing;
      // It replied within the deadline; the one sent after close() was never handled.
      await waitFor(() => client.got.length === 1, 'the reply');
      expect(client.got).toEqual(['late slow']);
      expect(handled).toEqual(['slow']);
      expect(rec.finished).toEqual([undefined]);
      expect(server.address()).toBeNull();
      client.socket.close();
    }
    // A handler that never ends: close() resolves at the deadline.
    class Stuck extends DatagramHandler {
      handle(): Promise<void> {
        return new Promise(() => {});
      }
    }
    const stuck = await serve(Stuck, { port: 0, mode: 'serial' });
    const client = await udpClient();
    await client.send('stuck', stuck.port);
    await stuck.close({ timeout: 50 });
    expect(stuck.address()).toBeNull();
    client.socket.close();
    await waitFor(() => socketFds() <= before, 'the socket count back where it was');
    expect(rec.errors).toEqual([]);
  });
});

/** Bytes the kernel holds unread for the IPv4 UDP socket on `port` (Linux: /proc/net/udp). */
function udpReceiveQueue(port: number): number {
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1]?.endsWith(local)) return parseInt(fields[4].split(':')[1], 16);
  }
  throw new Error(`no UDP socket on port ${port}`);
}

