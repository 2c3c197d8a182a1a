// Third-party UDP peers against muxnet's UDP layers: `socat` and `nc -u`
// (processes, their own sockets) talk to `npx muxnet echo --udp` (the fast
// API, batched with recvmmsg/sendmmsg), including a burst larger than its
// receive buffer and datagrams forged from addresses no reply can go to;
// node:dgram (libuv) meets the drop-in dgram in a multicast group and by
// broadcast; `nc -u` members of `muxnet chat serve --udp`; and peers that
// go away before the fast API's batched replies reach them.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import nodeDgram from 'node:dgram';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as muxDgram from '../src/dgram';
import { bind, type RemoteInfo } from '../src/fast';
import { BACKENDS, CAN_SPOOF_UDP, runCli, sendForged, sleep, startCli, waitFor } from './helpers';
import { program, skipWithout, within } from './net/daemons';

const SKIP_SOCAT = skipWithout(program('socat'));
const SKIP_NC = skipWithout(program('nc'));

const dir = mkdtempSync(join(tmpdir(), 'muxnet-udp-peers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file holding `data`: what a peer reads its datagram from (a pipe could split it in two). */
function fileOf(name: string, data: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

/** Runs `bin args` with stdin from `input` (a file) and gives what it wrote to stdout; bounded. */
async function run(bin: string, args: string[], input: string): Promise<Buffer> {
  const fd = openSync(input, 'r');
  try {
    const child = spawn(bin, args, { stdio: [fd, 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d) => (err += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(killer);
    if (code !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${code}: ${err}`);
    return Buffer.concat(out);
  } finally {
    closeSync(fd);
  }
}

/** Round trip through socat: sends the file's bytes as one datagram, gives the datagram that came back. */
const socat = (input: string, peer: string) => run('socat', ['-b', '70000', '-T', '5', 'STDIO', peer], input);

/** A UDP socket's kernel counters on Linux (/proc/net/udp, udp6): bytes waiting (with their overhead) and datagrams dropped. */
function kernelCounters(port: number): { queued: number; drops: number } {
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 13 && parseInt(f[1].split(':').at(-1)!, 16) === port) return { queued: parseInt(f[4].split(':')[1], 16), drops: Number(f[12]) };
    }
  }
  throw new Error(`no UDP socket on port ${port}`);
}

/** Datagrams the kernel dropped before any socket saw them (each CPU's input backlog full), on all CPUs. */
function backlogDrops(): number {
  return readFileSync('/proc/net/softnet_stat', 'utf8')
    .trim()
    .split('\n')
    .reduce((sum, line) => sum + parseInt(line.split(/\s+/)[1], 16), 0);
}

/** Stops the echo with SIGTERM; gives the datagrams and bytes its last line says it received, and how many it did not answer. */
async function stopEcho(echo: Awaited<ReturnType<typeof startCli>>): Promise<{ datagrams: number; bytes: number; unanswered: number }> {
  echo.child.kill('SIGTERM');
  expect(await within(echo.exited, 'the echo to exit')).toBe(0);
  const m = /stopped: (\d+) datagrams, (\d+) bytes received(?:, (\d+) unanswered)?/.exec(echo.output());
  if (!m) throw new Error(`no summary in:\n${echo.output()}`);
  return { datagrams: Number(m[1]), bytes: Number(m[2]), unanswered: Number(m[3] ?? 0) };
}

/** A node:dgram peer on 127.0.0.1 that collects what comes back. */
async function nodePeer(): Promise<{ socket: nodeDgram.Socket; got: Buffer[] }> {
  const socket = nodeDgram.createSocket('udp4');
  const got: Buffer[] = [];
  socket.on('message', (m) => got.push(m));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  return { socket, got };
}

describe.each(BACKENDS)('muxnet echo --udp (%s) and third-party peers', (backend) => {
  it.skipIf(SKIP_SOCAT || SKIP_NC)('socat over IPv4 and IPv6, nc -u, an empty one: datagrams up to the largest each family carries come back whole; the count is exact', async () => {
    // `::` takes both families: IPv4 peers arrive as ::ffff:127.0.0.1.
    const echo = await startCli(['echo', '--udp', '--port', '0', '--host', '::', '--backend', backend]);
    const cases: [string, number][] = [
      ...[1, 1472, 9000, 65_507].map((n): [string, number] => [`UDP4:127.0.0.1:${echo.port}`, n]),
      ...[1, 1452, 9000, 65_527].map((n): [string, number] => [`UDP6:[::1]:${echo.port}`, n]),
    ];
    const sent = cases.map(([, n]) => randomBytes(n));
    const back = await Promise.all(cases.map(([peer], i) => socat(fileOf(`dgram-${backend}-${i}`, sent[i]), peer)));
    back.forEach((b, i) => expect(b.equals(sent[i]), `${cases[i][1]} bytes from ${cases[i][0]}`).toBe(true));
    const line = Buffer.from(`hello from nc ${backend}\n`);
    expect(await run('nc', ['-u', '-w', '1', '127.0.0.1', String(echo.port)], fileOf(`nc-${backend}`, line))).toEqual(line);
    // Neither sends an empty datagram; node:dgram does, and one comes back.
    const empty = await nodePeer();
    empty.socket.send(Buffer.alloc(0), echo.port, '127.0.0.1');
    await waitFor(() => empty.got.length === 1, 'the empty datagram echoed');
    expect(empty.got[0]).toHaveLength(0);
    empty.socket.close();
    expect(await stopEcho(echo)).toEqual({ datagrams: cases.length + 2, bytes: sent.reduce((s, b) => s + b.length, line.length), unanswered: 0 });
  });

  it.runIf(CAN_SPOOF_UDP)('datagrams forged from broadcast addresses, 0.0.0.1 and port 0: the kernel refuses each reply, the echo drops it, counts it unanswered and goes on', async () => {
    const echo = await startCli(['echo', '--udp', '--port', '0', '--backend', backend]);
    // Replying there fails when the batch's datagrams leave: EACCES (no SO_BROADCAST), EINVAL.
    for (const from of ['255.255.255.255', '127.255.255.255', '0.0.0.1']) sendForged(echo.port, `forged from ${from}`, from, 5353);
    // And one from port 0, not answered at all.
    sendForged(echo.port, 'forged from port 0', '127.0.0.1', 0);
    const peer = await nodePeer();
    peer.socket.send('real', echo.port, '127.0.0.1');
    await waitFor(() => {
      if (echo.child.exitCode !== null) throw new Error(`the echo died:\n${echo.output()}`);
      return peer.got.length === 1;
    }, 'the real datagram echoed');
    expect(String(peer.got[0])).toBe('real');
    peer.socket.close();
    expect(await stopEcho(echo)).toMatchObject({ datagrams: 5 });
    expect(echo.output()).toMatch(/stopped: 5 datagrams, \d+ bytes received, 4 unanswered/);
  });

  it.runIf(process.platform === 'linux' && !SKIP_SOCAT)('socat bursts 5 000 datagrams, more than the receive buffer holds: the kernel drops some, the echo and its reactor count only what it read, and it answers after', async () => {
    const echo = await startCli(['echo', '--udp', '--port', '0', '--backend', backend, '--stats', '0.2']);
    const size = 1000;
    const count = 5_000;
    const before = backlogDrops();
    // -u: one way, each block of the file one datagram, as fast as socat writes.
    await run('socat', ['-u', '-b', String(size), 'STDIN', `UDP4:127.0.0.1:${echo.port}`], fileOf(`burst-${backend}`, Buffer.alloc(size * count, 7)));
    // What the kernel still holds is read before the count is taken.
    await waitFor(() => kernelCounters(echo.port).queued === 0, 'the receive queue to empty', 10_000);
    const { drops } = kernelCounters(echo.port);
    // Still answering.
    const peer = await nodePeer();
    peer.socket.send('after the burst', echo.port, '127.0.0.1');
    await waitFor(() => peer.got.length === 1, 'an echo after the burst');
    peer.socket.close();
    // An idle interval's line: the reactor's counts of everything before it are printed.
    const seen = echo.output().length;
    await waitFor(() => /stats: 0 turns/.test(echo.output().slice(seen)), 'an idle stats line');
    const { datagrams, bytes, unanswered } = await stopEcho(echo);
    // The reactor's counters (summed over the --stats lines) agree with the app's.
    const counted = [...echo.output().matchAll(/datagrams: (\d+) in, [\d.]+ per syscall, (\d+) out/g)];
    expect(counted.reduce((sum, m) => sum + Number(m[1]), 0)).toBe(datagrams);
    expect(counted.reduce((sum, m) => sum + Number(m[2]), 0)).toBe(datagrams - unanswered);
    const read = datagrams - 1;
    expect(bytes).toBe(read * size + 'after the burst'.length);
    expect(read).toBeGreaterThan(0);
    // Each datagram socat sent was read once, or dropped at the socket, or (the machine
    // busy) before it reached any socket: another process's of those may count there too.
    expect(read + drops).toBeLessThanOrEqual(count);
    expect(read + drops + (backlogDrops() - before)).toBeGreaterThanOrEqual(count);
  });
});

/** `nc -u` to 127.0.0.1:`port`, its stdin kept open: what it printed so far, and a way to type a line. */
function ncMember(port: number) {
  const child = spawn('nc', ['-u', '127.0.0.1', String(port)], { stdio: ['pipe', 'pipe', 'ignore'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  return { child, output: () => out, say: (line: string) => child.stdin!.write(`${line}\n`) };
}

describe.each(BACKENDS)('muxnet chat serve --udp (%s) with nc -u members', (backend) => {
  it.skipIf(SKIP_NC)('each relayed message is a line of its own on the member’s terminal; lines sent in one datagram stay apart as words', async () => {
    const chat = runCli(['chat', 'serve', '--udp', '--port', '0', '--backend', backend], 20_000);
    await waitFor(() => /UDP chat on 127\.0\.0\.1:\d+/.test(chat.output()), 'the chat to listen', 10_000);
    const port = Number(/UDP chat on 127\.0\.0\.1:(\d+)/.exec(chat.output())![1]);
    const a = ncMember(port);
    const b = ncMember(port);
    try {
      b.say('hb');
      // Both are members once b hears a (a's first datagram made it one; b's may come after it).
      for (let tries = 0; b.output() === ''; tries++) {
        if (tries === 100) throw new Error('b never heard a');
        a.say('hello');
        await sleep(100);
      }
      // One at a time: nc sends what one read of its stdin gives as one datagram.
      b.say('one');
      await waitFor(() => a.output() !== '', 'a line at a', 10_000);
      b.say('two');
      await waitFor(() => a.output().split('\n').length >= 3, 'two lines at a', 10_000);
      // Two lines in one write: nc sends them as one datagram, one message.
      b.say('three\nfour');
      await waitFor(() => a.output().split('\n').length >= 4, 'a third line at a', 10_000);
      expect(a.output()).toMatch(/^\S+Z 127\.0\.0\.1:\d+: one\n\S+Z 127\.0\.0\.1:\d+: two\n\S+Z 127\.0\.0\.1:\d+: three four\n$/);
      // (Each hello its own line, unless a busy nc read two at once: then one datagram, one line.)
      expect(b.output()).toMatch(/^(\S+Z 127\.0\.0\.1:\d+: (hello)+\n)+$/);
    } finally {
      a.child.kill();
      b.child.kill();
      chat.child.kill('SIGTERM');
      await within(chat.exited, 'the chat to exit');
    }
  });
});

describe.each(BACKENDS)('peers that go away, fast API (%s)', (backend) => {
  it.skipIf(SKIP_SOCAT)('replies queued in one batch to live peers and to socat peers already gone: every live one arrives, the socket goes on', async () => {
    const heard: RemoteInfo[] = [];
    const echo = bind(
      { host: '127.0.0.1', backend },
      {
        onMessage(msg, rinfo, sock) {
          heard.push(rinfo);
          sock.send(msg, rinfo.port, rinfo.address);
        },
      },
    );
    const port = echo.address()!.port;
    // Paused, so all of them are read in one batch once resumed.
    echo.pause();
    const live = await nodePeer();
    const gone = fileOf(`gone-${backend}`, Buffer.from('from a peer that left'));
    for (let i = 0; i < 5; i++) {
      // Each socat sends one datagram and exits, its port closed: the reply meets an ICMP port unreachable.
      await run('socat', ['-u', 'STDIN', `UDP4:127.0.0.1:${port}`], gone);
      await new Promise((r) => live.socket.send(`live ${i}`, port, '127.0.0.1', r));
    }
    await waitFor(() => kernelQueued(port) > 0, 'the datagrams to wait in the kernel');
    echo.resume();
    await waitFor(() => live.got.length === 5, 'the live peer’s five echoes');
    expect(live.got.map(String)).toEqual([0, 1, 2, 3, 4].map((i) => `live ${i}`));
    expect(heard).toHaveLength(10);
    // And the next exchange goes as before.
    live.socket.send('again', port, '127.0.0.1');
    await waitFor(() => live.got.length === 6, 'a later echo');
    live.socket.close();
    echo.close();
  });
});

/** Bytes waiting in `port`'s receive queue (Linux); elsewhere it cannot tell: as if some were. */
function kernelQueued(port: number): number {
  return process.platform === 'linux' ? kernelCounters(port).queued : 1;
}

describe.each(BACKENDS)('multicast on loopback, drop-in dgram (%s) and node:dgram', (backend) => {
  const impls: Record<string, [typeof nodeDgram, object]> = {
    'node:dgram': [nodeDgram, {}],
    muxnet: [muxDgram as unknown as typeof nodeDgram, { backend }],
  };
  const pairs = Object.keys(impls).flatMap((s) => Object.keys(impls).map((r) => [s, r]));

  it.each(pairs)('%s sends to a group %s joined on 127.0.0.1; after dropMembership nothing more comes', async (from, to) => {
    const [sendDgram, sendOpts] = impls[from];
    const [recvDgram, recvOpts] = impls[to];
    const group = `239.255.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
    const receiver = recvDgram.createSocket({ type: 'udp4', reuseAddr: true, ...recvOpts });
    const got: string[] = [];
    receiver.on('message', (m, rinfo) => got.push(`${m} from ${rinfo.address}`));
    await new Promise<void>((r) => receiver.bind(0, '0.0.0.0', () => r()));
    receiver.addMembership(group, '127.0.0.1');
    const sender = sendDgram.createSocket({ type: 'udp4', ...sendOpts });
    await new Promise<void>((r) => sender.bind(0, '127.0.0.1', () => r()));
    sender.setMulticastInterface('127.0.0.1');
    sender.setMulticastLoopback(true);
    sender.setMulticastTTL(1);
    const port = receiver.address().port;
    const send = (msg: string, to: string) => new Promise<void>((resolve, reject) => sender.send(msg, port, to, (err) => (err ? reject(err) : resolve())));
    await send('to the group', group);
    await waitFor(() => got.length === 1, 'the group datagram');
    receiver.dropMembership(group, '127.0.0.1');
    // Same sender, same receiver: the unicast one after it arrives after it, had it come.
    await send('to the group, left', group);
    await send('unicast', '127.0.0.1');
    await waitFor(() => got.length >= 2, 'the unicast datagram');
    expect(got).toEqual(['to the group from 127.0.0.1', 'unicast from 127.0.0.1']);
    sender.close();
    receiver.close();
  });

  // Linux: its local table has 127.255.255.255 as lo's broadcast address; macOS's lo0
  // has no broadcast, so there it is a plain loopback address (no EACCES, nobody hears it).
  it.runIf(process.platform === 'linux').each(Object.keys(impls))('%s broadcasts to 127.255.255.255 once setBroadcast(true); before, the send is refused with EACCES', async (from) => {
    const [sendDgram, sendOpts] = impls[from];
    const receiver = nodeDgram.createSocket('udp4');
    const got: string[] = [];
    receiver.on('message', (m) => got.push(String(m)));
    await new Promise<void>((r) => receiver.bind(0, '0.0.0.0', () => r()));
    const sender = sendDgram.createSocket({ type: 'udp4', ...sendOpts });
    await new Promise<void>((r) => sender.bind(0, '127.0.0.1', () => r()));
    const send = (msg: string) => new Promise<Error | null>((resolve) => sender.send(msg, receiver.address().port, '127.255.255.255', resolve));
    expect(await send('refused')).toMatchObject({ code: 'EACCES', syscall: 'send', address: '127.255.255.255' });
    sender.setBroadcast(true);
    expect(await send('broadcast')).toBe(null);
    await waitFor(() => got.length === 1, 'the broadcast datagram');
    expect(got).toEqual(['broadcast']);
    sender.close();
    receiver.close();
  });
});
