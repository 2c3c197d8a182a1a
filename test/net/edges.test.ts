// Argument edges that Node's own tests found (test-pipe-abstract-socket,
// test-stream-base-typechecking), checked against node:net itself.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import nodeNet from 'node:net';
import { describe, expect, it } from 'vitest';
import * as muxnet from '../../src/net';
import { STRING_AS_BUFFER_REACHES_HANDLE } from '../../src/net/socket';

type Net = typeof nodeNet;

describe.each([
  ['node:net', nodeNet],
  ['muxnet', muxnet as unknown as Net],
])('%s', (_name, net) => {
  it.runIf(process.platform === 'linux').each([{ readableAll: true }, { writableAll: true }, { readableAll: true, writableAll: true }])(
    'refuses %o on an abstract socket path (no file to change), and listens on nothing',
    (modes) => {
      const server = net.createServer();
      const path = `\0muxnet-edges-${process.pid}`;
      expect(() => server.listen({ path, ...modes })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/can not set readableAll or writableAllt to true when path is abstract unix socket/) }),
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
});

describe.each([
  ['node:net', nodeNet],
  ['muxnet', muxnet as unknown as Net],
])('%s Socket.prototype', (_name, net) => {
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
