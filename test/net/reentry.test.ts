// The drop-in's sockets and servers called from inside their own events,
// against node:net in the same run: one body, run over each module, records
// every event, callback, error (class and code) and byte each object sees,
// one log per object; the logs must be equal. Each client event × each call
// on the socket (destroy, end, write, 10 000 writes, pause, setTimeout,
// pipe, reconnect, …); the server's 'listening', 'connection', the accepted
// socket's 'data' and 'close'; a UDP socket's 'listening', 'message',
// 'connect', send callback and 'close' against node:dgram.
// A seed draws extra (event, call, call) combinations each run
// (MUXNET_REENTRY_SEED=N replays them).
import { execFile } from 'node:child_process';
import nodeDgram from 'node:dgram';
import { once } from 'node:events';
import nodeNet from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import * as muxnetDgram from '../../src/dgram';
import * as muxnet from '../../src/net';
import { BACKENDS, downPort, expectSocketFdsBack, fixtureJson, seededRandom } from '../helpers';
import { differences, errName, nullHandle, Recorder, settle, summary, type Log } from './parity';

type Net = typeof nodeNet;

const SOCKET_EVENTS = ['lookup', 'connect', 'ready', 'data', 'end', 'finish', 'drain', 'timeout', 'error', 'close'];
const SERVER_EVENTS = ['listening', 'connection', 'error', 'close'];

/** The client events a call is made from, each with what makes it happen. */
const TRIGGERS = ['lookup', 'connect', 'ready', 'data:first', 'data:middle', 'end', 'finish', 'close', 'drain', 'timeout', 'error:reset', 'error:refused', 'write-cb', 'end-cb'] as const;
type Trigger = (typeof TRIGGERS)[number];

/** A call made on the client socket from inside an event; its return (or throw) is logged. */
const ACTIONS: Record<string, (s: nodeNet.Socket, rec: Recorder, ctx: { port: number }) => unknown> = {
  none: () => undefined,
  destroy: (s) => s.destroy(),
  destroyErr: (s) => s.destroy(Object.assign(new Error('boom'), { code: 'EBOOM' })),
  end: (s) => s.end(),
  endData: (s, rec) => s.end('bye', rec.cb('client', 'end bye')),
  write: (s, rec) => s.write('x', rec.cb('client', 'write x')),
  write10k: (s, rec) => {
    let ok = 0;
    const done = rec.cb('client', 'write10k last');
    for (let i = 0; i < 10_000; i++) if (s.write('y', i === 9_999 ? done : undefined)) ok++;
    return ok > 0 ? 'some true' : 'all false';
  },
  pauseResume: (s) => {
    s.pause();
    setImmediate(() => s.resume());
    return s.isPaused();
  },
  resume: (s) => s.resume(),
  setTimeoutLong: (s) => s.setTimeout(60_000, () => undefined),
  setTimeout0: (s) => s.setTimeout(0),
  setNoDelay: (s) => s.setNoDelay(true),
  setKeepAlive: (s) => s.setKeepAlive(true, 1000),
  refUnref: (s) => s.unref().ref(),
  address: (s) => {
    const a = s.address() as Partial<nodeNet.AddressInfo>;
    return `address ${Object.keys(a).sort().join(',')} ${a.family ?? ''} local ${typeof s.localPort} ${typeof s.localAddress} ${typeof s.localFamily}`;
  },
  remote: (s) => `remote ${typeof s.remotePort} ${typeof s.remoteAddress} ${typeof s.remoteFamily}`,
  pipeUnpipe: (s) => {
    const sink = new PassThrough();
    s.pipe(sink);
    s.unpipe(sink);
    // unpipe() pauses the socket: reading again, the conversation goes on.
    const paused = s.isPaused();
    s.resume();
    return paused;
  },
  resetAndDestroy: (s) => s.resetAndDestroy(),
  reconnect: (s, _rec, ctx) => (s.destroyed ? s.connect(ctx.port, '127.0.0.1') : 'still open'),
};

/** Calls `action` once, logging its return or what it threw. */
function act(rec: Recorder, name: string, socket: nodeNet.Socket, action: string, ctx: { port: number }): void {
  try {
    rec.add(name, `call ${action} -> ${summary(ACTIONS[action](socket, rec, ctx), socket)}`);
  } catch (err) {
    rec.add(name, `call ${action} threw ${errName(err)}`);
  }
}

/**
 * One conversation, each step asked for, so no bytes cross a close in
 * flight (a close with unread bytes is a reset: a race between the two
 * ends, not a difference): the client says 'hello' once connected; the
 * server answers 'one', then 'two' and 'three' each when the client asks
 * ('next'), and ends after 'three'; the client asks on each chunk.
 * `actions` are made, in turn, from the first `trigger` event.
 */
async function conversation(net: Net, trigger: Trigger, actions: string[]): Promise<Log> {
  const rec = new Recorder();
  const sockets: nodeNet.Socket[] = [];
  let serverGot = '';
  let zs = 0;
  const server = net.createServer((sock) => {
    const name = `server-socket${sockets.length}`;
    sockets.push(sock);
    rec.watch(name, sock, SOCKET_EVENTS.filter((e) => e !== 'data'));
    let asked = -1;
    sock.on('data', (d: Buffer) => {
      // The 16 MiB that makes 'drain' counted, not kept.
      serverGot += String(d).replace(/z+/g, (run) => ((zs += run.length), ''));
      if (trigger === 'error:reset') return void sock.resetAndDestroy();
      // A 'hello', then the 'next's asked so far: one chunk for each.
      const now = serverGot.includes('hello') ? (serverGot.match(/next/g) ?? []).length : -1;
      for (; asked < now && asked < 2; asked++) sock.write(['one', 'two', 'three'][asked + 1]);
      if (asked === 2 && !sock.writableEnded) sock.end();
    });
  });
  rec.watch('server', server, SERVER_EVENTS);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const ctx = { port: (server.address() as nodeNet.AddressInfo).port };
  if (trigger === 'error:refused') {
    ctx.port = await downPort();
  }
  const client = new net.Socket();
  rec.watch('client', client, SOCKET_EVENTS);
  let fired = false;
  const fire = () => {
    if (fired) return;
    fired = true;
    for (const a of actions) act(rec, 'client', client, a, ctx);
  };
  const hello = () => !client.destroyed && client.write('hello');
  const event = trigger.split(':')[0];
  let chunks = 0;
  if (['lookup', 'connect', 'ready', 'end', 'finish', 'close', 'drain', 'timeout', 'error'].includes(event)) client.on(event, fire);
  if (trigger === 'data:first' || trigger === 'data:middle') client.on('data', () => ++chunks === (trigger === 'data:first' ? 1 : 2) && fire());
  // The conversation's own moves, after the actions.
  client.on('data', (d: Buffer) => {
    if (String(d).includes('three')) return;
    if (trigger === 'end-cb') return void client.end(() => fire());
    if (trigger !== 'timeout') client.write('next');
  });
  client.on('error', () => undefined);
  if (trigger === 'timeout') {
    // Asks for 'two' only once idle for a while.
    client.setTimeout(15);
    client.on('timeout', () => {
      client.setTimeout(0);
      client.write('next');
      client.on('data', () => client.write('next'));
    });
  }
  client.on('connect', () => {
    if (trigger === 'write-cb') return void client.write('hi', () => (fire(), hello()));
    // 16 MiB, more than the kernel takes at once: write() is false, and 'drain' follows once it took it all; then the conversation.
    if (trigger === 'drain') return void client.write(Buffer.alloc(16 << 20, 'z'), hello);
    hello();
  });
  if (trigger === 'lookup') client.connect({ port: ctx.port, host: 'localhost', family: 4 });
  else client.connect(ctx.port, '127.0.0.1');

  // Every socket closed, the client once more than it connected again.
  const allClosed = () => client.destroyed && sockets.every((s) => s.destroyed) && rec.closes('client') > (rec.logs.client ?? []).filter((e) => e.startsWith('call reconnect -> this')).length;
  await settle(allClosed, rec);
  for (const s of [client, ...sockets]) s.destroy();
  server.close();
  await settle(() => rec.logs.server?.includes('close') ?? false, rec);
  rec.logs.bytes = [`server got ${zs} z, then ${serverGot.length}: ${serverGot.replace(/y{100,}/g, (m) => `y×${m.length}`)}`];
  return rec.logs;
}

/** The same body over node:net and muxnet: what differs, labelled. */
async function parity(label: string, body: (net: Net) => Promise<Log>): Promise<string[]> {
  const [expected, got] = [await body(nodeNet), await body(muxnet as unknown as Net)];
  const diff = differences(expected, got);
  for (const [name, entries] of Object.entries(got)) {
    if (entries.some((e) => /AFTER CLOSE|TIMED OUT/.test(e))) diff.push(`${name}: ${JSON.stringify(entries)}`);
  }
  return diff.length ? [`${label}:\n  ${diff.join('\n  ')}`] : [];
}

const SEED = Number(process.env.MUXNET_REENTRY_SEED ?? Date.now() % 1_000_000);
/**
 * A reset with bytes in flight (the peer still reading 16 MiB or 10 000
 * writes), or so soon after connecting: what the peer reads (how many
 * bytes, a FIN or ECONNRESET) is a race in the kernel; node:net's peer
 * read FINs.
 */
function racy(trigger: Trigger, actions: string[]): boolean {
  return actions.includes('resetAndDestroy') && (trigger === 'write-cb' || trigger === 'drain' || actions.includes('write10k'));
}

describe('re-entrant calls on a drop-in socket, against node:net', () => {
  expectSocketFdsBack();
  const names = Object.keys(ACTIONS);
  for (const trigger of TRIGGERS) {
    it(`each call from inside '${trigger}'`, async () => {
      const failures: string[] = [];
      for (const action of names) {
        if (action === 'reconnect' && !['close', 'error:refused', 'error:reset'].includes(trigger)) continue;
        if (racy(trigger, [action])) continue;
        failures.push(...(await parity(`${action} from '${trigger}'`, (net) => conversation(net, trigger, [action]))));
      }
      expect(failures.join('\n')).toBe('');
    });
  }
  // Pairs a random seed found diverging, kept as fixed cases.
  const found: [Trigger, string[]][] = [
    // Seed 406071: the peer address asked after end() in 'end' (both ways closed at once on loopback).
    ['end', ['end', 'remote']],
    // Seed 700048: 20 000 writes before the connect, buffered behind the first: node:net's writev
    // of them (more than libuv's IOV_MAX buffers) finishes a turn later, so 'drain' follows 'ready'.
    ['lookup', ['write10k', 'write10k']],
  ];
  it('the pairs random seeds found diverging', async () => {
    const failures: string[] = [];
    for (const [trigger, actions] of found) {
      failures.push(...(await parity(`${actions.join(' + ')} from '${trigger}'`, (net) => conversation(net, trigger, actions))));
    }
    expect(failures.join('\n')).toBe('');
  });
  it(`seed ${SEED}: random pairs of calls from random events (MUXNET_REENTRY_SEED=${SEED} replays)`, async () => {
    console.log(`re-entry seed ${SEED}`);
    const rand = seededRandom(SEED);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
    // Reconnecting and then destroying in 'error' gives two 'close's that node:net emits in the other order.
    const calls = names.filter((n) => n !== 'reconnect');
    // node:net's resetAndDestroy() after end() fails (libuv refuses to reset a socket shutting down: 'error' EINVAL) and never closes.
    // After write(), the peer reads the byte and the reset in one wakeup: node:net's reports an 'end'
    // (libuv, told by epoll that the socket hung up, reads no more after a short read), muxnet's the
    // ECONNRESET (seeds 700074, 700098; README, Drop-in).
    const draw = (): [Trigger, string[]] => {
      const [trigger, a, b] = [pick(TRIGGERS), pick(calls), pick(calls)];
      return ((a.startsWith('end') || a === 'write') && b === 'resetAndDestroy') || racy(trigger, [a, b]) ? draw() : [trigger, [a, b]];
    };
    const failures: string[] = [];
    for (let i = 0; i < 12; i++) {
      const [trigger, actions] = draw();
      failures.push(...(await parity(`seed ${SEED}, case ${i}: ${actions.join(' + ')} from '${trigger}'`, (net) => conversation(net, trigger, actions))));
    }
    expect(failures.join('\n')).toBe('');
  });
});

/** Calls on a server (and the socket of its 'connection' or 'data'), made from its own events. */
const SERVER_ACTIONS: Record<string, (server: nodeNet.Server, rec: Recorder, sock?: nodeNet.Socket) => unknown> = {
  close: (server, rec) => server.close(rec.cb('server', 'close')),
  closeTwice: (server, rec) => server.close(rec.cb('server', 'close 1')).close(rec.cb('server', 'close 2')),
  getConnections: (server, rec) => server.getConnections((err, n) => rec.add('server', `getConnections ${err ? errName(err) : 'ok'} ${n}`)),
  address: (server) => {
    const a = server.address();
    return a === null || typeof a === 'string' ? String(a) : `address ${Object.keys(a).sort().join(',')} ${a.family}`;
  },
  listenAgain: (server, rec) => server.listen(0, '127.0.0.1', () => rec.add('server', 'listen again cb')),
  unrefRef: (server) => server.unref().ref(),
  listening: (server) => server.listening,
  socketDestroy: (_server, _rec, sock) => sock?.destroy(),
  socketDestroyErr: (_server, rec, sock) => {
    const err = Object.assign(new Error('custom'), { code: 'ECUSTOM' });
    sock?.once('error', (got) => rec.add('server-socket0', `the same error object: ${got === err}`));
    return sock?.destroy(err);
  },
  socketEnd: (_server, _rec, sock) => sock?.end('bye'),
  socketWrite10kEnd: (_server, _rec, sock) => {
    for (let i = 0; i < 10_000; i++) sock?.write('w');
    return sock?.end();
  },
  socketPauseResume: (_server, _rec, sock) => {
    sock?.pause();
    setImmediate(() => sock?.resume());
    return sock?.isPaused();
  },
};

/** A server and one client; `action` from the server's first `event` ('data': the accepted socket's). */
async function serverCase(net: Net, event: 'listening' | 'connection' | 'data' | 'close', action: string): Promise<Log> {
  const rec = new Recorder();
  const server = net.createServer();
  const sockets: nodeNet.Socket[] = [];
  let clientGot = 0;
  rec.watch('server', server, SERVER_EVENTS);
  let fired = false;
  const fire = (sock?: nodeNet.Socket) => {
    if (fired) return;
    fired = true;
    try {
      rec.add('server', `call ${action} -> ${summary(SERVER_ACTIONS[action](server, rec, sock), event === 'listening' || event === 'close' ? server : sock)}`);
    } catch (err) {
      rec.add('server', `call ${action} threw ${errName(err)}`);
    }
  };
  server.on('connection', (sock: nodeNet.Socket) => {
    rec.watch(`server-socket${sockets.length}`, sock, SOCKET_EVENTS.filter((e) => e !== 'data'));
    sockets.push(sock);
    if (event === 'connection') fire(sock);
    sock.on('data', () => event === 'data' && fire(sock));
    sock.on('error', () => undefined);
    // Otherwise the server ends the conversation once the client said something.
    sock.on('data', () => !sock.writableEnded && sock.end());
  });
  if (event === 'listening' || event === 'close') server.on(event, () => fire());
  let listens = 0;
  server.on('listening', () => listens++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  let client: nodeNet.Socket | undefined;
  if (server.listening) {
    client = net.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1');
    rec.watch('client', client, SOCKET_EVENTS.filter((e) => e !== 'data'));
    client.on('data', (d: Buffer) => (clientGot += d.length));
    client.on('error', () => undefined);
    client.on('connect', () => client!.write('hello'));
  }
  await settle(() => (client === undefined || rec.closes('client') > 0) && sockets.every((s) => s.destroyed), rec);
  // Closed by the harness, maybe more than once: a listen() inside 'close' listens again.
  for (let i = 0; i < 3 && (server.listening || rec.closes('server') < listens); i++) {
    if (server.listening) server.close();
    await settle(() => rec.closes('server') >= listens || server.listening, rec);
  }
  rec.logs.bytes = [`client got ${clientGot}`];
  return rec.logs;
}

describe("re-entrant calls on a drop-in server from 'listening', 'connection', the socket's 'data' and 'close', against node:net", () => {
  expectSocketFdsBack();
  for (const event of ['listening', 'connection', 'data', 'close'] as const) {
    it(`each call from inside '${event}'`, async () => {
      const failures: string[] = [];
      for (const action of Object.keys(SERVER_ACTIONS)) {
        if (action.startsWith('socket') && (event === 'listening' || event === 'close')) continue;
        failures.push(...(await parity(`${action} from server '${event}'`, (net) => serverCase(net, event, action))));
      }
      expect(failures.join('\n')).toBe('');
    });
  }
});

type Dgram = typeof nodeDgram;
const DGRAM_TRIGGERS = ['listening', 'message', 'connect', 'send-cb', 'close'] as const;
type DgramTrigger = (typeof DGRAM_TRIGGERS)[number];

/** Calls on a UDP socket, made from its own events; `peer` is the port of the node:dgram socket it talks to. */
const DGRAM_ACTIONS: Record<string, (s: nodeDgram.Socket, rec: Recorder, peer: number) => unknown> = {
  none: () => undefined,
  close: (s, rec) => s.close(() => rec.add('socket callbacks', 'close cb')),
  closeTwice: (s) => {
    s.close();
    return s.close();
  },
  send: (s, rec, peer) => s.send('reply', peer, '127.0.0.1', (err, n) => rec.add(err ? 'socket' : 'socket callbacks', `send cb ${err ? errName(err) : n}`)),
  send10k: (s, rec, peer) => {
    let errors = 0;
    let done = 0;
    for (let i = 0; i < 10_000; i++) {
      s.send('s', peer, '127.0.0.1', (err) => {
        if (err) errors++;
        if (++done === 10_000) rec.add('socket callbacks', `10k send cbs, ${errors} failed`);
      });
    }
    return s.getSendQueueCount() >= 0;
  },
  connect: (s, rec, peer) => s.connect(peer, '127.0.0.1', (err?: Error) => rec.add('socket', `connect cb ${err ? errName(err) : 'ok'}`)),
  disconnect: (s) => s.disconnect(),
  setTTL: (s) => s.setTTL(7),
  addMembership: (s) => s.addMembership('239.255.7.7', '127.0.0.1'),
  address: (s) => {
    const a = s.address();
    return `address ${Object.keys(a).sort().join(',')} ${a.family}`;
  },
  remoteAddress: (s) => `remote port ${typeof s.remoteAddress().port}`,
  refUnref: (s) => s.unref().ref(),
};

/** Every datagram the cases below send to the peer. */
const DGRAM_SENT = new Set(['ping', 'hi', 'reply', 's']);

/** One UDP socket of `dgram` and a node:dgram peer that answers 'ping' with 'pong'; `action` from the first `trigger`. */
async function dgramCase(dgram: Dgram, trigger: DgramTrigger, action: string): Promise<Log> {
  const rec = new Recorder();
  const peer = nodeDgram.createSocket('udp4');
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
  const peerPort = peer.address().port;
  const peerGot: string[] = [];
  const socket = dgram.createSocket('udp4');
  peer.on('message', (m, rinfo) => {
    // What these cases send alone: another test's process may send to a port this peer was given
    // since (seen: a UDP chat's lines on the node:dgram side). (Not told by the sender's port: a
    // disconnect() gives up the one the kernel chose.)
    if (!DGRAM_SENT.has(String(m))) return;
    peerGot.push(String(m));
    if (String(m) === 'ping') peer.send('pong', rinfo.port, rinfo.address);
  });
  rec.watch('socket', socket, ['listening', 'connect', 'close', 'error']);
  socket.on('message', (m, rinfo) => rec.add('socket', `message ${String(m)} from the peer: ${rinfo.port === peerPort}`));
  let fired = false;
  const fire = () => {
    if (fired) return;
    fired = true;
    try {
      rec.add('socket', `call ${action} -> ${summary(DGRAM_ACTIONS[action](socket, rec, peerPort), socket)}`);
    } catch (err) {
      rec.add('socket', `call ${action} threw ${errName(err)}`);
    }
  };
  if (trigger === 'listening' || trigger === 'connect' || trigger === 'close') socket.on(trigger, fire);
  if (trigger === 'message') socket.on('message', fire);
  socket.on('error', () => undefined);
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening').catch(() => undefined);
  if (trigger === 'connect') socket.connect(peerPort, '127.0.0.1');
  if (trigger === 'message') socket.send('ping', peerPort, '127.0.0.1');
  if (trigger === 'send-cb') socket.send('hi', peerPort, '127.0.0.1', () => fire());
  await settle(() => fired || trigger === 'close', rec);
  // A last round trip, if the socket still sends (connected or not), then the harness closes it.
  for (const send of [() => socket.send('ping', peerPort, '127.0.0.1'), () => socket.send('ping')]) {
    try {
      send();
      break;
    } catch {
      // closed, or connected (the other form)
    }
  }
  await settle(() => (rec.logs.socket ?? []).some((e) => e.startsWith('message pong') || e.startsWith('close')), rec, 1000);
  await new Promise((r) => setTimeout(r, 20));
  try {
    socket.close();
  } catch {
    // closed by the call already
  }
  await settle(() => rec.closes('socket') > 0, rec);
  peer.close();
  rec.logs.peer = [peerGot.join(',').replace(/(s,){99,}s?/g, 's×many,')];
  return rec.logs;
}

describe("re-entrant calls on a drop-in UDP socket from 'listening', 'message', 'connect', a send callback and 'close', against node:dgram", () => {
  expectSocketFdsBack();
  for (const trigger of DGRAM_TRIGGERS) {
    it(`each call from inside '${trigger}'`, async () => {
      const failures: string[] = [];
      for (const action of Object.keys(DGRAM_ACTIONS)) {
        const [expected, got] = [nullHandle(await dgramCase(nodeDgram, trigger, action)), await dgramCase(muxnetDgram as unknown as Dgram, trigger, action)];
        const diff = differences(expected, got);
        if (diff.length) failures.push(`${action} from '${trigger}':\n  ${diff.join('\n  ')}`);
        if ((got.socket ?? []).some((e) => e.startsWith('AFTER CLOSE')) || got.harness) failures.push(`${action} from '${trigger}': ${JSON.stringify(got)}`);
      }
      expect(failures.join('\n')).toBe('');
    });
  }
});

/** test/fixtures/reentry-throw.js over `module` (its own process: the throws must reach its 'uncaughtException'). */
const throwingRun = (module: string) =>
  fixtureJson<{ logs: Log; planned: number; caught: number; stray: string[]; echo: string; udpEcho: string }>('reentry-throw.js', [module], { timeout: 60_000 });

describe('a throw from each listener of a drop-in socket, server and UDP socket (test/fixtures/reentry-throw.js; built dist)', () => {
  it("reaches 'uncaughtException' once, the object's later events are node:net's, and new connections and datagrams still echo", async () => {
    const [expected, got] = [await throwingRun('node:net'), await throwingRun('muxnet')];
    // node:net's socket starts reading from a 'connect' listener of its own, behind the user's: a throw
    // there leaves it never reading ('data', 'end' never come) until destroyed; so does muxnet's.
    expect(expected.logs['client throws in connect']).toEqual(['connect', 'uncaught', 'close']);
    expect(differences(expected.logs, got.logs).join('\n')).toBe('');
    expect(got.stray).toEqual([]);
    expect(got.caught).toBe(expected.caught);
    expect(got.caught).toBe(got.planned);
    expect([got.echo, got.udpEcho]).toEqual(['ping', 'udp ping']);
  }, 60_000);
});

describe('ticks and promise jobs that throw between the events of one turn (test/fixtures/tick-throws.js; built dist)', () => {
  // The drop-in runs a turn's ticks between its sockets' events with Node's own runner; a tick's
  // throw there first aborted the process ("async hook stack has become corrupted").
  it("reach 'uncaughtException' once each, and the other sockets' events, ticks and promise jobs all run, as node:net's", async () => {
    const [expected, got] = [await fixtureJson('tick-throws.js', ['node:net']), await fixtureJson('tick-throws.js', ['muxnet'])];
    expect(expected).toEqual({ heard: { data: 6, close: 6, ticks: 12, promises: 12 }, planned: 8, caught: 8, stray: [] });
    expect(got).toEqual(expected);
  }, 60_000);

  // Found by a review (2026-12-06): under --pending-deprecation Node's runner is wrapped in
  // DEP0134's warning, which the drop-in printed (node:net never does), and which
  // --throw-deprecation made a throw at the first turn of two events.
  it('the same under --pending-deprecation --throw-deprecation, with no DEP0134 warning', async () => {
    const nodeArgs = ['--pending-deprecation', '--throw-deprecation'];
    const [expected, got] = [await fixtureJson('tick-throws.js', ['node:net'], { nodeArgs }), await fixtureJson('tick-throws.js', ['muxnet'], { nodeArgs })];
    expect(expected).toEqual({ heard: { data: 6, close: 6, ticks: 12, promises: 12 }, planned: 8, caught: 8, stray: [] });
    expect(got).toEqual(expected);
  }, 60_000);
});

// Found by a hunt (2026-12-06, nodemailer's own tests under node:test): a listener's throw
// reached 'uncaughtException' after the batch, in the reactor's async context, so node:test
// could not tell which test it failed (the test was cancelled, or hung).
describe.each(BACKENDS)("a listener's throw, on %s (test/fixtures/throw-context.js; built dist)", (backend) => {
  it("reaches 'uncaughtException' in the throwing callback's async context, as node:net's and node:dgram's: 'connection', 'connect', 'data', 'end', 'close', 'message'", async () => {
    const run = (module: string) => fixtureJson('throw-context.js', [module], { env: { MUXNET_BACKEND: backend } });
    const [expected, got] = [await run('node:net'), await run('muxnet')];
    expect(expected).toEqual({
      seen: { connection: 'server', connect: 'client connect', data: 'client data', end: 'client end', close: 'client close', message: 'udp' },
      planned: 9,
      caught: 9,
      stray: [],
    });
    expect(got).toEqual(expected);
  }, 60_000);
});

/** test/fixtures/throw-mid-read.js over `module` on `backend`. */
const midReadRun = (module: string, backend: string) => fixtureJson('throw-mid-read.js', [module], { env: { MUXNET_BACKEND: backend } });

describe.each(BACKENDS)('a throw partway through one read, on %s (test/fixtures/throw-mid-read.js; built dist)', (backend) => {
  it("costs no byte after it: 'data' on a 4 MiB read, 'data' as a paused socket resumes (also onto the peer's reset), an onread callback; an onread buffer of no bytes is ENOBUFS, as node:net", async () => {
    const [expected, got] = [await midReadRun('node:net', backend), await midReadRun('muxnet', backend)];
    expect(expected).toMatchObject({
      bigRead: { got: 4 << 20, end: true, callsAtCatch: 1 },
      tickRead: { got: 4 << 20, end: true, callsAtCatch: 1 },
      resumed: { got: 2 << 20, end: true, callsAtCatch: 1 },
      heldThenReset: 100 << 10,
      heldThenResetOnread: 100 << 10,
      onread: 64,
      thrown: 6,
      stray: [],
    });
    expect(got).toEqual(expected);
  }, 60_000);
});

// Found by a review (2026-12-07): each tick's caught throw between the pieces of one read ended
// a part of the batch, the parts ran out, and the batch was left half-handed: the rest of the
// read came from a slab refilled since (786 432 bytes of 1 MiB, wrong from 485 376; 3 of 3).
describe.each(BACKENDS)('two pieces of one read throw (their ticks or themselves), each caught, on %s (test/fixtures/tick-throws-read.js; built dist)', (backend) => {
  it.each(['tick', 'listener'])('every byte arrives, in order, as with node:net (throws from the %s)', async (thrower) => {
    const run = (module: string) => fixtureJson('tick-throws-read.js', [module, 'all', 'data', thrower], { env: { MUXNET_BACKEND: backend } });
    const [expected, got] = [await run('node:net'), await run('muxnet')];
    expect(expected).toEqual({ received: 1 << 20, wrong: -1, caught: thrower === 'tick' ? 2 : 4 });
    expect(got).toEqual(expected);
  }, 30_000);

  // Found by a hunt (2026-12-07): after such a throw, or under --pending-deprecation (no tick
  // runner: each event a part of its own), the batch's parts (one a record) could run out, and the
  // rest of a read came at once: 12 'data' before a destroy from the tick of the 10th, 4 096 onread
  // calls into 16 bytes (node:net 10). 'listener' found by a review (2026-12-07): a throw from the
  // 'data' listener or onread callback itself held the rest of its read for a tick, which handed
  // it all out at once (the same 12 and 4 096; 30 of 30).
  it.each([
    ['data', 'tick', []],
    ['onread', 'tick', []],
    ['data', 'tick', ['--pending-deprecation']],
    ['onread', 'tick', ['--pending-deprecation']],
    ['data', 'listener', []],
    ['onread', 'listener', []],
    ['data', 'listener', ['--pending-deprecation']],
    ['onread', 'listener', ['--pending-deprecation']],
  ])("a destroy from the tick of the 10th comes before the 11th (%s, throws from the %s, %j), as node:net's", async (reader, thrower, nodeArgs) => {
    const run = (module: string) => fixtureJson('tick-throws-read.js', [module, 'destroy', reader, thrower], { env: { MUXNET_BACKEND: backend }, nodeArgs });
    const [expected, got] = [await run('node:net'), await run('muxnet')];
    expect(expected).toEqual({ heard: 10, wrong: -1, caught: thrower === 'tick' ? 2 : 4 });
    expect(got).toEqual(expected);
  }, 30_000);
});

// Found by a review (2026-12-07): with a batch's parts counted from the bytes its turn read, an
// onread rest held from an earlier read after a throw outgrew them, the batch was left half-handed,
// and the socket's end never came (4 of 9 runs, the three backends; its first version also lost
// another socket's byte).
describe.each(BACKENDS)('an onread callback throwing at every other call over 4 MiB and a trickle, on %s (test/fixtures/onread-held-rest.js; built dist)', (backend) => {
  it('every byte arrives, in order, and the end, as with node:net (--pending-deprecation: each piece a part)', async () => {
    const run = (module: string) => fixtureJson('onread-held-rest.js', [module], { env: { MUXNET_BACKEND: backend }, nodeArgs: ['--pending-deprecation'] });
    const expected = await run('node:net');
    expect(expected).toEqual({ received: (4 << 20) + 200, wrong: -1, ended: true });
    for (let i = 0; i < 3; i++) expect(await run('muxnet')).toEqual(expected);
  }, 60_000);
});

/** test/fixtures/throw-fatal.js over `module` on `backend`: the 'data' lines it printed before it died, and how it ended. */
function fatalRun(module: string, backend: string, scenario: string): Promise<{ heard: string[]; code: number | null }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [path.join(__dirname, '..', 'fixtures', 'throw-fatal.js'), module, scenario], { timeout: 20_000, env: { ...process.env, MUXNET_BACKEND: backend } }, (_err, stdout) =>
      resolve({ heard: stdout.trim().split('\n'), code: child.exitCode }),
    );
  });
}

describe.each(BACKENDS)('a throw nothing catches, on %s (test/fixtures/throw-fatal.js; built dist)', (backend) => {
  // 'tick' found by a hunt (2026-12-07): the ticks run between the pieces of one read ran inside
  // the socket's async context, and the throw left the process dying of a corrupted async hook
  // stack, its error unprinted and its 'exit' listeners not run (3 of 3 on every backend).
  it.each(['read', 'flowing', 'batch', 'tick'])("ends the process before another 'data' is heard (%s), as node:net", async (scenario) => {
    const [expected, got] = [await fatalRun('node:net', backend, scenario), await fatalRun('muxnet', backend, scenario)];
    const heard = { read: ['data 65536'], flowing: ['data 65536'], batch: ['data'], tick: ['data 65536', 'exit 1'] }[scenario];
    expect(expected).toEqual({ heard, code: 1 });
    expect(got).toEqual(expected);
  }, 60_000);
});
