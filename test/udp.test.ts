// UDP on the fast API, against node:dgram peers.
import dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { bind, stats, type RemoteInfo } from '../src/fast';
import { startEcho } from '../src/apps/echo';
import { BACKENDS, CAN_SPOOF_UDP, sendFromPortZero } from './helpers';

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
    // A bad argument is named first in any state, as node:dgram's send() does (found 2026-12-05).
    expect(() => sock.send(5 as never, 9)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => sock.send('x', 0)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT' }));
    expect(() => sock.send('x', 9, 5 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => sock.send('x', 9)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
  });

  it('pause() holds the datagrams in the kernel until resume(); reusePort shares a port', async () => {
    const got: string[] = [];
    const sock = bind({ port: 0, backend }, { onMessage: (msg) => got.push(msg.toString()) });
    // Another socket on the same reactor: once it hears its datagram, sent
    // last, the reactor has had a turn with the paused socket's ready too.
    let canaryHeard = false;
    const canary = bind({ port: 0, backend }, { onMessage: () => (canaryHeard = true) });
    const peer = await nodeSocket('udp4', '127.0.0.1');
    const send = (msg: string, port: number) => new Promise((r) => peer.send(msg, port, '127.0.0.1', r));
    sock.pause();
    await send('one', sock.address()!.port);
    await send('two', sock.address()!.port);
    await send('canary', canary.address()!.port);
    await expect.poll(() => canaryHeard).toBe(true);
    expect(got).toEqual([]);
    sock.resume();
    await expect.poll(() => got.length).toBe(2);
    expect(got).toEqual(['one', 'two']);
    peer.close();
    canary.close();
    sock.close();

    expect(() => bind({ port: 0, backend, reusePort: 'yes' as never }, {})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    // As libuv: SO_REUSEPORT only where the kernel spreads the datagrams; elsewhere ENOTSUP.
    if (process.platform !== 'linux' && process.platform !== 'freebsd') {
      expect(() => bind({ port: 0, backend, reusePort: true }, {})).toThrow(expect.objectContaining({ code: 'ENOTSUP', syscall: 'bind' }));
      return;
    }
    const first = bind({ port: 0, backend, reusePort: true }, {});
    const port = first.address()!.port;
    expect(() => bind({ port, backend }, {})).toThrow(expect.objectContaining({ code: 'EADDRINUSE', syscall: 'bind' }));
    const second = bind({ port, backend, reusePort: true }, {});
    expect(second.address()!.port).toBe(port);
    first.close();
    second.close();
  });

  // Added 2026-12-06 (a note's list): the fast API could not size its buffers, so a UDP server on
  // it (echo --udp) was held to the kernel's default.
  it.runIf(process.platform === 'linux')('recvBufferSize bounds what the kernel holds for a paused socket: a small one drops a burst the default holds; getters, setters, errors', async () => {
    const counts = { small: 0, large: 0 };
    let lastHeard = false;
    const small = bind({ port: 0, backend, recvBufferSize: 4096 }, { onMessage: (msg) => void (String(msg) === 'last' ? (lastHeard = true) : counts.small++) });
    const large = bind({ port: 0, backend }, { onMessage: () => void counts.large++ });
    // Linux doubles the figure for its bookkeeping.
    expect(small.getRecvBufferSize()).toBe(8192);
    expect(large.getRecvBufferSize()).toBeGreaterThan(64 * 1024);
    const peer = await nodeSocket('udp4', '127.0.0.1');
    const send = (msg: string | Buffer, port: number) => new Promise((r) => peer.send(msg, port, '127.0.0.1', r));
    small.pause();
    large.pause();
    for (let i = 0; i < 40; i++) {
      await send(Buffer.alloc(500, i), small.address()!.port);
      await send(Buffer.alloc(500, i), large.address()!.port);
    }
    small.resume();
    large.resume();
    await expect.poll(() => counts.large).toBe(40);
    // A socket's datagrams arrive in order: once this one is heard, the rest were read.
    await send('last', small.address()!.port);
    await expect.poll(() => lastHeard).toBe(true);
    expect(counts.small).toBeGreaterThan(0);
    expect(counts.small).toBeLessThan(40);

    small.setRecvBufferSize(16_384);
    expect(small.getRecvBufferSize()).toBe(32_768);
    small.setSendBufferSize(8192);
    expect(small.getSendBufferSize()).toBe(16_384);
    expect(() => small.setRecvBufferSize(-1)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_BUFFER_SIZE' }));
    expect(() => small.setSendBufferSize(1.5)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_BUFFER_SIZE' }));
    // Past what the kernel takes (i32): node:dgram's SystemError.
    expect(() => small.setRecvBufferSize(2 ** 31)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BUFFER_SIZE', info: expect.objectContaining({ code: 'EINVAL', syscall: 'uv_recv_buffer_size' }) }));
    expect(() => bind({ port: 0, backend, sendBufferSize: -1 }, {})).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    peer.close();
    large.close();
    small.close();
    expect(() => small.getRecvBufferSize()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }));
  });

  // Found by a hunt (2026-12-05): 'localhost' was 127.0.0.1 whatever the socket's family (ENETUNREACH here).
  it("on an IPv6 socket, 'localhost' and a connect() with no host name ::1, as no host does for send()", async () => {
    const sock = bind({ port: 0, host: '::1', backend }, {});
    const peer = await nodeSocket('udp6', '::1');
    const port = peer.address().port;
    const heard = (send: () => void) => {
      const got = nextMessage(peer);
      send();
      return got.then(([m, r]) => `${m} from ${r.address}`);
    };
    expect(await heard(() => sock.send('via localhost', port, 'localhost'))).toBe('via localhost from ::1');
    sock.connect(port);
    expect(sock.remoteAddress()).toMatchObject({ address: '::1', port });
    expect(await heard(() => sock.send('connected'))).toBe('connected from ::1');
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

  it('a burst larger than one receive batch, from three senders: each datagram heard whole with its sender, echoed in order', async () => {
    const PER_SENDER = 40;
    // Sizes 0 to 117 (empty datagrams too), filled with the sender and index.
    const datagram = (s: number, i: number) => Buffer.alloc((s * 7 + i * 3) % 118, `${s}:${i}|`);
    const heard: [number, Buffer][] = [];
    const sendResults: boolean[] = [];
    const sock = bind(
      { port: 0, host: '127.0.0.1', backend },
      {
        onMessage: (msg, rinfo, socket) => {
          expect(rinfo).toMatchObject({ address: '127.0.0.1', family: 'IPv4', size: msg.length });
          heard.push([rinfo.port, Buffer.from(msg)]);
          sendResults.push(socket.send(msg, rinfo.port, rinfo.address));
        },
      },
    );
    const port = sock.address()!.port;
    const peers = await Promise.all([0, 1, 2].map(() => nodeSocket('udp4', '127.0.0.1')));
    const before = stats(backend);
    const echoed: Buffer[][] = peers.map(() => []);
    peers.forEach((p, s) => p.on('message', (msg, rinfo) => rinfo.port === port && echoed[s].push(msg)));
    for (let i = 0; i < PER_SENDER; i++) peers.forEach((p, s) => p.send(datagram(s, i), port, '127.0.0.1'));
    await expect.poll(() => echoed.every((e) => e.length >= PER_SENDER)).toBe(true);
    peers.forEach((p, s) => {
      const mine = Array.from({ length: PER_SENDER }, (_, i) => datagram(s, i));
      expect(heard.filter(([from]) => from === p.address().port).map(([, d]) => d)).toEqual(mine);
      expect(echoed[s]).toEqual(mine);
    });
    expect(heard.length).toBe(3 * PER_SENDER);
    expect(sendResults).toEqual(heard.map(() => true));
    // The peers are node:dgram sockets: every datagram this reactor moved is this test's.
    const after = stats(backend);
    const bytes = heard.reduce((n, [, d]) => n + d.length, 0);
    expect([after.datagramsReceived - before.datagramsReceived, after.receives.bytes - before.receives.bytes]).toEqual([heard.length, bytes]);
    expect([after.datagramsSent - before.datagramsSent, after.sends.bytes - before.sends.bytes]).toEqual([heard.length, bytes]);
    // The burst was queued before the reactor's turn: on Linux, recvmmsg takes many per syscall.
    const calls = after.receives.calls - before.receives.calls;
    if (process.platform === 'linux') expect(calls).toBeLessThan(heard.length);
    else expect(calls).toBe(heard.length);
    peers.forEach((p) => p.close());
    sock.close();
  });

  it.runIf(CAN_SPOOF_UDP)('the UDP echo app lives on after a datagram from port 0 (forged: nobody can be answered there)', async () => {
    const echo = startEcho({ port: 0, host: '127.0.0.1', udp: true, backend });
    sendFromPortZero(echo.port, 'forged');
    await expect.poll(() => echo.stats.datagrams).toBe(1);
    const peer = await nodeSocket('udp4', '127.0.0.1');
    const reply = nextMessage(peer);
    peer.send('real', echo.port, '127.0.0.1');
    expect((await reply)[0].toString()).toBe('real');
    expect(echo.stats).toMatchObject({ datagrams: 2, dropped: 1 });
    peer.close();
    await echo.close();
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
