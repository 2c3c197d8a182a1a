// The chat server under a crowd: thousands of members join one room, then all leave at once.
import { existsSync, readFileSync } from 'node:fs';
import nodeNet from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { ChatServer } from '../../src/apps/chat/server';
import { muxnetTransport, nodeTransport } from '../../src/apps/chat/transport';
import { announcements, sleep, waitFor } from '../helpers';

/** Files this process may open (`ulimit -n`); 1024 where /proc does not say. */
function fdLimit(): number {
  const limits = existsSync('/proc/self/limits') ? readFileSync('/proc/self/limits', 'utf8') : '';
  return Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1] ?? 1024);
}

/** Members (`CROWD=n` to measure more): both ends of each are open in this process, within its fd limit. */
const CROWD = Math.min(Number(process.env.CROWD ?? 3000), Math.floor((fdLimit() - 256) / 2));

/** A line-protocol client that keeps every line it receives. */
async function observer(port: number): Promise<{ sock: nodeNet.Socket; lines: string[] }> {
  const sock = nodeNet.connect(port, '127.0.0.1');
  const lines: string[] = [];
  let partial = '';
  sock.setEncoding('utf8');
  sock.on('data', (text: string) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  sock.on('error', () => {});
  cleanup.push(() => sock.destroy());
  await waitFor(() => lines.some((l) => l.startsWith('WELCOME')), 'the welcome line');
  return { sock, lines };
}

/** Members that never speak; what they receive is read and thrown away. */
async function idleMembers(port: number, n: number): Promise<nodeNet.Socket[]> {
  const socks: nodeNet.Socket[] = [];
  for (let wave = 0; wave < n; wave += 500) {
    const batch = Array.from({ length: Math.min(500, n - wave) }, () => {
      const sock = nodeNet.connect(port, '127.0.0.1');
      sock.on('error', () => {});
      sock.resume();
      socks.push(sock);
      return new Promise((r) => sock.once('connect', r));
    });
    await Promise.all(batch);
  }
  cleanup.push(() => socks.forEach((s) => s.destroy()));
  return socks;
}

/** Milliseconds a fresh client waits for the answer to `/ping`, from connecting (it stays). */
async function pingTime(port: number): Promise<number> {
  const started = Date.now();
  const fresh = await observer(port);
  fresh.sock.write('/ping\n');
  await waitFor(() => fresh.lines.includes('PONG'), 'PONG', 20_000);
  return Date.now() - started;
}

/** The announcements in `lines` of members who `what`, and how many members they name (`a, b and 12 others what`). */
function announced(lines: string[], what: string): { lines: number; members: number } {
  const named = announcements(lines)
    .filter((a) => a.endsWith(` ${what}`))
    .map((a) => {
      const names = a.slice(0, -what.length - 1);
      const others = / and (\d+) others$/.exec(names);
      return (others ? names.slice(0, others.index) : names).split(/, | and /).length + (others ? Number(others[1]) : 0);
    });
  return { lines: named.length, members: named.reduce((sum, n) => sum + n, 0) };
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

it.each([
  ['muxnet', muxnetTransport],
  ['node:net', nodeTransport],
])(`on %s: stays responsive while ${CROWD} members join one room and when they all leave at once`, async (_name, transport) => {
  const server = await new ChatServer({ port: 0, transport }).start();
  cleanup.push(() => server.stop());
  const watcher = await observer(server.port);

  const joining = Date.now();
  const members = await idleMembers(server.port, CROWD);
  await waitFor(() => server.clients === CROWD + 1, 'the crowd to join', 20_000);
  const joined = Date.now() - joining;
  const busy = await pingTime(server.port);
  await waitFor(() => announced(watcher.lines, 'joined lobby').members >= CROWD + 1, 'every join announced', 10_000);
  // The last batch (the fresh client's join) was due well before this: anything more would be a repeat.
  await sleep(300);
  const joins = announced(watcher.lines, 'joined lobby');

  const left = Date.now();
  for (const sock of members) sock.destroy();
  await waitFor(() => server.clients === 2, 'the crowd to be gone', 20_000);
  const gone = Date.now() - left;
  const after = await pingTime(server.port);
  await waitFor(() => announced(watcher.lines, 'disconnected').members >= CROWD, 'every departure announced', 10_000);
  await sleep(300);
  const departures = announced(watcher.lines, 'disconnected');
  console.log(`${CROWD} members joined in ${joined} ms: /ping answered in ${busy} ms after they joined; gone in ${gone} ms, /ping then ${after} ms; ` +
    `${joins.lines} join and ${departures.lines} departure lines`);

  // Every member is announced exactly once, in a few lines (one per room per batch), not one line each.
  expect(joins.lines).toBeLessThan(CROWD / 10);
  expect(departures.lines).toBeLessThan(CROWD / 10);
  expect(joins.members).toBe(CROWD + 2); // the crowd, the watcher and the first fresh client
  expect(departures.members).toBe(CROWD);
  expect(busy).toBeLessThan(3000);
  expect(gone + after).toBeLessThan(5000);
}, 120_000);
