// Hostile members against the chat server, over real loopback sockets on
// each transport (muxnet on two backends, node:net): a member that never
// reads, floods, sends garbage or endless lines, or weird commands costs
// bounded memory and is cut off; everyone else keeps being served.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ChatServer, type ChatServerOptions } from '../../src/apps/chat/server';
import { muxnetTransport, nodeTransport, type ChatTransport } from '../../src/apps/chat/transport';
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
    await waitFor(() => announcements(watcher.lines).includes('hog was too slow and got disconnected'), 'the hog cut off as too slow');
    expect(server.clients).toBe(1);
    expect(await watcher.ask('/ping', /^PONG$/)).toBe('PONG');
  });
});
