// One UDP scenario suite, run against node:dgram and muxnet/dgram on each backend.
import nodeDgram from 'node:dgram';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import * as muxnetDgram from '../src/dgram';

type Dgram = typeof nodeDgram;
const IMPLS: [string, Dgram, string | undefined][] = [
  ['node:dgram', nodeDgram, undefined],
  ['muxnet (mio)', muxnetDgram as unknown as Dgram, 'mio'],
  ['muxnet (poll)', muxnetDgram as unknown as Dgram, 'poll'],
  ['muxnet (select)', muxnetDgram as unknown as Dgram, 'select'],
];

describe.each(IMPLS)('%s', (_name, dgram, backend) => {
  const create = (type: 'udp4' | 'udp6') => dgram.createSocket({ type, backend } as nodeDgram.SocketOptions);
  const bound = async (s: nodeDgram.Socket, address: string) => {
    s.bind(0, address);
    await once(s, 'listening');
    return s.address().port;
  };

  it('binds, receives with rinfo, and answers every send() form', async () => {
    const server = create('udp4');
    const port = await bound(server, '127.0.0.1');
    expect(server.address()).toMatchObject({ address: '127.0.0.1', family: 'IPv4', port });
    const got: [string, nodeDgram.RemoteInfo][] = [];
    server.on('message', (msg, rinfo) => got.push([msg.toString(), rinfo]));
    const client = create('udp4');
    const sent = await new Promise<number | undefined>((r) => client.send('plain', port, '127.0.0.1', (_e, n) => r(n)));
    expect(sent).toBe(5);
    client.send(Buffer.from('xxsliceyy'), 2, 5, port, '127.0.0.1');
    client.send([Buffer.from('ar'), 'ray'], port, '127.0.0.1');
    await new Promise<void>((r) => {
      const check = () => (got.length >= 3 ? r() : setTimeout(check, 5));
      check();
    });
    expect(got.map(([m]) => m).sort()).toEqual(['array', 'plain', 'slice']);
    expect(got[0][1]).toMatchObject({ address: '127.0.0.1', family: 'IPv4', port: client.address().port, size: got[0][0].length });
    client.close();
    server.close();
  });

  it('connect() fixes the peer, disconnect() frees it', async () => {
    const server = create('udp4');
    const port = await bound(server, '127.0.0.1');
    const client = create('udp4');
    client.connect(port, '127.0.0.1');
    await once(client, 'connect');
    expect(client.remoteAddress()).toEqual({ address: '127.0.0.1', family: 'IPv4', port });
    const message = once(server, 'message');
    client.send('connected');
    expect(String((await message)[0])).toBe('connected');
    expect(() => client.send('x', port, '127.0.0.1', () => {})).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_IS_CONNECTED' }));
    client.disconnect();
    expect(() => client.remoteAddress()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' }));
    const again = once(server, 'message');
    client.send('after disconnect', port, '127.0.0.1');
    expect(String((await again)[0])).toBe('after disconnect');
    expect(() => client.disconnect()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' }));
    client.close();
    server.close();
  });

  it('works over IPv6 and emits close', async () => {
    const server = create('udp6');
    const port = await bound(server, '::1');
    server.on('message', (msg, rinfo) => server.send(msg, rinfo.port, rinfo.address));
    const client = create('udp6');
    await bound(client, '::1');
    const reply = once(client, 'message');
    client.send('six', port, '::1');
    const [msg, rinfo] = (await reply) as [Buffer, nodeDgram.RemoteInfo];
    expect([String(msg), rinfo.family, rinfo.port]).toEqual(['six', 'IPv6', port]);
    const closed = once(client, 'close');
    client.close();
    await closed;
    server.close();
  });

  it('errors like node:dgram', async () => {
    const first = create('udp4');
    const port = await bound(first, '127.0.0.1');
    const second = create('udp4');
    second.bind(port, '127.0.0.1');
    const [err] = (await once(second, 'error')) as [NodeJS.ErrnoException & { address: string; port: number }];
    expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', address: '127.0.0.1', port });
    expect(() => dgram.createSocket('udp5' as never)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_TYPE' }));
    const fresh = create('udp4');
    expect(() => fresh.address()).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'getsockname' }));
    expect(() => fresh.remoteAddress()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' }));
    first.close();
    second.close();
    fresh.close();
    expect(() => fresh.close()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }));
  });
});

it('muxnet/dgram throws ERR_MUXNET_UNSUPPORTED for what it lacks', () => {
  const s = muxnetDgram.createSocket('udp4');
  for (const call of [() => (s as unknown as nodeDgram.Socket).setBroadcast(true), () => (s as unknown as nodeDgram.Socket).addMembership('224.0.0.1')]) {
    expect(call).toThrow(expect.objectContaining({ code: 'ERR_MUXNET_UNSUPPORTED' }));
  }
  s.close();
});
