// The fast API over real loopback sockets, once per backend.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import net from 'node:net';
import os, { constants } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { broadcast, connect, encodeFrame, FrameDecoder, listen, metrics, stats, type Connection } from '../src/fast';
import { BACKENDS, closeSocket, downPort, fixtureJson, netConnect, roundTrip, sleep, waitFor } from './helpers';

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

  it("reset() closes with RST, dropping the queue: the peer's reads fail with ECONNRESET; onClose once", async () => {
    const closes: (Error | undefined)[] = [];
    const conns: Connection[] = [];
    const server = listen({ port: 0, host: '127.0.0.1', backend }, { onOpen: (c) => conns.push(c), onClose: (_c, err) => closes.push(err) });
    // A peer that has read all there was: the RST fails its read (destroy()'s FIN would end it).
    const reading = await netConnect(server.port);
    await waitFor(() => conns.length === 1, 'the first connection');
    const failed = new Promise<string | undefined>((r) => reading.once('error', (err: NodeJS.ErrnoException) => r(err.code)).once('close', () => r(undefined)));
    conns[0]!.reset();
    expect([conns[0]!.closed, conns[0]!.destroyed]).toEqual([true, true]);
    conns[0]!.reset();
    expect(await failed).toBe('ECONNRESET');
    // A queue it had not sent is dropped (Linux tells a peer holding unread bytes only of an end).
    const paused = await netConnect(server.port);
    paused.pause();
    await waitFor(() => conns.length === 2, 'the second connection');
    conns[1]!.write(Buffer.alloc(32 << 20));
    expect(conns[1]!.bufferedAmount).toBeGreaterThan(0);
    conns[1]!.reset();
    let got = 0;
    paused.on('data', (d: Buffer) => (got += d.length)).on('error', () => {});
    paused.resume();
    await new Promise((r) => paused.once('close', r));
    expect(got).toBeLessThan(32 << 20);
    await waitFor(() => closes.length === 2, 'onClose for both');
    await sleep(20);
    expect(closes).toEqual([undefined, undefined]);
    server.close();
  });

  it("onClose comes on the real next tick: a fake process.nextTick that drops what it is given (a fake clock's restore) does not lose it", async () => {
    const closed: Connection[] = [];
    const conns: Connection[] = [];
    const server = listen({ port: 0, host: '127.0.0.1', backend }, { onOpen: (c) => conns.push(c), onClose: (c) => closed.push(c) });
    const peer = await netConnect(server.port);
    peer.on('error', () => {});
    await waitFor(() => conns.length === 1, 'the connection');
    const real = process.nextTick;
    process.nextTick = () => {};
    try {
      conns[0]!.reset();
    } finally {
      process.nextTick = real;
    }
    await waitFor(() => closed.length === 1, 'onClose');
    expect(closed[0]).toBe(conns[0]);
    peer.destroy();
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
    const port = await downPort();
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

  it('broadcast() writes one buffer to many; skips the closed and the ended; names the slow', async () => {
    const conns: Connection[] = [];
    const server = listen({ port: 0, backend: backend as never }, { onOpen: (c) => conns.push(c) });
    const socks = await Promise.all(Array.from({ length: 5 }, () => netConnect(server.port)));
    const got = socks.map((sock) => {
      const chunks: Buffer[] = [];
      sock.on('data', (d) => chunks.push(d));
      sock.on('error', () => {});
      return () => Buffer.concat(chunks).toString();
    });
    await waitFor(() => conns.length === 5, 'five accepts');
    const [slow, ended, closed] = conns;
    ended.end();
    closed.destroy();
    expect(broadcast(conns, 'to all\n')).toEqual([]);
    await waitFor(() => [3, 4].every((i) => got[i]() === 'to all\n'), 'the line at every open connection');
    await sleep(50);
    expect(got.map((g) => g())).toEqual(['to all\n', '', '', 'to all\n', 'to all\n']);

    // One member stops reading; the others keep up. Only it is named, once its queue passes the cap.
    socks[conns.indexOf(slow)].pause();
    const chunk = Buffer.alloc(64 << 10, 'x');
    const cap = 256 << 10;
    let named: Connection[] = [];
    for (let i = 0; i < 1000 && named.length === 0; i++) {
      named = broadcast(conns, chunk, cap);
      await sleep(2);
    }
    expect(named).toEqual([slow]);
    expect(slow.bufferedAmount).toBeGreaterThan(cap);
    expect(() => broadcast(conns, 'x', -1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    for (const sock of socks) sock.destroy();
    server.close();
  });

  // The kernel's own view (`ss`'s keep-alive timer): node:net applies a call made while connecting.
  it.runIf(process.platform === 'linux')('setKeepAlive() called while connecting holds once connected', async () => {
    const peer = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    const port = (peer.address() as net.AddressInfo).port;
    const opened: Connection[] = [];
    const conns = [true, false].map((keep) => {
      const conn = connect({ port, host: '127.0.0.1', backend }, { onOpen: (c) => void opened.push(c) });
      if (keep) conn.setKeepAlive(true, 5000);
      return conn;
    });
    await waitFor(() => opened.length === 2, 'both connected');
    // The two client ends (to the peer's port): one with the keep-alive timer.
    const ends = execFileSync('ss', ['-tnoH', 'state', 'established', `( dport = :${port} )`]).toString().trim().split('\n');
    expect(ends).toHaveLength(2);
    expect(ends.filter((l) => /timer:\(keepalive,/.test(l))).toHaveLength(1);
    for (const c of conns) c.destroy();
    peer.close();
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

describe('framing codecs', () => {
  it('FrameDecoder reassembles frames split anywhere; encodeFrame makes them; oversized frames are counted', async () => {
    const received: string[] = [];
    let tooLong = 0;
    const server = listen(
      { port: 0 },
      {
        onOpen: (conn) => (conn.data = new FrameDecoder('length', 100)),
        onData(conn, chunk) {
          const decoded = (conn.data as FrameDecoder).push(chunk);
          tooLong += decoded.tooLong;
          for (const frame of decoded.frames) {
            received.push(frame.toString());
            conn.write(encodeFrame('line', `got ${frame}`));
          }
        },
      },
    );
    const sock = await netConnect(server.port);
    let replies = '';
    sock.on('data', (d) => (replies += d));
    const stream = Buffer.concat(['one', '', 'three'].map((text) => encodeFrame('length', text)));
    // A byte at a time: every frame is split inside its header and its payload.
    for (const byte of stream) {
      sock.write(Buffer.from([byte]));
      await sleep(1);
    }
    await waitFor(() => received.length === 3, 'three frames');
    expect(received).toEqual(['one', '', 'three']);
    const replyDecoder = new FrameDecoder('line', 100);
    await waitFor(() => replies.split('\n').length === 4, 'three replies');
    expect(replyDecoder.push(Buffer.from(`${replies}got par`)).frames.map(String)).toEqual(['got one', 'got ', 'got three']);
    expect(replyDecoder.buffered).toBe(7);
    sock.write(encodeFrame('length', 'y'.repeat(101)));
    await waitFor(() => tooLong === 1, 'the oversized frame counted');
    expect(received).toHaveLength(3);
    sock.destroy();
    server.close();
  });

  it('frames whole in one chunk are views of it, not copies; a split frame is its own Buffer', () => {
    const decoder = new FrameDecoder('line', 100);
    const chunk = Buffer.from('one\r\ntwo\nthr');
    const first = decoder.push(chunk).frames;
    expect(first.map(String)).toEqual(['one', 'two']);
    for (const frame of first) expect(frame.buffer).toBe(chunk.buffer);
    const rest = Buffer.from('ee\nfour\n');
    const second = decoder.push(rest).frames;
    expect(second.map(String)).toEqual(['three', 'four']);
    expect(second[0].buffer).not.toBe(rest.buffer);
    expect(second[1].buffer).toBe(rest.buffer);
    // A Uint8Array that is not a Buffer works too (views of its memory).
    const plain = new Uint8Array(Buffer.from('five\n'));
    const [five] = new FrameDecoder('line', 100).push(plain).frames;
    expect(String(five)).toBe('five');
    expect(five.buffer).toBe(plain.buffer);
  });

  it('hostile streams: every split of a stream gives the same frames, drops and tooLongAt; a 4 GiB header costs nothing', () => {
    // Decodes `stream` cut at i and j (every pair): what each chunk yielded, with what it dropped where.
    const decodeAt = (framing: 'line' | 'length', stream: Buffer, max: number, cuts: number[]) => {
      const decoder = new FrameDecoder(framing, max);
      const good: string[] = [];
      let bad: string | undefined;
      let from = 0;
      for (const to of [...cuts, stream.length]) {
        const { frames, tooLong, tooLongAt } = decoder.push(Buffer.from(stream.subarray(from, to)));
        from = to;
        // What it holds is the stream since the last frame's end, as it came.
        expect(decoder.pending()).toEqual(stream.subarray(to - decoder.buffered, to));
        if (bad !== undefined) continue;
        if (tooLong > 0) expect(tooLongAt).toBeGreaterThanOrEqual(0);
        else expect(tooLongAt).toBe(-1);
        good.push(...frames.slice(0, tooLong > 0 ? tooLongAt : frames.length).map((f) => f.toString('hex')));
        if (tooLong > 0) bad = frames.slice(tooLongAt).map((f) => f.toString()).join('|');
      }
      return { good, bad, buffered: decoder.buffered };
    };
    const everySplit = (framing: 'line' | 'length', stream: Buffer, max: number) => {
      const whole = decodeAt(framing, stream, max, []);
      for (let i = 0; i <= stream.length; i++) {
        for (let j = i; j <= stream.length; j++) expect(decodeAt(framing, stream, max, [i, j]).good).toEqual(whole.good);
      }
      return whole;
    };
    const hex = (...texts: string[]) => texts.map((t) => Buffer.from(t).toString('hex'));
    // Zero-length frames, a two-byte character split anywhere, then a header announcing 4 GiB - 1.
    const length = Buffer.concat([encodeFrame('length', ''), encodeFrame('length', 'h\u00e9'), encodeFrame('length', ''), Buffer.from([0xff, 0xff, 0xff, 0xff]), encodeFrame('length', 'after')]);
    expect(everySplit('length', length, 16)).toEqual({ good: hex('', 'h\u00e9', ''), bad: '', buffered: 0 });
    // \r\n and \n mixed, empty lines, a lone \r kept inside a line, a line one byte over the limit.
    const lines = Buffer.from('a\r\nb\n\r\n\nh\u00e9\rx\n12345678901\nafter\r\n');
    expect(everySplit('line', lines, 10)).toEqual({ good: hex('a', 'b', '', '', 'h\u00e9\rx'), bad: 'after', buffered: 0 });
    // A line with no newline for 64 MiB holds nothing; the line after it decodes.
    const decoder = new FrameDecoder('line', 1024);
    const mib = Buffer.alloc(1 << 20, 0x61);
    for (let i = 0; i < 64; i++) {
      expect(decoder.push(mib)).toEqual({ frames: [], tooLong: 0, tooLongAt: -1 });
      expect(decoder.buffered).toBeLessThanOrEqual(1025);
      // Known too long, and dropped as it comes: a reader may stop now.
      expect(decoder.dropping).toBe((i + 1) * mib.length);
    }
    expect(decoder.push(Buffer.from('\nfine\n'))).toMatchObject({ tooLong: 1, tooLongAt: 0, frames: [Buffer.from('fine')] });
    expect(decoder.dropping).toBe(0);
    // A header within a limit of 4 GiB - 1 reserves memory as bytes come, not as announced.
    const huge = new FrameDecoder('length', 2 ** 32 - 1);
    expect(huge.push(Buffer.from([0xff, 0xff, 0xff, 0xfe, 1, 2, 3]))).toEqual({ frames: [], tooLong: 0, tooLongAt: -1 });
    // Held: its header and 3 bytes of body, as they came.
    expect(huge.buffered).toBe(7);
    expect(huge.pending()).toEqual(Buffer.from([0xff, 0xff, 0xff, 0xfe, 1, 2, 3]));
  });

  it('rejects bad arguments with Node-style errors', () => {
    expect(() => new FrameDecoder('lines' as never, 10)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new FrameDecoder('line', 0)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new FrameDecoder('line', undefined as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => encodeFrame('line', 'two\nlines')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    // Found 2026-12-05 (a hunt): 'abc\r' was read back as 'abc'.
    for (const crEnded of ['abc\r', '\r']) expect(() => encodeFrame('line', crEnded)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(new FrameDecoder('line', 10).push(encodeFrame('line', 'a\rb')).frames.map(String)).toEqual(['a\rb']);
    expect(() => encodeFrame('length', 'abc', 2)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(encodeFrame('length', 'abc')).toEqual(Buffer.from([0, 0, 0, 3, 97, 98, 99]));
  });
});

describe.each(BACKENDS)('fast API over Unix-domain sockets on %s', (backend) => {
  const socketPath = (name: string) => path.join(os.tmpdir(), `muxnet-fast-${process.pid}-${backend}-${name}.sock`);

  it('listens on a path, echoes to a path connect and to node:net, and removes the file on close', async () => {
    const file = socketPath('echo');
    rmSync(file, { force: true });
    const server = listen({ path: file, backend }, { onData: (c, d) => c.write(d) });
    expect(server.address()).toBe(file);
    expect(server.port).toBeNaN();
    // A node:net client over the same path.
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(file, () => resolve(s));
      s.once('error', reject);
    });
    expect((await roundTrip(sock, Buffer.from('from node:net'))).toString()).toBe('from node:net');
    // A muxnet client: bytes written before the connect completes are queued.
    const got: Buffer[] = [];
    let client: Connection | undefined;
    await new Promise<void>((resolve) => {
      client = connect({ path: file, backend }, {
        onData: (_c, d) => {
          got.push(Buffer.from(d));
          if (Buffer.concat(got).length === 12) resolve();
        },
      });
      client.write('from muxnet');
      client.write('!');
    });
    expect(Buffer.concat(got).toString()).toBe('from muxnet!');
    expect(client!.remoteAddress).toBeUndefined();
    client!.destroy();
    await closeSocket(sock);
    expect(existsSync(file)).toBe(true);
    server.close();
    expect(existsSync(file)).toBe(false);
  });

  it('a path in use is EADDRINUSE, a missing one ENOENT, shaped like node:net', () => {
    const file = socketPath('busy');
    rmSync(file, { force: true });
    expect(() => connect({ path: file, backend }, {})).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'connect', address: file }));
    const server = listen({ path: file, backend }, {});
    expect(() => listen({ path: file, backend }, {})).toThrow(expect.objectContaining({ code: 'EADDRINUSE', syscall: 'listen', address: file }));
    expect(() => listen({ path: '', backend }, {})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    server.close();
  });
});

describe.each(BACKENDS)('piped connections on %s', (backend) => {
  it('a proxy built on pipe() relays 4 MiB both ways with no onData, then closes both sides', async () => {
    // The upstream: a node:net echo server.
    const upstream = net.createServer((s) => s.pipe(s));
    upstream.listen(0, '127.0.0.1');
    await new Promise((resolve) => upstream.once('listening', resolve));
    const upstreamPort = (upstream.address() as net.AddressInfo).port;
    const seen = { data: 0, closed: 0, relayed: [] as number[], tokens: [] as number[] };
    const closed = (conn: Connection) => {
      seen.closed++;
      seen.relayed.push(conn.bytesRelayed);
      seen.tokens.push(conn.token);
    };
    const proxy = listen(
      { port: 0, backend },
      {
        onOpen(client) {
          const up = connect({ port: upstreamPort, backend }, { onData: () => void seen.data++, onClose: closed });
          client.pipe(up);
        },
        onData: () => void seen.data++,
        onClose: closed,
      },
    );
    const sock = await netConnect(proxy.port);
    const payload = randomBytes(4 << 20);
    const echoed = await roundTrip(sock, payload, 20_000);
    expect(createHash('sha256').update(echoed).digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
    expect(seen.data).toBe(0);
    await closeSocket(sock);
    await waitFor(() => seen.closed === 2, 'both piped sides to close');
    // Each side passed on the 4 MiB it received, counted in Rust.
    expect(seen.relayed).toEqual([payload.length, payload.length]);
    // Both sockets are gone from the reactor: their tokens name nothing (EBADF;
    // EPIPE, the orderly close's own error, until the reactor's next turn).
    for (const token of seen.tokens) expect([-constants.errno.EBADF, -constants.errno.EPIPE]).toContain(proxy.reactor.native.queued(token));
    proxy.close();
    upstream.close();
  });

  it('a half-close passes through a pipe: the upstream still answers after the client ended', async () => {
    // The upstream replies only once the client's end reached it.
    const upstream = net.createServer({ allowHalfOpen: true }, (s) => {
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('end', () => s.end(`late reply to ${got}`));
    });
    upstream.listen(0, '127.0.0.1');
    await new Promise((resolve) => upstream.once('listening', resolve));
    const upstreamPort = (upstream.address() as net.AddressInfo).port;
    // Default allowHalfOpen (false): piped sides are not ended on their peer's end.
    const proxy = listen({ port: 0, backend }, { onOpen: (client) => client.pipe(connect({ port: upstreamPort, backend }, {})) });
    const sock = net.connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true });
    let reply = '';
    sock.on('data', (d) => (reply += d));
    sock.end('hello');
    await new Promise((resolve) => sock.once('end', resolve));
    expect(reply).toBe('late reply to hello');
    sock.destroy();
    proxy.close();
    upstream.close();
  });

  it('a connection piped in its onEnd is ended when its partner, read in the same turn, is destroyed in its onData', async () => {
    // The order reentrant seed 83343 met on mio. One turn reads A's bytes and
    // FIN, then B's bytes and FIN. A's onEnd pipes A to B, which passes over
    // A's automatic end(). B's bytes, read before the join, still reach B's
    // onData, which destroys B: B's FIN, later in the batch, dies with it, and
    // A's FIN would have been passed on to B only in the next turn. A is
    // unjoined with its peer's FIN heard: no one but the unjoin can end it.
    const events: string[] = [];
    const conns: Connection[] = [];
    const side = (conn: Connection) => (conn === conns[0] ? 'A' : 'B');
    const server = listen(
      { port: 0, backend },
      {
        onOpen(conn) {
          // Held until both clients sent all: then one turn reads both, A first.
          conn.pause();
          conns.push(conn);
        },
        onData(conn) {
          events.push(`${side(conn)} data`);
          if (side(conn) === 'B') conn.destroy();
        },
        onEnd(conn) {
          events.push(`${side(conn)} end`);
          if (side(conn) === 'A') conn.pipe(conns[1]);
        },
        onClose(conn) {
          events.push(`${side(conn)} closed`);
        },
      },
    );
    const a = await netConnect(server.port);
    await waitFor(() => conns.length === 1, 'A accepted');
    const b = await netConnect(server.port);
    await waitFor(() => conns.length === 2, 'B accepted');
    b.on('error', () => {});
    let aHeardEnd = false;
    a.on('end', () => (aHeardEnd = true));
    try {
      await Promise.all([a, b].map((sock, i) => new Promise<void>((resolve) => sock.end(Buffer.alloc(16, i + 1), resolve))));
      await sleep(20);
      // Carried in this order into the reactor's next turn.
      conns[0].resume();
      conns[1].resume();
      await waitFor(() => events.includes('B closed'), 'B destroyed');
      // B's bytes reached onData after the join: the same batch as A's end.
      expect(events.slice(0, 3)).toEqual(['A data', 'A end', 'B data']);
      await waitFor(() => aHeardEnd, "A's client to hear A end (A half-open)", 1000);
      await waitFor(() => events.includes('A closed'), 'A to close');
      expect(events).not.toContain('B end');
    } finally {
      conns[0].destroy();
      a.destroy();
      b.destroy();
      server.close();
    }
  });

  it('pipe() refuses a closed connection, itself, a connection already piped, and bad options', async () => {
    const conns: Connection[] = [];
    const server = listen({ port: 0, backend }, { onOpen: (c) => void conns.push(c) });
    const peers = await Promise.all([0, 1, 2].map(() => netConnect(server.port)));
    await waitFor(() => conns.length === 3, 'three accepts');
    expect(() => conns[0].pipe(conns[0])).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'pipe' }));
    expect(() => conns[0].pipe({} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => conns[0].pipe(conns[1], 'splice' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('"options"') }));
    expect(() => conns[0].pipe(conns[1], { splice: 1 as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('options.splice') }));
    conns[0].pipe(conns[1], { splice: false });
    expect(() => conns[2].pipe(conns[1])).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    conns[2].destroy();
    expect(() => conns[0].pipe(conns[2])).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
    // A bad argument is named first in any state, as node:net's write() does (found 2026-12-05).
    expect(() => conns[2].write(5 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => conns[2].write('x')).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
    for (const p of peers) p.destroy();
    server.close();
  });
});

describe.each(BACKENDS)('reactor stats on %s', (backend) => {
  it('stats() counts what an echo did; metrics() exposes it for Prometheus', async () => {
    const server = listen({ port: 0, backend }, { onData: (c, d) => c.write(d) });
    const before = stats(backend);
    const sock = await netConnect(server.port);
    expect((await roundTrip(sock, Buffer.alloc(1000, 7))).length).toBe(1000);
    const now = stats(backend);
    expect(now.backend).toBe(backend);
    expect(now.accepts - before.accepts).toBe(1);
    expect(now.reads.bytes - before.reads.bytes).toBe(1000);
    expect(now.writes.bytes - before.writes.bytes).toBe(1000);
    expect(now.turns).toBeGreaterThan(before.turns);
    expect(now.eventsPerTurn.reduce((a, b) => a + b, 0)).toBe(now.turns);
    // A gauge of the whole reactor, which earlier tests' connections may be leaving.
    expect(now.connections).toBeGreaterThanOrEqual(1);
    expect(now.slabsAlive).toBeGreaterThanOrEqual(1);
    const text = metrics();
    expect(text).toContain(`muxnet_read_bytes_total{backend="${backend}"} ${now.reads.bytes}`);
    expect(text).toMatch(new RegExp(`muxnet_events_per_turn_bucket\\{backend="${backend}",le="\\+Inf"\\} ${now.turns}\\n`));
    expect(text).toContain(`# TYPE muxnet_connections gauge`);
    await closeSocket(sock);
    server.close();
  });

  // Found 2026-12-05: it counted the slabs' Buffer objects, which go with the reactor's next
  // slab while views of their memory live on (5 slabs held by views counted 1).
  it('slabsAlive counts a read slab while views of it are kept, and not once they are let go', async () => {
    const { slabs, withViews, withoutViews } = await fixtureJson<Record<string, number>>('read-slabs-alive.js', ['views', backend], { nodeArgs: ['--expose-gc'] });
    expect(slabs).toBeGreaterThanOrEqual(4); // 4 MiB read into 1 MiB slabs
    expect(withViews).toBeGreaterThanOrEqual(slabs);
    expect(withoutViews).toBeLessThan(slabs);
  });
});
