// UDP on the fast API, against node:dgram peers.
import dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { bind, type RemoteInfo } from '../src/fast';
import { startEcho } from '../src/apps/echo';
import { BACKENDS } from './helpers';

function nodeSocket(type: 'udp4' | 'udp6', address: string): Promise<dgram.Socket> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(type);
    s.bind(0, address, () => resolve(s));
  });
}

function nextMessage(s: dgram.Socket): Promise<[Buffer, dgram.RemoteInfo]> {
  return new Promise((resolve) => s.once('message', (m, r) => resolve([m, r])));
}

describe.each(BACKENDS)('UDP on %s', (backend) => {
  it('receives with the sender’s address and sends back', async () => {
    const got: [string, RemoteInfo][] = [];
    const sock = bind({ port: 0, backend }, { onMessage: (msg, rinfo) => got.push([msg.toString(), rinfo]) });
    const peer = await nodeSocket('udp4', '127.0.0.1');
    peer.send('hello', sock.address()!.port, '127.0.0.1');
    await expect.poll(() => got.length).toBe(1);
    expect(got[0]).toEqual(['hello', { address: '127.0.0.1', family: 'IPv4', port: peer.address().port, size: 5 }]);
    const reply = nextMessage(peer);
    expect(sock.send('back', peer.address().port, '127.0.0.1')).toBe(true);
    expect((await reply)[0].toString()).toBe('back');
    peer.close();
    sock.close();
  });

  it('connected UDP sends to its peer and hears only it', async () => {
    const got: string[] = [];
    const sock = bind({ port: 0, backend }, { onMessage: (msg) => got.push(msg.toString()) });
    const peer = await nodeSocket('udp4', '127.0.0.1');
    const stranger = await nodeSocket('udp4', '127.0.0.1');
    sock.connect(peer.address().port, '127.0.0.1');
    expect(sock.remoteAddress()).toMatchObject({ port: peer.address().port });
    const reply = nextMessage(peer);
    sock.send('to peer');
    expect((await reply)[0].toString()).toBe('to peer');
    stranger.send('ignored', sock.address()!.port, '127.0.0.1');
    peer.send('from peer', sock.address()!.port, '127.0.0.1');
    await expect.poll(() => got.length).toBe(1);
    expect(got).toEqual(['from peer']);
    peer.close();
    stranger.close();
    sock.close();
  });

  it('the UDP echo app answers over IPv6', async () => {
    const echo = startEcho({ port: 0, host: '::1', udp: true, backend });
    const peer = await nodeSocket('udp6', '::1');
    for (let i = 0; i < 20; i++) {
      const reply = nextMessage(peer);
      peer.send(`datagram ${i}`, echo.port, '::1');
      const [msg, rinfo] = await reply;
      expect(msg.toString()).toBe(`datagram ${i}`);
      expect(rinfo.port).toBe(echo.port);
    }
    expect(echo.stats.datagrams).toBe(20);
    peer.close();
    echo.close();
  });
});
