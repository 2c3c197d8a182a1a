// UDP under hostile conditions, muxnet/dgram beside node:dgram on each
// backend: a process out of fds, datagrams at the size limits, a connected
// peer whose port is closed and then opens, ten thousand sends in one tick,
// bursts bigger than a read slab into two sockets of one reactor, a close
// in the middle of such a burst, bind/close churn, ref/unref. No datagram
// reaches the wrong socket or carries the wrong rinfo, none is cut short,
// every send callback is called once, every fd is released.
import { execFile, spawn } from 'node:child_process';
import nodeDgram from 'node:dgram';
import { once } from 'node:events';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import * as muxnetDgram from '../src/dgram';
import { bind } from '../src/fast';
import { BACKENDS, backingBytes, sleep, socketFds, waitFor } from './helpers';

const run = promisify(execFile);
const fixture = (name: string) => path.join(__dirname, 'fixtures', name);

type Dgram = typeof nodeDgram;
type Socket = nodeDgram.Socket;

const IMPLS: [string, Dgram, string | undefined][] = [
  ['node:dgram', nodeDgram, undefined],
  ...BACKENDS.map((b): [string, Dgram, string] => [`muxnet (${b})`, muxnetDgram as unknown as Dgram, b]),
];

/** A send's outcome as its callback heard it: the bytes, or the error's code, syscall and message. */
const outcome = (err: Error | null, bytes?: number) => {
  if (!err) return bytes;
  const { code, syscall, message } = err as NodeJS.ErrnoException;
  return { code, syscall, message };
};

/** A port nothing listens on now (bound, then closed). */
async function closedPort(type: 'udp4' | 'udp6' = 'udp4'): Promise<number> {
  const probe = nodeDgram.createSocket(type);
  await new Promise<void>((r) => probe.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', r));
  const { port } = probe.address();
  await new Promise<void>((r) => probe.close(r));
  return port;
}

describe.each(IMPLS)('%s', (_name, dgram, backend) => {
  const create = (type: 'udp4' | 'udp6', options: Partial<nodeDgram.SocketOptions> = {}) =>
    dgram.createSocket({ type, backend, ...options } as nodeDgram.SocketOptions);
  const bound = async (s: Socket, address: string) => {
    s.bind(0, address);
    await once(s, 'listening');
    return s.address().port;
  };
  const impl = backend === undefined ? 'node' : 'muxnet';

  it.skipIf(process.platform !== 'linux').each(backend === 'select' ? ['a small ulimit -n', 'fds up to FD_SETSIZE'] : ['a small ulimit -n'])(
    'out of fds (%s): the first bind fails with bind EMFILE, the process lives, the socket binds once fds are free',
    async (how) => {
      // muxnet makes its reactor (an epoll fd, a pipe) on the first bind: no fd left for it is the bind's error too.
      const args = [fixture('dgram-no-fds.js'), impl, backend ?? 'mio'];
      const { stdout } =
        how === 'fds up to FD_SETSIZE'
          ? await run(process.execPath, [...args, '1024'], { timeout: 15_000 })
          : await run('sh', ['-c', 'ulimit -n 128 && exec "$0" "$@"', process.execPath, ...args, String(2 ** 30)], { timeout: 15_000 });
      expect(JSON.parse(stdout)).toEqual(['error EMFILE bind 127.0.0.1', 'listening', 'message hello', 'closed']);
    },
  );

  it.each([
    ['udp4', '127.0.0.1', [0, 1, 65_507, 65_508, 70_000]],
    ['udp6', '::1', [0, 1, 65_527, 65_528, 70_000]],
  ] as const)('%s datagrams at the size limits, sent from plain code and from a handler: each whole or EMSGSIZE', async (type, host, sizes) => {
    const receiver = create(type);
    const port = await bound(receiver, host);
    const heard: [number, number, boolean][] = [];
    receiver.on('message', (msg, rinfo) => heard.push([msg.length, rinfo.size, msg.every((b) => b === (msg.length & 0xff))]));
    const sender = create(type);
    await bound(sender, host);
    const results: unknown[] = [];
    const sendAll = () => {
      for (const n of sizes) sender.send(Buffer.alloc(n, n & 0xff), port, host, (err, bytes) => results.push(outcome(err, bytes)));
    };
    sendAll();
    await waitFor(() => results.length === sizes.length, 'the callbacks from plain code');
    // From a handler: muxnet queues these to leave together after the batch.
    sender.once('message', sendAll);
    receiver.send('go', sender.address().port, host);
    await waitFor(() => results.length === 2 * sizes.length, 'the callbacks from a handler');
    const fit = sizes.slice(0, 3);
    await waitFor(() => heard.length === 2 * fit.length, 'the datagrams that fit');
    await sleep(50);
    const tooLong = { code: 'EMSGSIZE', syscall: 'send', message: `send EMSGSIZE ${host}:${port}` };
    const each = [...fit, tooLong, tooLong];
    expect(results).toEqual([...each, ...each]);
    expect(heard).toEqual([...fit, ...fit].map((n) => [n, n, true]));
    sender.close();
    receiver.close();
  });

  it('sends from a handler that the kernel refuses among others that go (broadcast without SO_BROADCAST): each callback its own result, in order', async () => {
    const receiver = nodeDgram.createSocket('udp4');
    await new Promise<void>((r) => receiver.bind(0, '127.0.0.1', r));
    const got: string[] = [];
    receiver.on('message', (msg) => got.push(String(msg)));
    const sender = create('udp4');
    await bound(sender, '127.0.0.1');
    // muxnet queues these and sends them in one sendmmsg, which stops at each refusal.
    const DESTS = ['127.0.0.1', '255.255.255.255', '127.0.0.1', '0.0.0.0', '255.255.255.255', '255.255.255.255', '127.0.0.1'];
    const log: unknown[] = [];
    sender.on('message', () => DESTS.forEach((d, i) => sender.send(`m${i}`, receiver.address().port, d, (err, n) => log.push([i, err ? (err as NodeJS.ErrnoException).code : n]))));
    receiver.send('go', sender.address().port, '127.0.0.1');
    await waitFor(() => log.length === DESTS.length && got.length === 4, 'the callbacks and datagrams');
    await sleep(50);
    expect(log).toEqual(DESTS.map((d, i) => [i, d === '255.255.255.255' ? 'EACCES' : 2]));
    expect(got.sort()).toEqual(['m0', 'm2', 'm3', 'm6']);
    sender.close();
    receiver.close();
  });

  it('sends to a name whose lookup fails, among sends that go: its callback (or, without one, an error event) gets the lookup error as it came; the others are sent', async () => {
    const notFound = (host: string) => Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', errno: -3008, syscall: 'getaddrinfo', hostname: host });
    // Answers a turn later, as a real resolver does; fails for one name.
    const lookup = (host: string, _family: number, cb: (err: Error | null, address?: string, family?: number) => void) =>
      setImmediate(() => (host === 'nowhere.invalid' ? cb(notFound(host)) : cb(null, '127.0.0.1', 4)));
    const receiver = nodeDgram.createSocket('udp4');
    await new Promise<void>((r) => receiver.bind(0, '127.0.0.1', r));
    const got: string[] = [];
    receiver.on('message', (msg) => got.push(String(msg)));
    const sender = create('udp4', { lookup: lookup as never });
    const log: unknown[] = [];
    sender.on('error', (err: NodeJS.ErrnoException) => log.push(['error', err.code, err.syscall, (err as { hostname?: string }).hostname]));
    const port = receiver.address().port;
    const send = (msg: string, host: string) => sender.send(msg, port, host, (err, n) => log.push([msg, err ? [(err as NodeJS.ErrnoException).code, (err as NodeJS.ErrnoException).syscall, err.message] : n]));
    send('a', 'here.test');
    send('b', 'nowhere.invalid');
    sender.send('c', port, 'nowhere.invalid');
    send('d', 'here.test');
    await waitFor(() => log.length === 4 && got.length === 2, 'the callbacks, the error and the datagrams');
    await sleep(50);
    expect(log).toEqual([['a', 1], ['b', ['ENOTFOUND', 'getaddrinfo', 'getaddrinfo ENOTFOUND nowhere.invalid']], ['error', 'ENOTFOUND', 'getaddrinfo', 'nowhere.invalid'], ['d', 1]]);
    expect(got).toEqual(['a', 'd']);
    sender.close();
    receiver.close();
  });

  it('connected to a port nothing listens on: each refusal is an error (recvmsg ECONNREFUSED), every send called back; once the port opens, the datagrams and replies flow', async () => {
    const port = await closedPort();
    const client = create('udp4');
    const log: string[] = [];
    client.on('error', (err: NodeJS.ErrnoException) => log.push(`error ${err.code} ${err.syscall} ${err.message}`));
    client.on('message', (msg) => log.push(`message ${msg}`));
    await new Promise<void>((r) => client.connect(port, '127.0.0.1', () => r()));
    const send = async (i: number) => {
      await new Promise<void>((r) => client.send(`x${i}`, (err, n) => (log.push(`sent x${i} ${err ? (err as NodeJS.ErrnoException).code : n}`), r())));
    };
    for (let i = 0; i < 3; i++) {
      const before = log.length;
      await send(i);
      await waitFor(() => log.length === before + 2, `the refusal of x${i}`);
    }
    const server = nodeDgram.createSocket('udp4');
    const got: string[] = [];
    server.on('message', (msg, rinfo) => {
      got.push(String(msg));
      server.send(`re:${msg}`, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => server.bind(port, '127.0.0.1', r));
    for (let i = 3; i < 5; i++) {
      const before = log.length;
      await send(i);
      await waitFor(() => log.length === before + 2, `the reply to x${i}`);
    }
    const refused = 'error ECONNREFUSED recvmsg recvmsg ECONNREFUSED';
    expect(log).toEqual(['sent x0 2', refused, 'sent x1 2', refused, 'sent x2 2', refused, 'sent x3 2', 'message re:x3', 'sent x4 2', 'message re:x4']);
    expect(got).toEqual(['x3', 'x4']);
    client.close();
    server.close();
  });

  it.each(['plain code', 'a handler'])('10 000 sends in one tick from %s: each callback called once, in order, with its bytes; each datagram arrives once, whole', async (where) => {
    const COUNT = 10_000;
    const receiver = nodeDgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 22 });
    await new Promise<void>((r) => receiver.bind(0, '127.0.0.1', r));
    const arrived = new Map<number, number>();
    let wrong = 0;
    receiver.on('message', (msg) => {
      const i = msg.readUInt32BE(0);
      if (msg.length !== 4 + (i % 13) || msg.subarray(4).some((b) => b !== (i & 0xff))) wrong++;
      arrived.set(i, (arrived.get(i) ?? 0) + 1);
    });
    const sender = create('udp4');
    await bound(sender, '127.0.0.1');
    const calls: [number, unknown][] = [];
    const fire = () => {
      for (let i = 0; i < COUNT; i++) {
        const data = Buffer.alloc(4 + (i % 13), i & 0xff);
        data.writeUInt32BE(i);
        sender.send(data, receiver.address().port, '127.0.0.1', (err, bytes) => calls.push([i, outcome(err, bytes)]));
      }
    };
    if (where === 'plain code') fire();
    else {
      sender.once('message', fire);
      receiver.send('go', sender.address().port, '127.0.0.1');
    }
    await waitFor(() => calls.length === COUNT, 'every callback', 20_000);
    await sleep(100);
    expect(calls.length).toBe(COUNT);
    const mismatched = calls.filter(([i, result], at) => i !== at || result !== 4 + (i % 13));
    expect(mismatched.slice(0, 3)).toEqual([]);
    // The receiver may drop some (UDP, a full buffer); none twice, none altered.
    expect([wrong, [...arrived.values()].filter((n) => n !== 1).length]).toEqual([0, 0]);
    expect(arrived.size).toBeGreaterThan(0);
    sender.close();
    receiver.close();
  });

  it('bursts of large and small datagrams from three senders into two sockets, all queued before a turn: each datagram whole, at its own socket, with its sender as rinfo', async () => {
    const receivers = [create('udp4', { recvBufferSize: 1 << 22 }), create('udp4', { recvBufferSize: 1 << 22 })];
    const ports = [await bound(receivers[0], '127.0.0.1'), await bound(receivers[1], '127.0.0.1')];
    // As much as a quarter of what each receive buffer holds (the kernel counts overhead too):
    // beyond a 1 MiB read slab where the buffers allow it, so muxnet carries datagrams over turns.
    const budget = Math.min(...receivers.map((r) => r.getRecvBufferSize())) / 4;
    const PER_SENDER = 30;
    // Two in three are large: 30 large ones per receiver share its budget.
    const large = Math.min(65_507, Math.floor(budget / 30));
    const size = (i: number) => (i % 3 === 0 ? 7 + (i % 50) : large);
    const fill = (dest: number, from: number, len: number) => (dest * 31 + from + len) & 0xff;
    const counts = [0, 0];
    const wrong: unknown[] = [];
    receivers.forEach((r, k) =>
      r.on('message', (msg, rinfo) => {
        counts[k]++;
        const [dest, from, len] = [msg.readUInt8(0), msg.readUInt16BE(1), msg.readUInt32BE(3)];
        const whole = msg.subarray(7).every((b) => b === fill(dest, from, len));
        if (dest !== k || from !== rinfo.port || len !== msg.length || rinfo.size !== len || rinfo.address !== '127.0.0.1' || !whole) wrong.push([k, dest, from, rinfo, len, msg.length, whole]);
      }),
    );
    const senders = [0, 1, 2].map(() => nodeDgram.createSocket({ type: 'udp4', sendBufferSize: 1 << 22 }));
    for (const s of senders) await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    let sent = 0;
    for (let i = 0; i < PER_SENDER; i++) {
      senders.forEach((s, j) => {
        const k = (i + j) & 1;
        const from = s.address().port;
        const len = size(i);
        const msg = Buffer.alloc(len, fill(k, from, len));
        msg.writeUInt8(k, 0);
        msg.writeUInt16BE(from, 1);
        msg.writeUInt32BE(len, 3);
        s.send(msg, ports[k], '127.0.0.1');
        sent++;
      });
    }
    await waitFor(() => counts[0] + counts[1] === sent, `all ${sent} datagrams (${counts})`, 10_000);
    expect(wrong).toEqual([]);
    for (const s of [...receivers, ...senders]) s.close();
  });

  it('close() in a handler in the middle of a burst larger than a read slab: nothing more for it, and a socket bound in that handler hears only its own', async () => {
    const doomed = create('udp4', { recvBufferSize: 1 << 22 });
    const port = await bound(doomed, '127.0.0.1');
    const count = Math.max(4, Math.min(64, Math.floor(doomed.getRecvBufferSize() / 4 / 65_507)));
    const CLOSE_AT = 2;
    const heard: (number | string)[] = [];
    let late = 0;
    let successor: Socket | undefined;
    let successorPort: number | undefined;
    const successorHeard: string[] = [];
    doomed.on('message', (msg) => {
      if (heard.includes('close')) return void late++;
      heard.push(msg.readUInt32BE(0));
      if (heard.length < CLOSE_AT) return;
      doomed.close(() => heard.push('closed'));
      heard.push('close');
      successor = create('udp4');
      successor.on('message', (m) => successorHeard.push(String(m)));
      successor.bind(0, '127.0.0.1', () => (successorPort = successor!.address().port));
    });
    const sender = nodeDgram.createSocket({ type: 'udp4', sendBufferSize: 1 << 22 });
    await new Promise<void>((r) => sender.bind(0, '127.0.0.1', r));
    for (let i = 0; i < count; i++) {
      const msg = Buffer.alloc(65_507, 1);
      msg.writeUInt32BE(i);
      sender.send(msg, port, '127.0.0.1');
    }
    await waitFor(() => heard.includes('closed') && successorPort !== undefined, 'the close and the new bind');
    sender.send('mine', successorPort!, '127.0.0.1');
    await waitFor(() => successorHeard.length === 1, "the new socket's datagram");
    await sleep(50);
    expect([heard, late, successorHeard]).toEqual([[0, 1, 'close', 'closed'], 0, ['mine']]);
    successor!.close();
    sender.close();
  });

  it('bound, used and closed 2 000 times (udp4 and udp6 in turn): every fd released', async () => {
    const errors: unknown[] = [];
    const cycle = async (i: number) => {
      const s = create(i % 2 ? 'udp6' : 'udp4');
      await new Promise<void>((r) => s.bind(0, () => r()));
      await new Promise<void>((r) => s.send('x', 9, (err) => (err && errors.push(outcome(err)), r())));
      await new Promise<void>((r) => s.close(r));
    };
    // The reactor's own fds exist before counting.
    await cycle(0);
    const before = socketFds();
    for (let i = 0; i < 2000; i++) await cycle(i);
    await waitFor(() => socketFds() === before, `socket fds back to ${before} (now ${socketFds()})`);
    expect(errors).toEqual([]);
  });

  it('a message kept is its own bytes: one in a hundred kept from megabytes of traffic holds no read slab (node: the messages)', async () => {
    const server = create('udp4');
    const port = await bound(server, '127.0.0.1');
    const client = create('udp4');
    const kept: Buffer[] = [];
    let received = 0;
    server.on('message', (msg) => {
      if (++received % 100 === 0) kept.push(msg);
    });
    // 3 000 datagrams of 1 000 bytes, a burst of 50 once the last one is in (the receive
    // buffer holds them all: none dropped on loopback): three slabs' worth.
    for (let i = 0; i < 3000; i += 50) {
      await waitFor(() => received === i, `the burst before ${i} to arrive (${received})`);
      for (let k = i; k < i + 50; k++) client.send(Buffer.alloc(1000, k & 255), port, '127.0.0.1');
    }
    await waitFor(() => received === 3000, `every datagram (${received})`);
    expect(kept.map((m) => [m.length, m[0]])).toEqual(kept.map((_, j) => [1000, (j * 100 + 99) & 255]));
    expect(backingBytes(kept)).toBeLessThan(1 << 20);
    for (const s of [server, client]) s.close();
  });

  const REF_CASES: [string, string[]][] = [
    ['bound, unref', ['listening', 'exit']],
    ['unref, bind', ['listening', 'exit']],
    ['unref, unref, ref', ['listening', 'held', 'exit']],
    ['ref, ref, unref', ['listening', 'exit']],
    ['unref, send', ['sent 1', 'exit']],
    ['connect, unref', ['connected', 'exit']],
    ["closed while unref'd", ['closed', 'exit']],
  ];
  it.each(REF_CASES)('ref/unref in a child process (%s): it exits by itself unless the socket holds it', async (scenario, expected) => {
    const { stdout } = await run(process.execPath, [fixture('dgram-ref.js'), impl, backend ?? 'mio', scenario], { timeout: 10_000 });
    expect(stdout.trim().split('\n')).toEqual(expected);
  });
});

describe.each(BACKENDS)('fast API UDP on %s', (backend) => {
  it('connected to a port nothing listens on: the refusal reaches the next send, though the reactor read it first; once the port opens, sends go and replies come', async () => {
    const port = await closedPort();
    const heard: string[] = [];
    const socket = bind({ port: 0, host: '127.0.0.1', backend }, { onMessage: (msg) => heard.push(String(msg)) });
    socket.connect(port, '127.0.0.1');
    // One send per timer tick: the loop turns (and the reactor reads) between them.
    const tick = () => new Promise<unknown>((resolve) => setTimeout(() => {
      try {
        resolve(socket.send('anyone?'));
      } catch (err) {
        const { code, syscall, message } = err as NodeJS.ErrnoException;
        resolve({ code, syscall, message });
      }
    }, 5));
    const results = [await tick(), await tick(), await tick(), await tick()];
    // Each refused datagram fails the send after it, which the kernel then does not send.
    const refused = { code: 'ECONNREFUSED', syscall: 'send', message: 'send ECONNREFUSED' };
    expect(results).toEqual([true, refused, true, refused]);
    const server = nodeDgram.createSocket('udp4');
    server.on('message', (msg, rinfo) => server.send(`re:${msg}`, rinfo.port, rinfo.address));
    await new Promise<void>((r) => server.bind(port, '127.0.0.1', r));
    // The last refused datagram's error was spent by that send: the next ones go.
    expect([await tick(), await tick()]).toEqual([true, true]);
    await waitFor(() => heard.length === 2, 'the replies');
    expect(heard).toEqual(['re:anyone?', 're:anyone?']);
    socket.close();
    server.close();
  });

  it('a process out of fds: bind() throws bind EMFILE and the process lives; it binds once fds are free', async (ctx) => {
    if (process.platform !== 'linux') return ctx.skip();
    const args = [fixture('dgram-no-fds.js'), 'fast', backend];
    const child = spawn('sh', ['-c', 'ulimit -n 128 && exec "$0" "$@"', process.execPath, ...args, String(2 ** 30)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const [code] = await once(child, 'exit');
    expect([code, JSON.parse(out)]).toEqual([0, ['error EMFILE bind 127.0.0.1', 'listening', 'message hello', 'closed']]);
  });
});
