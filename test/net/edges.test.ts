// Argument edges that Node's own tests found (test-pipe-abstract-socket,
// test-stream-base-typechecking), checked against node:net itself.
import { AsyncLocalStorage } from 'node:async_hooks';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type nodeDgram from 'node:dgram';
import { once } from 'node:events';
import { stat, statSync } from 'node:fs';
import nodeNet from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gzip } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { BACKENDS, freePort, sleep, socketFds, waitFor } from '../helpers';
import { native } from '../../src/binding';
import { stats } from '../../src/fast';
import * as muxnet from '../../src/net';
import * as muxdgram from '../../src/dgram';
import { STRING_AS_BUFFER_REACHES_HANDLE } from '../../src/net/socket';
import { nodeFrom, uvFrom } from '../../src/versions';

type Net = typeof nodeNet;

describe.each([
  ['node:net', nodeNet],
  ['muxnet', muxnet as unknown as Net],
])('%s', (_name, net) => {
  it('a lookup that answers one address when asked for all (autoSelectFamily) fails with ERR_INVALID_IP_ADDRESS', async () => {
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = net.connect({
      port: (server.address() as nodeNet.AddressInfo).port,
      host: 'muxnet.invalid',
      autoSelectFamily: true,
      lookup: (_host, _options, callback) => (callback as (err: null, address: string, family: number) => void)(null, '127.0.0.1', 4),
    });
    const [err] = await once(socket, 'error');
    expect([err.code, err.message]).toEqual(['ERR_INVALID_IP_ADDRESS', 'Invalid IP address: undefined']);
    server.close();
  });

  // Found by a hunt (2026-12-07): the drop-in read a socket made with `readable: false`, and the
  // peer's first bytes ended it with ERR_STREAM_PUSH_AFTER_EOF, its later writes lost (3 of 3).
  it('a write-only socket (readable: false) whose peer speaks first reads nothing and goes on writing; its end() reaches the peer', async () => {
    const got: string[] = [];
    const server = net.createServer((s) => {
      s.write('banner');
      s.setEncoding('latin1');
      s.on('data', (d: string) => got.push(d));
      s.on('end', () => got.push('<end>'));
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = new net.Socket({ readable: false });
    const events: string[] = [];
    socket.on('data', () => events.push('data'));
    socket.on('error', (err: NodeJS.ErrnoException) => events.push(`error:${err.code}`));
    socket.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    await once(socket, 'connect');
    // The banner arrives (and would be read) before the write.
    await sleep(100);
    socket.write('ping', (err) => events.push(`write:${(err as NodeJS.ErrnoException | null)?.code ?? 'ok'}`));
    socket.end();
    await waitFor(() => got.includes('<end>'), "the peer's end");
    expect(got.join('')).toBe('ping<end>');
    expect(events).toEqual(['write:ok']);
    socket.destroy();
    server.close();
  });

  // Found by a review (2026-12-07): the fix above stopped onread's reads too; node:net's goes on.
  it("a socket with onread and readable: false hands its peer's bytes to the callback", async () => {
    const server = net.createServer((s) => s.on('error', () => {}).end('banner'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    let got = '';
    const onread = { buffer: Buffer.alloc(1024), callback: (n: number, buf: Buffer) => ((got += buf.toString('latin1', 0, n)), true) };
    const socket = net.connect({ port: (server.address() as nodeNet.AddressInfo).port, host: '127.0.0.1', readable: false, onread } as nodeNet.NetConnectOpts);
    socket.on('error', () => {});
    await waitFor(() => got === 'banner', 'the banner in the callback');
    socket.destroy();
    server.close();
  });

  // Found 2026-12-06 (undici's own tests through the drop-in): with Object.prototype's iterator
  // polluted, muxnet's happy-eyeballs order came out empty (ERR_INVALID_ADDRESS_FAMILY); and
  // fields node:net lets code assign threw in strict mode.
  it("connects by name with Object.prototype's iterator polluted; connecting, autoSelectFamilyAttemptedAddresses and _connections are assignable", async () => {
    const server = net.createServer((s) => s.end('hi'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proto = Object.prototype as unknown as Record<symbol, unknown>;
    proto[Symbol.iterator] = function* () {};
    let socket: nodeNet.Socket;
    try {
      socket = net.connect({
        port: (server.address() as nodeNet.AddressInfo).port,
        host: 'muxnet.invalid',
        autoSelectFamily: true,
        lookup: (_host, _options, callback) => (callback as (err: null, all: { address: string; family: number }[]) => void)(null, [{ address: '127.0.0.1', family: 4 }]),
      });
    } finally {
      delete proto[Symbol.iterator];
    }
    const [data] = await once(socket, 'data');
    expect(String(data)).toBe('hi');
    (socket as { autoSelectFamilyAttemptedAddresses: string[] }).autoSelectFamilyAttemptedAddresses = ['10.0.0.1:1'];
    expect(socket.autoSelectFamilyAttemptedAddresses).toEqual(['10.0.0.1:1']);
    (socket as { connecting: boolean }).connecting = false;
    expect(socket.connecting).toBe(false);
    const count = (server as unknown as { _connections: number })._connections;
    (server as unknown as { _connections: number })._connections = count;
    expect((server as unknown as { _connections: number })._connections).toBe(count);
    socket.destroy();
    server.close();
  });

  it.runIf(process.platform === 'linux').each([{ readableAll: true }, { writableAll: true }, { readableAll: true, writableAll: true }])(
    'refuses %o on an abstract socket path (no file to change), and listens on nothing',
    (modes) => {
      const server = net.createServer();
      const path = `\0muxnet-edges-${process.pid}`;
      // The message shows the options as given (the drop-in's showed a backlog it had added).
      expect(() => server.listen({ path, ...modes })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/can not set readableAll or writableAllt to true when path is abstract unix socket\. Received \{\s+path: '\\x00muxnet-edges-\d+',\s+\w+All: true(,\s+writableAll: true)?\s+\}$/) }),
      );
      expect(server.listening).toBe(false);
      // The name is still free.
      server.listen({ path });
      return once(server, 'listening').then(() => new Promise<void>((resolve) => server.close(() => resolve())));
    },
  );

  it("throws node:net's TypeError for a string written as a 'buffer' on a connected socket", async () => {
    const server = net.createServer((s) => s.resume());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const c = net.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    await once(c, 'connect');
    // Node 20's stream handle refuses it; Node 24's Writable refuses the encoding first.
    const expected = STRING_AS_BUFFER_REACHES_HANDLE
      ? { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'Second argument must be a buffer' }
      : { name: 'TypeError', code: 'ERR_UNKNOWN_ENCODING', message: 'Unknown encoding: buffer' };
    expect(() => c.write('broken', 'buffer' as BufferEncoding)).toThrow(expect.objectContaining(expected));
    // The socket still works.
    expect(c.write('fine')).toBe(true);
    c.destroy();
    server.close();
  });

  it("emits 'data' chunks of at most 64 KiB (libuv's read), however much waits in the kernel", async () => {
    const sent = randomBytes(8 << 20);
    const server = nodeNet.createServer((s) => s.end(sent));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const c = net.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    const chunks: Buffer[] = [];
    c.on('data', (d: Buffer) => chunks.push(d));
    await once(c, 'end');
    c.destroy();
    server.close();
    expect(Buffer.concat(chunks).equals(sent)).toBe(true);
    expect(Math.max(...chunks.map((d) => d.length))).toBeLessThanOrEqual(64 * 1024);
  });

  // Found by a hostile-peer hunt: muxnet's idle timer fired in the middle of a big write to a
  // slow reader (an http server's setTimeout then cut a response short), and soon after it ended.
  it("counts a write still going out, and its end, as activity for setTimeout's 'timeout'", async () => {
    const total = 24 << 20;
    let got = 0;
    // Reads a chunk, then waits 2 ms: 24 MiB take longer than the 200 ms idle timeout.
    const peer = nodeNet.createServer((p) => {
      p.on('data', (d: Buffer) => {
        got += d.length;
        p.pause();
        setTimeout(() => p.resume(), 2);
      });
    });
    peer.listen(0, '127.0.0.1');
    await once(peer, 'listening');
    const c = net.connect((peer.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    await once(c, 'connect');
    const events: string[] = [];
    const start = Date.now();
    let written = 0;
    c.setTimeout(200, () => {
      events.push(written ? (Date.now() - written >= 180 ? 'timeout a full period after the write' : `timeout ${Date.now() - written} ms after the write`) : 'timeout while writing');
      c.destroy();
    });
    c.write(Buffer.alloc(total), () => {
      written = Date.now();
      events.push('written');
    });
    await once(c, 'close');
    peer.close();
    expect(Date.now() - start).toBeGreaterThan(200);
    expect(events).toEqual(['written', 'timeout a full period after the write']);
    // What the kernel still held at the destroy goes on to the slow reader (on a busy machine it
    // had not all arrived when this end's 'close' came: a race of the test's, not a loss).
    await waitFor(() => got === total, `all ${total} bytes at the peer (${got})`, 10_000);
  });

  // Found by the same hunt: the reactor had closed the connection in order (this end's FIN, then
  // the peer's), and the drop-in answered as if node:net's handle were gone already.
  it("closes quietly on resetAndDestroy() in 'end' after its own end(), pending false, bufferSize 0 there", async () => {
    const server = nodeNet.createServer({ allowHalfOpen: true }, (s) => {
      s.resume();
      s.on('end', () => s.end('reply'));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const c = net.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    const seen: unknown[] = [];
    c.on('error', (err) => seen.push(`error ${(err as NodeJS.ErrnoException).code}`));
    c.on('data', (d) => seen.push(`data ${d}`));
    c.on('end', () => {
      seen.push({ pending: c.pending, bufferSize: c.bufferSize });
      c.resetAndDestroy();
    });
    c.end('request');
    const [hadError] = await once(c, 'close');
    server.close();
    expect([...seen, `close ${hadError}`]).toEqual(['data reply', { pending: false, bufferSize: 0 }, 'close false']);
  });

  // Found by a second hunt: the drop-in bound a connection's local port without SO_REUSEADDR,
  // which libuv sets, so a client reconnecting from its port met its own TIME_WAIT (EADDRINUSE).
  it('connects again from the same localPort while the last connection from it waits in TIME_WAIT', async () => {
    const server = nodeNet.createServer((s) => s.resume());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as nodeNet.AddressInfo;
    const localPort = await freePort();
    for (let round = 0; round < 2; round++) {
      // Closed from this side first: this side's end waits in TIME_WAIT once the server's is gone.
      const accepted = once(server, 'connection');
      const c = net.connect({ port, host: '127.0.0.1', localPort });
      await once(c, 'connect');
      expect(c.localPort).toBe(localPort);
      const [there] = (await accepted) as nodeNet.Socket[];
      c.destroy();
      await Promise.all([once(c, 'close'), once(there, 'close')]);
    }
    server.close();
  });

  // Found by the same hunt: the drop-in threw where node:net's handle takes the call.
  it('takes connect() on a socket connecting (EALREADY) or connected (it says connect again)', async () => {
    const server = nodeNet.createServer((s) => s.pipe(s));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as nodeNet.AddressInfo;
    const connecting = net.connect(port, '127.0.0.1');
    connecting.connect(port, '127.0.0.1');
    const [err] = (await once(connecting, 'error')) as NodeJS.ErrnoException[];
    expect([err.code, err.syscall, err.message.startsWith(`connect EALREADY 127.0.0.1:${port}`)]).toEqual(['EALREADY', 'connect', true]);
    expect((await once(connecting, 'close'))[0]).toBe(true);

    const connected = net.connect(port, '127.0.0.1');
    await once(connected, 'connect');
    connected.connect(port, '127.0.0.1');
    expect([connected.connecting, connected.readyState]).toEqual([true, 'opening']);
    connected.write('still the same connection');
    await once(connected, 'connect');
    expect(connected.connecting).toBe(false);
    const [echo] = await once(connected, 'data');
    expect(String(echo)).toBe('still the same connection');
    connected.destroy();
    server.close();
  });

  // Found by the same hunt: libuv answers a path in a directory that is not there with EACCES.
  it('fails a connect to an address of the other family than a custom lookup said (EINVAL), alone or among several', async () => {
    const server = net.createServer((s) => s.destroy());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as nodeNet.AddressInfo).port;
    const outcome = async (found: { address: string; family: number }[], autoSelectFamily: boolean) => {
      const c = net.connect({
        port,
        host: 'x.test',
        autoSelectFamily,
        // Answered later, as a resolver does: the attempts' events come after connect() returns.
        lookup: ((_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) =>
          setImmediate(() => (opts.all ? cb(null, found) : cb(null, found[0].address, found[0].family)))) as unknown as typeof import('node:dns').lookup,
      });
      const attempts: string[] = [];
      c.on('connectionAttempt', (address: string, _port: number, family: number) => attempts.push(`${address}/${family}`));
      const [result] = await Promise.race([once(c, 'connect').then(() => ['connect']), once(c, 'error')]);
      c.destroy();
      const err = result as NodeJS.ErrnoException & { errors?: NodeJS.ErrnoException[] };
      if (result === 'connect') return { attempts, result };
      return { attempts, code: err.code, syscall: err.syscall, message: err.message.replace(String(port), 'PORT') };
    };
    expect(await outcome([{ address: '127.0.0.1', family: 6 }], false)).toEqual({
      attempts: ['127.0.0.1/6'],
      code: 'EINVAL',
      syscall: 'connect',
      message: 'connect EINVAL 127.0.0.1:PORT - Local (undefined:undefined)',
    });
    expect(await outcome([{ address: '::1', family: 4 }], false)).toMatchObject({ attempts: ['::1/4'], code: 'EINVAL' });
    // Among several (happy eyeballs), it fails as one attempt and the next connects.
    expect(
      await outcome(
        [
          { address: '127.0.0.2', family: 6 },
          { address: '127.0.0.1', family: 4 },
        ],
        true,
      ),
    ).toEqual({ attempts: ['127.0.0.2/6', '127.0.0.1/4'], result: 'connect' });
    server.close();
  });

  it('a corked batch of strings in several encodings and Buffers arrives byte for byte', async () => {
    const got: Buffer[] = [];
    let ended!: () => void;
    const done = new Promise<void>((r) => (ended = r));
    const server = nodeNet.createServer((s) => s.on('data', (d) => got.push(d)).on('end', ended));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const c = net.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    await once(c, 'connect');
    // Base64 with line breaks (MIME) and hex with a stray character: byteLength overcounts them
    // (a review: the overcount went out as old memory).
    const parts: [string | Buffer, BufferEncoding?][] = [['héllo'], ['ff00', 'hex'], [Buffer.from([1, 2, 3])], ['aGk=', 'base64'], ['ü', 'latin1'], ['€', 'utf16le'], ['aGVs\r\nbG8=\r\n', 'base64'], ['01zz02', 'hex'], ['a-b_', 'base64url']];
    c.cork();
    for (const [chunk, encoding] of parts) c.write(chunk, encoding as BufferEncoding);
    c.uncork();
    c.end();
    await done;
    expect(Buffer.concat(got)).toEqual(Buffer.concat(parts.map(([chunk, encoding]) => (typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk))));
    server.close();
  });

  it('counts a queued string by its length in writableLength, by its bytes in bytesWritten', async () => {
    const server = nodeNet.createServer((s) => s.pause());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const c = net.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    await once(c, 'connect');
    const seen: (number | boolean)[] = [];
    c.cork();
    seen.push(c.write('héllo'), c.writableLength, c.write('ff00', 'hex'), c.writableLength, c.bytesWritten);
    c.uncork();
    seen.push(c.writableLength, c.bytesWritten);
    // More than the kernel takes while the server reads nothing: queued, counted by its characters.
    const big = 'é'.repeat(16 << 20);
    seen.push(c.write(big), c.writableLength, c.bytesWritten);
    expect(seen).toEqual([true, 5, true, 9, 8, 0, 8, false, 16 << 20, 8 + (32 << 20)]);
    c.destroy();
    server.close();
  });

  // Found by a differential hunt (2026-12-04): the drop-in pushed a whole reactor read (up to
  // 256 KiB) before it stopped, where libuv stops at the first full push of its 64 KiB reads.
  it('holds at most one 64 KiB read past the high-water mark while paused, and loses nothing when resumed', async () => {
    const big = randomBytes(1 << 20);
    const server = net.createServer((c) => c.end(big));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = net.connect({ port: (server.address() as nodeNet.AddressInfo).port, host: '127.0.0.1', readableHighWaterMark: 16384 } as nodeNet.NetConnectOpts);
    client.pause();
    await once(client, 'connect');
    try {
      // Paused, it reads only when asked: once, up to the high-water mark.
      client.read(0);
      await waitFor(() => client.readableLength > 0, 'a first read');
      await new Promise((resolve) => setTimeout(resolve, 100));
      // A short first read may leave it under the mark: one more 64 KiB read on top, no more.
      expect(client.readableLength).toBeLessThan(16384 + 65536);
      const chunks: Buffer[] = [];
      client.on('data', (d: Buffer) => chunks.push(d));
      client.resume();
      await once(client, 'end');
      expect(Buffer.concat(chunks).equals(big)).toBe(true);
    } finally {
      client.destroy();
      server.close();
    }
  });

  // Found by a differential hunt of addresses and options (2026-12-04), the five below.
  it('refuses a second answer of its lookup while connecting (EALREADY), with one connection at most and nothing left open', async () => {
    const before = socketFds();
    let accepted = 0;
    const server = nodeNet.createServer((c) => {
      accepted++;
      c.on('error', () => {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const lookup = (_host: string, _opts: unknown, cb: (err: null, address: string, family: number) => void) => {
      cb(null, '127.0.0.1', 4);
      cb(null, '127.0.0.1', 4);
    };
    const client = net.connect({ port: (server.address() as nodeNet.AddressInfo).port, host: 'twice.example', lookup, autoSelectFamily: false } as nodeNet.NetConnectOpts);
    const [err] = (await once(client, 'error')) as NodeJS.ErrnoException[];
    expect([err.code, err.syscall]).toEqual(['EALREADY', 'connect']);
    // Naming the end of the attempt in flight, as node:net's refused connect on its handle does.
    expect(err.message).toMatch(/^connect EALREADY 127\.0\.0\.1:\d+ - Local \(127\.0\.0\.1:\d+\)$/);
    await new Promise<void>((resolve) => (client.closed ? resolve() : client.once('close', () => resolve())));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(accepted).toBeLessThanOrEqual(1);
    server.close();
    await waitFor(() => socketFds() <= before, 'the sockets closed');
  });

  // Found by a differential hunt of lookups (2026-12-05): the drop-in failed with EALREADY.
  it.each([
    // Started in the timers phase, ::1 connects before the closing phase cancels the first attempt.
    ['a timer', setTimeout, ['connect', 'connectionAttemptFailed 127.0.0.1 ECANCELED', 'close false']],
    // In the check phase, the closing phase of the same turn comes first: the first answer's dial fails with its cancelled attempt.
    ['an immediate', setImmediate, ['connectionAttemptFailed 127.0.0.1 ECANCELED', 'error ECANCELED', 'connectionAttemptFailed ::1 ECANCELED', 'close true']],
  ] as const)(
    'goes on past a second answer of several addresses (autoSelectFamily) refused on the attempt in flight, connecting from %s',
    async (_when, schedule, ending) => {
      const server = nodeNet.createServer((c) => c.end());
      server.listen(0, '::1');
      await once(server, 'listening');
      const { port } = server.address() as nodeNet.AddressInfo;
      const answer = [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }];
      const lookup = (_host: string, _opts: unknown, cb: (err: null, addresses: typeof answer) => void) => {
        cb(null, answer);
        cb(null, answer);
      };
      const events: string[] = [];
      const client = new net.Socket();
      for (const name of ['connectionAttempt', 'connectionAttemptFailed', 'connect', 'error', 'close']) {
        client.on(name, (...args: unknown[]) =>
          events.push([name, ...args.filter((a) => typeof a !== 'number').map((a) => (a instanceof Error ? (a as NodeJS.ErrnoException).code : a))].join(' ')),
        );
      }
      client.resume();
      (schedule as (fn: () => void) => unknown)(() => client.connect({ port, host: 'twice.example', lookup, autoSelectFamily: true } as nodeNet.SocketConnectOpts));
      await new Promise((resolve) => client.once('close', resolve));
      expect(events).toEqual([
        'connectionAttempt 127.0.0.1',
        'connectionAttempt 127.0.0.1',
        'connectionAttemptFailed 127.0.0.1 EALREADY',
        'connectionAttempt ::1',
        ...ending,
      ]);
      server.close();
    },
  );

  it.each([false, true])('checks a second answer of its lookup as the first: no IP address is ERR_INVALID_IP_ADDRESS, not EALREADY (autoSelectFamily %s)', async (autoSelectFamily) => {
    const server = nodeNet.createServer((c) => c.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const lookup = (_host: string, opts: { all?: boolean }, cb: (err: null, ...answer: unknown[]) => void) => {
      if (opts.all) {
        cb(null, [{ address: '127.0.0.1', family: 4 }]);
        cb(null, [{ address: 'bogus', family: 4 }]);
      } else {
        cb(null, '127.0.0.1', 4);
        cb(null, 'bogus', 4);
      }
    };
    const client = net.connect({ port: (server.address() as nodeNet.AddressInfo).port, host: 'twice.example', lookup, autoSelectFamily } as nodeNet.NetConnectOpts);
    const [err] = (await once(client, 'error')) as NodeJS.ErrnoException[];
    expect([err.code, err.message]).toEqual(['ERR_INVALID_IP_ADDRESS', 'Invalid IP address: bogus']);
    server.close();
  });

  it("names a lookup's answer that is no IP address as node:net formats it (ERR_INVALID_IP_ADDRESS)", async () => {
    const client = net.connect({ port: 9, host: 'muxnet.invalid', autoSelectFamily: false, lookup: (_h, _o, cb) => (cb as (err: null, a: unknown, f: number) => void)(null, { address: '127.0.0.1' }, 4) });
    const [err] = await once(client, 'error');
    expect([err.code, err.message]).toEqual(['ERR_INVALID_IP_ADDRESS', "Invalid IP address: { address: '127.0.0.1' }"]);
  });

  it('takes a truthy non-boolean ipv6Only or reusePort as not asked (node:net reads only true)', async () => {
    const server = net.createServer();
    server.listen({ port: 0, host: '::1', ipv6Only: 1, reusePort: 'yes' } as unknown as nodeNet.ListenOptions);
    await once(server, 'listening');
    expect((server.address() as nodeNet.AddressInfo).family).toBe('IPv6');
    server.close();
  });

  it('honours ipv6Only without a host only where node:net does (Node 22.12 on; before, IPv4 clients come in)', async () => {
    const honoured = nodeFrom([22, 12], [23, 1]);
    const server = net.createServer((c) => c.destroy());
    server.listen({ port: 0, ipv6Only: true });
    await once(server, 'listening');
    const client = nodeNet.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    const outcome = await new Promise((resolve) => {
      client.once('connect', () => resolve('connected'));
      client.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
    });
    expect(outcome).toBe(honoured ? 'ECONNREFUSED' : 'connected');
    client.destroy();
    server.close();
  });

  it("fails listen(port) with EADDRINUSE on '::' when an IPv6 listener holds the port (no fall back to IPv4)", async () => {
    const holder = nodeNet.createServer().listen({ port: 0, host: '::', ipv6Only: true });
    await once(holder, 'listening');
    const { port } = holder.address() as nodeNet.AddressInfo;
    const server = net.createServer();
    server.listen(port);
    const [err] = (await once(server, 'error')) as (NodeJS.ErrnoException & { address?: string })[];
    expect([err.code, err.syscall, err.address]).toEqual(['EADDRINUSE', 'listen', '::']);
    holder.close();
  });

  it('reads the lookup option only when there is a name to look up, and names the local end while connecting', async () => {
    const server = nodeNet.createServer((c) => c.destroy());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = net.connect({ port: (server.address() as nodeNet.AddressInfo).port, host: '127.0.0.1', lookup: 'not a function' } as unknown as nodeNet.NetConnectOpts);
    client.on('error', () => {});
    // As getsockname() says once the connect is under way (the tick after connect()).
    const early = await new Promise((resolve) => process.nextTick(() => resolve([client.connecting, client.localAddress, typeof client.localPort])));
    expect(early).toEqual([true, '127.0.0.1', 'number']);
    await once(client, 'connect');
    client.destroy();
    server.close();
  });

  it("shows a port given as a string as a string in ERR_SOCKET_BAD_PORT", () => {
    expect(() => net.createServer().listen('65536')).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT', message: expect.stringContaining("Received type string ('65536')") }));
    expect(() => net.connect({ port: '-1' } as never)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT', message: expect.stringContaining("Received type string ('-1')") }));
  });

  // Found by a differential hunt (2026-12-04): the drop-in's server ignored highWaterMark.
  it("gives each accepted socket the server's highWaterMark both ways (a negative one is the default; no number is refused)", async () => {
    expect(() => net.createServer({ highWaterMark: 'x' } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    // Not in @types/node 20's Server.
    const hwmOf = (server: nodeNet.Server) => (server as unknown as { highWaterMark: number }).highWaterMark;
    expect(hwmOf(net.createServer({ highWaterMark: -5 }))).toBe(hwmOf(net.createServer()));
    const server = net.createServer({ highWaterMark: 1024 });
    expect(hwmOf(server)).toBe(1024);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = net.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    const [accepted] = (await once(server, 'connection')) as [nodeNet.Socket];
    try {
      expect([accepted.readableHighWaterMark, accepted.writableHighWaterMark]).toEqual([1024, 1024]);
      accepted.cork();
      expect([accepted.write(Buffer.alloc(1000)), accepted.write(Buffer.alloc(100))]).toEqual([true, false]);
      accepted.uncork();
    } finally {
      client.destroy();
      accepted.destroy();
      server.close();
    }
  });

  // The Unix-domain cases below were found by a differential hunt (2026-12-04).
  it('fails listen() on a path in a missing directory with EACCES, port -1, and still names the path in address()', async () => {
    const server = net.createServer();
    const at = path.join(os.tmpdir(), `muxnet-missing-${process.pid}`, 'sock');
    server.listen(at);
    const [err] = (await once(server, 'error')) as (NodeJS.ErrnoException & { port?: number })[];
    expect([err.code, err.syscall, err.port]).toEqual(['EACCES', 'listen', -1]);
    expect(server.address()).toBe(at);
  });

  it.runIf(process.platform === 'linux')("names the path in address() after close(), and emits 'drop' with no argument past maxConnections", async () => {
    const at = path.join(os.tmpdir(), `muxnet-drop-${process.pid}-${_name.replace(':', '')}`);
    const server = net.createServer((c) => c.end());
    server.maxConnections = 1;
    server.listen(at);
    await once(server, 'listening');
    const first = net.connect(at);
    await once(server, 'connection');
    const dropped = once(server, 'drop');
    const second = net.connect(at).on('error', () => {});
    expect(await dropped).toEqual([]);
    first.destroy();
    second.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(server.address()).toBe(at);
  });

  it.runIf(process.platform === 'linux')('refuses resetAndDestroy() on a Unix-domain connection (ERR_INVALID_HANDLE_TYPE) and connect() again on one (EISCONN)', async () => {
    const at = path.join(os.tmpdir(), `muxnet-pipe-${process.pid}-${_name.replace(':', '')}`);
    const thrown: string[] = [];
    const server = net.createServer((c) => {
      try {
        c.resetAndDestroy();
      } catch (err) {
        thrown.push(`accepted ${(err as NodeJS.ErrnoException).code}`);
      }
      c.destroy();
    });
    server.listen(at);
    await once(server, 'listening');
    try {
      const connecting = net.connect(at).on('error', () => {});
      try {
        connecting.resetAndDestroy();
      } catch (err) {
        thrown.push(`connecting ${(err as NodeJS.ErrnoException).code}`);
      }
      const again = net.connect(at);
      again.connect(at);
      const [whileConnecting] = (await once(again, 'error')) as NodeJS.ErrnoException[];
      const connected = net.connect(at);
      await once(connected, 'connect');
      connected.connect(at);
      const [onceConnected] = (await once(connected, 'error')) as NodeJS.ErrnoException[];
      for (const err of [whileConnecting, onceConnected]) expect([err.code, err.syscall, (err as { address?: string }).address]).toEqual(['EISCONN', 'connect', at]);
      expect([again.destroyed, connected.destroyed]).toEqual([true, true]);
      connecting.destroy();
      await waitFor(() => thrown.length === 4, 'the accepted connections');
      expect(thrown.sort()).toEqual(['accepted ERR_INVALID_HANDLE_TYPE', 'accepted ERR_INVALID_HANDLE_TYPE', 'accepted ERR_INVALID_HANDLE_TYPE', 'connecting ERR_INVALID_HANDLE_TYPE']);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it.runIf(process.platform === 'linux')('listens on and connects to a path that fills sun_path (108 bytes, no NUL after it)', async () => {
    const dir = os.tmpdir();
    const at = path.join(dir, `${_name.replace(':', '')}-${process.pid}-`.padEnd(108 - dir.length - 1, 'p'));
    expect(Buffer.byteLength(at)).toBe(108);
    const server = net.createServer((c) => c.end('ok'));
    server.listen(at);
    await once(server, 'listening');
    try {
      expect([server.address(), statSync(at).isSocket()]).toEqual([at, true]);
      const client = net.connect(at);
      let got = '';
      client.on('data', (d) => (got += d));
      await once(client, 'end');
      expect(got).toBe('ok');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  // libuv 1.51 (Node 24) sets the socket file's mode to exactly the modes asked; before, it
  // added them to the file's mode. Only `true` asks.
  it.runIf(process.platform === 'linux').each([
    [{ readableAll: true }, 0o444],
    [{ writableAll: true }, 0o222],
    [{ readableAll: true, writableAll: true }, 0o666],
    [{ readableAll: 1, writableAll: 'yes' }, 0],
  ])('gives a Unix-domain socket file listened on with %o the mode libuv gives', async (modes, asked) => {
    const at = path.join(os.tmpdir(), `muxnet-modes-${process.pid}-${_name.replace(':', '')}`);
    const [major, minor] = process.versions.uv.split('.').map(Number);
    const made = 0o777 & ~process.umask();
    const expected = asked === 0 ? made : major > 1 || minor >= 51 ? asked : made | asked;
    const server = net.createServer();
    server.listen({ path: at, ...modes } as nodeNet.ListenOptions);
    await once(server, 'listening');
    try {
      expect((statSync(at).mode & 0o777).toString(8)).toBe(expected.toString(8));
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

// Found by a differential fuzzer against node:net (2026-12-04).
describe.each([
  ['node:net', nodeNet],
  ['muxnet', muxnet as unknown as Net],
])('%s, as node:net', (_name, net) => {
  /** A server on loopback whose accepted sockets get `onConnection`; resolves with its port. */
  async function server(onConnection: (s: nodeNet.Socket) => void): Promise<[nodeNet.Server, number]> {
    const srv = net.createServer((s) => {
      s.on('error', () => {});
      onConnection(s);
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    return [srv, (srv.address() as nodeNet.AddressInfo).port];
  }

  // Found 2026-12-05 (a hunt of timeouts): muxnet handed such a timeout to setTimeout as it
  // was, which makes it 1 ms: an http server's `setTimeout(2 ** 31)` reset every connection.
  it('a timeout past what a timer holds is cut to 2 ** 31 - 1 ms with a TimeoutOverflowWarning, not fired at once', async () => {
    const [srv, port] = await server((s) => s.resume());
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    let fired = 0;
    const a = net.connect({ port, host: '127.0.0.1', timeout: 2 ** 32 });
    const b = net.connect(port, '127.0.0.1');
    b.setTimeout(2 ** 31);
    for (const c of [a, b]) c.on('timeout', () => fired++);
    await Promise.all([once(a, 'connect'), once(b, 'connect')]);
    await sleep(100);
    process.off('warning', onWarning);
    expect([fired, a.timeout, b.timeout]).toEqual([0, 2 ** 32, 2 ** 31]);
    expect(warnings).toEqual(
      [2 ** 32, 2 ** 31].map((ms) => `TimeoutOverflowWarning: ${ms} does not fit into a 32-bit signed integer.\nTimer duration was truncated to 2147483647.`),
    );
    for (const c of [a, b]) c.destroy();
    srv.close();
  });

  // Found by the same hunt: each setTimeout() counted the stuck write as progress once more (a
  // period added to every later timeout); node:net keeps what it last saw across calls.
  it("re-armed in 'timeout' while a write is stuck on a peer that reads nothing, it fires a period later each time", async () => {
    const [srv, port] = await server((s) => s.pause());
    const c = net.connect(port, '127.0.0.1');
    await once(c, 'connect');
    c.write(Buffer.alloc(64 << 20));
    const period = 400;
    const at = [Date.now()];
    c.on('timeout', () => {
      at.push(Date.now());
      if (at.length < 4) c.setTimeout(period);
      else c.destroy();
    });
    c.setTimeout(period);
    await once(c, 'close');
    srv.close();
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    // The first: the write handed over counts as progress once (two periods), as node:net's.
    expect(gaps[0]).toBeGreaterThanOrEqual(2 * period - 20);
    expect(gaps.slice(1).map((g) => (g < 1.5 * period ? 'one period' : `${g} ms`))).toEqual(['one period', 'one period']);
  });

  // Found by the same hunt: muxnet's Socket#connect took it (a timer node:net never starts, and
  // a check node:net does not make, before the port's).
  it("takes `timeout` from net.connect()'s options only: Socket#connect ignores it", async () => {
    const [srv, port] = await server((s) => s.resume());
    const s = new net.Socket();
    let fired = false;
    s.on('timeout', () => (fired = true));
    s.connect({ port, host: '127.0.0.1', timeout: 50 } as nodeNet.SocketConnectOpts);
    await once(s, 'connect');
    await sleep(150);
    expect([fired, s.timeout]).toEqual([false, undefined]);
    s.destroy();
    const t = new net.Socket();
    expect(() => t.connect({ port, host: '127.0.0.1', timeout: 'abc' } as never)).not.toThrow();
    t.destroy();
    expect(() => net.connect({ port: -1, timeout: 'abc' } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    srv.close();
  });

  // Found by the same hunt: muxnet checked the callback first, leaving the old timer running.
  it('setTimeout(ms, notAFunction) throws once the old timer is gone and the new one runs', async () => {
    const c = new net.Socket();
    const seen: string[] = [];
    c.on('timeout', () => seen.push('timeout'));
    c.setTimeout(5000);
    expect(() => c.setTimeout(50, 'no' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    await sleep(150);
    expect(seen).toEqual(['timeout']);
    c.setTimeout(100);
    expect(() => c.setTimeout(0, 'no' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    await sleep(200);
    expect(seen).toEqual(['timeout']);
    c.destroy();
  });

  it("the peer's FIN refreshes the idle timer: 'timeout' again after 'end' on a half-open socket", async () => {
    const [srv, port] = await server((s) => setTimeout(() => s.end(), 300));
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const seen: string[] = [];
    c.setTimeout(150);
    c.on('timeout', () => seen.push('timeout'));
    c.on('end', () => seen.push('end'));
    c.resume();
    await waitFor(() => seen.length === 3, "'timeout', 'end', 'timeout'", 3000);
    expect(seen).toEqual(['timeout', 'end', 'timeout']);
    c.destroy();
    srv.close();
  });

  it('bytesWritten counts a write the kernel refused (EPIPE), as node:net counts what it handed over', async () => {
    const [srv, port] = await server((s) => s.destroy());
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    c.on('error', () => {});
    c.resume();
    await once(c, 'end');
    await new Promise((r) => setTimeout(r, 50));
    const first = await new Promise<Error | null | undefined>((r) => c.write(Buffer.alloc(1000), r));
    await new Promise((r) => setTimeout(r, 100));
    const second = await new Promise<Error | null | undefined>((r) => c.write(Buffer.alloc(2000), r));
    // The reset reached the writer by its first or its second write: counted alike.
    expect([first, second].some((e) => e)).toBe(true);
    expect(c.bytesWritten).toBe(3000);
    srv.close();
  });

  it("write('') on a connection the peer has reset is a write that fails, as node:net's 0-byte write(2): callback and 'error' EPIPE", async () => {
    const [srv, port] = await server((s) => s.destroy());
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const seen: string[] = [];
    c.on('error', (e: NodeJS.ErrnoException) => seen.push(`error ${e.code} ${e.syscall}`));
    c.resume();
    await once(c, 'end');
    c.write('x'); // reaches the closed peer, which answers with a reset
    await new Promise((r) => setTimeout(r, 100));
    c.write('', (e) => seen.push(`callback ${(e as NodeJS.ErrnoException | null)?.code}`));
    const hadError = await new Promise<boolean>((r) => c.on('close', r));
    expect(hadError).toBe(true);
    expect(seen).toEqual(['callback EPIPE', 'error EPIPE write']);
    srv.close();
  });

  it("a socket paused in its first 'data' holds at most one 64 KiB read past its buffer, the rest of the batch included", async () => {
    // Resumed with megabytes waiting (pauseOnConnect): a turn reads more than one chunk of them.
    let accepted!: nodeNet.Socket;
    const srv = net.createServer({ pauseOnConnect: true }, (s) => {
      accepted = s;
      s.once('data', () => s.pause());
      setTimeout(() => s.resume(), 100);
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const c = net.connect((srv.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    c.on('error', () => {});
    c.write(Buffer.alloc(4 << 20));
    await new Promise((r) => setTimeout(r, 400));
    expect(accepted.isPaused()).toBe(true);
    // One read (libuv's are 64 KiB at most) past the high-water mark (16 KiB on Node 20, 64 KiB from Node 22).
    expect(accepted.readableLength).toBeLessThanOrEqual(accepted.readableHighWaterMark + 64 * 1024);
    accepted.destroy();
    c.destroy();
    srv.close();
  });
});

describe.each([
  ['node:net', nodeNet],
  ['muxnet', muxnet as unknown as Net],
])('%s Socket.prototype', (_name, net) => {
  // Found by a seeded soak (2026-12-04): resume() handed the held bytes to the callback inside it,
  // which paused again, and Readable's own resume a tick later restarted the kernel reads with
  // the rest still held: nothing more came until the peer's next bytes.
  it.each(['pause()', 'return false'])('hands every byte to onread when paused in the callback (%s) and resumed from a timer', async (how) => {
    const sent = randomBytes(7485);
    let peer: nodeNet.Socket | undefined;
    // The peer keeps the connection open: only the bytes held here can finish the read.
    const server = nodeNet.createServer((s) => (peer = s.on('error', () => {})).write(sent));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const got: Buffer[] = [];
    let total = 0;
    const client = net.connect({
      port: (server.address() as nodeNet.AddressInfo).port,
      host: '127.0.0.1',
      onread: {
        buffer: Buffer.alloc(1000),
        callback(n: number, buf: Uint8Array) {
          got.push(Buffer.from(buf.subarray(0, n)));
          total += n;
          setTimeout(() => client.resume(), 5);
          if (how === 'return false') return false;
          client.pause();
          return true;
        },
      },
    } as nodeNet.NetConnectOpts);
    try {
      await waitFor(() => total === sent.length, 'every byte', 3000);
      expect(Buffer.concat(got).equals(sent)).toBe(true);
    } finally {
      client.destroy();
      peer?.destroy();
      server.close();
    }
  });

  // Found by a differential hunt (the three below): muxnet counted a whole reactor read in
  // bytesRead before handing out its first 64 KiB, and after a destroy() in 'data' too.
  it("counts in bytesRead, at each 'data' and with onread, the bytes handed out so far; none after a destroy() in 'data'", async () => {
    const sent = randomBytes(1 << 20);
    // The last client goes mid-answer.
    const server = nodeNet.createServer((s) => s.on('error', () => {}).end(sent));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as nodeNet.AddressInfo).port;
    const c = net.connect(port, '127.0.0.1');
    c.pause();
    // Everything waits in the kernel: one reactor read takes more than one 'data'.
    await new Promise((resolve) => setTimeout(resolve, 200));
    let sum = 0;
    const off: number[] = [];
    c.on('data', (d: Buffer) => {
      sum += d.length;
      if (c.bytesRead !== sum) off.push(c.bytesRead - sum);
    });
    c.resume();
    await once(c, 'end');
    expect([sum, off]).toEqual([sent.length, []]);
    let delivered = 0;
    const offRead: number[] = [];
    const r = net.connect({
      port,
      host: '127.0.0.1',
      onread: {
        buffer: Buffer.alloc(16 << 10),
        callback: (n: number) => {
          delivered += n;
          if (r.bytesRead !== delivered) offRead.push(r.bytesRead - delivered);
          return true;
        },
      },
    });
    await once(r, 'end');
    expect([delivered, offRead]).toEqual([sent.length, []]);
    const d = net.connect(port, '127.0.0.1');
    d.pause();
    await new Promise((resolve) => setTimeout(resolve, 200));
    let first = 0;
    d.once('data', (chunk: Buffer) => {
      first = chunk.length;
      d.destroy();
    });
    d.resume();
    await once(d, 'close');
    expect(d.bytesRead).toBe(first);
    server.close();
  });

  it("is no longer connecting while 'connectionAttemptFailed' is heard for its one address: a write there fails with EPIPE, then the connect's error", async () => {
    const port = await freePort();
    const c = net.connect(port, '127.0.0.1');
    const seen: unknown[] = [];
    c.on('connectionAttemptFailed', () => {
      seen.push({ readyState: c.readyState, pending: c.pending, connecting: c.connecting });
      c.write('x', (err) => seen.push(['write', (err as NodeJS.ErrnoException | null)?.code]));
    });
    c.on('error', (err: NodeJS.ErrnoException) => seen.push(['error', err.code]));
    await new Promise((resolve) => c.on('close', resolve));
    expect(seen).toEqual([{ readyState: 'open', pending: false, connecting: false }, ['write', 'EPIPE'], ['error', 'ECONNREFUSED']]);
    expect(c.bytesWritten).toBe(0);
  });

  it("resets the clients accepted with the one whose 'connection' closed the server (the kernel resets a closed listener's backlog)", async () => {
    let first = true;
    const server = net.createServer((s) => {
      if (!first) return void s.destroy();
      first = false;
      server.close();
      s.end('served');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as nodeNet.AddressInfo).port;
    // Connected before the server's loop runs: all wait in the backlog together.
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, () => new Promise<string>((resolve) => {
        const c = nodeNet.connect(port, '127.0.0.1');
        let got = '';
        c.on('data', (d) => (got += d));
        c.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
        c.on('end', () => resolve(got === '' ? 'empty end' : got));
      })),
    );
    expect(outcomes.filter((o) => o === 'served')).toHaveLength(1);
    expect(outcomes.filter((o) => o !== 'served').every((o) => o === 'ECONNRESET')).toBe(true);
  });

  // Found by the same hunt: muxnet emitted 'close' from a setImmediate queued in destroy(), so
  // ahead of the caller's own; node:net's comes from its handle's close callback.
  it("emits 'close' in libuv's closing phase: after an immediate queued just after destroy(), before one queued in an immediate that destroys", async () => {
    const server = nodeNet.createServer((s) => s.on('error', () => {}).resume());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as nodeNet.AddressInfo).port;
    const order = async (destroyFrom: (run: () => void) => void) => {
      const c = net.connect(port, '127.0.0.1');
      await once(c, 'connect');
      const seen: string[] = [];
      // A write the kernel cannot take at once is in flight: its callback is cancelled by the close.
      c.write(Buffer.alloc(64 << 20), () => seen.push('write called back'));
      c.on('close', () => seen.push('close'));
      destroyFrom(() => {
        c.destroy();
        setImmediate(() => seen.push('immediate'));
      });
      // An immediate queued at 'close' runs after one queued before it.
      await once(c, 'close');
      await new Promise((resolve) => setImmediate(resolve));
      return seen;
    };
    // The cancelled write hears of it in the same phase, just before.
    expect(await order((run) => setTimeout(run, 1))).toEqual(['immediate', 'write called back', 'close']);
    expect(await order((run) => setImmediate(run))).toEqual(['write called back', 'close', 'immediate']);
    server.close();
  });

  // Found by a hunt with node:http: on mio the request and its FIN, read in one turn, gave 'end'
  // before what the 'data' listeners queued had run, and node:http aborted the request unanswered.
  it("gives 'end' after what the bytes read with it queued: node:http answers a request sent with its FIN from an immediate and from req 'end'", async () => {
    const http = await import('node:http');
    const app = http.createServer((req, res) => {
      if (req.method === 'GET') return void setImmediate(() => res.end('ok'));
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const server = net.createServer((s) => app.emit('connection', s));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as nodeNet.AddressInfo).port;
    const ask = (request: string) =>
      new Promise<string>((resolve) => {
        let got = '';
        const c = nodeNet.connect(port, '127.0.0.1', () => c.end(request));
        c.on('data', (d) => (got += d));
        c.on('error', () => {});
        c.on('close', () => resolve(got.split('\r\n')[0]));
      });
    for (let i = 0; i < 5; i++) {
      expect(await ask('GET / HTTP/1.1\r\nHost: x\r\n\r\n')).toBe('HTTP/1.1 200 OK');
      expect(await ask('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello')).toBe('HTTP/1.1 200 OK');
    }
    server.close();
  });

  it('reads bytesWritten off the prototype as undefined, without throwing (found by test-net-access-byteswritten)', () => {
    expect(Object.getOwnPropertyDescriptor(net.Socket.prototype, 'bytesWritten')?.get).toBeTypeOf('function');
    expect(net.Socket.prototype.bytesWritten).toBeUndefined();
  });
});

// On Node 20 (libuv before 1.48) node:net binds and dials an abstract name
// NUL-padded to 108 bytes, since Node 22 the exact name: the drop-in binds
// and dials what node:net on the running Node does, so each reaches the other.
describe.runIf(process.platform === 'linux')('abstract Unix-domain names across node:net and the drop-in', () => {
  const pairs: [string, Net, Net][] = [
    ['a drop-in client reaches a node:net server', nodeNet, muxnet as unknown as Net],
    ['a node:net client reaches a drop-in server', muxnet as unknown as Net, nodeNet],
  ];
  it.each(pairs)('%s', async (what, serverSide, clientSide) => {
    const path = `\0muxnet-edges-abstract-${process.pid}-${pairs.findIndex((p) => p[0] === what)}`;
    const server = serverSide.createServer((s) => s.end('hello'));
    server.listen(path);
    await once(server, 'listening');
    expect(server.address()).toBe(path);
    const client = clientSide.connect(path);
    let got = '';
    client.on('data', (d) => (got += d));
    await once(client, 'close');
    expect(got).toBe('hello');
    await new Promise((resolve) => server.close(resolve));
  });
});

// The drop-in's typings take what node:net's take: this file is type-checked
// (`npm run typecheck`) with no cast, as a user's TypeScript would be.
describe('the drop-in as TypeScript takes node:net code', () => {
  it('node:net type names, a LookupFunction, listen(port, backlog, cb) and listen(path, backlog, cb)', async () => {
    const looked: string[] = [];
    const lookup: muxnet.LookupFunction = (hostname, options, callback) => {
      looked.push(hostname);
      if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
      else callback(null, '127.0.0.1', 4);
    };
    const server = muxnet.createServer((s) => s.end('hi'));
    await new Promise<void>((resolve) => server.listen(0, 511, resolve));
    const { port } = server.address() as muxnet.AddressInfo;
    const options: muxnet.NetConnectOpts = { port, host: 'muxnet.invalid', lookup };
    const socket = muxnet.connect(options);
    const state: muxnet.SocketReadyState = socket.readyState;
    expect(state).toBe('opening');
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    await once(socket, 'close');
    expect(Buffer.concat(chunks).toString()).toBe('hi');
    expect(looked).toEqual(['muxnet.invalid']);
    server.close();
    if (process.platform === 'win32') return;
    const where = path.join(os.tmpdir(), `muxnet-types-${process.pid}.sock`);
    const pipe = muxnet.createServer();
    await new Promise<void>((resolve) => pipe.listen(where, 16, resolve));
    expect(pipe.address()).toBe(where);
    await new Promise((resolve) => pipe.close(resolve));
  });

  it("a Socket, a Server and a UDP socket pass where code typed with node:net's and node:dgram's classes takes them", async () => {
    // An app's helpers, or a library's, typed with Node's classes: until 2026-12-05 none took
    // muxnet's (a private `connections`, the send callback's optional `bytes`, two getters typed
    // `| undefined` where @types/node has none), nor a dgram lookup typed as @types/node has it.
    const greet = (s: nodeNet.Socket): void => void s.end('hi');
    const portOf = (s: nodeNet.Server): number => (s.address() as nodeNet.AddressInfo).port;
    const sendTo = (u: nodeDgram.Socket, port: number): Promise<number> =>
      new Promise((resolve, reject) => u.send('ping', port, '127.0.0.1', (err, bytes) => (err ? reject(err) : resolve(bytes))));
    const server: nodeNet.Server = muxnet.createServer(greet);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client: nodeNet.Socket = muxnet.connect(portOf(server), '127.0.0.1');
    let got = '';
    client.on('data', (d) => (got += d));
    await once(client, 'close');
    expect(got).toBe('hi');
    server.close();
    // A 'message' listener typed as @types/node types createSocket's (a NonSharedBuffer).
    const heard: string[] = [];
    const onMessage: Parameters<typeof nodeDgram.createSocket>[1] = (msg) => heard.push(msg.toString());
    const receiver: nodeDgram.Socket = muxdgram.createSocket('udp4', onMessage);
    await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
    // A lookup typed as @types/node types node:dgram's (dns.lookup's options second; a number comes).
    const looked: unknown[] = [];
    const lookup: NonNullable<nodeDgram.SocketOptions['lookup']> = (hostname, options, callback) => {
      looked.push([hostname, options]);
      callback(null, '127.0.0.1', 4);
    };
    const sender = muxdgram.createSocket({ type: 'udp4', lookup });
    const message = once(receiver, 'message');
    expect(await sendTo(sender, receiver.address().port)).toBe(4);
    expect(String((await message)[0])).toBe('ping');
    expect(heard).toEqual(['ping']);
    // The implicit bind's address, then the destination, as node:dgram looks them up.
    expect(looked).toEqual([['0.0.0.0', 4], ['127.0.0.1', 4]]);
    sender.close();
    receiver.close();
  });
});

// Found 2026-12-06 (undici's own test/fetch/abort2.js through the drop-in; mqtt.js's end()
// while messages still came): the ticks and promise jobs a listener queued ran after the rest
// of the turn's events, other sockets' included; node runs them after each of libuv's callbacks.
describe.each([['node:net'] as const, ...BACKENDS.map((b) => [b] as const)])('ticks and promise jobs between sockets (%s)', (which) => {
  const net = which === 'node:net' ? nodeNet : (muxnet as unknown as Net);
  const backend = which === 'node:net' ? {} : { backend: which };
  const N = 8;

  /** A server with `N` clients connected to it: its sockets, and the clients, in the order they connected. */
  async function connected(): Promise<{ server: nodeNet.Server; accepted: nodeNet.Socket[]; clients: nodeNet.Socket[] }> {
    const accepted: nodeNet.Socket[] = [];
    const server = net.createServer(backend as nodeNet.ServerOpts, (s) => void accepted.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as nodeNet.AddressInfo;
    const clients: nodeNet.Socket[] = [];
    for (let i = 0; i < N; i++) {
      clients.push(net.connect({ port, host: '127.0.0.1', ...backend }));
      await once(clients[i], 'connect');
      await waitFor(() => accepted.length === i + 1, 'the server accepts it');
    }
    return { server, accepted, clients };
  }

  /** Logs each client's `event`, and the tick and promise job its listener queues. */
  function logged(clients: nodeNet.Socket[], event: string): string[] {
    const log: string[] = [];
    clients.forEach((c, i) =>
      c.on(event, () => {
        log.push(`${event}${i}`);
        process.nextTick(() => log.push(`tick${i}`));
        queueMicrotask(() => log.push(`micro${i}`));
      }),
    );
    return log;
  }

  /** The log in threes, each an event and what its listener queued (the sockets' own order is the kernel's). */
  function triples(log: string[]): string[][] {
    const out: string[][] = [];
    for (let i = 0; i < log.length; i += 3) out.push(log.slice(i, i + 3));
    return out.sort((a, b) => a[0].localeCompare(b[0]));
  }
  const expected = (event: string) => Array.from({ length: N }, (_, i) => [`${event}${i}`, `tick${i}`, `micro${i}`]);

  it("run after each socket's 'data', before the next socket's, when the bytes of all came in one turn", async () => {
    const { server, accepted, clients } = await connected();
    const log = logged(clients, 'data');
    // In one go: every client's bytes are in the kernel when the loop next looks.
    for (const s of accepted) s.write('x');
    await waitFor(() => log.length === 3 * N, 'every reply');
    expect(triples(log)).toEqual(expected('data'));
    for (const c of clients) c.destroy();
    server.close();
  });

  it("run after each socket's 'end' and 'close', before the next socket's", async () => {
    const { server, accepted, clients } = await connected();
    const ends = logged(clients, 'end');
    const closes = logged(clients, 'close');
    for (const s of accepted) s.end();
    await waitFor(() => closes.length === 3 * N, 'every close');
    expect(triples(ends)).toEqual(expected('end'));
    expect(triples(closes)).toEqual(expected('close'));
    server.close();
  });

  // Found by ws's own suite through the drop-in (2026-12-07, 'calls the callback if the socket is
  // closed prematurely', on mio): the FIN end() sends went out at once, where libuv's shutdown
  // waits for a later poll phase; with the peer in this process, its 'end' came before this
  // socket's 'close', before ws had told its send callbacks of the close.
  it("a socket that ends on the peer's bytes and FIN says 'close' before that peer hears its FIN", async () => {
    const log: string[] = [];
    const server = net.createServer(backend as nodeNet.ServerOpts, (s) => {
      s.on('end', () => log.push('server end'));
      s.on('close', () => log.push('server close'));
      s.end('hi');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const c = net.connect({ port: (server.address() as nodeNet.AddressInfo).port, host: '127.0.0.1', ...backend });
    c.on('data', (d) => log.push(`client data ${d}`));
    for (const event of ['end', 'finish', 'close']) c.on(event, () => log.push(`client ${event}`));
    await waitFor(() => log.length === 6, 'both close');
    expect(log).toEqual(['client data hi', 'client end', 'client finish', 'client close', 'server end', 'server close']);
    server.close();
  });

  // Found by a review (2026-12-07): on mio, where the FIN comes in the batch of the bytes and
  // 'end' waits for the closing phase, it came before the close callbacks of that phase; libuv
  // reads that FIN a loop turn later, after them.
  it("a socket whose peer's bytes and FIN come together says 'end' after the 'close' of a socket its 'data' listener destroyed", async () => {
    const log: string[] = [];
    const peers: nodeNet.Socket[] = [];
    const server = nodeNet.createServer((s) => peers.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as nodeNet.AddressInfo).port;
    const x = net.connect({ port, host: '127.0.0.1', ...backend });
    const y = net.connect({ port, host: '127.0.0.1', ...backend });
    y.on('close', () => log.push('Y close'));
    await Promise.all([once(x, 'connect'), once(y, 'connect')]);
    await waitFor(() => peers.length === 2, 'both accepted');
    peers[peers[0]!.remotePort === x.localPort ? 0 : 1]!.end('bytes and FIN');
    x.on('data', () => {
      log.push('X data');
      y.destroy();
    });
    x.on('end', () => log.push('X end'));
    await once(x, 'close');
    expect(log).toEqual(['X data', 'Y close', 'X end']);
    for (const p of peers) p.destroy();
    server.close();
  });

  // Found by reviews (2026-12-07): an 'end' that came with its bytes waited for the closing
  // phase of their turn, and stood for the next turn's read only in part: a 0 ms timer set in
  // 'data' came between that 'end' and its 'close' (3 of 8 runs on mio), and a timer set in
  // 'end' and due came before an immediate set there. libuv reads that FIN in the next turn's
  // poll phase: after that turn's timers, before its immediates.
  it("a socket whose peer's bytes and FIN come together: a 0 ms timer from its 'data' never comes between its 'end' and 'close'", async () => {
    const server = net.createServer(backend as nodeNet.ServerOpts, (s) => s.end('bytes and FIN'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as nodeNet.AddressInfo).port;
    const orders: string[] = [];
    for (let i = 0; i < 12; i++) {
      const log: string[] = [];
      const c = net.connect({ port, host: '127.0.0.1', ...backend });
      c.on('data', () => {
        log.push('data');
        setTimeout(() => log.push('timer'), 0);
      });
      c.on('end', () => log.push('end'));
      c.on('close', () => log.push('close'));
      await once(c, 'close');
      await waitFor(() => log.includes('timer'), 'the timer');
      orders.push(log.join());
    }
    expect(orders.filter((o) => !/end,close/.test(o))).toEqual([]);
    server.close();
  });

  // Found while fixing the above (2026-12-07): after this end's own FIN the peer's makes a
  // hang-up (POLLHUP), and libuv before 1.52 (Node 20, 22) reads that EOF in the read callback
  // of the bytes: node:net says 'end' before what 'data' queued for an immediate; the drop-in
  // waited a turn (and select read the FIN only in the next turn). Node 24's, a turn later.
  const hangUp = uvFrom(52) ? 'data,immediate,end' : 'data,end,immediate';
  it(`a socket that ended first, whose peer's bytes and FIN come together: ${hangUp}`, async () => {
    const server = net.createServer({ allowHalfOpen: true, ...backend }, (s) => {
      s.resume();
      s.on('end', () => setTimeout(() => s.end('reply'), 5));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as nodeNet.AddressInfo).port;
    const orders: string[] = [];
    for (let i = 0; i < 8; i++) {
      const log: string[] = [];
      const c = net.connect({ port, host: '127.0.0.1', ...backend }, () => c.end('request'));
      c.on('data', () => {
        log.push('data');
        setImmediate(() => log.push('immediate'));
      });
      c.on('end', () => log.push('end'));
      await once(c, 'close');
      orders.push(log.join());
    }
    expect(orders).toEqual(Array(8).fill(hangUp));
    server.close();
  });

  // Found by a hunt (2026-12-07): a socket destroyed while its 'end' waited for the next turn's
  // read, and connected again from 'close' (or an immediate), got that old 'end' on its new
  // connection: a bogus 'end', and the new bytes lost (5 of 5 runs on mio and poll).
  it.each(["'close'", 'an immediate'])("connected again from %s after bytes and FIN came together: the new connection's bytes, no old 'end'", async (from) => {
    const first = net.createServer(backend as nodeNet.ServerOpts, (s) => s.on('error', () => {}).end('hello'));
    const second = net.createServer(backend as nodeNet.ServerOpts, (s) => s.on('error', () => {}).write('second'));
    for (const server of [first, second]) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const portOf = (server: nodeNet.Server) => (server.address() as nodeNet.AddressInfo).port;
    const log: string[] = [];
    const c = net.connect({ port: portOf(first), host: '127.0.0.1', ...backend });
    c.on('data', (d) => {
      log.push(`data ${d}`);
      if (log.length > 1) return;
      const again = () => c.connect(portOf(second), '127.0.0.1');
      if (from === "'close'") c.once('close', again);
      setImmediate(() => {
        c.destroy();
        if (from === 'an immediate') again();
      });
    });
    c.on('end', () => log.push('end'));
    c.on('error', (err: NodeJS.ErrnoException) => log.push(`error ${err.code}`));
    await waitFor(() => log.some((e) => e === 'data second' || e.startsWith('error')), 'the bytes of the new connection');
    expect(log).toEqual(['data hello', 'data second']);
    c.destroy();
    for (const server of [first, second]) await new Promise((resolve) => server.close(resolve));
  });

  // Found by a review (2026-12-07): the rest of that read went on to the new connection.
  it("connected again from its first 'data' of a 100 000-byte read: no byte of the old connection on the new one", async () => {
    // The first connection is reset (closed over bytes it did not read), as node:net's.
    const first = net.createServer(backend as nodeNet.ServerOpts, (s) => s.on('error', () => {}).end(Buffer.alloc(100_000, 'o')));
    const second = net.createServer(backend as nodeNet.ServerOpts, (s) => s.on('error', () => {}).write('n'));
    for (const server of [first, second]) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const log: string[] = [];
    const c = net.connect({ port: (first.address() as nodeNet.AddressInfo).port, host: '127.0.0.1', ...backend });
    c.on('data', (d: Buffer) => {
      log.push(String.fromCharCode(d[0]));
      if (log.length === 1) c.destroy().connect((second.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    });
    c.on('error', (err: NodeJS.ErrnoException) => log.push(`error ${err.code}`));
    await waitFor(() => log.includes('n') || log.some((e) => e.startsWith('error')), 'the bytes of the new connection');
    expect(log).toEqual(['o', 'n']);
    c.destroy();
    for (const server of [first, second]) await new Promise((resolve) => server.close(resolve));
  });

  // Found by a review (2026-12-07): a Unix-domain peer that closed, or a peer's reset behind its
  // FIN, is a hang-up too (both directions shut): on Node 20 and 22 node:net says 'end' with the
  // bytes, and a write from an immediate fails in its callback alone; the drop-in keyed the
  // hang-up on its own FIN, said 'end' a turn later, and the write met EPIPE first: an 'error',
  // and no 'end'. (Not select: it tells no hang-up, see README, Backends.)
  const closedPeer = uvFrom(52) ? 'data,immediate,write EPIPE,error EPIPE,close' : 'data,end,immediate,write EPIPE,close';
  it.skipIf(which === 'select').each(['a Unix-domain peer that closed', "a peer's reset behind its FIN"])(
    `bytes then %s, read by a resumed socket: ${closedPeer}`,
    async (peerMove) => {
      const unix = peerMove.startsWith('a Unix');
      const log: string[] = [];
      let accepted: nodeNet.Socket | undefined;
      // Not read till the peer is gone: one read finds the bytes, the FIN and the hang-up.
      const server = net.createServer({ pauseOnConnect: true, ...backend } as nodeNet.ServerOpts, (s) => {
        accepted = s;
        s.on('data', () => {
          log.push('data');
          setImmediate(() => {
            log.push('immediate');
            s.write('x', (err) => log.push(`write ${(err as NodeJS.ErrnoException | null | undefined)?.code}`));
          });
        });
        s.on('end', () => log.push('end'));
        s.on('error', (err: NodeJS.ErrnoException) => log.push(`error ${err.code}`));
        s.on('close', () => log.push('close'));
      });
      const at = path.join(os.tmpdir(), `muxnet-hang-up-${process.pid}-${which}`);
      await new Promise<void>((resolve) => (unix ? server.listen(at, resolve) : server.listen(0, '127.0.0.1', resolve)));
      const peer = unix ? nodeNet.connect(at) : nodeNet.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1');
      peer.on('error', () => {});
      peer.on('connect', () => peer.end('bytes', () => (unix ? peer.destroy() : peer.resetAndDestroy())));
      await once(peer, 'close');
      await waitFor(() => accepted !== undefined, 'the connection');
      accepted!.resume();
      // (once() would reject on the 'error' of Node 24's.)
      await waitFor(() => log.includes('close'), "the socket's close");
      expect(log.join()).toBe(closedPeer);
      await new Promise((resolve) => server.close(resolve));
    },
  );

  // Found while fixing the above: the rest of a read held for a socket paused in its first
  // 'data' kept its EOF, not that it came in a hang-up, and said 'end' a turn late once resumed.
  it.skipIf(which === 'select')("a Unix-domain peer that sent 100 000 bytes and closed, read by a socket paused in its first 'data' and resumed: 'end' with the rest of the bytes", async () => {
    const log: string[] = [];
    let accepted: nodeNet.Socket | undefined;
    const server = net.createServer(backend as nodeNet.ServerOpts, (s) => {
      accepted = s;
      s.once('data', () => s.pause());
      s.on('data', () => {
        log.push('data');
        setImmediate(() => log.push('immediate'));
      });
      s.on('end', () => log.push('end'));
      s.on('close', () => log.push('close'));
    });
    const at = path.join(os.tmpdir(), `muxnet-held-hang-up-${process.pid}-${which}`);
    await new Promise<void>((resolve) => server.listen(at, resolve));
    const peer = nodeNet.connect(at, () => peer.end(Buffer.alloc(100_000, 1), () => peer.destroy()));
    await once(peer, 'close');
    await waitFor(() => log.length > 1, 'the first bytes');
    accepted!.resume();
    await waitFor(() => log.includes('close'), "the socket's close");
    expect(log.join()).toBe('data,immediate,data,end,immediate,close');
    await new Promise((resolve) => server.close(resolve));
  });

  // Found by a review (2026-12-07): that 'end' came after the events of the next turn's whole
  // batch; libuv reads that FIN in the poll phase, before a socket that became ready later.
  it("an 'end' that came with its bytes comes before the bytes another socket got while the first 'data' listener ran", async () => {
    const log: string[] = [];
    let accepted = 0;
    let b: nodeNet.Socket | undefined;
    const server = net.createServer(backend as nodeNet.ServerOpts, (s) => {
      const name = accepted++ === 0 ? 'A' : 'B';
      s.on('data', () => {
        log.push(`data ${name}`);
        if (name !== 'A') return;
        b!.write('B');
        const until = Date.now() + 30;
        while (Date.now() < until);
      });
      s.on('end', () => log.push(`end ${name}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as nodeNet.AddressInfo).port;
    const a = nodeNet.connect(port, '127.0.0.1').on('data', () => {});
    await waitFor(() => accepted === 1, 'A accepted');
    b = nodeNet.connect(port, '127.0.0.1').on('data', () => {});
    await waitFor(() => accepted === 2, 'B accepted');
    a.end('A');
    await waitFor(() => log.length === 3, "A's bytes and end, B's bytes");
    expect(log).toEqual(['data A', 'end A', 'data B']);
    a.destroy();
    b.destroy();
    server.close();
  });

  it("an allowHalfOpen socket whose peer's bytes and FIN come together: an immediate its 'end' listener sets runs before a timer it sets that is due", async () => {
    const orders: string[] = [];
    const server = net.createServer({ allowHalfOpen: true, ...backend }, (s) => {
      const log: string[] = [];
      // Closed once both ran (a fixed delay ran out before the 'end' on a loaded machine).
      const push = (what: string) => log.push(what) === 2 && s.destroy();
      s.resume();
      s.on('end', () => {
        setImmediate(() => push('immediate'));
        setTimeout(() => push('timer'), 0);
        const until = Date.now() + 3;
        while (Date.now() < until);
      });
      s.on('close', () => void orders.push(log.join()));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as nodeNet.AddressInfo).port;
    for (let i = 0; i < 5; i++) {
      const c = nodeNet.connect(port, '127.0.0.1', () => c.end('bytes and FIN'));
      c.resume();
      await once(c, 'close');
    }
    await waitFor(() => orders.length === 5, 'every close');
    expect(orders).toEqual(Array(5).fill('immediate,timer'));
    server.close();
  });

  // Found by a review (2026-12-07): end()'s shutdown waited for an immediate, so one queued before
  // end() came first (its destroy() failed end's callback with ERR_STREAM_DESTROYED, no 'finish').
  // libuv runs the shutdown from its pending queue, after the poll phase, before the immediates.
  // And (a review, 2026-12-07) from a timer long after an 'end' that came with its bytes: that
  // 'end' stands for the next turn's read only until that turn's immediates.
  const LATE = "a timer, long after the peer's bytes and FIN came together";
  it.each(['a timer', "a socket's 'data'", LATE])("end() from %s: its callback and 'finish' come before an immediate queued before it, which finds the stream finished", async (from) => {
    const log: string[] = [];
    const server = net.createServer(backend as nodeNet.ServerOpts, (s) => {
      s.on('end', () => log.push('server end'));
      s.resume();
      if (from === LATE) s.end('x');
      else if (from !== 'a timer') s.write('x');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const c = net.connect({ port: (server.address() as nodeNet.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: from === LATE, ...backend });
    const end = () => {
      setImmediate(() => {
        log.push(`immediate, finished ${c.writableFinished}`);
        c.destroy();
      });
      c.end((err?: Error | null) => log.push(`end ${(err as NodeJS.ErrnoException | null | undefined)?.code ?? 'ok'}`));
    };
    c.on('finish', () => log.push('finish'));
    if (from === 'a timer') c.once('connect', () => setTimeout(end, 10));
    else if (from === LATE) c.on('data', () => {}).once('end', () => setTimeout(end, 10));
    else c.once('data', end);
    await once(c, 'close');
    await waitFor(() => log.includes('server end'), 'the server hears the FIN');
    expect(log.filter((e) => e !== 'server end')).toEqual(['end ok', 'finish', 'immediate, finished true']);
    server.close();
  });

  // Found by reviews (2026-12-07): the batch's pending rounds and the check handle's made 8
  // each in one turn; libuv makes 8 after its poll phase, then runs the immediates. And an
  // 'end' that came with its bytes (a read a turn late) took one of those 8.
  it.each(["'data'", "an 'end' that came with its bytes"])("end() callbacks that each end the next socket, from %s: 8 rounds after the poll phase, then the immediates", async (from) => {
    const K = 10;
    const accepted: nodeNet.Socket[] = [];
    const server = net.createServer({ allowHalfOpen: true, ...backend }, (s) => {
      s.resume();
      accepted.push(s);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as nodeNet.AddressInfo).port;
    const clients = Array.from({ length: K }, () => net.connect({ port, host: '127.0.0.1', allowHalfOpen: true, ...backend }).on('data', () => {}));
    await waitFor(() => accepted.length === K, 'every connection');
    const log: string[] = [];
    const endFrom = (i: number): void => {
      if (i === K) return;
      accepted[i].end((err?: Error | null) => {
        log.push(`end${i + 1}${err ? ` ${(err as NodeJS.ErrnoException).code}` : ''}`);
        endFrom(i + 1);
      });
    };
    accepted[0].once(from === "'data'" ? 'data' : 'end', () => {
      setImmediate(() => {
        log.push('immediate');
        for (const s of accepted) s.destroy();
      });
      endFrom(0);
    });
    if (from === "'data'") clients[0].write('x');
    else clients[0].end('x');
    await waitFor(() => log.includes('immediate') && log.length >= 10, 'the end callbacks and the immediate');
    expect(log).toEqual([...Array.from({ length: 8 }, (_, i) => `end${i + 1}`), 'immediate', 'end9 ERR_STREAM_DESTROYED']);
    for (const c of clients) c.destroy();
    server.close();
  });

  // Found by a review (2026-12-07): end()'s FIN and 'finish' came on the next tick, before the
  // promise jobs of the code that called end() and before the other timers due in the phase;
  // libuv's pending queue runs after them (an async listener awaiting 'finish' waited forever).
  it("end() in an async 'data' listener that awaits a promise, then 'finish': it hears it", async () => {
    let heard: Promise<string> | undefined;
    const server = net.createServer(backend as nodeNet.ServerOpts, (s) => {
      s.once('data', () => {
        heard = (async () => {
          s.end('bye');
          await Promise.resolve();
          return Promise.race([once(s, 'finish').then(() => 'finish'), sleep(1000).then(() => 'no finish')]);
        })();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const c = nodeNet.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1', () => c.write('hi'));
    c.resume();
    await waitFor(() => heard !== undefined, "the server's 'data'");
    expect(await heard).toBe('finish');
    c.destroy();
    server.close();
  });

  it.each(['a timer', "a socket's 'data'"])("end(cb) from %s, then destroy() in a promise job: the callback gets ERR_STREAM_DESTROYED, no 'finish'", async (from) => {
    const log: string[] = [];
    const server = net.createServer(backend as nodeNet.ServerOpts, (s) => {
      s.resume();
      if (from !== 'a timer') s.write('x');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const c = net.connect({ port: (server.address() as nodeNet.AddressInfo).port, host: '127.0.0.1', ...backend });
    c.on('error', (err: NodeJS.ErrnoException) => log.push(`error ${err.code}`));
    c.on('finish', () => log.push('finish'));
    const end = async () => {
      c.end((err?: Error | null) => log.push(`end ${(err as NodeJS.ErrnoException | null | undefined)?.code ?? 'ok'}`));
      await null;
      c.destroy();
    };
    if (from === 'a timer') c.once('connect', () => setTimeout(end, 10));
    else c.once('data', end);
    await once(c, 'close');
    expect(log).toEqual(['end ERR_STREAM_DESTROYED']);
    server.close();
  });

  // Found by a review (2026-12-07): an end() from another handle's callback (zlib, fs, a child's
  // 'exit', a worker's message), or from another socket's end() callback, completed a loop turn
  // late, after the immediates (a destroy() queued there failed it); from a timer, after the fs
  // callbacks of the next poll phase. libuv runs its pending queue after the poll phase (up to 8
  // rounds) and before it: the drop-in calls for the shutdown there.
  it("end(cb) from a zlib callback, destroy() in an immediate queued after it: the FIN went first, the callback is ok, 'finish' comes", async () => {
    const { server, accepted } = await connected();
    const s = accepted[0];
    const seen: string[] = [];
    s.on('finish', () => seen.push('finish'));
    gzip('x', () => {
      s.end('bye', (err?: Error | null) => seen.push((err as NodeJS.ErrnoException | null | undefined)?.code ?? 'ok'));
      setImmediate(() => s.destroy());
    });
    await once(s, 'close');
    expect(seen).toEqual(['ok', 'finish']);
    server.close();
  });

  it("end(cb) from another socket's end() callback that came from its 'data', destroy() in an immediate queued after it: the callback is ok, 'finish' comes", async () => {
    const { server, accepted, clients } = await connected();
    const [a, b] = accepted;
    const seen: string[] = [];
    b.on('finish', () => seen.push('finish'));
    a.once('data', () =>
      a.end(() => {
        b.end('bye', (err?: Error | null) => seen.push((err as NodeJS.ErrnoException | null | undefined)?.code ?? 'ok'));
        setImmediate(() => b.destroy());
      }),
    );
    clients[0].write('go');
    await once(b, 'close');
    expect(seen).toEqual(['ok', 'finish']);
    server.close();
  });

  it('end(cb) from a timer that waited out an fs call it made: the callback comes before the fs callback, in the next turn before its poll phase', async () => {
    const { server, accepted } = await connected();
    const seen: string[] = [];
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        stat(__filename, () => seen.push('fs'));
        const until = Date.now() + 30;
        while (Date.now() < until);
        accepted[0].end(() => seen.push('end'));
        setTimeout(resolve, 100);
      }, 1),
    );
    expect(seen).toEqual(['end', 'fs']);
    server.close();
  });

  it("end() from a timer: its callback and 'finish' come after the ticks and promise jobs queued after it and a timer due with it, before an immediate", async () => {
    const log: string[] = [];
    const server = net.createServer(backend as nodeNet.ServerOpts, (s) => s.resume());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const c = net.connect({ port: (server.address() as nodeNet.AddressInfo).port, host: '127.0.0.1', ...backend });
    await once(c, 'connect');
    const startOf = (t: NodeJS.Timeout) => (t as unknown as { _idleStart: number })._idleStart;
    for (let attempt = 0; ; attempt++) {
      // Two timers of 1 ms set together: due in one timers phase, if they got the same start
      // (Node reads the clock afresh for each: on a loaded machine a millisecond may pass
      // between them, seen once in a dry run; the second is then a phase late: set them again).
      const together = await new Promise<boolean>((resolve) => {
        const first = setTimeout(() => {
          setImmediate(() => {
            log.push('immediate');
            resolve(true);
          });
          c.end(() => log.push('end'));
          c.on('finish', () => log.push('finish'));
          process.nextTick(() => log.push('tick'));
          void Promise.resolve().then(() => log.push('promise'));
        }, 1);
        const second = setTimeout(() => log.push('timer'), 1);
        if (startOf(first) === startOf(second)) return;
        clearTimeout(first);
        clearTimeout(second);
        resolve(false);
      });
      if (together) break;
      expect(attempt, 'two timers set together with one start').toBeLessThan(20);
    }
    expect(log).toEqual(['tick', 'promise', 'timer', 'end', 'finish', 'immediate']);
    c.destroy();
    server.close();
  });

  // Found by a review (2026-12-06): libuv runs a turn's close callbacks last-closed-first
  // (`uv_close` pushes each handle onto the head of its closing list); muxnet ran them in the
  // order the sockets were destroyed.
  it("sockets destroyed in one turn say 'close' last to first, after the turn's immediates, each after its own cancelled write", async () => {
    const { server, accepted, clients } = await connected();
    for (const s of accepted) s.pause().on('error', () => {});
    const log: string[] = [];
    clients.forEach((c, i) => {
      // More than the kernel takes from a peer that reads nothing: a write in flight at the destroy.
      c.write(Buffer.alloc(8 << 20), (err) => log.push(`write${i} ${(err as NodeJS.ErrnoException | null)?.code ?? 'ok'}`));
      c.on('close', () => {
        log.push(`close${i}`);
        process.nextTick(() => log.push(`tick${i}`));
      });
    });
    await waitFor(() => clients.every((c) => c.writableLength > 0), 'every write waits on the peer');
    for (const c of clients) c.destroy();
    setImmediate(() => log.push('immediate'));
    await waitFor(() => log.length === 1 + 3 * N, 'every close');
    const cancelled = nodeFrom([22, 9]) ? 'ECANCELED' : 'ok';
    const closes = Array.from({ length: N }, (_, k) => N - 1 - k).flatMap((i) => [`write${i} ${cancelled}`, `close${i}`, `tick${i}`]);
    expect(log).toEqual(['immediate', ...closes]);
    server.close();
  });

  // Found by a review (2026-12-06): accepted connections had no async context of their own, their
  // events ran in the reactor's, so a store one connection's listener entered (enterWith, as
  // request-context libraries do) reached the other connections' events: on Node 20 for good.
  it("a store one accepted connection's listener enters stays in that connection: the others' events see none, in that turn and later", async () => {
    const als = new AsyncLocalStorage<number>();
    const { server, accepted, clients } = await connected();
    const seen: string[] = [];
    accepted.forEach((s, i) =>
      s.on('data', () => {
        seen.push(`${i} ${als.getStore()}`);
        if (i === 0) als.enterWith(0);
      }),
    );
    for (const round of [0, 1]) {
      for (const c of clients) c.write('x');
      await waitFor(() => seen.length === N * (round + 1), 'every socket reads');
    }
    // (Socket 0's own next event: its store on Node 20, none from Node 24 on, whose stores end with the callback.)
    const others = Array.from({ length: N - 1 }, (_, i) => `${i + 1} undefined`);
    expect(seen.filter((e) => !e.startsWith('0 ')).sort()).toEqual([...others, ...others].sort());
    for (const c of clients) c.destroy();
    server.close();
  });

  // Found by a review of the change above: the shutdown's completion ('finish') came on a tick,
  // which now ran between the batch's events, so a socket ended by another's listener finished
  // (and destroySoon() destroyed it) before its own bytes of that turn were handed out: lost.
  it("a socket that another's listener ends (destroySoon) still gets the bytes that came in the same turn, and 'finish' after them", async () => {
    const { server, accepted, clients } = await connected();
    const log: string[] = [];
    let first = true;
    clients.forEach((c, i) => {
      c.on('data', (d) => {
        log.push(`data${i} ${d}`);
        if (!first) return;
        first = false;
        for (const other of clients) if (other !== c) other.destroySoon();
      });
      c.on('finish', () => log.push(`finish${i}`));
      c.on('close', () => log.push(`close${i}`));
    });
    for (const s of accepted) s.write('x');
    await waitFor(() => log.filter((e) => e.startsWith('close')).length === N - 1, 'the ended sockets close');
    expect(log.filter((e) => e.startsWith('data')).sort()).toEqual(Array.from({ length: N }, (_, i) => `data${i} x`));
    for (let i = 0; i < N; i++) if (log.includes(`finish${i}`)) expect(log.indexOf(`finish${i}`)).toBeGreaterThan(log.indexOf(`data${i} x`));
    for (const c of clients) c.destroy();
    server.close();
  });
});

describe.each(BACKENDS)('the drop-in on %s, reading what a paused socket can take', (backend) => {
  it('a flowing socket reads the full turn: with a MiB waiting in the kernel, a read takes more than 64 KiB', async () => {
    let accepted!: nodeNet.Socket;
    const srv = muxnet.createServer({ backend, pauseOnConnect: true } as nodeNet.ServerOpts, (s) => (accepted = s));
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const sent = randomBytes(1 << 20);
    const c = nodeNet.connect((srv.address() as nodeNet.AddressInfo).port, '127.0.0.1', () => c.end(sent));
    c.on('error', () => {});
    await waitFor(() => accepted !== undefined && c.writableFinished, 'the MiB in the kernel');
    const before = stats(backend).reads;
    const chunks: Buffer[] = [];
    accepted.on('data', (d: Buffer) => chunks.push(d)).resume();
    await once(accepted, 'end');
    const after = stats(backend).reads;
    expect(Buffer.concat(chunks).equals(sent)).toBe(true);
    expect((after.bytes - before.bytes) / (after.calls - before.calls)).toBeGreaterThan(64 * 1024);
    accepted.destroy();
    srv.close();
  });

  it('a socket paused as it connects reads no more from the kernel than its buffer takes (one 64 KiB read past the mark), then all of the MiB once resumed', async () => {
    let accepted!: nodeNet.Socket;
    const srv = muxnet.createServer({ backend } as nodeNet.ServerOpts, (s) => {
      accepted = s;
      s.pause();
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const before = stats(backend).reads.bytes;
    const sent = randomBytes(1 << 20);
    const c = nodeNet.connect((srv.address() as nodeNet.AddressInfo).port, '127.0.0.1', () => c.end(sent));
    c.on('error', () => {});
    await waitFor(() => accepted !== undefined && accepted.readableLength >= accepted.readableHighWaterMark, 'the buffer full');
    await sleep(200);
    const read = stats(backend).reads.bytes - before;
    // Nothing read is held out of the stream's sight: the rest waits in the kernel, as libuv leaves it.
    expect(read).toBe(accepted.readableLength);
    expect(read).toBeLessThanOrEqual(accepted.readableHighWaterMark + 64 * 1024);
    const chunks: Buffer[] = [];
    accepted.on('data', (d: Buffer) => chunks.push(d)).resume();
    await once(accepted, 'end');
    expect(Buffer.concat(chunks).equals(sent)).toBe(true);
    accepted.destroy();
    srv.close();
  });
});

// Found by a review (2026-12-07): the drop-in handed a write over 1 MiB to the kernel 1 MiB at a
// time, a turn each, where libuv makes one writev of it all in the call: write(2 MiB); destroy()
// delivered 1 MiB of it, write(1 MiB + 1) returned false and said 'drain', and each piece
// restarted the idle timer, so 'timeout' never came during a long write to a slow reader.
describe.each([['node:net', undefined] as const, ...BACKENDS.map((b) => ['muxnet', b] as const)])('one write() of more than 1 MiB (%s %s)', (impl, backend) => {
  const net = (impl === 'node:net' ? nodeNet : muxnet) as typeof nodeNet;
  /** A connection to a node:net server whose accepted socket is `peer`. */
  async function pair(onPeer: (peer: nodeNet.Socket) => void): Promise<{ c: nodeNet.Socket; srv: nodeNet.Server }> {
    const srv = nodeNet.createServer(onPeer);
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const c = net.connect({ port: (srv.address() as nodeNet.AddressInfo).port, host: '127.0.0.1', backend } as nodeNet.NetConnectOpts);
    await once(c, 'connect');
    return { c, srv };
  }

  it("1 MiB + 1 byte to a reading peer: the kernel takes it in the call (write() is true, no 'drain', the callback before an immediate)", async () => {
    const n = native.WRITE_TURN + 1;
    let got = 0;
    const { c, srv } = await pair((s) => s.on('data', (d: Buffer) => (got += d.length)));
    const seen: string[] = [];
    c.on('drain', () => seen.push('drain'));
    seen.push(`write ${c.write(Buffer.alloc(n, 1), () => seen.push('callback'))}, ${c.writableLength} left`);
    await new Promise((resolve) => setImmediate(resolve));
    seen.push('immediate');
    await waitFor(() => got === n, 'the peer read it all');
    expect(seen).toEqual(['write true, 0 left', 'callback', 'immediate']);
    c.destroy();
    srv.close();
  });

  it('write(3 MB), then destroy(): the peer gets every byte the kernel took in the call, all of them', async () => {
    const n = 3_000_000;
    let got = 0;
    let closed: Promise<unknown> | undefined;
    const { c, srv } = await pair((s) => (closed = once(s.on('data', (d: Buffer) => (got += d.length)), 'close')));
    c.write(Buffer.alloc(n, 1));
    c.destroy();
    await waitFor(() => closed !== undefined, 'accepted');
    await closed;
    expect(got).toBe(n);
    srv.close();
  });

  it("setTimeout(300) while 8 MiB go to a peer reading once every 20 ms: 'timeout' comes during the write", async () => {
    const n = 8 << 20;
    const { c, srv } = await pair((s) =>
      s.on('data', () => {
        s.pause();
        setTimeout(() => s.resume(), 20);
      }),
    );
    const seen: string[] = [];
    c.setTimeout(300, () => seen.push('timeout'));
    c.write(Buffer.alloc(n, 1), () => seen.push('callback'));
    await waitFor(() => seen.includes('callback'), 'the write done', 20_000);
    expect(seen[0]).toBe('timeout');
    c.destroy();
    srv.close();
  });
});

describe.each(BACKENDS)('the drop-in on %s, one write() of more than a turn writes', (backend) => {
  // Found by a hunt (2026-12-07): one write() of 1 GiB to a peer reading as fast spent its whole
  // transfer in the call (0.5–3 s; node:net's returns after one write(2)), and to a slower peer
  // copied what the kernel did not take into the reactor's queue. It goes a turn's bytes at a time.
  it("64 MiB to a peer not reading: the reactor queues at most a turn's bytes, not a copy of the rest; once it reads, every byte comes in order and the callback once", async () => {
    let accepted: nodeNet.Socket | undefined;
    const srv = nodeNet.createServer({ pauseOnConnect: true }, (s) => (accepted = s));
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const c = muxnet.connect({ port: (srv.address() as nodeNet.AddressInfo).port, host: '127.0.0.1', backend } as nodeNet.NetConnectOpts);
    await once(c, 'connect');
    await waitFor(() => accepted !== undefined, 'accepted');
    const sent = randomBytes(64 << 20);
    const calls: string[] = [];
    const before = stats(backend).queuedBytes;
    c.write(sent, (err) => calls.push((err as NodeJS.ErrnoException | null | undefined)?.code ?? 'ok'));
    expect(stats(backend).queuedBytes - before).toBeLessThanOrEqual(native.WRITE_TURN);
    c.end('tail');
    const chunks: Buffer[] = [];
    accepted!.on('data', (d: Buffer) => chunks.push(d)).resume();
    await Promise.all([once(accepted!, 'end'), once(c, 'close')]);
    expect(Buffer.concat(chunks).equals(Buffer.concat([sent, Buffer.from('tail')]))).toBe(true);
    expect(calls).toEqual(['ok']);
    srv.close();
  });
});

// Found 2026-12-06 (a hunt): `MUXNET_BACKEND=` (set, empty: a shell's `VAR= cmd`, a CI matrix's
// blank cell) made every listen and connect throw ERR_INVALID_ARG_VALUE; empty is unset now.
describe('MUXNET_BACKEND', () => {
  it('empty is unset: the default backend', () => {
    const dist = path.join(__dirname, '..', '..', 'dist', 'net', 'index.js');
    const script = `const s = require(${JSON.stringify(dist)}).createServer().listen(0, '127.0.0.1', () => { console.log('listening'); s.close(); });`;
    const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, MUXNET_BACKEND: '' }, encoding: 'utf8', timeout: 20_000 });
    expect(out.trim()).toBe('listening');
  });
});

// Found by hot-shots' own suite through the drop-in (2026-12-07): sinon's fake timers replace
// process.nextTick, and their restore() drops what was queued on it. The tick that ends the
// reactor's batch was among it, and every later datagram of the process stayed queued. node:net
// and node:dgram never call the globals; the drop-in now keeps to the real ones as well.
describe.each([['node:net', undefined] as const, ...BACKENDS.map((b) => ['muxnet', b] as const)])('with the globals faked: %s %s', (impl, backend) => {
  const net = impl === 'node:net' ? nodeNet : (muxnet as unknown as Net);
  const options = backend === undefined ? {} : { backend };

  /** `setImmediate` and `setTimeout` (as a fake clock's) dropping what they are given from the call of `start` till what it returns resolves. */
  async function droppingTimers(start: () => Promise<unknown>): Promise<void> {
    const real = { setImmediate: globalThis.setImmediate, setTimeout: globalThis.setTimeout };
    Object.assign(globalThis, { setImmediate: () => undefined, setTimeout: () => undefined });
    try {
      await start();
    } finally {
      Object.assign(globalThis, real);
    }
  }

  it('a datagram that comes while process.nextTick drops what it is given leaves the later sends working (test/fixtures/dropped-ticks.js; built dist)', () => {
    // In a process of its own: the ticks dropped there are the test runner's too.
    const fixture = path.join(__dirname, '..', 'fixtures', 'dropped-ticks.js');
    const out = execFileSync(process.execPath, [fixture, impl === 'node:net' ? 'node:dgram' : 'muxnet'], { env: { ...process.env, MUXNET_BACKEND: backend ?? '' }, encoding: 'utf8', timeout: 20_000 });
    expect(out.trim()).toBe('second');
  });

  // Found by a review (2026-12-07): fakes on the globals before the module loaded were what it
  // kept (vitest's vi.useFakeTimers() in a setup file, jest's `fakeTimers`): no 'close', and
  // setTimeout() threw.
  it("with fake timers on the globals before it loads, a client's end() and 'close', its peer's end and an idle timeout come on real time (test/fixtures/faked-before-load.js; built dist)", () => {
    const fixture = path.join(__dirname, '..', 'fixtures', 'faked-before-load.js');
    const out = execFileSync(process.execPath, [fixture, impl], { env: { ...process.env, MUXNET_BACKEND: backend ?? '' }, encoding: 'utf8', timeout: 20_000 });
    expect(JSON.parse(out)).toEqual(['close', 'finish', 'peer data hi', 'peer end', 'peer end', 'timeout']);
  });

  it("end() while setImmediate and setTimeout drop what they are given still sends the FIN and finishes: the peer hears 'end'", async () => {
    let peerEnded!: Promise<unknown>;
    const server = net.createServer(options as nodeNet.ServerOpts, (s) => {
      peerEnded = once(s, 'end');
      s.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const c = net.connect({ port: (server.address() as nodeNet.AddressInfo).port, host: '127.0.0.1', ...options });
    await once(c, 'connect');
    await waitFor(() => peerEnded !== undefined, 'the server accepts');
    await droppingTimers(() => once(c.end(), 'finish'));
    await peerEnded;
    c.destroy();
    server.close();
  });
});
