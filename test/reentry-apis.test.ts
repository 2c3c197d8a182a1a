// The higher APIs called from inside their own events and awaits:
// muxnet/async (leaving a for-await mid-stream, a read pending when the
// connection closes, two readers at once), muxnet/server (a throw, a
// close() inside setup, handle and finish), muxnet/client (close() inside
// 'open' and 'reconnecting', sends while reconnecting, a server that
// restarts mid-message) and muxnet/proxy (close() inside its own events,
// an upstream that resets as it connects, stats() while draining). Each
// checks the bytes, that every callback comes once, and the fds.
import { describe, expect, it } from 'vitest';
import { connect as connectAsync } from '../src/async';
import { listen, type Connection } from '../src/fast';
import { expectSocketFdsBack, pattern } from './helpers';

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
