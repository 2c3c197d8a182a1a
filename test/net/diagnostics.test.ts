// node:net's and node:dgram's diagnostics_channel messages, checked against
// Node itself: a subscriber sees muxnet's sockets and servers where it sees
// node's. Each case keeps only the messages about its own objects (a channel
// is process-wide).
import dc from 'node:diagnostics_channel';
import nodeDgram from 'node:dgram';
import { once } from 'node:events';
import nodeNet from 'node:net';
import { describe, expect, it } from 'vitest';
import * as muxnetDgram from '../../src/dgram';
import { EVERY_CONNECT_PUBLISHES } from '../../src/diagnostics';
import * as muxnet from '../../src/net';
import { fixtureJson } from '../helpers';

type Net = typeof nodeNet;
type Message = { socket?: unknown; server?: unknown; options?: unknown; error?: NodeJS.ErrnoException };

/** Subscribes to a channel for the length of `run`, and returns what it heard. */
async function heard(name: string, run: () => Promise<void>): Promise<Message[]> {
  const got: Message[] = [];
  const onMessage = (m: unknown) => got.push(m as Message);
  dc.subscribe(name, onMessage);
  try {
    await run();
  } finally {
    dc.unsubscribe(name, onMessage);
  }
  return got;
}

const listening = async (server: nodeNet.Server) => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as nodeNet.AddressInfo).port;
};

describe.each([
  ['node:net', nodeNet],
  ['muxnet', muxnet as unknown as Net],
])('%s', (_name, net) => {
  it("publishes 'net.client.socket' for net.connect() (and, from Node 24.2 and 22.17, for socket.connect())", async () => {
    const server = net.createServer((s) => s.destroy());
    const port = await listening(server);
    const sockets: nodeNet.Socket[] = [];
    const got = await heard('net.client.socket', async () => {
      const viaConnect = net.connect(port, '127.0.0.1');
      const viaSocket = new net.Socket().connect(port, '127.0.0.1');
      sockets.push(viaConnect, viaSocket);
      await Promise.all(sockets.map((s) => once(s, 'close')));
    });
    server.close();
    const mine = got.filter((m) => sockets.includes(m.socket as nodeNet.Socket)).map((m) => m.socket);
    expect(mine).toEqual(EVERY_CONNECT_PUBLISHES ? sockets : [sockets[0]]);
  });

  it("publishes 'net.server.socket' for each accepted socket, after 'connection'", async () => {
    const accepted: nodeNet.Socket[] = [];
    const seenAtConnection: number[] = [];
    let got: Message[] = [];
    const server = net.createServer((s) => {
      seenAtConnection.push(got.length);
      accepted.push(s);
      s.destroy();
    });
    const port = await listening(server);
    got = await heard('net.server.socket', async () => {
      const c = net.connect(port, '127.0.0.1');
      await once(c, 'close');
      while (accepted.length === 0) await new Promise((r) => setImmediate(r));
    });
    server.close();
    expect(got.filter((m) => accepted.includes(m.socket as nodeNet.Socket)).map((m) => m.socket)).toEqual(accepted);
    expect(seenAtConnection).toEqual([0]);
  });

  it("traces listen() on 'net.server.listen': asyncStart with the caller's options, then asyncEnd, or error", async () => {
    const events: [string, Message][] = [];
    const trace = dc.tracingChannel('net.server.listen');
    const handlers = {
      start: () => {},
      end: () => {},
      asyncStart: (m: unknown) => events.push(['asyncStart', m as Message]),
      asyncEnd: (m: unknown) => events.push(['asyncEnd', m as Message]),
      error: (m: unknown) => events.push(['error', m as Message]),
    };
    trace.subscribe(handlers);
    const first = net.createServer();
    const second = net.createServer();
    const options = { port: 0, host: '127.0.0.1', custom: true };
    try {
      first.listen(options);
      await once(first, 'listening');
      const { port } = first.address() as nodeNet.AddressInfo;
      second.listen(port, '127.0.0.1');
      const [err] = (await once(second, 'error')) as [NodeJS.ErrnoException];
      expect(err.code).toBe('EADDRINUSE');
    } finally {
      trace.unsubscribe(handlers);
      first.close();
    }
    const mine = events.filter(([, m]) => m.server === first || m.server === second);
    expect(mine.map(([kind, m]) => [kind, m.server === first ? 'first' : 'second'])).toEqual([
      ['asyncStart', 'first'],
      ['asyncEnd', 'first'],
      ['asyncStart', 'second'],
      ['error', 'second'],
    ]);
    expect(mine[0][1].options).toBe(options);
    expect(mine[3][1].error?.code).toBe('EADDRINUSE');
  });
});

describe.each([
  ['node:dgram', nodeDgram],
  ['muxnet/dgram', muxnetDgram as unknown as typeof nodeDgram],
])('%s', (_name, dgram) => {
  it("publishes 'udp.socket' for each socket made", async () => {
    const made: nodeDgram.Socket[] = [];
    const got = await heard('udp.socket', async () => {
      made.push(dgram.createSocket('udp4'), dgram.createSocket({ type: 'udp6' }));
    });
    for (const s of made) s.close();
    expect(got.filter((m) => made.includes(m.socket as nodeDgram.Socket)).map((m) => m.socket)).toEqual(made);
  });
});

// Found 2026-12-06 (Node's test/async-hooks/test-async-local-storage-{socket,dgram}.js, run by a
// helper): every event ran in the async context of the reactor, made when the first socket was,
// so each client's 'connect' and 'data' saw the store of whichever request opened the first socket.
describe('AsyncLocalStorage', () => {
  it("each socket's events see the store of its connect, listen or createSocket, as node's; accepted connections and the fast API's callbacks none", async () => {
    const node = await fixtureJson('async-context.js', ['node']);
    const { 'fast:open': open, 'fast:data': data, 'fast:server-data': serverData, ...muxnetSeen } = await fixtureJson('async-context.js', ['muxnet']);
    expect(muxnetSeen).toEqual(node);
    expect(node).toMatchObject({ 'server:connection': 'server', 'accepted:data': null, 'r3:data': 'r3', 'udp-client:message': 'udp-client', 'udp-server:send-cb': 'udp-server' });
    // Neither muxnet's loading nor the process's first socket, each inside a request, lends the reactor a store.
    expect([open, data, serverData]).toEqual([null, null, null]);
  });
});
