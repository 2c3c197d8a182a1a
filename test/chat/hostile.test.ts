// Hostile members against the chat server, over real loopback sockets on
// each transport (muxnet on two backends, node:net): a member that never
// reads, floods, sends garbage or endless lines, or weird commands costs
// bounded memory and is cut off; everyone else keeps being served.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import nodeNet from 'node:net';
import { encodeFrame, FrameDecoder } from '../../src/fast';
import { ChatServer, type ChatServerOptions } from '../../src/apps/chat/server';
import { RedisLink } from '../../src/apps/chat/cluster';
import { muxnetTransport, nodeTransport, type ChatTransport } from '../../src/apps/chat/transport';
import { REDIS, runDuring, skipWithout } from '../net/daemons';
import { announcements, waitFor } from '../helpers';
import { LineClient as Client } from './line-client';

let servers: ChatServer[] = [];
let clients: Client[] = [];

afterEach(async () => {
  for (const c of clients) c.sock.destroy();
  await Promise.all(servers.map((s) => s.stop({ timeout: 0 })));
  servers = [];
  clients = [];
});

/** A peer that keeps its side open after the server's FIN (`allowHalfOpen`), as a hostile one may. */
async function stubborn(port: number) {
  const sock = nodeNet.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const peer = { sock, text: '', closed: false };
  sock.on('data', (d) => (peer.text += d));
  sock.on('close', () => (peer.closed = true));
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  return peer;
}

/**
 * Waits until the server has closed `peer`'s connection for good: a
 * connection it only ended takes the bytes written to it; a closed one
 * answers them with a reset.
 */
async function closedByServer(peer: Awaited<ReturnType<typeof stubborn>>, what: string): Promise<void> {
  await waitFor(() => {
    if (!peer.closed && peer.sock.writable) peer.sock.write('\n');
    return peer.closed;
  }, what);
}

describe.each([
  ['muxnet on mio', muxnetTransport, 'mio'],
  ['muxnet on poll', muxnetTransport, 'poll'],
  ['node:net', nodeTransport, undefined],
] as [string, ChatTransport, 'mio' | 'poll' | undefined][])('hostile chat members, %s', (_name, transport, backend) => {
  async function start(options: ChatServerOptions = {}): Promise<ChatServer> {
    const server = await new ChatServer({ port: 0, transport, backend, announceMs: 20, ...options }).start();
    servers.push(server);
    return server;
  }

  async function join(server: ChatServer, nick: string): Promise<Client> {
    const c = await Client.connect(server.port);
    clients.push(c);
    await c.ask(`/nick ${nick}`, /^NICK /);
    return c;
  }

  it('a member that never reads but keeps asking for replies is cut off at slowCap, not left queueing', async () => {
    const slowCap = 64 * 1024;
    const server = await start({ maxLine: 64 * 1024, rate: 100_000, burst: 100_000, slowCap });
    const watcher = await join(server, 'watcher');
    const hog = await join(server, 'hog');
    await waitFor(() => announcements(watcher.lines).some((l) => l.includes('is now known as hog')), 'the rename announced');
    hog.sock.pause();
    // Each /msg to itself comes back twice (~120 KB): 12 MB in all, far past what the
    // kernel's buffers hold, yet under the reactor's own write-queue cap (16 MiB).
    const text = 'x'.repeat(60_000);
    for (let i = 0; i < 100; i++) hog.say(`/msg hog ${text}`);
    await waitFor(() => announcements(watcher.lines).includes('hog disconnected (too slow)'), 'the hog cut off as too slow');
    expect(server.clients).toBe(1);
    expect(await watcher.ask('/ping', /^PONG$/)).toBe('PONG');
  });

  it('an endless line holds no memory and stalls nobody; the line after it is relayed, none of it', async () => {
    const server = await start({ maxLine: 1024 });
    const watcher = await join(server, 'watcher');
    const endless = await join(server, 'endless');
    const mib = Buffer.alloc(1 << 20, 0x61);
    for (let i = 0; i < 16; i++) {
      endless.sock.write(mib);
      // Served meanwhile, with the endless line still open.
      if (i % 4 === 0) expect(await watcher.ask('/ping', /^PONG$/)).toBe('PONG');
    }
    // Found 2026-12-05: answered only once its newline came (a line that never ends: never).
    expect(await endless.expect(/^ERROR/)).toBe('ERROR line longer than 1024 bytes; dropped');
    endless.say('\nafter the long one');
    await waitFor(() => watcher.chat().some((l) => l.endsWith('endless: after the long one')), 'the next line relayed');
    // Answered once, and counted once: the next two too long end it (three in all).
    expect(endless.lines.filter((l) => l.startsWith('ERROR'))).toHaveLength(1);
    expect(watcher.chat().some((l) => l.includes('aaaa'))).toBe(false);
    expect(server.clients).toBe(2);
    endless.say('b'.repeat(2000));
    expect(await endless.expect(/^ERROR/, 'the second answer', endless.lines.length)).toBe('ERROR line longer than 1024 bytes; dropped');
    endless.sock.write('c'.repeat(2000));
    await waitFor(() => endless.closed, 'the third cut it off');
    expect(endless.lines.at(-1)).toBe('ERROR too many oversized lines; disconnected');
    expect(await watcher.ask('/ping', /^PONG$/)).toBe('PONG');
  });

  it('binary garbage: relayed as sanitized text or not at all; the sender and the others are still served', async () => {
    const server = await start({ rate: 100_000, burst: 100_000 });
    const watcher = await join(server, 'watcher');
    const noisy = await join(server, 'noisy');
    // Every byte value, invalid UTF-8, NULs, bare \r, and characters split across writes.
    const garbage = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(16 * 1024), Buffer.from('\n')]);
    const euro = Buffer.from('price \u20ac5\n');
    for (let i = 0; i < garbage.length; i += 7) noisy.sock.write(garbage.subarray(i, i + 7));
    noisy.sock.write(euro.subarray(0, 7));
    await new Promise((r) => setTimeout(r, 10));
    noisy.sock.write(euro.subarray(7));
    await waitFor(() => watcher.chat().some((l) => l.endsWith('noisy: price \u20ac5')), 'the split character relayed whole');
    for (const line of watcher.lines) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(await noisy.ask('/ping', /^PONG$/)).toBe('PONG');
    expect(server.clients).toBe(2);
  });

  it('weird commands get an ERROR each and change nothing; 1000 /joins leave no room behind', async () => {
    const server = await start({ maxLine: 16 * 1024, rate: 100_000, burst: 100_000 });
    const watcher = await join(server, 'watcher');
    const odd = await join(server, 'odd');
    expect(await odd.ask(`/nick ${'n'.repeat(10 * 1024)}`, /^ERROR/)).toBe('ERROR nick must be 1-32 characters');
    expect(await odd.ask('/nick', /^ERROR/)).toBe('ERROR nick must be 1-32 characters');
    expect(await odd.ask('/nick   ', /^ERROR/)).toBe('ERROR nick must be 1-32 characters');
    expect(await odd.ask('/nick WATCHER', /^ERROR/)).toBe('ERROR nick WATCHER is taken');
    expect(await odd.ask('/join', /^ERROR/)).toMatch(/^ERROR usage: \/join ROOM/);
    expect(await odd.ask(`/join ${'r'.repeat(33)}`, /^ERROR/)).toMatch(/^ERROR usage: \/join ROOM/);
    expect(await odd.ask('/msg', /^ERROR/)).toBe('ERROR no such nick: ');
    expect(await odd.ask('/msg watcher', /^ERROR/)).toBe('ERROR usage: /msg NICK text');
    expect(await odd.ask('/msg nobody hi', /^ERROR/)).toBe('ERROR no such nick: nobody');
    expect(await odd.ask('/', /^ERROR/)).toBe('ERROR unknown command /; /help lists the commands');
    expect(await odd.ask('/nick\u0000', /^ERROR/)).toBe('ERROR nick must be 1-32 characters');
    expect(await odd.ask('/who', /^WHO /)).toBe('WHO lobby: watcher, odd');

    odd.sock.write(Array.from({ length: 1000 }, (_, i) => `/join room${i}\n`).join(''));
    await odd.expect(/^JOINED room999$/, 'the last join');
    expect(await odd.ask('/rooms', /^ROOMS /)).toBe('ROOMS lobby (1), room999 (1)');
    expect(await odd.ask('/leave', /^JOINED /)).toBe('JOINED lobby');
    expect(await watcher.ask('/rooms', /^ROOMS /)).toBe('ROOMS lobby (2)');
    // The room heard of the whole tour in a few lines, not a thousand.
    await waitFor(() => announcements(watcher.lines).some((l) => l.startsWith('odd joined lobby')), 'the return announced');
    expect(announcements(watcher.lines).length).toBeLessThan(10);
    expect(server.clients).toBe(2);
  });

  it('a member who comes and goes within a batch is never announced, even when another room heard of it meanwhile', async () => {
    const server = await start({ announceMs: 1000 });
    const [speaker, listener, tourist, watcher] = [await join(server, 'speaker'), await join(server, 'listener'), await join(server, 'tourist'), await join(server, 'watcher')];
    for (const c of [speaker, listener, tourist]) await c.ask('/join x', /^JOINED x$/);
    await watcher.ask('/join y', /^JOINED y$/);
    await waitFor(() => announcements(listener.lines).some((l) => l.includes('tourist joined x')), "x's batch");
    // Leaving x is queued in x's batch, joining y in y's; x's goes out early (a line follows it)...
    await tourist.ask('/join y', /^JOINED y$/);
    speaker.say('hello x');
    await waitFor(() => listener.chat().some((l) => l.endsWith('speaker: hello x')), 'the line in x');
    expect(announcements(listener.lines)).toContain('tourist left x');
    // ...and the tourist leaves y before y's batch: y hears nothing of it.
    await tourist.ask('/join z', /^JOINED z$/);
    await speaker.ask('/join y', /^JOINED y$/);
    await waitFor(() => announcements(watcher.lines).some((l) => l.includes('speaker joined y')), "y's batch");
    // (Were the machine slow enough to send y's batch between the two, each line would name it once.)
    for (const line of watcher.lines.filter((l) => / \* /.test(l))) expect(line.split('tourist').length - 1, line).toBeLessThanOrEqual(1);
  });

  it('length framing: the frames before a header over the limit are relayed, none after it; the sender is cut off', async () => {
    const server = await start({ framing: 'length', maxLine: 1000 });
    const frames = async () => {
      const sock = nodeNet.connect(server.port, '127.0.0.1');
      sock.on('error', () => {});
      const got: string[] = [];
      const decoder = new FrameDecoder('length', 1 << 20);
      sock.on('data', (d) => got.push(...decoder.push(d).frames.map(String)));
      await waitFor(() => got.some((l) => l.startsWith('WELCOME')), 'the welcome frame');
      return { sock, got };
    };
    const watcher = await frames();
    const bad = await frames();
    bad.sock.write(Buffer.concat([encodeFrame('length', 'before'), Buffer.from([0xff, 0xff, 0xff, 0xff]), encodeFrame('length', 'after')]));
    await waitFor(() => bad.got.at(-1) === 'ERROR frame longer than 1000 bytes; disconnected', 'the sender cut off');
    await waitFor(() => watcher.got.some((l) => / guest\d+: before$/.test(l)), 'the frame before it relayed');
    await waitFor(() => announcements(watcher.got).some((l) => l.endsWith(' disconnected')), 'the sender gone');
    expect(watcher.got.some((l) => l.endsWith('after'))).toBe(false);
    expect(server.clients).toBe(1);
    watcher.sock.destroy();
  });

  it('a peer told goodbye (/quit, server full) that keeps its side open is closed after idleTimeoutMs, or by stop()', async () => {
    const server = await start({ idleTimeoutMs: 1000, maxClients: 1 });
    const quitter = await stubborn(server.port);
    await waitFor(() => quitter.text.includes('WELCOME'), 'the welcome');
    const refused = await stubborn(server.port);
    await waitFor(() => refused.text.includes('ERROR server full'), 'the refusal');
    quitter.sock.write('/quit\n');
    await waitFor(() => quitter.text.endsWith('BYE\n'), 'the goodbye');
    await closedByServer(quitter, 'the quitter closed');
    await closedByServer(refused, 'the refused one closed');
    // Neither counts toward maxClients: a newcomer gets in.
    const next = await Client.connect(server.port);
    clients.push(next);

    const stopping = await start({ idleTimeoutMs: 60_000 });
    const lingering = await stubborn(stopping.port);
    await waitFor(() => lingering.text.includes('WELCOME'), 'the welcome');
    lingering.sock.write('/quit\n');
    await waitFor(() => lingering.text.endsWith('BYE\n'), 'the goodbye');
    await stopping.stop({ timeout: 100 });
    await closedByServer(lingering, 'the lingering one closed by stop()');
  });

  it('a half-close: the last line is relayed, then the member leaves; the others stay', async () => {
    const server = await start();
    const watcher = await join(server, 'watcher');
    const leaver = await join(server, 'leaver');
    leaver.sock.end('last words\n');
    await waitFor(() => watcher.chat().some((l) => l.endsWith('leaver: last words')), 'the last line');
    await waitFor(() => announcements(watcher.lines).includes('leaver disconnected'), 'the departure');
    await waitFor(() => leaver.closed, 'the leaver closed');
    expect(server.clients).toBe(1);
    expect(await watcher.ask('/ping', /^PONG$/)).toBe('PONG');
  });
});

describe.skipIf(skipWithout(REDIS))('hostile chat members in a cluster (two servers, one Redis)', () => {
  const redisPort = runDuring(REDIS);

  async function linked(nodeId: string): Promise<ChatServer> {
    const link = new RedisLink({ url: `redis://127.0.0.1:${redisPort()}`, nodeId, prefix: `hostile-${process.pid}:` });
    const server = await new ChatServer({ port: 0, link, slowCap: 64 * 1024, maxLine: 64 * 1024, rate: 100_000, burst: 100_000, announceMs: 20 }).start();
    servers.push(server);
    return server;
  }

  it("a member that never reads is cut off at slowCap by its own server while another server's member floods its room; the rest hear every line", async () => {
    const [a, b] = [await linked('a'), await linked('b')];
    const member = async (server: ChatServer, nick: string) => {
      const c = await Client.connect(server.port);
      clients.push(c);
      await c.ask(`/nick ${nick}`, /^NICK /);
      await c.ask('/join r', /^JOINED r$/);
      return c;
    };
    const [hog, reader, talker] = [await member(a, 'hog'), await member(a, 'reader'), await member(b, 'talker')];
    // What b publishes to r reaches a: a is subscribed.
    await waitFor(() => announcements(reader.lines).some((l) => l.includes('talker joined r')), "b's member heard of on a");
    hog.sock.pause();
    // 12 MB through Redis to a, in lines of 60 KB: far past what the hog's kernel buffers hold.
    const text = (i: number) => `${i} ${'x'.repeat(60_000)}`;
    for (let i = 0; i < 200; i++) talker.say(text(i));
    await waitFor(() => announcements(reader.lines).includes('hog disconnected (too slow)'), 'the hog cut off', 20_000);
    await waitFor(() => reader.chat().length === 200, 'every line at the reader', 20_000);
    expect(reader.chat().map((l) => l.split(': ')[1])).toEqual(Array.from({ length: 200 }, (_, i) => text(i)));
    await waitFor(() => announcements(talker.lines).includes('hog disconnected (too slow)'), 'the departure heard on b');
    expect(a.clients).toBe(1);
  });
});

