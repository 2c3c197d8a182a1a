// The drop-in's UDP sockets called from inside their own events, against
// node:dgram in the same run: the dgram counterpart of reentry.test.ts. A
// client and a responder hold a three-word conversation on loopback ('one',
// 'two', 'three', each answered 'r-…'); from one event of one of them (its
// 'listening', 'connect', 'message', a send callback, 'error', 'close') a
// scripted list of calls is made, and every event, callback, return and
// throw each socket sees is logged; the logs must be node:dgram's, on each
// backend. Fixed cases for what such runs found, and pairs of calls drawn
// from seeds (MUXNET_DGRAM_REENTRY_SEED=N replays seed N, =A-B sweeps them).
//
// Left out by design (README, Drop-in): muxnet runs the nextTick callbacks
// and send callbacks a listener queues after the whole batch of events of
// its reactor turn, node after each event. So that no log depends on that,
// the socket under test is the only muxnet socket of a run (its partner is
// node:dgram's), the conversation moves in lockstep (one datagram on its way
// at a time) and no call sends to the socket itself: each of its reactor
// turns carries at most one event, after which node and muxnet run the same
// ticks and callbacks. Each socket keeps a log of its own, callbacks in it,
// so their order against its events is still compared; the order between
// the two sockets' logs is not.
import nodeDgram from 'node:dgram';
import type { LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import * as muxnetDgram from '../../src/dgram';
import type { BackendName } from '../../src/options';
import { BACKENDS, expectSocketFdsBack, seededRandom, sleep, waitFor } from '../helpers';
import { differences, errName, nullHandle, Recorder, settle, summary, type Log } from './parity';

type Dgram = typeof nodeDgram;
type Socket = nodeDgram.Socket;
type Role = 'client' | 'responder';
/** node:dgram, or muxnet's drop-in on a backend. */
type Impl = 'node:dgram' | BackendName;

/** A UDP port nothing binds on loopback (discard, privileged): a connected send there is refused (ICMP), so 'error'. */
const DEAD = 9;
/** How long a run may go without an event before it is over (a conversation a call cut short). */
const IDLE_MS = 300;

/**
 * The sockets' `lookup` where a call sends to 'localhost': dns.lookup asks
 * getaddrinfo on the threadpool, which answers at a time of its own, a race
 * with the conversation (and so would a setImmediate: poll and select hear
 * of the reactor's I/O from a waiter thread). This answers an IP address on
 * the next tick, as dns.lookup does, and 'localhost' a tick later, after a
 * connect() asked for next (as getaddrinfo mostly does), within the ticks of
 * the event that asked, before any I/O.
 */
function localLookup(host: string, options: number | LookupOneOptions, callback: (err: Error | null, address: string, family: number) => void): void {
  // node:dgram passes the socket's family (4 or 6); its typings, dns.lookup's options.
  const v6 = (typeof options === 'number' ? options : options.family) === 6;
  if (host === 'localhost') process.nextTick(() => process.nextTick(callback, null, v6 ? '::1' : '127.0.0.1', v6 ? 6 : 4));
  else process.nextTick(callback, null, host, isIP(host));
}

/** The events a call is made from: the client's, and the responder's (`responder-…`). */
const TRIGGERS = [
  'listening',
  'connect',
  'message:first',
  'message:middle',
  'send-cb',
  'error',
  'close',
  'responder-listening',
  'responder-message:first',
  'responder-message:middle',
  'responder-send-cb',
  'responder-close',
] as const;
type Trigger = (typeof TRIGGERS)[number];

interface Ctx {
  rec: Recorder;
  /** The log of the socket called. */
  name: Role;
  /** The other socket's port. */
  peer: number;
}

/** A callback that logs how a send went. */
const sent = (c: Ctx, what: string) => (err: Error | null, n?: number) => c.rec.add(c.name, `${what} cb ${err ? errName(err) : `ok ${n}`}`);
const connected = (c: Ctx, what: string) => (err?: Error) => c.rec.add(c.name, `${what} cb ${err ? errName(err) : 'ok'}`);

/**
 * A call made on a socket from inside one of its events; its return (or
 * throw) is logged. Loopback only: no host name but 'localhost', no bind but
 * 127.0.0.1, and no send to the socket itself (a second event in its turn).
 */
const ACTIONS: Record<string, (s: Socket, c: Ctx) => unknown> = {
  none: () => undefined,
  // (Its log's entries start with 'close' only for the event: Recorder.closes counts them.)
  close: (s, c) => s.close(() => c.rec.add(c.name, 'the close cb ok')),
  closeNoCb: (s) => s.close(),
  closeTwice: (s) => {
    s.close();
    return s.close();
  },
  closeCbTwice: (s, c) => {
    s.close(() => c.rec.add(c.name, 'the close cb 1 ok'));
    return s.close(() => c.rec.add(c.name, 'the close cb 2 ok'));
  },
  sendStr: (s, c) => s.send('x', c.peer, '127.0.0.1', sent(c, 'send x')),
  sendBuf: (s, c) => s.send(Buffer.from('xb'), c.peer, '127.0.0.1', sent(c, 'send xb')),
  sendArr: (s, c) => s.send(['xa', Buffer.from('1')], c.peer, '127.0.0.1', sent(c, 'send arr')),
  sendUint8: (s, c) => s.send(new Uint8Array([120, 117]), c.peer, '127.0.0.1', sent(c, 'send u8')),
  sendOffLen: (s, c) => s.send(Buffer.from('xoffl'), 1, 3, c.peer, '127.0.0.1', sent(c, 'send offl')),
  sendNoCb: (s, c) => s.send('xn', c.peer, '127.0.0.1'),
  sendEmpty: (s, c) => s.send('', c.peer, '127.0.0.1', sent(c, 'send empty')),
  send5: (s, c) => {
    for (let i = 0; i < 5; i++) s.send(`x${i}`, c.peer, '127.0.0.1', sent(c, `send x${i}`));
  },
  sendConnected: (s, c) => s.send('xc', sent(c, 'send conn')),
  sendConnectedNoCb: (s) => s.send('xcn'),
  sendLocalhost: (s, c) => s.send('xl', c.peer, 'localhost', sent(c, 'send localhost')),
  sendIPv6: (s, c) => s.send('x6', c.peer, '::1', sent(c, 'send v6')),
  sendDead: (s, c) => s.send('xd', DEAD, '127.0.0.1', sent(c, 'send dead')),
  sendBig: (s, c) => s.send(Buffer.alloc(70_000), c.peer, '127.0.0.1', sent(c, 'send big')),
  sendPort0: (s, c) => s.send('x', 0, '127.0.0.1', sent(c, 'send port 0')),
  sendPort70k: (s, c) => s.send('x', 70_000, '127.0.0.1', sent(c, 'send port 70000')),
  sendNoPort: (s, c) => s.send('xu', undefined as unknown as number, '127.0.0.1', sent(c, 'send no port')),
  sendNumber: (s, c) => s.send(42 as unknown as string, c.peer, '127.0.0.1', sent(c, 'send 42')),
  sendNull: (s, c) => s.send(null as unknown as string, c.peer, '127.0.0.1', sent(c, 'send null')),
  sendBadList: (s, c) => s.send(['a', 1] as unknown as string[], c.peer, '127.0.0.1', sent(c, 'send bad list')),
  sendThenClose: (s, c) => {
    s.send('xtc', c.peer, '127.0.0.1', sent(c, 'send xtc'));
    return s.close();
  },
  closeThenSend: (s, c) => {
    s.close();
    return s.send('xct', c.peer, '127.0.0.1', sent(c, 'send xct'));
  },
  closeInSendCb: (s, c) =>
    s.send('xcc', c.peer, '127.0.0.1', (err) => {
      c.rec.add(c.name, `send xcc cb ${err ? errName(err) : 'ok'}`);
      try {
        c.rec.add(c.name, `send xcc cb then close -> ${summary(s.close(), s)}`);
      } catch (e) {
        c.rec.add(c.name, `send xcc cb then close threw ${errName(e)}`);
      }
    }),
  connectPeer: (s, c) => s.connect(c.peer, '127.0.0.1', connected(c, 'connect')),
  connectNoHost: (s, c) => s.connect(c.peer),
  connectDead: (s) => s.connect(DEAD, '127.0.0.1'),
  connectPort0: (s) => s.connect(0),
  connectV6: (s, c) => s.connect(c.peer, '::1', connected(c, 'connect v6')),
  connectTwice: (s, c) => {
    s.connect(c.peer, '127.0.0.1');
    return s.connect(c.peer, '127.0.0.1');
  },
  disconnect: (s) => s.disconnect(),
  disconnectConnect: (s, c) => {
    s.disconnect();
    return s.connect(c.peer, '127.0.0.1');
  },
  // A send to an address, then connect() at once: the send's lookup ('localhost') ends after the connect.
  sendLocalhostThenConnect: (s, c) => {
    s.send('xlc', c.peer, 'localhost', sent(c, 'send xlc'));
    return s.connect(c.peer, '127.0.0.1');
  },
  // connect(), then a send to an address before it completed.
  connectThenSendAddr: (s, c) => {
    s.connect(c.peer, '127.0.0.1');
    return s.send('xcsa', c.peer, '127.0.0.1', sent(c, 'send xcsa'));
  },
  sendThenConnect: (s, c) => {
    s.send('xsc', c.peer, '127.0.0.1', sent(c, 'send xsc'));
    return s.connect(c.peer, '127.0.0.1');
  },
  sendConnectedThenDisconnect: (s, c) => {
    s.send('xcd', sent(c, 'send xcd'));
    return s.disconnect();
  },
  bindAgain: (s, c) => s.bind(0, '127.0.0.1', () => c.rec.add(c.name, 'bind again cb')),
  closeThenBind: (s) => {
    s.close();
    return s.bind(0, '127.0.0.1');
  },
  refUnref: (s) => s.unref().ref(),
  setTTL: (s) => s.setTTL(7),
  setTTL0: (s) => s.setTTL(0),
  setTTLString: (s) => s.setTTL('x' as unknown as number),
  setBroadcast: (s) => s.setBroadcast(true),
  setMulticastTTL: (s) => s.setMulticastTTL(3),
  setMulticastLoopback: (s) => s.setMulticastLoopback(true),
  setMulticastInterface: (s) => s.setMulticastInterface('127.0.0.1'),
  setMulticastInterfaceV6: (s) => s.setMulticastInterface('::1'),
  addMembership: (s) => s.addMembership('239.255.7.7', '127.0.0.1'),
  addMembershipUnicast: (s) => s.addMembership('1.2.3.4'),
  addMembershipNoArgs: (s) => (s.addMembership as () => void)(),
  dropMembershipNotJoined: (s) => s.dropMembership('239.255.7.8', '127.0.0.1'),
  addSourceMembershipUnicast: (s) => s.addSourceSpecificMembership('1.2.3.4', '5.6.7.8'),
  address: (s) => {
    const a = s.address();
    return `address ${a.address} ${a.family} ${typeof a.port}`;
  },
  remoteAddress: (s, c) => {
    const a = s.remoteAddress();
    return `remote ${a.address} ${a.family} the peer: ${a.port === c.peer}`;
  },
  queueSize: (s) => s.getSendQueueSize(),
  queueCount: (s) => s.getSendQueueCount(),
  setRecvBuffer: (s) => s.setRecvBufferSize(8192),
  getRecvBuffer: (s) => typeof s.getRecvBufferSize(),
  getSendBuffer: (s) => typeof s.getSendBufferSize(),
  setSendBufferNegative: (s) => s.setSendBufferSize(-1),
};

const WORDS = ['one', 'two', 'three'];

/**
 * One conversation: the client binds, connects to the responder (first to
 * DEAD for trigger 'error', then, refused, disconnects and connects again)
 * and says 'one' on 'connect'; the responder answers each word to its
 * sender's address; the client says the next word on each answer and closes
 * on 'r-three', the responder once its 'r-three' is sent. `actions` are made,
 * in turn, from the first `trigger` event, on the socket it names: that
 * socket is `impl`'s, the other node:dgram's.
 */
async function conversation(impl: Impl, trigger: Trigger, actions: string[]): Promise<Log> {
  const rec = new Recorder();
  const actor: Role = trigger.startsWith('responder-') ? 'responder' : 'client';
  const event = trigger.replace('responder-', '');
  const options: nodeDgram.SocketOptions = { type: 'udp4', lookup: actions.some((a) => a.includes('Localhost')) ? localLookup : undefined };
  const make = (role: Role): Socket =>
    role === actor && impl !== 'node:dgram' ? (muxnetDgram as unknown as Dgram).createSocket({ ...options, backend: impl } as nodeDgram.SocketOptions) : nodeDgram.createSocket(options);
  const ports: Partial<Record<Role, number>> = {};
  const sockets = {} as Record<Role, Socket>;
  const closed = (role: Role) => rec.closes(role) > 0;
  const other = (role: Role): Role => (role === 'client' ? 'responder' : 'client');
  /** A move of the conversation; a throw (the socket closed, connected by a call) is logged. */
  const move = (role: Role, what: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      rec.add(role, `conversation ${what} threw ${errName(err)}`);
    }
  };
  let fired = false;
  const fire = () => {
    if (fired) return;
    fired = true;
    const ctx: Ctx = { rec, name: actor, peer: ports[other(actor)] ?? 0 };
    for (const action of actions) {
      try {
        rec.add(actor, `call ${action} -> ${summary(ACTIONS[action](sockets[actor], ctx), sockets[actor])}`);
      } catch (err) {
        rec.add(actor, `call ${action} threw ${errName(err)}`);
      }
    }
  };
  /** Its log first, then its port, then the call (if `trigger` is its), then the conversation. */
  const open = (role: Role): Socket => {
    const s = (sockets[role] = make(role));
    rec.watch(role, s, ['listening', 'connect', 'error', 'close']);
    s.on('message', (m: Buffer, rinfo: nodeDgram.RemoteInfo) =>
      rec.add(role, `message ${String(m).slice(0, 20)} ${rinfo.family} ${rinfo.size} ${rinfo.address} from the peer: ${rinfo.port === ports[other(role)]}`),
    );
    s.on('listening', () => (ports[role] = s.address().port));
    if (role === actor && ['listening', 'connect', 'error', 'close'].includes(event)) s.on(event, fire);
    let messages = 0;
    s.on('message', () => {
      messages++;
      if (role === actor && ((event === 'message:first' && messages === 1) || (event === 'message:middle' && messages === 2))) fire();
    });
    return s;
  };
  let started = false;
  /** The client connects once both are bound. */
  const start = () => {
    if (started || ports.client === undefined || ports.responder === undefined) return;
    started = true;
    move('client', 'connect', () => sockets.client.connect(trigger === 'error' ? DEAD : ports.responder!, '127.0.0.1'));
  };
  let sendCbs = 0;
  const said = new Set<string>();
  const say = (word: string) => {
    if (said.has(word)) return;
    said.add(word);
    move('client', `send ${word}`, () =>
      sockets.client.send(word, (err) => {
        rec.add('client', `send ${word} cb ${err ? errName(err) : 'ok'}`);
        if (trigger === 'send-cb' && ++sendCbs === 1) fire();
      }),
    );
  };
  // The node:dgram socket binds first: the other's calls know its port from their first event.
  const order: Role[] = actor === 'client' ? ['responder', 'client'] : ['client', 'responder'];
  for (const role of order) {
    const s = open(role);
    s.on('listening', start);
    s.on('error', () => undefined);
    if (role === 'responder') {
      s.on('message', (m: Buffer, rinfo: nodeDgram.RemoteInfo) => {
        const word = String(m);
        if (!WORDS.includes(word)) return;
        move('responder', `reply r-${word}`, () =>
          s.send(`r-${word}`, rinfo.port, rinfo.address, (err) => {
            rec.add('responder', `send r-${word} cb ${err ? errName(err) : 'ok'}`);
            if (trigger === 'responder-send-cb' && ++sendCbs === 1) fire();
            if (word === 'three') move('responder', 'close', () => s.close());
          }),
        );
      });
    } else {
      let refused = false;
      s.on('connect', () => say(trigger === 'error' && !refused ? 'dead' : 'one'));
      s.on('error', () => {
        if (trigger !== 'error' || refused) return;
        refused = true;
        move('client', 'disconnect', () => s.disconnect());
        move('client', 'connect again', () => s.connect(ports.responder!, '127.0.0.1'));
      });
      s.on('message', (m: Buffer) => {
        const word = String(m);
        if (word === 'r-three') move('client', 'close', () => s.close());
        else if (word.startsWith('r-') && WORDS.includes(word.slice(2))) say(WORDS[WORDS.indexOf(word.slice(2)) + 1]);
      });
    }
    move(role, 'bind', () => s.bind(0, '127.0.0.1'));
    await waitFor(() => ports[role] !== undefined || closed(role), `the ${role} bound`, 2000);
  }
  // Over when both closed, or when nothing happened for a while: then the harness closes what is open.
  const entries = () => Object.values(rec.logs).reduce((n, log) => n + log.length, 0);
  let [seen, since] = [entries(), Date.now()];
  while (!(closed('client') && closed('responder')) && Date.now() - since < IDLE_MS) {
    await sleep(5);
    if (entries() !== seen) [seen, since] = [entries(), Date.now()];
  }
  await sleep(10);
  for (const role of ['client', 'responder'] as const) {
    try {
      sockets[role].close();
    } catch {
      // closed already
    }
  }
  await settle(() => closed('client') && closed('responder'), rec, 2000);
  return rec.logs;
}

/** node:dgram's logs for a case, run once and compared with each backend's. */
const references = new Map<string, Promise<Log>>();
function reference(trigger: Trigger, actions: string[]): Promise<Log> {
  const key = `${trigger} ${actions.join(' ')}`;
  if (!references.has(key)) references.set(key, conversation('node:dgram', trigger, actions).then(nullHandle));
  return references.get(key)!;
}

/** What differs between node:dgram's run and the backend's, labelled; nothing if they agree. */
async function parity(backend: BackendName, label: string, trigger: Trigger, actions: string[]): Promise<string[]> {
  const [expected, got] = [await reference(trigger, actions), await conversation(backend, trigger, actions)];
  const diff = differences(expected, got, 'node:dgram');
  if (got.harness) diff.push(`harness: ${JSON.stringify(got.harness)}`);
  return diff.length ? [`${label}: ${actions.join(' + ')} from '${trigger}':\n  ${diff.join('\n  ')}`] : [];
}

/** What the re-entry harness found muxnet doing otherwise, each with the case that shows it (now node:dgram's). */
const FOUND: [string, Trigger, string[]][] = [
  // A send to an address asked for before connect() completed reaches a connected socket: EISCONN, nothing sent.
  ['EISCONN, connect() then a send to an address', 'listening', ['connectThenSendAddr']],
  ["EISCONN, the same from inside 'message'", 'responder-message:first', ['connectThenSendAddr']],
  ['EISCONN, a send to localhost (its lookup later) then connect()', 'listening', ['sendLocalhostThenConnect']],
  // disconnect(), the queue and the buffer sizes on a closed socket: ERR_SOCKET_DGRAM_NOT_RUNNING (node: a TypeError).
  ['calls on a closed socket, connected before', 'close', ['disconnect', 'queueSize', 'queueCount', 'setRecvBuffer', 'getRecvBuffer', 'getSendBuffer']],
  ['calls on a closed socket, never connected', 'responder-close', ['disconnect', 'queueSize', 'queueCount', 'setRecvBuffer', 'getRecvBuffer', 'getSendBuffer', 'setTTL']],
  // connect() on a closed socket marks it connecting before it throws: a second one is ERR_SOCKET_DGRAM_IS_CONNECTED.
  ['connect() twice on a closed socket', 'responder-close', ['connectPeer', 'connectPeer']],
];

/** The seeds drawn: MUXNET_DGRAM_REENTRY_SEED (N, or A-B for a sweep), else a fixed few. */
function seeds(): number[] {
  const given = process.env.MUXNET_DGRAM_REENTRY_SEED;
  if (!given) return [1, 2, 3];
  const [from, to = from] = given.split('-').map(Number);
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
const CASES_PER_SEED = 10;

/** `CASES_PER_SEED` (trigger, call, call) cases from `seed`. */
function draw(seed: number): [Trigger, string[]][] {
  const rand = seededRandom(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const names = Object.keys(ACTIONS);
  return Array.from({ length: CASES_PER_SEED }, () => [pick(TRIGGERS), [pick(names), pick(names)]]);
}

describe.each(BACKENDS)("re-entrant calls on a drop-in UDP socket (%s), against node:dgram's", (backend) => {
  expectSocketFdsBack(backend);
  it.each(FOUND)('%s', async (label, trigger, actions) => {
    expect((await parity(backend, label, trigger, actions)).join('\n')).toBe('');
  });
  const list = seeds();
  it(`seeds ${list.length > 3 ? `${list[0]}-${list[list.length - 1]}` : list.join(', ')}: random pairs of calls from random events (MUXNET_DGRAM_REENTRY_SEED=N replays)`, async () => {
    const failures: string[] = [];
    for (const seed of list) {
      for (const [i, [trigger, actions]] of draw(seed).entries()) failures.push(...(await parity(backend, `seed ${seed}, case ${i}`, trigger, actions)));
    }
    expect(failures.join('\n')).toBe('');
  }, 30_000 + list.length * CASES_PER_SEED * 2_000);
});
