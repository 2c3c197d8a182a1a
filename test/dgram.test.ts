// One UDP scenario suite, run against node:dgram and muxnet/dgram on each backend.
import { execFile, spawn } from 'node:child_process';
import nodeDgram from 'node:dgram';
import dns from 'node:dns';
import { once } from 'node:events';
import { BlockList } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { inherits, inspect, promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import * as muxnetDgram from '../src/dgram';
import { listenerFrame, membersBeyond, moveAway, sleep, socketFds, waitFor } from './helpers';
import { nodeFrom } from '../src/versions';

const run = promisify(execFile);

type Dgram = typeof nodeDgram;

/** What a call did: its result, or the error's code, syscall and message. */
const attempt = (call: () => unknown): unknown => {
  try {
    return call();
  } catch (err) {
    const { code, syscall, message } = err as NodeJS.ErrnoException;
    return { code, syscall, message };
  }
};
/** node:dgram's own options, by version: the node:dgram row runs only where Node has them. */
const NODE_HAS = {
  reusePort: nodeFrom([22, 12], [23, 1]),
  blockLists: nodeFrom([24, 0]),
  syncCalls: typeof (nodeDgram.Socket.prototype as { bindSync?: unknown }).bindSync === 'function',
  /** nodejs/node#64133: the default lookup reads dns.lookup at each call, answering an address of the socket's family itself. */
  lookupReadAtCall: nodeFrom([24, 19], [26, 5]),
};

const IMPLS: [string, Dgram, string | undefined][] = [
  ['node:dgram', nodeDgram, undefined],
  ['muxnet (mio)', muxnetDgram as unknown as Dgram, 'mio'],
  ['muxnet (poll)', muxnetDgram as unknown as Dgram, 'poll'],
  ['muxnet (select)', muxnetDgram as unknown as Dgram, 'select'],
];

describe.each(IMPLS)('%s', (name, dgram, backend) => {
  const create = (type: 'udp4' | 'udp6', options: Partial<nodeDgram.SocketOptions> = {}) =>
    dgram.createSocket({ type, backend, ...options } as nodeDgram.SocketOptions);
  const bound = async (s: nodeDgram.Socket, address: string) => {
    s.bind(0, address);
    await once(s, 'listening');
    return s.address().port;
  };
  /** A receiver and a sender, both bound on loopback: the sender's burst comes in one batch for muxnet. */
  const loopbackPair = async () => {
    const rx = create('udp4');
    const port = await bound(rx, '127.0.0.1');
    const tx = create('udp4');
    await bound(tx, '127.0.0.1');
    return { rx, port, tx };
  };

  // Found by a hunt (2026-12-05): muxnet joined the pieces and sent them.
  it.skipIf(process.platform === 'win32')('a list of more pieces than IOV_MAX (1024) is refused EMSGSIZE and not sent; 1024 go as one datagram', async () => {
    const receiver = create('udp4');
    const port = await bound(receiver, '127.0.0.1');
    const got: number[] = [];
    receiver.on('message', (m) => got.push(m.length));
    const s = create('udp4');
    const sent = (pieces: number) =>
      new Promise<unknown>((resolve) =>
        s.send(Array.from({ length: pieces }, () => Buffer.from('a')), port, '127.0.0.1', (err, n) => resolve(err ? `${(err as NodeJS.ErrnoException).code} ${err.message}` : n)),
      );
    expect(await sent(1025)).toBe(`EMSGSIZE send EMSGSIZE 127.0.0.1:${port}`);
    expect(await sent(1024)).toBe(1024);
    await waitFor(() => got.length > 0, 'the datagram of 1024 pieces');
    await sleep(20);
    expect(got).toEqual([1024]);
    s.close();
    receiver.close();
  });

  it("names a failed send's destination as node:dgram does: `undefined:9` with no address given, `null:9` with null", async () => {
    const s = create('udp4');
    const shape = (err: NodeJS.ErrnoException & { address?: unknown; port?: unknown }) => ({ message: err.message, address: err.address, hasAddress: 'address' in err, port: err.port });
    const failed = (...args: unknown[]) => new Promise<ReturnType<typeof shape>>((resolve) => (s.send as (...a: unknown[]) => void)(Buffer.alloc(65_508), ...args, (err: NodeJS.ErrnoException) => resolve(shape(err))));
    expect(await failed(9)).toEqual({ message: 'send EMSGSIZE undefined:9', address: undefined, hasAddress: true, port: 9 });
    expect(await failed(9, null)).toEqual({ message: 'send EMSGSIZE null:9', address: null, hasAddress: true, port: 9 });
    expect(await failed(9, '127.0.0.1')).toEqual({ message: 'send EMSGSIZE 127.0.0.1:9', address: '127.0.0.1', hasAddress: true, port: 9 });
    s.close();
  });

  // Found 2026-12-06 (two hunts): a 'message' listener's stack frame read
  // `EventEmitter.<anonymous>` — V8 names a frame by the receiver's `constructor`, and
  // muxnet's was a proxy, not a function.
  it("names its class as node:dgram's: listeners' stack frames, name, length, prototype chain", () => {
    const s = dgram.createSocket({ type: 'udp4', backend } as nodeDgram.SocketOptions);
    expect(listenerFrame(s, 'ping')).toBe('Socket.<anonymous>');
    expect([typeof dgram.Socket, dgram.Socket.name, dgram.Socket.length]).toEqual(['function', nodeDgram.Socket.name, nodeDgram.Socket.length]);
    expect(Object.getPrototypeOf(dgram.Socket)).toBe(Object.getPrototypeOf(nodeDgram.Socket));
    expect(s.constructor).toBe(dgram.Socket);
    s.close();
  });

  // Found 2026-12-06 (a hunt of types and module shape): `dgram.Socket.call(this, …)` threw
  // (a class constructor cannot be called); then (2026-12-06) what its constructor kept raised
  // events with an alias of the instance for `this`.
  it('an ES5-style subclass (util.inherits, then dgram.Socket.call(this, …)) binds, sends and receives', async () => {
    function MyUdp(this: nodeDgram.Socket & { mine: boolean }, options: nodeDgram.SocketOptions) {
      (dgram.Socket as unknown as (...a: unknown[]) => void).call(this, options);
      this.mine = true;
    }
    inherits(MyUdp, dgram.Socket);
    const aborted = new AbortController();
    const s = new (MyUdp as unknown as new (o: nodeDgram.SocketOptions) => nodeDgram.Socket & { mine: boolean })({ type: 'udp4', backend, signal: aborted.signal } as nodeDgram.SocketOptions);
    expect([s instanceof MyUdp, s instanceof dgram.Socket, s.mine]).toEqual([true, true, true]);
    const port = await bound(s, '127.0.0.1');
    s.send('to myself', port, '127.0.0.1');
    const [msg] = (await once(s, 'message')) as [Buffer];
    expect(msg.toString()).toBe('to myself');
    // Closed by what its constructor kept (the signal's listener): the instance itself says 'close'.
    let receiver: unknown;
    s.on('close', function (this: unknown) {
      receiver = this;
    });
    aborted.abort();
    await once(s, 'close');
    expect(receiver === s).toBe(true);
  });

  // Noticed in a review (2026-12-07): net's classes took node:net's instances, dgram's not node:dgram's.
  it("node:dgram's sockets are instances of dgram.Socket, as its own; a subclass takes its own only", () => {
    class Mine extends dgram.Socket {}
    const theirs = nodeDgram.createSocket('udp4');
    const ours = create('udp4');
    expect([theirs instanceof dgram.Socket, ours instanceof dgram.Socket]).toEqual([true, true]);
    expect([theirs instanceof Mine, ours instanceof Mine]).toEqual([false, false]);
    theirs.close();
    ours.close();
  });

  // Found 2026-12-06 (a hunt of types and module shape): the reactor called `onMessage(msg, address, port)`
  // by that name — a subclass's own got an address string for its rinfo.
  it('a subclass with an onMessage(msg, rinfo) of its own', async () => {
    class Echo extends dgram.Socket {
      got: string[] = [];
      constructor() {
        // (node:dgram's typings give its constructor EventEmitter's options.)
        super({ type: 'udp4', backend } as never);
        this.on('message', (msg: Buffer, rinfo: nodeDgram.RemoteInfo) => this.onMessage(msg, rinfo));
      }
      onMessage(msg: Buffer, rinfo: nodeDgram.RemoteInfo) {
        this.got.push(`${msg} from ${typeof rinfo.port}`);
      }
    }
    const s = new Echo();
    const port = await bound(s, '127.0.0.1');
    s.send('hi', port, '127.0.0.1');
    await waitFor(() => s.got.length === 1, 'the datagram');
    expect(s.got).toEqual(['hi from number']);
    s.close();
    await once(s, 'close');
  });

  // Found 2026-12-06 (the last note's list): muxnet's dgram socket kept its state and helpers under
  // plain names (`pending`, `closed`, `flush()`, `route()`, `lookup`, ...) where node:dgram keeps
  // symbols: a subclass's own of the same name replaced muxnet's.
  it("a subclass's own fields and methods keep their names (pending, closed, flush(), route(), check())", async () => {
    class Peer extends dgram.Socket {
      pending: string[] = [];
      closed = 'not yet';
      running = 'mine';
      constructor() {
        super({ type: 'udp4', backend } as never);
        this.on('message', (msg: Buffer) => this.pending.push(String(msg)));
      }
      flush(): string {
        return 'mine';
      }
      route(): string {
        return 'mine';
      }
      check(): string {
        return 'mine';
      }
      settle(): string {
        return 'mine';
      }
    }
    const s = new Peer();
    const port = await bound(s, '127.0.0.1');
    s.send('one', port, '127.0.0.1');
    s.send('two', port, '127.0.0.1');
    await waitFor(() => s.pending.length === 2, 'both datagrams');
    s.close(() => (s.closed = 'closed'));
    await once(s, 'close');
    expect([s.pending, s.closed, s.running, s.flush(), s.route(), s.check()]).toEqual([['one', 'two'], 'closed', 'mine', 'mine', 'mine', 'mine']);
  });

  it("adds no string-named members to node:dgram's but Node 24's methods", () => {
    const s = create('udp4');
    const reference = nodeDgram.createSocket('udp4');
    expect(membersBeyond(s, reference).filter((k) => !['bindSync', 'connectSync'].includes(k))).toEqual([]);
    s.close();
    reference.close();
  });

  // Found 2026-12-06 (UDP libraries' own suites: node-coap): a batch's datagrams were emitted in one
  // go, the ticks their listeners queued after all of them — node-coap's observe stream read the
  // last datagram's state for the first, and its close() from a tick left the rest of the batch
  // answered (an RST each, and its peer answered each RST with three datagrams: a storm).
  it("a tick a 'message' listener queues runs before the batch's next datagram; a close() there leaves the rest unheard", async () => {
    const { rx, port, tx } = await loopbackPair();
    const seen: string[] = [];
    const replies: string[] = [];
    let state = '';
    rx.on('message', (m, r) => {
      state = String(m);
      process.nextTick(() => seen.push(`${m}:${state}`));
      rx.send(`re ${m}`, r.port, r.address);
      if (state === 'two') process.nextTick(() => rx.close());
    });
    tx.on('message', (m) => replies.push(String(m)));
    // Sent at once: in the kernel together, one batch for muxnet.
    for (const s of ['zero', 'one', 'two', 'three', 'four']) tx.send(s, port, '127.0.0.1');
    await once(rx, 'close');
    await waitFor(() => replies.length >= 3, 'the replies');
    await sleep(50);
    expect(seen).toEqual(['zero:zero', 'one:one', 'two:two']);
    expect(replies.sort()).toEqual(['re one', 're two', 're zero']);
    tx.close();
  });

  // Found 2026-12-06: the batch's later datagrams came each on a tick of their own, so a tick
  // queued inside a tick, and promise jobs, ran after the batch's datagrams.
  it("a tick queued inside a tick, and a promise job, that a 'message' listener queues run before the batch's next datagram", async () => {
    const { rx, port, tx } = await loopbackPair();
    const log: string[] = [];
    rx.on('message', (m) => {
      log.push(`message ${m}`);
      process.nextTick(() => process.nextTick(() => log.push(`inner tick ${m}`)));
      void Promise.resolve().then(() => log.push(`promise ${m}`));
    });
    // Sent at once: in the kernel together, one batch for muxnet.
    for (const s of ['a', 'b', 'c']) tx.send(s, port, '127.0.0.1');
    await waitFor(() => log.length === 9, 'every datagram');
    expect(log).toEqual(['a', 'b', 'c'].flatMap((m) => [`message ${m}`, `inner tick ${m}`, `promise ${m}`]));
    rx.close();
    tx.close();
  });

  // Found by a hunt (2026-12-06, bittorrent-tracker's own tests): the datagrams sent in a batch
  // left sorted by socket (the order the sockets were made), not in the order of the calls.
  it("datagrams several sockets send from a 'message' listener leave in the order of the sends", async () => {
    const { rx, port, tx } = await loopbackPair();
    // Made last first: an order by socket is the reverse of the sends'.
    const senders = [create('udp4'), create('udp4'), create('udp4')].reverse();
    for (const s of senders) await bound(s, '127.0.0.1');
    const sink = create('udp4');
    const sinkPort = await bound(sink, '127.0.0.1');
    const got: string[] = [];
    sink.on('message', (m) => got.push(String(m)));
    rx.on('message', () => {
      for (let round = 0; round < 2; round++) senders.forEach((s, i) => s.send(`${round}.${i}`, sinkPort, '127.0.0.1'));
    });
    tx.send('go', port, '127.0.0.1');
    await waitFor(() => got.length === 6, 'every datagram');
    expect(got).toEqual(['0.0', '0.1', '0.2', '1.0', '1.1', '1.2']);
    for (const s of [rx, tx, sink, ...senders]) s.close();
  });

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

  it('a handler that closes the socket: the replies to earlier messages still go, its own reply does not', async () => {
    const server = create('udp4');
    const port = await bound(server, '127.0.0.1');
    const callbacks: string[] = [];
    let seen = 0;
    server.on('message', (msg) => {
      server.send(`re:${msg}`, client.address().port, '127.0.0.1', (err) => callbacks.push(err ? (err as NodeJS.ErrnoException).code! : 'ok'));
      if (++seen === 2) server.close();
    });
    const client = nodeDgram.createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
    const got: string[] = [];
    client.on('message', (m) => got.push(String(m)));
    // Both arrive before the server's next turn: one batch of events for muxnet.
    client.send('a', port, '127.0.0.1');
    client.send('b', port, '127.0.0.1');
    await once(server, 'close');
    await waitFor(() => got.length === 1, 'the first reply');
    await sleep(50);
    expect(got).toEqual(['re:a']);
    expect(callbacks).toEqual(['ok']);
    client.close();
  });

  // Found by a hunt (2026-12-05): muxnet took a reply's bytes after the whole batch, so a buffer
  // reused by each 'message' carried the last one's bytes to every peer; and an option a later
  // message set applied to an earlier reply. node:dgram sends each on a tick before the next event.
  it("a reply buffer reused by each 'message' of a batch carries each message's own bytes, to its own peer", async () => {
    const server = create('udp4');
    const port = await bound(server, '127.0.0.1');
    const scratch = Buffer.alloc(64);
    server.on('message', (msg, rinfo) => server.send(scratch, 0, scratch.write(`hello ${msg}`), rinfo.port, rinfo.address));
    const clients = await Promise.all(
      [0, 1, 2, 3].map(async (i) => {
        const c = nodeDgram.createSocket('udp4');
        await new Promise<void>((r) => c.bind(0, '127.0.0.1', r));
        return { c, name: `client${i}`, got: once(c, 'message').then(([m]) => String(m)) };
      }),
    );
    // All four arrive before the server's next turn: one batch of events for muxnet.
    for (const { c, name } of clients) c.send(name, port, '127.0.0.1');
    expect(await Promise.all(clients.map(({ got }) => got))).toEqual(clients.map(({ name }) => `hello ${name}`));
    for (const { c } of clients) c.close();
    server.close();
  });

  it("setBroadcast(false) by a later 'message' of the batch does not refuse an earlier one's broadcast reply", async () => {
    const server = create('udp4');
    const port = await bound(server, '127.0.0.1');
    const listener = nodeDgram.createSocket('udp4');
    await new Promise<void>((r) => listener.bind(0, '0.0.0.0', r));
    const callbacks: string[] = [];
    server.on('message', (msg) => {
      if (String(msg) === 'announce') {
        server.setBroadcast(true);
        server.send('to all', listener.address().port, '127.255.255.255', (err) => callbacks.push(err ? (err as NodeJS.ErrnoException).code! : 'sent'));
      } else server.setBroadcast(false);
    });
    const client = nodeDgram.createSocket('udp4');
    client.send('announce', port, '127.0.0.1');
    client.send('quiet', port, '127.0.0.1');
    const [heard] = await once(listener, 'message');
    await waitFor(() => callbacks.length === 1, "the send's callback");
    expect([String(heard), callbacks]).toEqual(['to all', ['sent']]);
    for (const s of [client, listener, server]) s.close();
  });

  /** test/fixtures/udp-throw-fatal.js over this row's module, sent m0…m7 in one batch: what it heard, its exit code, the replies that came. */
  const throwing = async (how: 'fatal' | 'caught' | 'tick') => {
    const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'udp-throw-fatal.js'), backend ? 'muxnet/dgram' : 'node:dgram', how], {
      env: { ...process.env, MUXNET_BACKEND: backend ?? 'mio' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const exited = once(child, 'exit');
    await waitFor(() => out.includes('\n'), 'the port');
    const client = nodeDgram.createSocket('udp4');
    const replies: string[] = [];
    client.on('message', (m) => replies.push(String(m)));
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
    // All eight arrive before the server's next turn: one batch of events for muxnet.
    for (let i = 0; i < 8; i++) client.send(`m${i}`, parseInt(out), '127.0.0.1');
    const [code] = await exited;
    await sleep(100);
    client.close();
    return { heard: out.trim().split('\n').slice(1), code, replies: replies.sort() };
  };

  it("a 'message' listener's throw nothing catches ends the process with the replies to the batch's earlier messages sent", async () => {
    expect(await throwing('fatal')).toEqual({ heard: ['got m0', 'got m1', 'got m2', 'got m3'], code: 1, replies: ['re-m0', 're-m1', 're-m2'] });
  });

  it("a 'message' listener's caught throw is heard before the socket's next datagram", async () => {
    const heard = ['got m0', 'got m1', 'got m2', 'got m3', 'uncaught thrown at m3', 'got m4', 'got m5', 'uncaught thrown at m5', 'got m6', 'got m7'];
    expect(await throwing('caught')).toEqual({ heard, code: 0, replies: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => `re-m${i}`) });
  });

  // Found by a review (2026-12-05): muxnet ran such a tick at the event's end and, once it threw,
  // ran it again with every later event and lost the rest of each batch (TCP bytes too).
  it("a caught throw from a tick a 'message' listener caused (a bind's EADDRINUSE) is heard once; the batch goes on", async () => {
    const heard = ['got m0', 'got m1', 'got m2', 'got m3', 'uncaught EADDRINUSE', 'got m4', 'got m5', 'uncaught EADDRINUSE', 'got m6', 'got m7'];
    const got = await throwing('tick');
    // node:dgram hears each throw before the next datagram; muxnet, as for any throw outside the
    // socket's own listener, once the batch's events are out (README: a handler hears it after
    // the batch's other events) — where the 'uncaught' lines fall is the only freedom.
    expect(got.heard.filter((l) => l.startsWith('got'))).toEqual(heard.filter((l) => l.startsWith('got')));
    expect(got.heard.filter((l) => l.startsWith('uncaught'))).toEqual(['uncaught EADDRINUSE', 'uncaught EADDRINUSE']);
    expect({ code: got.code, replies: got.replies }).toEqual({ code: 0, replies: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => `re-m${i}`) });
  });

  it("one socket's handler closes another: the other's reply to its own earlier message still goes, called back before 'close'", async () => {
    const b = create('udp4');
    const bPort = await bound(b, '127.0.0.1');
    const a = create('udp4');
    const aPort = await bound(a, '127.0.0.1');
    const client = nodeDgram.createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
    const got: string[] = [];
    const callbacks: string[] = [];
    client.on('message', (m) => got.push(String(m)));
    b.on('message', (m) => b.send(`re:${m}`, client.address().port, '127.0.0.1', (err) => callbacks.push(err ? (err as NodeJS.ErrnoException).code! : 'ok')));
    a.on('message', () => b.close(() => callbacks.push('close')));
    // Both arrive before the next turn: one batch for muxnet, b's message first.
    client.send('to b', bPort, '127.0.0.1');
    client.send('to a', aPort, '127.0.0.1');
    await waitFor(() => got.length === 1 && callbacks.length === 2, "b's reply and close");
    expect([got, callbacks]).toEqual([['re:to b'], ['ok', 'close']]);
    a.close();
    client.close();
  });

  // A custom lookup's answer comes as it comes: node:dgram runs each
  // 'message' on its own, its ticks and microtasks after it, so a reply to
  // the first message whose address comes through a promise (however many
  // awaits deep) has left when the second message's handler closes the
  // socket; one that waits for a later turn of the loop has not.
  const threeAwaits = async () => {
    await null;
    await null;
    await null;
  };
  const answers: [string, (cb: () => void) => void, boolean][] = [
    ['a promise', (cb) => void Promise.resolve().then(cb), true],
    ['three awaits', (cb) => void threeAwaits().then(cb), true],
    ['a tick, then a promise', (cb) => process.nextTick(() => void Promise.resolve().then(cb)), true],
    ['a promise, then a tick', (cb) => void Promise.resolve().then(() => process.nextTick(cb)), true],
    ['setImmediate', (cb) => setImmediate(cb), false],
  ];
  it.each(answers)('a lookup answering through %s: a reply to an earlier message of the batch (called back before close), then close', async (_how, answer, delivered) => {
    const lookup = (host: string, family: number, cb: (e: Error | null, a: string, f: number) => void) => {
      if (host !== 'replies.test') return dns.lookup(host, family, cb);
      answer(() => cb(null, '127.0.0.1', 4));
    };
    const server = create('udp4', { lookup: lookup as never });
    const port = await bound(server, '127.0.0.1');
    const client = nodeDgram.createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
    const callbacks: string[] = [];
    let seen = 0;
    server.on('message', (msg) => {
      if (++seen === 1) server.send(`re:${msg}`, client.address().port, 'replies.test', (err) => callbacks.push(err ? (err as NodeJS.ErrnoException).code! : 'ok'));
      else server.close(() => callbacks.push('close'));
    });
    const got: string[] = [];
    client.on('message', (m) => got.push(String(m)));
    // Both arrive before the server's next turn: one batch of events for muxnet.
    client.send('a', port, '127.0.0.1');
    client.send('b', port, '127.0.0.1');
    await once(server, 'close');
    if (delivered) await waitFor(() => got.length === 1 && callbacks.length === 2, 'the first reply');
    await sleep(50);
    expect([got, callbacks]).toEqual(delivered ? [['re:a'], ['ok', 'close']] : [[], ['close']]);
    client.close();
  });

  // Sends to a name (resolved on the thread pool), to addresses (next
  // tick), one too long and one of the wrong family, from a 'message'
  // handler (muxnet queues them to the end of the batch) or from plain code;
  // the socket closed in the same tick, the next one, or a microtask: the
  // same callbacks, 'close' and datagrams, in node:dgram's order.
  const SENT = ['a1 ok', 'a2 ok', 'huge EMSGSIZE', 'six EINVAL', 'a3 ok'];
  it.each([
    ['a handler', 'no close', [...SENT, 'h1 ok'], ['a1', 'a2', 'a3', 'h1']],
    ['a handler', 'a close in the same tick', ['close'], []],
    ['a handler', 'a close on the next tick', [...SENT, 'close'], ['a1', 'a2', 'a3']],
    ['a handler', 'a close in a microtask', [...SENT, 'close'], ['a1', 'a2', 'a3']],
    ['plain code', 'a close in the same tick', ['close'], []],
    ['plain code', 'a close on the next tick', [...SENT, 'close'], ['a1', 'a2', 'a3']],
  ])('sends to a name and to addresses from %s, %s: callbacks, close and datagrams in order', async (where, closing, calls, arrived) => {
    const { socket: sink, port: to, got } = await receiver();
    const s = create('udp4');
    await bound(s, '127.0.0.1');
    const log: string[] = [];
    const send = (name: string, data: string | Buffer, address: string) =>
      s.send(data, to, address, (err) => log.push(`${name} ${err ? (err as NodeJS.ErrnoException).code : 'ok'}`));
    const fire = () => {
      send('h1', 'h1', 'localhost');
      send('a1', 'a1', '127.0.0.1');
      send('a2', 'a2', '');
      send('huge', Buffer.alloc(70_000), '127.0.0.1');
      send('six', 'six', '::1');
      send('a3', 'a3', '127.0.0.1');
      const close = () => s.close(() => log.push('close'));
      if (closing === 'a close in the same tick') close();
      else if (closing === 'a close on the next tick') process.nextTick(close);
      else if (closing === 'a close in a microtask') queueMicrotask(close);
    };
    if (where === 'plain code') fire();
    else {
      s.once('message', fire);
      sink.send('go', s.address().port, '127.0.0.1');
    }
    await waitFor(() => log.length === calls.length && got.length === arrived.length, 'the callbacks and datagrams');
    await sleep(50);
    expect([log, got.map(String)]).toEqual([calls, arrived]);
    if (closing === 'no close') s.close();
    sink.close();
  });

  it('a kept message moved to another thread (its ArrayBuffer transferred) leaves another message whole', async () => {
    const server = create('udp4');
    const port = await bound(server, '127.0.0.1');
    const kept: Buffer[] = [];
    server.on('message', (msg) => kept.push(msg));
    const client = create('udp4');
    for (const text of ['first', 'other']) client.send(text, port, '127.0.0.1');
    await waitFor(() => kept.length === 2, 'both messages');
    const [first, other] = kept;
    // node:dgram's message is its own memory and moves; the drop-in's, cut from a pool
    // shared with other messages, is copied (Node 20) or refused (from Node 21).
    expect([undefined, 'first']).toContain(moveAway(first));
    expect(other.toString()).toBe('other');
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

  /** Collects datagrams arriving at a fresh loopback socket. */
  const receiver = async (type: 'udp4' | 'udp6' = 'udp4') => {
    const socket = create(type);
    const port = await bound(socket, type === 'udp4' ? '127.0.0.1' : '::1');
    const got: Buffer[] = [];
    socket.on('message', (msg) => got.push(msg));
    return { socket, port, got };
  };

  it('send() takes any ArrayBufferView, and lists of them and strings', async () => {
    const { socket, port, got } = await receiver();
    const client = create('udp4');
    const floats = new Float64Array([1.5]);
    const view = new DataView(new ArrayBuffer(6), 1, 4);
    view.setUint32(0, 0x64617461);
    client.send(new Int8Array([104, 105]), port, '127.0.0.1');
    client.send(floats, port, '127.0.0.1');
    client.send(view, port, '127.0.0.1');
    client.send(new Uint16Array([0x6978, 0x6978]).subarray(1), port, '127.0.0.1');
    client.send([new Uint8Array([97]), view, 'z'], port, '127.0.0.1');
    client.send(new Uint8Array([0, 111, 102, 102, 0]), 1, 3, port, '127.0.0.1');
    client.send([], port, '127.0.0.1');
    await waitFor(() => got.length === 7, '7 datagrams');
    expect(got.map((m) => m.toString('latin1')).sort()).toEqual(
      ['', 'adataz', 'data', 'hi', 'off', 'xi', Buffer.from(floats.buffer).toString('latin1')].sort(),
    );
    client.close();
    socket.close();
  });

  it.each(['udp4', 'udp6'] as const)('an address of "", null or undefined is the %s loopback; other non-strings throw', async (type) => {
    const { socket, port, got } = await receiver(type);
    const client = create(type);
    const sent: (number | undefined)[] = [];
    for (const address of ['', null, undefined]) client.send('x', port, address as string, (err, n) => sent.push(err ? -1 : n));
    client.send('x', port, (err, n) => sent.push(err ? -1 : n));
    await waitFor(() => got.length === 4 && sent.length === 4, 'four datagrams to the loopback');
    expect(sent).toEqual([1, 1, 1, 1]);
    for (const bad of [[], 0, true, 1n, {}, Symbol('s')]) {
      expect(() => client.send('x', port, bad as never)).toThrow(
        expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/^The "address" argument must be of type string\. Received /) }),
      );
    }
    client.close();
    socket.close();
  });

  it('close() drops the sends still waiting for the implicit bind, and ignores a non-function', async () => {
    const { socket, port, got } = await receiver();
    const client = create('udp4');
    const events: string[] = [];
    client.on('error', (err) => events.push(`error ${err.message}`));
    client.on('listening', () => events.push('listening'));
    client.send('dropped', port, '127.0.0.1', () => events.push('send callback'));
    client.send('dropped too', port, '127.0.0.1');
    expect(() => client.close('not a function' as never)).not.toThrow();
    await once(client, 'close');
    await sleep(50);
    expect(events).toEqual(['listening']);
    expect(got).toEqual([]);
    expect(() => client.close()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }));
    expect(() => client.address()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }));
    socket.close();
  });

  it('a failed bind removes its callback; the socket can bind again', async () => {
    const { socket, port } = await receiver();
    const second = create('udp4');
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    let failures = 0;
    for (let i = 0; i < 12; i++) {
      second.bind(port, '127.0.0.1', () => expect.unreachable('bound a used port'));
      const [err] = await once(second, 'error');
      expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', address: '127.0.0.1', port });
      failures++;
    }
    process.off('warning', onWarning);
    expect([failures, second.listenerCount('listening'), second.listenerCount('error'), warnings]).toEqual([12, 0, 0, []]);
    const listening = new Promise<void>((resolve) => second.bind(0, '127.0.0.1', resolve));
    await listening;
    expect(second.address().port).toBeGreaterThan(0);
    expect([second.listenerCount('listening'), second.listenerCount('error')]).toEqual([0, 0]);
    second.close();
    socket.close();
  });

  it.each(['udp4', 'udp6'] as const)(
    'a failed %s bind keeps the socket libuv made (options set, address() the any-address, port 0), the next bind binds it; closed, its fd goes',
    async (type) => {
      const loopback = type === 'udp4' ? '127.0.0.1' : '::1';
      const any = type === 'udp4' ? '0.0.0.0' : '::';
      const family = type === 'udp4' ? 'IPv4' : 'IPv6';
      const holder = create(type);
      const port = await bound(holder, loopback);
      const fds = socketFds();
      const failing = async (s: nodeDgram.Socket, options: nodeDgram.BindOptions) => {
        s.bind(options);
        const [err] = await once(s, 'error');
        return (err as NodeJS.ErrnoException).code;
      };
      const kept = create(type);
      expect(await failing(kept, { port, address: loopback })).toBe('EADDRINUSE');
      expect(socketFds()).toBe(fds + 1);
      expect(
        attempt(() => [kept.setBroadcast(true), kept.setTTL(9), kept.setMulticastTTL(3), kept.setMulticastLoopback(true), kept.getRecvBufferSize() > 0, kept.setSendBufferSize(65_536)]),
      ).toEqual([undefined, 9, 3, true, true, undefined]);
      expect(kept.address()).toEqual({ address: any, family, port: 0 });
      // Again with other options: the same socket fails the same way, then binds.
      expect(await failing(kept, { port, address: loopback, exclusive: false })).toBe('EADDRINUSE');
      expect(socketFds()).toBe(fds + 1);
      kept.bind({ port: 0, address: loopback, exclusive: true });
      await once(kept, 'listening');
      expect([kept.address().address, kept.address().port > 0, socketFds()]).toEqual([loopback, true, fds + 1]);
      // It receives as any bound socket does.
      const got = once(kept, 'message');
      holder.send('after', kept.address().port, loopback);
      expect(String(((await got) as [Buffer])[0])).toBe('after');
      // One that joined no group and never bound again: a send binds it, a close releases it.
      const sender = create(type);
      expect(await failing(sender, { port, address: loopback })).toBe('EADDRINUSE');
      const heard = once(holder, 'message');
      sender.send('implicit', port, loopback);
      const [msg, rinfo] = (await heard) as [Buffer, nodeDgram.RemoteInfo];
      expect([String(msg), rinfo.port, sender.address().address]).toEqual(['implicit', sender.address().port, any]);
      const never = create(type);
      expect(await failing(never, { port, address: loopback })).toBe('EADDRINUSE');
      expect(socketFds()).toBe(fds + 3);
      for (const s of [kept, sender, never]) {
        const closed = once(s, 'close');
        s.close();
        await closed;
      }
      expect(socketFds()).toBe(fds);
      holder.close();
    },
  );

  it('after a failed bind, a group is joined on the unbound socket, which binds later; ipv6Only on udp4 fails before a socket is made', async () => {
    const holder = create('udp4');
    const port = await bound(holder, '127.0.0.1');
    const fds = socketFds();
    const s = create('udp4');
    s.bind(port, '127.0.0.1');
    await once(s, 'error');
    expect(attempt(() => s.addMembership('224.0.0.114', '127.0.0.1'))).toBeUndefined();
    expect(s.address()).toEqual({ address: '0.0.0.0', family: 'IPv4', port: 0 });
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    expect([s.address().port > 0, socketFds()]).toEqual([true, fds + 1]);
    const six = create('udp4', { ipv6Only: true });
    six.bind(0, '127.0.0.1');
    const [err] = await once(six, 'error');
    expect(err).toMatchObject({ code: 'EINVAL', syscall: 'bind' });
    expect(attempt(() => six.address())).toMatchObject({ code: 'EBADF', syscall: 'getsockname' });
    expect(attempt(() => six.setTTL(5))).toMatchObject({ code: 'EBADF', syscall: 'setTTL' });
    expect(socketFds()).toBe(fds + 1);
    for (const x of [s, six, holder]) {
      const closed = once(x, 'close');
      x.close();
      await closed;
    }
    expect(socketFds()).toBe(fds - 1);
  });

  it('error shapes: no port when it is 0, send errors go to the callback only', async () => {
    const socket = create('udp4');
    socket.bind(0, '1.1.1.1');
    const [err] = await once(socket, 'error');
    expect(err).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind', address: '1.1.1.1', message: 'bind EADDRNOTAVAIL 1.1.1.1' });
    expect(err).not.toHaveProperty('port');
    socket.close();
    // Broadcast is off: the kernel refuses.
    const client = create('udp4');
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    client.send('x', 9, '255.255.255.255');
    const [sendErr] = await new Promise<[Error | null]>((resolve) => client.send('x', 9, '255.255.255.255', (e) => resolve([e])));
    expect(sendErr).toMatchObject({ code: 'EACCES', syscall: 'send', address: '255.255.255.255', port: 9, message: 'send EACCES 255.255.255.255:9' });
    await sleep(20);
    expect(errors).toEqual([]);
    client.close();
  });

  it('a send to an address that the socket, connected meanwhile, no longer takes: EISCONN to its callback, nothing sent', async () => {
    const peer = create('udp4');
    const port = await bound(peer, '127.0.0.1');
    const heard: string[] = [];
    peer.on('message', (m) => heard.push(String(m)));
    // Asked for before the connect completes (its lookup runs after the connect's), from a bind
    // callback and from inside 'message'.
    const sendRacingConnect = (client: nodeDgram.Socket) =>
      new Promise<Error | null>((resolve) => {
        client.connect(port, '127.0.0.1');
        client.send('x', port, '127.0.0.1', (err) => resolve(err));
      });
    const first = create('udp4');
    await bound(first, '127.0.0.1');
    const err = await sendRacingConnect(first);
    expect(err).toMatchObject({ code: 'EISCONN', syscall: 'send', address: '127.0.0.1', port, message: `send EISCONN 127.0.0.1:${port}` });
    const second = create('udp4');
    await bound(second, '127.0.0.1');
    const fromMessage = new Promise<Error | null>((resolve) => second.once('message', () => void sendRacingConnect(second).then(resolve)));
    peer.send('hi', second.address().port, '127.0.0.1');
    expect(await fromMessage).toMatchObject({ code: 'EISCONN' });
    first.send('connected');
    await waitFor(() => heard.length > 0, 'the connected send');
    await sleep(20);
    expect(heard).toEqual(['connected']);
    for (const s of [first, second, peer]) s.close();
  });

  it('calls on a closed socket throw: ERR_SOCKET_DGRAM_NOT_RUNNING (node:dgram: a TypeError from its handle); a second connect() is already connecting', async () => {
    const socket = create('udp4');
    await bound(socket, '127.0.0.1');
    socket.connect(9, '127.0.0.1');
    await once(socket, 'connect');
    socket.close();
    await once(socket, 'close');
    const calls: Record<string, () => unknown> = {
      disconnect: () => socket.disconnect(),
      getSendQueueSize: () => socket.getSendQueueSize(),
      getSendQueueCount: () => socket.getSendQueueCount(),
      setRecvBufferSize: () => socket.setRecvBufferSize(8192),
      getRecvBufferSize: () => socket.getRecvBufferSize(),
      getSendBufferSize: () => socket.getSendBufferSize(),
    };
    const closedHandle = name === 'node:dgram' ? { message: expect.stringMatching(/^Cannot read properties of null/) } : { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' };
    for (const [what, call] of Object.entries(calls)) expect(attempt(call), what).toMatchObject(closedHandle);
    const never = create('udp4');
    await bound(never, '127.0.0.1');
    never.close();
    expect(attempt(() => never.connect(9, '127.0.0.1'))).toMatchObject(closedHandle);
    expect(attempt(() => never.connect(9, '127.0.0.1'))).toMatchObject({ code: 'ERR_SOCKET_DGRAM_IS_CONNECTED' });
  });

  it('a udp4 socket takes no IPv6 address and a udp6 socket no IPv4 one: EINVAL', async () => {
    const shapes: unknown[] = [];
    const shape = (e: unknown) => {
      const { message, code, syscall, address, port } = e as NodeJS.ErrnoException & { address?: string; port?: number };
      shapes.push({ message, code, syscall, address, port });
    };
    for (const [type, wrong] of [['udp4', '::1'], ['udp6', '127.0.0.1']] as const) {
      const bad = create(type);
      bad.bind(0, wrong);
      shape((await once(bad, 'error'))[0]);
      bad.close();
      const sender = create(type);
      shape(await new Promise((resolve) => sender.send('x', 9, wrong, resolve)));
      shape(await new Promise((resolve) => sender.connect(9, wrong, resolve as () => void)));
      sender.close();
    }
    const einval = (syscall: string, address: string, port?: number) => ({
      message: `${syscall} EINVAL ${address}${port ? `:${port}` : ''}`, code: 'EINVAL', syscall, address, port,
    });
    expect(shapes).toEqual([
      einval('bind', '::1'), einval('send', '::1', 9), einval('connect', '::1', 9),
      einval('bind', '127.0.0.1'), einval('send', '127.0.0.1', 9), einval('connect', '127.0.0.1', 9),
    ]);
  });

  it('validates arguments with node:dgram codes and messages', () => {
    const s = create('udp4');
    const code = (c: string, message?: string | RegExp) => expect.objectContaining(message === undefined ? { code: c } : { code: c, message: expect.stringMatching(message) });
    expect(() => s.send(undefined as never, 1, '127.0.0.1')).toThrow(code('ERR_INVALID_ARG_TYPE', /^The "buffer" argument must be of type string or an instance of Buffer, TypedArray, or DataView\. Received undefined$/));
    expect(() => s.send([Buffer.from('a'), 23] as never, 1, '127.0.0.1')).toThrow(code('ERR_INVALID_ARG_TYPE', /^The "buffer list arguments" argument/));
    expect(() => s.send(new DataView(new ArrayBuffer(5)), 6, 0, 1, '127.0.0.1')).toThrow(code('ERR_BUFFER_OUT_OF_BOUNDS', /^"offset" is outside of buffer bounds$/));
    expect(() => s.send('hello', 3, 4, 1, '127.0.0.1')).toThrow(code('ERR_BUFFER_OUT_OF_BOUNDS', /^"length" is outside of buffer bounds$/));
    expect(() => s.send('hello', 1n as never, 1, 1, '127.0.0.1')).toThrow(TypeError);
    expect(() => s.send('x', 0, '127.0.0.1')).toThrow(code('ERR_SOCKET_BAD_PORT', /^Port should be > 0 and < 65536\. Received type number \(0\)\.$/));
    // How each kind of value is named (a hunt found muxnet's older wording for these).
    const received = (port: unknown) => (attempt(() => s.send('x', port as number, '127.0.0.1')) as { message: string }).message.replace(/^.*Received /, '');
    expect([() => {}, 'a'.repeat(40), "it's ".repeat(8), "it's", -0, 5n, Symbol('x'), Object.create(null)].map(received)).toEqual([
      'function .',
      "type string ('aaaaaaaaaaaaaaaaaaaaaaaaa...').",
      'type string ("it\'s it\'s it\'s it\'s it\'s ...").',
      'type string ("it\'s").',
      'type number (-0).',
      'type bigint (5n).',
      'type symbol (Symbol(x)).',
      '[Object: null prototype] {}.',
    ]);
    expect(() => s.connect(78960)).toThrow(code('ERR_SOCKET_BAD_PORT', /^Port should be > 0 and < 65536/));
    expect(() => s.connect(1, 5 as never)).toThrow(code('ERR_INVALID_ARG_TYPE', /^The "address" argument must be of type string/));
    const legacy = s as unknown as { sendto: (...args: unknown[]) => void };
    expect(() => legacy.sendto('b', 1, 'offset')).toThrow(code('ERR_INVALID_ARG_TYPE', /^The "length" argument must be of type number\. Received type string \('offset'\)$/));
    expect(() => legacy.sendto('b', 1, 1, 10, false)).toThrow(code('ERR_INVALID_ARG_TYPE', /^The "address" argument must be of type string\. Received type boolean \(false\)$/));
    for (const type of ['test', ['udp4'], 1, null, undefined, {}]) {
      expect(() => dgram.createSocket(type as never)).toThrow(code('ERR_SOCKET_BAD_TYPE', /^Bad socket type specified\. Valid types are: udp4, udp6$/));
    }
    let caught: Error | undefined;
    try {
      dgram.createSocket('udp5' as never);
    } catch (err) {
      caught = err as Error;
    }
    // (Its stack says the same outside vitest, whose source maps rewrite Node's.)
    expect(String(caught)).toBe('TypeError [ERR_SOCKET_BAD_TYPE]: Bad socket type specified. Valid types are: udp4, udp6');
    expect(() => create('udp4', { lookup: null as never })).toThrow(code('ERR_INVALID_ARG_TYPE', /^The "lookup" argument must be of type function\. Received null$/));
    expect(() => create('udp4', { signal: {} as never })).toThrow(code('ERR_INVALID_ARG_TYPE', /^The "options\.signal" property must be an instance of AbortSignal\. Received an instance of Object$/));
    expect(() => create('udp4', { recvBufferSize: 1.5 })).toThrow(code('ERR_OUT_OF_RANGE', /^The value of "options\.recvBufferSize" is out of range\. It must be an integer\. Received 1\.5$/));
    expect(() => create('udp4', { sendBufferSize: 'x' as never })).toThrow(code('ERR_INVALID_ARG_TYPE', /^The "options\.sendBufferSize" property must be of type number/));
    expect(() => s.setTTL('foo' as never)).toThrow(code('ERR_INVALID_ARG_TYPE', /^The "ttl" argument must be of type number/));
    expect(() => s.setBroadcast(true)).toThrow(code('EBADF', /^setBroadcast EBADF$/));
    expect(() => s.setMulticastLoopback(true)).toThrow(code('EBADF', /^setMulticastLoopback EBADF$/));
    expect(() => s.addMembership(undefined as never)).toThrow(code('ERR_MISSING_ARGS', /^The "multicastAddress" argument must be specified$/));
    expect(() => s.dropMembership('256.256.256.256')).toThrow(code('EINVAL', /^dropMembership EINVAL$/));
    expect(() => s.addSourceSpecificMembership('224.0.0.114', '0')).toThrow(code('EINVAL', /^addSourceSpecificMembership EINVAL$/));
    expect(() => s.setRecvBufferSize(-1)).toThrow(code('ERR_SOCKET_BAD_BUFFER_SIZE'));
    expect([s.getSendQueueSize(), s.getSendQueueCount()]).toEqual([0, 0]);
    s.close();
    expect(() => s.addMembership('224.0.0.114')).toThrow(code('ERR_SOCKET_DGRAM_NOT_RUNNING', /^Not running$/));
  });

  // Found by a hunt: muxnet's socket stayed half-bound, so the send and the close were lost.
  it('a bind whose lookup fails leaves the socket unbound: a send binds it implicitly, a bind may be retried, close() closes', async () => {
    const lookup = (host: string, family: unknown, cb: (e: Error | null, a?: string, f?: number) => void) => {
      if (host === 'nowhere.invalid') return process.nextTick(cb, Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.invalid'), { code: 'ENOTFOUND' }));
      dns.lookup(host, family as number, cb);
    };
    const { socket, port, got } = await receiver();
    const sender = create('udp4', { lookup: lookup as never });
    sender.bind(0, 'nowhere.invalid');
    const [err] = await once(sender, 'error');
    expect(err).toMatchObject({ code: 'ENOTFOUND' });
    const sent = await new Promise<number | undefined>((resolve) => sender.send('after', port, '127.0.0.1', (_e, n) => resolve(n)));
    expect(sent).toBe(5);
    await waitFor(() => got.length === 1, 'the datagram');
    await new Promise<void>((resolve) => sender.close(resolve));
    const again = create('udp4', { lookup: lookup as never });
    again.bind(0, 'nowhere.invalid');
    await once(again, 'error');
    again.bind(0, '127.0.0.1');
    await once(again, 'listening');
    expect(again.address()).toMatchObject({ address: '127.0.0.1' });
    await new Promise<void>((resolve) => again.close(resolve));
    socket.close();
  });

  // Found by a differential hunt of dgram's options (2026-12-04), the two below.
  it("fails connect() when its lookup answers again (EISCONN), refuses a sparse send list, and takes '' as a source-specific group (EINVAL)", async () => {
    const { socket, port } = await receiver();
    // Once for the implicit bind's any-address, twice for the peer.
    const lookup = (host: string, _family: unknown, cb: (e: Error | null, a?: string, f?: number) => void) => {
      if (host === '0.0.0.0') return cb(null, host, 4);
      cb(null, '127.0.0.1', 4);
      cb(null, '127.0.0.1', 4);
    };
    const client = create('udp4', { lookup: lookup as never });
    const events: string[] = [];
    client.on('connect', () => events.push('connect'));
    client.on('error', (err: NodeJS.ErrnoException) => events.push(`error ${err.code} ${err.message}`));
    client.connect(port, 'peer.example');
    await waitFor(() => events.length === 2, 'connect and the error');
    expect(events).toEqual(['connect', `error EISCONN connect EISCONN peer.example:${port}`]);
    expect(() => client.send(new Array(1) as never, port, '127.0.0.1')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => client.send([, 'x'] as never, port, '127.0.0.1')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => client.addSourceSpecificMembership('127.0.0.1', '')).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'addSourceSpecificMembership' }));
    client.close();
    socket.close();
  });

  it('looks names up with options.lookup(host, family) and reports its failure to connect()', async () => {
    const asked: unknown[][] = [];
    const lookup = (host: string, family: unknown, cb: (e: Error | null, a?: string, f?: number) => void) => {
      asked.push([host, family]);
      if (host === 'nowhere.invalid') return process.nextTick(cb, Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.invalid'), { code: 'ENOTFOUND' }));
      dns.lookup(host, family as number, cb);
    };
    const { socket, port, got } = await receiver();
    const client = create('udp4', { lookup: lookup as never });
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    const [err] = await new Promise<[Error | undefined]>((resolve) => client.connect(port, 'nowhere.invalid', ((e?: Error) => resolve([e])) as never));
    expect(err).toMatchObject({ code: 'ENOTFOUND' });
    client.connect(port, 'localhost');
    await once(client, 'connect');
    client.send('via lookup');
    await waitFor(() => got.length === 1, 'the datagram');
    expect(asked).toEqual([['0.0.0.0', 4], ['nowhere.invalid', 4], ['localhost', 4]]);
    expect(errors).toEqual([]);
    client.close();
    socket.close();
  });

  it('asks a dns.lookup patched in before createSocket for every destination, addresses too (before Node 24.19)', async () => {
    // From 24.19 node:dgram answers an address of its own family itself, asking no lookup.
    const { socket, port, got } = await receiver();
    const original = dns.lookup;
    const asked: string[] = [];
    const patched = (host: string, family: number, cb: (e: Error | null, a: string, f: number) => void) => {
      asked.push(host);
      original(host, family, cb);
    };
    (dns as { lookup: unknown }).lookup = patched;
    let client: nodeDgram.Socket;
    try {
      client = create('udp4');
    } finally {
      dns.lookup = original;
    }
    client.send('one', port, '127.0.0.1');
    client.send('two', port, '127.0.0.1');
    await waitFor(() => got.length === 2, 'both datagrams');
    const expected = NODE_HAS.lookupReadAtCall ? [] : ['0.0.0.0', '127.0.0.1', '127.0.0.1'];
    expect(asked).toEqual(expected);
    // One created after the patch was undone: the builtin answers, the same way.
    const plain = create('udp4');
    plain.send('three', port, '127.0.0.1');
    await waitFor(() => got.length === 3, 'the third datagram');
    expect(asked).toEqual(expected);
    client.close();
    plain.close();
    socket.close();
  });

  it('reads dns.lookup when the socket is made (before Node 24.19) or at each call (24.19 on)', async () => {
    const { socket, port, got } = await receiver();
    const client = create('udp4');
    const original = dns.lookup;
    const asked: string[] = [];
    (dns as { lookup: unknown }).lookup = (host: string, family: number, cb: (e: Error | null, a: string, f: number) => void) => {
      asked.push(host);
      original(host, family, cb);
    };
    try {
      // 'localhost' from /etc/hosts; an address of the socket's family is not asked from 24.19.
      client.send('by name', port, 'localhost');
      client.send('by address', port, '127.0.0.1');
      await waitFor(() => got.length === 2, 'both datagrams');
    } finally {
      dns.lookup = original;
    }
    expect(asked).toEqual(NODE_HAS.lookupReadAtCall ? ['localhost'] : []);
    client.close();
    socket.close();
  });

  it('asks a dns.lookup wrapper patched in before the module loaded, addresses too (before Node 24.19)', async () => {
    const fixture = path.join(__dirname, 'fixtures', 'dgram-preloaded-lookup.js');
    const { stdout } = await run(process.execPath, [fixture, backend ? 'muxnet/dgram' : 'node:dgram', backend ?? 'mio'], { timeout: 10_000 });
    // The receiver's bind, the sender's implicit one, and its two sends; from 24.19 all answered without it.
    expect(JSON.parse(stdout)).toEqual(NODE_HAS.lookupReadAtCall ? [] : ['127.0.0.1', '0.0.0.0', '127.0.0.1', '127.0.0.1']);
  });

  it('sendBlockList refuses sends (to the callback only) and connects; receiveBlockList drops datagrams', async (ctx) => {
    if (!backend && !NODE_HAS.blockLists) return ctx.skip();
    expect(() => create('udp4', { sendBlockList: 1 } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: 'The "options.sendBlockList" property must be an net.BlockList. Received type number (1)' }),
    );
    // Bound to every address: reached at 127.0.0.1 (blocked below) and 127.0.0.2 (not).
    const socket = create('udp4');
    const port = await bound(socket, '0.0.0.0');
    const got: string[] = [];
    socket.on('message', (m) => got.push(String(m)));
    const blocked = new BlockList();
    blocked.addAddress('127.0.0.1');
    const sender = create('udp4', { sendBlockList: blocked } as never);
    const errors: Error[] = [];
    sender.on('error', (e) => errors.push(e));
    sender.send('silent', port, '127.0.0.1');
    const [err] = await new Promise<[Error | null]>((r) => sender.send('refused', port, '127.0.0.1', (e) => r([e])));
    expect(err).toMatchObject({ code: 'ERR_IP_BLOCKED', message: 'IP(127.0.0.1) is blocked by net.BlockList' });
    const [refused] = await new Promise<[Error | undefined]>((r) => sender.connect(port, '127.0.0.1', ((e?: Error) => r([e])) as never));
    expect(refused).toMatchObject({ code: 'ERR_IP_BLOCKED' });
    // A blocked send's callback is dropped with the socket, as any send's is, closed before its lookup answered.
    const closing = create('udp4', { sendBlockList: blocked } as never);
    let late = false;
    closing.send('gone', port, '127.0.0.1', () => (late = true));
    closing.close();
    await once(closing, 'close');
    await sleep(10);
    expect(late).toBe(false);
    // Falsy lists are none, as node:dgram reads them.
    create('udp4', { sendBlockList: null, receiveBlockList: 0 } as never).close();
    // Another address still goes.
    sender.send('allowed', port, '127.0.0.2');
    await waitFor(() => got.length === 1, 'the datagram to an address not blocked');
    expect(got).toEqual(['allowed']);
    expect(errors).toEqual([]);
    // Receiving: one socket's queue is in order, so the blocked sender's datagram came first.
    const deafTo = new BlockList();
    deafTo.addAddress('127.0.0.2');
    const deaf = create('udp4', { receiveBlockList: deafTo } as never);
    const deafPort = await bound(deaf, '127.0.0.1');
    const heard: string[] = [];
    deaf.on('message', (m) => heard.push(String(m)));
    const fromBlocked = create('udp4');
    await bound(fromBlocked, '127.0.0.2');
    const fromAllowed = create('udp4');
    fromBlocked.send('dropped', deafPort, '127.0.0.1');
    await sleep(20);
    fromAllowed.send('kept', deafPort, '127.0.0.1');
    await waitFor(() => heard.length === 1, 'the allowed datagram');
    expect(heard).toEqual(['kept']);
    // A 'message' handler's sends: each callback in its place, blocked or not.
    const order: string[] = [];
    const outcome = (what: string) => (e: Error | null) => order.push(`${what} ${(e as NodeJS.ErrnoException | null)?.code ?? 'sent'}`);
    const edgy = create('udp4', { sendBlockList: deafTo } as never);
    edgy.on('message', (_m, rinfo) => {
      edgy.send('reply', rinfo.port, rinfo.address, outcome('reply'));
      edgy.send('no', port, '127.0.0.2', outcome('blocked'));
      edgy.send('no', port, '::1', outcome('wrong family'));
    });
    fromAllowed.send('go', await bound(edgy, '127.0.0.1'), '127.0.0.1');
    await waitFor(() => order.length === 3, 'the three callbacks');
    expect(order).toEqual(['reply sent', 'blocked ERR_IP_BLOCKED', 'wrong family EINVAL']);
    for (const s of [sender, deaf, fromBlocked, fromAllowed, socket, edgy]) s.close();
  });

  it('bindSync and connectSync: numeric addresses only, errors thrown, listening then connect on the next tick', async (ctx) => {
    if (!backend && !NODE_HAS.syncCalls) return ctx.skip();
    type Sync = nodeDgram.Socket & { bindSync(o?: unknown): ReturnType<nodeDgram.Socket["address"]>; connectSync(port: unknown, address?: unknown): void };
    const { socket, port, got } = await receiver();
    const s = create('udp4') as Sync;
    const events: string[] = [];
    s.on('listening', () => events.push('listening'));
    s.on('connect', () => events.push('connect'));
    expect(s.connectSync(port, '127.0.0.1')).toBeUndefined();
    expect(s.remoteAddress()).toEqual({ address: '127.0.0.1', family: 'IPv4', port });
    expect(events).toEqual([]);
    s.send('synced');
    await waitFor(() => got.length === 1, 'the datagram');
    expect(events).toEqual(['listening', 'connect']);
    expect(attempt(() => s.connectSync(port, '127.0.0.1'))).toMatchObject({ code: 'ERR_SOCKET_DGRAM_IS_CONNECTED' });
    const t = create('udp4') as Sync;
    expect(attempt(() => t.bindSync({ address: 'localhost' }))).toEqual({
      code: 'ERR_INVALID_ARG_VALUE',
      syscall: undefined,
      message: "The property 'options.address' must be a numeric IP address; bindSync does not perform DNS resolution. Received 'localhost'",
    });
    expect(attempt(() => t.bindSync('x'))).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(attempt(() => t.bindSync({ port, address: '127.0.0.1' }))).toEqual({ code: 'EADDRINUSE', syscall: 'bind', message: `bind EADDRINUSE 127.0.0.1:${port}` });
    expect(t.bindSync({ address: '127.0.0.1' })).toEqual(t.address());
    expect(attempt(() => t.bindSync())).toMatchObject({ code: 'ERR_SOCKET_ALREADY_BOUND' });
    expect(attempt(() => t.connectSync(0))).toMatchObject({ code: 'ERR_SOCKET_BAD_PORT' });
    expect(attempt(() => t.connectSync(port, 'localhost'))).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(attempt(() => t.connectSync(port, '::1'))).toEqual({ code: 'EINVAL', syscall: 'connect', message: `connect EINVAL ::1:${port}` });
    const binding = create('udp4') as Sync;
    binding.bind(0);
    expect(attempt(() => binding.connectSync(port))).toMatchObject({ code: 'ERR_SOCKET_ALREADY_BOUND' });
    for (const x of [s, t, binding, socket]) x.close();
  });

  // Until 2026-12-05 muxnet honoured it on Node 20 too, where node:dgram ignores it.
  it('reusePort lets sockets share a port (Node 22.12+; before, ignored as by node:dgram); without it the second bind fails', async (ctx) => {
    if (process.platform !== 'linux') return ctx.skip();
    const first = create('udp4', { reusePort: true } as never);
    const port = await bound(first, '127.0.0.1');
    const second = create('udp4', { reusePort: true } as never);
    second.bind(port, '127.0.0.1');
    if (NODE_HAS.reusePort) {
      await once(second, 'listening');
      expect(second.address().port).toBe(port);
    } else {
      const [ignored] = await once(second, 'error');
      expect(ignored).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' });
    }
    const plain = create('udp4');
    plain.bind(port, '127.0.0.1');
    const [err] = await once(plain, 'error');
    expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' });
    for (const s of [first, second, plain]) s.close();
  });

  it('a signal closes the socket, also when aborted already', async () => {
    const controller = new AbortController();
    const socket = create('udp4', { signal: controller.signal });
    await bound(socket, '127.0.0.1');
    const closed = once(socket, 'close');
    controller.abort();
    await closed;
    expect(() => socket.address()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }));
    const early = create('udp4', { signal: AbortSignal.abort() });
    await once(early, 'close');
    const after = new AbortController();
    const closedFirst = create('udp4', { signal: after.signal });
    closedFirst.close();
    expect(() => after.abort()).not.toThrow();
  });

  it('[Symbol.asyncDispose]() closes the socket, and resolves when it is closed already', async () => {
    const socket = create('udp4');
    await bound(socket, '127.0.0.1');
    const closed = once(socket, 'close');
    const dispose = (socket as unknown as AsyncDisposable)[Symbol.asyncDispose];
    expect(typeof dispose).toBe('function');
    await dispose.call(socket);
    await closed;
    expect(() => socket.address()).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }));
    await expect(dispose.call(socket)).resolves.toBeUndefined();
  });

  it('socket options: broadcast, TTL, multicast TTL, loopback and interface, with node:dgram errors', async () => {
    const fresh = create('udp4');
    const unbound = [attempt(() => fresh.setTTL(10)), attempt(() => fresh.setTTL(0)), attempt(() => fresh.setMulticastTTL(256)), attempt(() => fresh.setMulticastInterface('127.0.0.1'))];
    expect(unbound).toEqual([
      { code: 'EBADF', syscall: 'setTTL', message: 'setTTL EBADF' },
      { code: 'EINVAL', syscall: 'setTTL', message: 'setTTL EINVAL' },
      { code: 'EINVAL', syscall: 'setMulticastTTL', message: 'setMulticastTTL EINVAL' },
      { code: 'EBADF', syscall: 'setMulticastInterface', message: 'setMulticastInterface EBADF' },
    ]);
    fresh.close();
    const s = create('udp4');
    await bound(s, '0.0.0.0');
    const results = [
      ...[1.5, 2 ** 32 + 5, 0, 256, NaN].map((ttl) => attempt(() => s.setTTL(ttl))),
      ...[0, 255, 256, -1].map((ttl) => attempt(() => s.setMulticastTTL(ttl))),
      attempt(() => s.setMulticastLoopback('x' as never)),
      ...['127.0.0.1', '0.0.0.0', 'bogus', '::1', '192.0.2.255'].map((iface) => attempt(() => s.setMulticastInterface(iface))),
    ];
    const einval = (syscall: string) => ({ code: 'EINVAL', syscall, message: `${syscall} EINVAL` });
    expect(results).toEqual([
      1.5, 2 ** 32 + 5, einval('setTTL'), einval('setTTL'), einval('setTTL'),
      0, 255, einval('setMulticastTTL'), einval('setMulticastTTL'),
      'x',
      undefined, undefined, einval('setMulticastInterface'),
      { code: 'ENOPROTOOPT', syscall: 'setMulticastInterface', message: 'setMulticastInterface ENOPROTOOPT' },
      { code: 'EADDRNOTAVAIL', syscall: 'setMulticastInterface', message: 'setMulticastInterface EADDRNOTAVAIL' },
    ]);
    // Broadcast: refused until SO_BROADCAST is on, refused again once off.
    const broadcast = () => new Promise<string | undefined>((resolve) => s.send('b', 9, '255.255.255.255', (err) => resolve((err as NodeJS.ErrnoException | null)?.code)));
    const outcomes = [await broadcast()];
    s.setBroadcast(true);
    outcomes.push(await broadcast());
    s.setBroadcast(false);
    outcomes.push(await broadcast());
    expect(outcomes[0]).toBe('EACCES');
    expect(outcomes[1]).not.toBe('EACCES');
    expect(outcomes[2]).toBe('EACCES');
    s.close();
    const six = create('udp6');
    await bound(six, '::1');
    expect([six.setTTL(64), six.setMulticastTTL(0), six.setMulticastLoopback(false), six.setMulticastInterface('::%lo'), six.setMulticastInterface('::')]).toEqual([64, 0, false, undefined, undefined]);
    six.close();
  });

  it('buffer sizes: createSocket({ recvBufferSize, sendBufferSize }), getters and setters, with node:dgram errors', async () => {
    const s = create('udp4', { recvBufferSize: 10000, sendBufferSize: 15000 });
    let early: Error | undefined;
    try {
      s.getRecvBufferSize();
    } catch (err) {
      early = err as Error;
    }
    expect(early).toMatchObject({
      name: 'SystemError', code: 'ERR_SOCKET_BUFFER_SIZE', errno: -9, syscall: 'uv_recv_buffer_size',
      message: 'Could not get or set buffer size: uv_recv_buffer_size returned EBADF (bad file descriptor)',
      info: { errno: -9, code: 'EBADF', message: 'bad file descriptor', syscall: 'uv_recv_buffer_size' },
    });
    expect(Object.keys(early!)).toEqual(['code', 'info', 'errno', 'syscall']);
    expect(String(early)).toBe('SystemError [ERR_SOCKET_BUFFER_SIZE]: Could not get or set buffer size: uv_recv_buffer_size returned EBADF (bad file descriptor)');
    // Inspected as node:dgram's: the getters' values shown.
    const reference = nodeDgram.createSocket('udp4');
    let nodeError: Error | undefined;
    try {
      reference.getRecvBufferSize();
    } catch (err) {
      nodeError = err as Error;
    }
    reference.close();
    // Its properties, under the first line (which the stack's rewriting under vitest changes).
    const shown = (err: Error) => inspect(err).replace(/^ +at .*\n/gm, '').split('\n').slice(1).join('\n');
    expect(shown(early!)).toBe(shown(nodeError!));
    expect(shown(early!)).toContain("errno: [Getter/Setter: -9]");
    expect(() => s.setSendBufferSize(4096)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BUFFER_SIZE', syscall: 'uv_send_buffer_size' }));
    await bound(s, '127.0.0.1');
    // Linux keeps (and reports) twice what was asked.
    const factor = process.platform === 'linux' ? 2 : 1;
    expect([s.getRecvBufferSize(), s.getSendBufferSize()]).toEqual([10000 * factor, 15000 * factor]);
    s.setRecvBufferSize(8192);
    s.setSendBufferSize(9000);
    expect([s.getRecvBufferSize(), s.getSendBufferSize()]).toEqual([8192 * factor, 9000 * factor]);
    expect(() => s.setRecvBufferSize(2 ** 31)).toThrow(
      expect.objectContaining({ code: 'ERR_SOCKET_BUFFER_SIZE', message: 'Could not get or set buffer size: uv_recv_buffer_size returned EINVAL (invalid argument)' }),
    );
    for (const bad of [-1, 1.5, '5', 2 ** 32]) {
      expect(() => s.setSendBufferSize(bad as never)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_SOCKET_BAD_BUFFER_SIZE', message: 'Buffer size must be a positive integer' }));
    }
    s.close();
  });

  /**
   * Joins, hears, leaves and leaves again, any-source then source-specific, over loopback, then an
   * IPv6 group: each step's outcome ('heard', 'silent', a call's error where the kernel refuses).
   */
  const multicast = async (impl: Dgram, groups: [string, string]) => {
    const make = (options: Partial<nodeDgram.SocketOptions>) => impl.createSocket({ type: 'udp4', backend, ...options } as nodeDgram.SocketOptions);
    const member = make({ reuseAddr: true });
    member.bind(0, '0.0.0.0');
    await once(member, 'listening');
    const heard: string[] = [];
    member.on('message', (msg) => heard.push(String(msg)));
    const sender = make({});
    sender.bind(0, '127.0.0.1');
    await once(sender, 'listening');
    sender.setMulticastInterface('127.0.0.1');
    const steps: unknown[] = [];
    const listen = async (group: string) => {
      heard.length = 0;
      sender.send('hello', member.address().port, group);
      // Heard at once over loopback, unless the loop is slow: 'silent' only after 300 ms.
      await waitFor(() => heard.length > 0, 'a datagram', 300).catch(() => {});
      steps.push(heard.length > 0 ? 'heard' : 'silent');
    };
    const step = (call: () => void) => {
      const r = attempt(call);
      if (r !== undefined) steps.push(r);
    };
    const [group, ssmGroup] = groups;
    step(() => member.addMembership(group, '127.0.0.1'));
    await listen(group);
    step(() => member.dropMembership(group, '127.0.0.1'));
    await listen(group);
    step(() => member.dropMembership(group, '127.0.0.1'));
    step(() => member.addSourceSpecificMembership('127.0.0.1', ssmGroup, '127.0.0.1'));
    await listen(ssmGroup);
    step(() => member.dropSourceSpecificMembership('127.0.0.1', ssmGroup, '127.0.0.1'));
    await listen(ssmGroup);
    step(() => member.dropSourceSpecificMembership('127.0.0.1', ssmGroup, '127.0.0.1'));
    step(() => member.addMembership(group, 'x'));
    step(() => member.addMembership('127.0.0.1'));
    member.close();
    sender.close();
    const six = make({ type: 'udp6' });
    six.bind(0, '::');
    await once(six, 'listening');
    for (const call of [() => six.addMembership('ff02::114', '::%lo'), () => six.dropMembership('ff02::114', '::%lo'), () => six.dropMembership('ff02::114', '::%lo')]) {
      steps.push(attempt(call));
    }
    six.close();
    return steps;
  };

  it('multicast over loopback: joins and hears a group, any source or one, leaves it; errors as node:dgram', async () => {
    // Groups of this process's own, so other tests on the machine do not join them.
    const groups = (n: number): [string, string] => [`239.${process.pid & 0xff}.${(process.pid >> 8) & 0xff}.${n}`, `232.${process.pid & 0xff}.${(process.pid >> 8) & 0xff}.${n}`];
    const ours = await multicast(dgram, groups(IMPLS.findIndex(([n]) => n === name)));
    const node = name === 'node:dgram' ? ours : await multicast(nodeDgram, groups(9));
    expect(ours).toEqual(node);
    const err = (code: string, syscall: string) => ({ code, syscall, message: `${syscall} ${code}` });
    // The kernel may refuse multicast on loopback; here it takes it.
    if (node[0] === 'heard') {
      expect(ours).toEqual([
        'heard', 'silent', err('EADDRNOTAVAIL', 'dropMembership'),
        'heard', 'silent', err('EINVAL', 'dropSourceSpecificMembership'),
        err('EINVAL', 'addMembership'), err('EINVAL', 'addMembership'),
        undefined, undefined, err('EADDRNOTAVAIL', 'dropMembership'),
      ]);
    }
  });

  it('joining a group unbound binds the socket to the any-address, as libuv does; bind() then fails', async () => {
    const s = create('udp4');
    s.addMembership('239.1.2.3');
    expect(s.address()).toMatchObject({ address: '0.0.0.0', family: 'IPv4' });
    expect(s.address().port).toBeGreaterThan(0);
    s.bind(0, '127.0.0.1');
    const [err] = await once(s, 'error');
    expect(err).toMatchObject({ code: 'EINVAL', syscall: 'bind', address: '127.0.0.1', message: 'bind EINVAL 127.0.0.1' });
    s.close();
  });

  it('a connected socket hears the ICMP port unreachable as an error (recvmsg ECONNREFUSED); an unconnected one does not', async () => {
    const gone = create('udp4');
    const port = await bound(gone, '127.0.0.1');
    gone.close();
    await once(gone, 'close');
    const loose = create('udp4');
    const looseErrors: Error[] = [];
    loose.on('error', (e) => looseErrors.push(e));
    loose.send('x', port, '127.0.0.1');
    const client = create('udp4');
    client.connect(port, '127.0.0.1');
    await once(client, 'connect');
    const failed = once(client, 'error');
    client.send('anyone?');
    const [err] = (await failed) as [NodeJS.ErrnoException];
    expect({ code: err.code, errno: err.errno, syscall: err.syscall, message: err.message }).toEqual({
      code: 'ECONNREFUSED', errno: -os.constants.errno.ECONNREFUSED, syscall: 'recvmsg', message: 'recvmsg ECONNREFUSED',
    });
    // Still open and working.
    const { socket, port: live, got } = await receiver();
    client.disconnect();
    client.send('still here', live, '127.0.0.1');
    await waitFor(() => got.length === 1, 'a datagram after the error');
    await sleep(50);
    expect(looseErrors).toEqual([]);
    for (const s of [client, loose, socket]) s.close();
  });

  it('IPv6 zones: a link-local address with %interface binds, sends and shows its zone as node:dgram does', async () => {
    const shape = async (address: string) => {
      const s = create('udp6');
      const out = await new Promise<string>((resolve) => {
        s.once('error', (err) => resolve(err.message));
        s.bind(0, address, () => resolve(s.address().address));
      });
      s.close();
      return out;
    };
    // libuv reads a zone as an interface name: an unknown one (a number on Unix) is no scope.
    expect(await shape('fe80::1%nope')).toBe('bind EINVAL fe80::1%nope');
    expect(await shape('fe80::1%1')).toBe('bind EINVAL fe80::1%1');
    expect(await shape('::1%lo')).toBe('::1');
    const linkLocal = Object.entries(os.networkInterfaces()).flatMap(([ifname, entries]) =>
      (entries ?? []).filter((e) => e.family === 'IPv6' && e.address.startsWith('fe80:')).map((e) => `${e.address}%${ifname}`),
    )[0];
    // No link-local address on any interface: a zoned bind the kernel refuses, then.
    if (linkLocal === undefined) return expect(await shape('fe80::1%lo')).toBe('bind EADDRNOTAVAIL fe80::1%lo');
    const server = create('udp6');
    server.bind({ address: linkLocal, port: 0 });
    await once(server, 'listening');
    expect(server.address().address).toBe(linkLocal);
    const client = create('udp6');
    client.bind(0, linkLocal);
    await once(client, 'listening');
    const message = once(server, 'message');
    client.send('local', server.address().port, linkLocal);
    const [msg, rinfo] = (await message) as [Buffer, nodeDgram.RemoteInfo];
    expect([String(msg), rinfo.address, rinfo.port]).toEqual(['local', linkLocal, client.address().port]);
    client.connect(server.address().port, linkLocal);
    await once(client, 'connect');
    expect(client.remoteAddress().address).toBe(linkLocal);
    client.close();
    server.close();
  });

  it('a burst larger than one receive batch: each datagram echoed whole, in order, to its sender; one callback per send', async () => {
    const PER_SENDER = 40;
    // Sizes 0 to 117 (empty datagrams too), filled with the sender and index.
    const datagram = (s: number, i: number) => Buffer.alloc((s * 7 + i * 3) % 118, `${s}:${i}|`);
    const server = create('udp4');
    const port = await bound(server, '127.0.0.1');
    const heard: [number, number, number][] = [];
    const serverSent: (number | string)[] = [];
    server.on('message', (msg, rinfo) => {
      heard.push([rinfo.port, rinfo.size, msg.length]);
      server.send(msg, rinfo.port, rinfo.address, (err, n) => serverSent.push(err ? String((err as NodeJS.ErrnoException).code) : n));
    });
    const clients = [create('udp4'), create('udp4'), create('udp4')];
    const ports = await Promise.all(clients.map((c) => bound(c, '127.0.0.1')));
    const echoed: Buffer[][] = clients.map(() => []);
    const callbacks: (number | string)[][] = clients.map(() => []);
    clients.forEach((c, s) =>
      c.on('message', (msg, rinfo) => {
        expect(rinfo).toMatchObject({ address: '127.0.0.1', port, size: msg.length });
        echoed[s].push(Buffer.from(msg));
      }),
    );
    // All queued before the server's next turn: 120 datagrams, interleaved.
    for (let i = 0; i < PER_SENDER; i++) {
      clients.forEach((c, s) => c.send(datagram(s, i), port, '127.0.0.1', (err, n) => callbacks[s].push(err ? String((err as NodeJS.ErrnoException).code) : n)));
    }
    await waitFor(() => echoed.every((e) => e.length >= PER_SENDER) && serverSent.length >= 3 * PER_SENDER, 'every echo and callback');
    const sizes = (s: number) => Array.from({ length: PER_SENDER }, (_, i) => datagram(s, i).length);
    clients.forEach((_c, s) => {
      expect(echoed[s]).toEqual(Array.from({ length: PER_SENDER }, (_, i) => datagram(s, i)));
      expect(callbacks[s]).toEqual(sizes(s));
      const fromMe = heard.filter(([from]) => from === ports[s]);
      expect(fromMe).toEqual(sizes(s).map((n) => [ports[s], n, n]));
    });
    expect(heard.length).toBe(3 * PER_SENDER);
    expect(serverSent.slice().sort((a, b) => Number(a) - Number(b))).toEqual(clients.flatMap((_c, s) => sizes(s)).sort((a, b) => a - b));
    clients.forEach((c) => c.close());
    server.close();
  });

  it('queues datagrams the kernel cannot take yet, sends them next turn in order, cancels them on close', async () => {
    const script = path.join(__dirname, 'fixtures', 'dgram-send-queue.js');
    const args = ['--test-udp-no-try-send', script, name === 'node:dgram' ? 'node' : 'muxnet', ...(backend ? [backend] : [])];
    const { stdout } = await run(process.execPath, args, { timeout: 15_000 });
    expect(JSON.parse(stdout)).toEqual(['queued 2 7', 'sent one null 3, queued 1 4', 'sent two null 4, queued 0 0', 'message one', 'message tawo', 'drained 0 0', 'closed', 'four ECANCELED send']);
  });

  it('keeps the deprecated private members (DEP0112): same values, one warning', async () => {
    const script = path.join(__dirname, 'fixtures', 'dgram-deprecated-members.js');
    const args = [script, name === 'node:dgram' ? 'node' : 'muxnet', ...(backend ? [backend] : [])];
    const { stdout } = await run(process.execPath, args, { timeout: 15_000 });
    expect(JSON.parse(stdout)).toEqual({
      seen: {
        unbound: [0, false, true, 'object'],
        binding: [1, 1],
        bound: [2, true],
        stopped: false,
        closed: null,
        healthCheck: 'ERR_SOCKET_DGRAM_NOT_RUNNING',
      },
      warnings: ['DeprecationWarning DEP0112 Socket.prototype._bindState is deprecated'],
    });
  });
});

// Found by a review (2026-12-06): a batch's queued datagrams were lost when a later listener, or a
// tick, ended the process; node:dgram's had left in their own callbacks.
describe.each([['node:dgram'], ...IMPLS.slice(1).map(([, , backend]) => [backend!])])('a datagram sent before the process ends in the same turn (%s)', (which) => {
  it.each(['exit', 'tick-throw'])("leaves: a reply from one 'message' listener, then %s from the next", async (mode) => {
    const sink = nodeDgram.createSocket('udp4');
    const port = await new Promise<number>((resolve) => sink.bind(0, '127.0.0.1', () => resolve(sink.address().port)));
    const got: string[] = [];
    sink.on('message', (m) => got.push(String(m)));
    const fixture = path.join(__dirname, 'fixtures', 'dgram-exit.js');
    const module = which === 'node:dgram' ? 'node:dgram' : 'muxnet';
    const child = spawn(process.execPath, [fixture, module, mode, String(port)], { env: { ...process.env, MUXNET_BACKEND: which }, stdio: 'ignore' });
    const [code] = await once(child, 'exit');
    expect(code).toBe(mode === 'exit' ? 7 : 1);
    await waitFor(() => got.length > 0, 'the reply');
    expect(got).toEqual(['reply']);
    sink.close();
  });
});
