// Real DNS clients against a DNS responder on each UDP layer: Node's
// `dns.Resolver` (c-ares, in C) and `dig` (BIND's, a process) ask a zone
// (test/dns.ts) served over node:dgram + node:net (the reference), the
// drop-in dgram + net, and the fast API's bind() + listen(), UDP and TCP on
// one port as a DNS server has them. c-ares retries a dropped query,
// ignores an answer from the wrong port, and asks again over TCP when an
// answer comes truncated; dig does the same from another process.
import { execFile } from 'node:child_process';
import nodeDgram from 'node:dgram';
import dns from 'node:dns';
import nodeNet from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as muxDgram from '../src/dgram';
import { bind, listen, type BackendName, type Connection } from '../src/fast';
import * as muxNet from '../src/net';
import { DatagramHandler, serve as serveHandler } from '../src/server';
import { getReactor } from '../src/reactor';
import { addressOf, BIG_TXT, textOf, Zone } from './dns';
import { BACKENDS, socketFds, waitFor } from './helpers';
import { program, skipWithout, within } from './net/daemons';

/** A zone served on one port, UDP and TCP. */
interface DnsServer {
  port: number;
  zone: Zone;
  close(): Promise<void>;
}

type Serve = (zone: Zone, port: number) => Promise<DnsServer>;

/** node:dgram or the drop-in (same API): the UDP half, with a second socket for forged answers. */
async function serveDgram(dgram: typeof nodeDgram, net: typeof nodeNet, backend: BackendName | undefined, zone: Zone, port: number): Promise<DnsServer> {
  const opts = { type: 'udp4', backend } as nodeDgram.SocketOptions;
  const udp = dgram.createSocket(opts);
  const stray = dgram.createSocket(opts);
  udp.on('message', (msg, rinfo) => {
    const { reply, forged } = zone.onDatagram(msg);
    if (!reply) return;
    // Replies leave with the batch's others (sendmmsg); after a forged one, a turn later, so it is read first.
    if (!forged) return udp.send(reply, rinfo.port, rinfo.address);
    stray.send(forged, rinfo.port, rinfo.address);
    setImmediate(() => udp.send(reply, rinfo.port, rinfo.address));
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, '127.0.0.1', () => resolve());
  });
  await new Promise<void>((resolve) => stray.bind(0, '127.0.0.1', () => resolve()));
  const conns = new Set<nodeNet.Socket>();
  const tcp = net.createServer({ backend } as nodeNet.ServerOpts, (conn) => {
    conns.add(conn);
    const read = zone.tcpReader();
    conn.on('data', (chunk) => conn.write(Buffer.concat(read(chunk))));
    conn.on('error', () => {});
    conn.on('close', () => conns.delete(conn));
  });
  try {
    await listenOn(tcp, udp.address().port);
  } catch (err) {
    udp.close();
    stray.close();
    throw err;
  }
  return {
    port: udp.address().port,
    zone,
    close: async () => {
      for (const c of conns) c.destroy();
      await Promise.all([udp, stray, tcp].map((h) => new Promise<void>((r) => h.close(() => r()))));
    },
  };
}

function listenOn(server: nodeNet.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

/** The fast API: bind() and listen(), replies sent from the handlers (the batched path). */
async function serveFast(backend: BackendName, zone: Zone, port: number): Promise<DnsServer> {
  const stray = bind({ host: '127.0.0.1', backend }, {});
  const udp = bind(
    { host: '127.0.0.1', port, backend },
    {
      onMessage(msg, rinfo, sock) {
        const { reply, forged } = zone.onDatagram(msg);
        if (!reply) return;
        if (!forged) return void sock.send(reply, rinfo.port, rinfo.address);
        stray.send(forged, rinfo.port, rinfo.address);
        setImmediate(() => sock.send(reply, rinfo.port, rinfo.address));
      },
    },
  );
  const conns = new Set<Connection<(chunk: Buffer) => Buffer[]>>();
  let tcp;
  try {
    tcp = listen<(chunk: Buffer) => Buffer[]>(
      { host: '127.0.0.1', port: udp.address()!.port, backend },
      {
        onOpen(conn) {
          conns.add(conn);
          conn.data = zone.tcpReader();
        },
        onData(conn, chunk) {
          for (const b of conn.data!(chunk)) conn.write(b);
        },
        onClose(conn) {
          conns.delete(conn);
        },
      },
    );
  } catch (err) {
    udp.close();
    stray.close();
    throw err;
  }
  const server = tcp;
  return {
    port: udp.address()!.port,
    zone,
    close: async () => {
      for (const c of conns) c.destroy();
      udp.close();
      stray.close();
      server.close();
    },
  };
}

/** Binds UDP on a free port, then TCP on the same one; another port if that one's TCP is taken. */
async function serve(how: Serve): Promise<DnsServer> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await how(new Zone(), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 20) throw err;
    }
  }
}

const IMPLS: [string, Serve, BackendName | undefined][] = [
  ['node:dgram + node:net', (zone, port) => serveDgram(nodeDgram, nodeNet, undefined, zone, port), undefined],
  ...BACKENDS.flatMap((b): [string, Serve, BackendName][] => [
    [`muxnet dgram + net (${b})`, (zone, port) => serveDgram(muxDgram as unknown as typeof nodeDgram, muxNet as unknown as typeof nodeNet, b, zone, port), b],
    [`muxnet fast bind + listen (${b})`, (zone, port) => serveFast(b, zone, port), b],
  ]),
];

const SKIP_DIG = skipWithout(program('dig'));

function dig(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('dig', args, { timeout: 15_000 }, (err, stdout, stderr) => (err ? reject(new Error(`dig ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

describe.each(IMPLS)('%s', (_name, how, backend) => {
  let server: DnsServer | undefined;
  let resolver: dns.promises.Resolver | undefined;
  let fds = 0;

  beforeAll(() => {
    // The reactor's own files (a poll or select waiter's) stay open: counted before.
    if (backend !== undefined) getReactor(backend);
    fds = socketFds();
  });

  afterEach(async () => {
    resolver?.cancel();
    await server?.close();
    server = undefined;
    // c-ares closes its sockets once it has no queries left.
    await waitFor(() => socketFds() <= fds, 'the sockets to close');
  });

  /** A c-ares resolver asking only this server; `timeout` ms per try. */
  async function start(options: { timeout?: number; tries?: number } = {}) {
    server = await serve(how);
    resolver = new dns.promises.Resolver({ timeout: options.timeout ?? 5000, tries: options.tries ?? 4 });
    resolver.setServers([`127.0.0.1:${server.port}`]);
    return { server, resolver };
  }

  it('c-ares: A, AAAA and TXT answers, and 300 queries at once each get their own', async () => {
    const { resolver: r } = await start();
    expect(await r.resolve4('a7.test')).toEqual([addressOf('a7.test')]);
    expect(await r.resolve6('a7.test')).toEqual(['fd00::7']);
    expect((await r.resolveTxt('a7.test')).map((chunks) => chunks.join(''))).toEqual([textOf('a7.test')]);
    const names = Array.from({ length: 300 }, (_, i) => `a${1000 + i}.test`);
    const answers = await within(Promise.all(names.map((n) => r.resolve4(n))), '300 answers');
    expect(answers).toEqual(names.map((n) => [addressOf(n)]));
  });

  it('c-ares: a dropped query is asked again and answered; one never answered fails with ETIMEOUT', async () => {
    const { server: s, resolver: r } = await start({ timeout: 200, tries: 3 });
    expect(await r.resolve4('lost-5.test')).toEqual([addressOf('lost-5.test')]);
    expect(s.zone.udp.get('lost-5.test')).toBeGreaterThanOrEqual(2);
    await expect(r.resolve4('never-5.test')).rejects.toMatchObject({ code: 'ETIMEOUT' });
    expect(s.zone.udp.get('never-5.test')).toBe(3);
    // The socket still answers.
    expect(await r.resolve4('a5.test')).toEqual([addressOf('a5.test')]);
  });

  it('c-ares: a truncated answer is asked again over TCP on the same port, for a record larger than the datagram', async () => {
    const { server: s, resolver: r } = await start();
    const names = Array.from({ length: 20 }, (_, i) => `tc-${i}.test`);
    const texts = await Promise.all(names.map((n) => r.resolveTxt(n)));
    expect(texts.map((t) => t.map((chunks) => chunks.join('')))).toEqual(names.map((n) => [textOf(n, 'tcp')]));
    for (const n of names) {
      expect(s.zone.udp.get(n)).toBe(1);
      expect(s.zone.tcp.get(n)).toBe(1);
    }
  });

  it('c-ares: an answer from the wrong port is ignored for the real one; a 4 KiB EDNS answer arrives whole', async () => {
    const { resolver: r } = await start();
    expect(await r.resolve4('stray-9.test')).toEqual([addressOf('stray-9.test')]);
    const [txt] = await r.resolveTxt('big-9.test');
    expect(Buffer.byteLength(txt.join(''))).toBe(BIG_TXT);
    expect(txt.join('')).toBe(textOf('big-9.test'));
  });

  it.skipIf(SKIP_DIG)('dig: over UDP, over TCP (+tcp), and truncated over UDP then again over TCP', async () => {
    server = await serve(how);
    const at = ['@127.0.0.1', '-p', String(server.port), '+tries=2', '+time=5'];
    expect((await dig([...at, '+short', 'a42.test', 'A'])).trim()).toBe(addressOf('a42.test'));
    expect((await dig([...at, '+short', '+tcp', 'a43.test', 'AAAA'])).trim()).toBe('fd00::2b');
    const big = await dig([...at, 'big-44.test', 'TXT']);
    expect(big).toMatch(/status: NOERROR/);
    expect(big).toMatch(/\(UDP\)/);
    const truncated = await dig([...at, 'tc-45.test', 'TXT']);
    expect(truncated).toMatch(/Truncated, retrying in TCP mode/);
    expect(truncated).toMatch(/\(TCP\)/);
    expect(server.zone.tcp.get('tc-45.test')).toBe(1);
    expect(server.zone.tcp.get('a43.test')).toBe(1);
    expect(server.zone.udp.get('a42.test')).toBe(1);
  });
});

describe.each(BACKENDS.flatMap((b) => (['reactor', 'serial'] as const).map((mode) => [mode, b] as const)))('muxnet/server DatagramHandler, %s mode (%s)', (mode, backend) => {
  it('c-ares: 200 queries at once, a dropped one asked again, a 4 KiB answer: each handler replies after an await', async () => {
    const zone = new Zone();
    let running = 0;
    let most = 0;
    class Responder extends DatagramHandler {
      async handle(msg: Buffer) {
        most = Math.max(most, ++running);
        // A lookup that takes a turn, as a real zone's might.
        await new Promise((r) => setImmediate(r));
        const { reply } = zone.onDatagram(msg);
        if (reply) this.reply(reply);
      }
      finish() {
        running--;
      }
    }
    const server = await serveHandler(Responder, { port: 0, host: '127.0.0.1', mode, backend });
    const r = new dns.promises.Resolver({ timeout: 1000, tries: 4 });
    r.setServers([`127.0.0.1:${server.port}`]);
    try {
      const names = Array.from({ length: 200 }, (_, i) => `a${2000 + i}.test`);
      expect(await within(Promise.all(names.map((n) => r.resolve4(n))), '200 answers')).toEqual(names.map((n) => [addressOf(n)]));
      expect(await r.resolve4('lost-3.test')).toEqual([addressOf('lost-3.test')]);
      expect((await r.resolveTxt('big-3.test'))[0].join('')).toBe(textOf('big-3.test'));
      if (mode === 'serial') expect(most).toBe(1);
    } finally {
      r.cancel();
      await server.close({ timeout: 1000 });
    }
  });
});
