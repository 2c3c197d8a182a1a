// Handing muxnet's sockets to another process as node:net's are handed
// (`subprocess.send(message, socket)`, typed as node:net's classes and
// taking muxnet's): an accepted connection, a listening
// server and a UDP socket go to the child in test/fixtures/handoff-child.js,
// which serves them with what node made of them; the bytes must reach the
// peer whole, the parent's copy must close (or stay, where node's does), and
// this process must hold no more socket fds than before.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fixtureJson, pattern, sleep, socketFds, waitFor } from '../helpers';
import * as muxnet from '../../src/net';
import * as muxdgram from '../../src/dgram';

const fixture = path.join(__dirname, '..', 'fixtures', 'handoff-child.js');

let child: ChildProcess | undefined;
afterEach(async () => {
  // Its channel's fd closes with it: gone before the next test counts fds.
  const closed = child && child.exitCode === null && child.signalCode === null ? once(child, 'close') : undefined;
  child?.kill();
  child = undefined;
  await closed;
});

async function startChild(): Promise<ChildProcess> {
  child = fork(fixture, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await once(child, 'spawn');
  return child;
}

/** A muxnet server listening on loopback. */
async function listening(backend: string, onConnection?: (s: muxnet.Socket) => void): Promise<muxnet.Server> {
  const server = muxnet.createServer({ backend } as muxnet.ServerOptions, onConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/** What the child said of the next `n` handles it got (messages can come in one turn: one listener takes them all). */
function replies(c: ChildProcess, n: number): Promise<{ got: string; kind: string }[]> {
  const got: { got: string; kind: string }[] = [];
  return new Promise((resolve) => {
    const take = (m: { got: string; kind: string }) => {
      got.push(m);
      if (got.length < n) return;
      c.off('message', take);
      resolve(got);
    };
    c.on('message', take);
  });
}

/** What the child said of the next handle it got. */
const reply = (c: ChildProcess) => replies(c, 1).then(([m]) => m);

const connections = (server: muxnet.Server) =>
  new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

/** Everything a client reads until `until` says it has enough. */
function readUntil(sock: net.Socket, until: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      text += d;
      if (until(text)) resolve(text);
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(text));
  });
}

describe.each(['mio', 'poll'] as const)('handing sockets to a child process (%s)', (backend) => {
  beforeAll(async () => {
    // The backend's reactor (and its waker's fds) made before any test counts fds.
    (await listening(backend)).close();
  });

  it('an accepted connection: the child serves it, the parent’s closes, its queued bytes still leave first', async () => {
    const c = await startChild();
    const before = socketFds();
    const big = pattern(7, 4 << 20).toString('latin1');
    let counted = -1;
    const server = await listening(backend, (s) => {
      // Written before the handover, more than the kernel takes at once: it must all arrive.
      s.write(Buffer.from(big, 'latin1'));
      c.send('socket', s);
      // Sent again while it still writes: node:net's socket has no handle left, the message goes alone.
      c.send('again', s);
      counted = (server as unknown as { _connections: number })._connections;
    });
    const parentClosed = new Promise<void>((resolve) => server.once('connection', (s: muxnet.Socket) => s.once('close', () => resolve())));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const received = readUntil(client, (t) => t.length >= big.length && t.includes('child says hi\n'));
    expect(await replies(c, 2)).toEqual([
      { got: 'socket', kind: 'Socket' },
      { got: 'again', kind: 'none' },
    ]);
    expect(counted).toBe(0);
    await parentClosed;
    const text = await received;
    expect(text.length).toBe(big.length + 'child says hi\n'.length);
    expect(text.replace('child says hi\n', '')).toBe(big);
    client.write('ping');
    expect(await readUntil(client, (t) => t.endsWith('child:ping'))).toBe('child:ping');
    // Counted where it is now, as node:net's server counts one it handed over.
    expect(await connections(server)).toBe(1);
    client.end();
    await once(client, 'close');
    server.close();
    await waitFor(() => socketFds() === before, 'the parent’s copies closed');
  });

  // Found by a hunt (2026-12-05): a socket nobody read had the reactor's full first turn taken
  // from the kernel (its 256 KiB budget), lost with the handover unseen (readableLength said 64 KiB).
  it('a connection handed over unread after a while: only what its readable buffer holds stays behind, as node:net', async () => {
    const c = await startChild();
    const sent = 1 << 20;
    let behind = -1;
    const server = await listening(backend, (s) =>
      setTimeout(() => {
        behind = s.readableLength;
        c.send('count', s);
      }, 100),
    );
    net.connect((server.address() as net.AddressInfo).port, '127.0.0.1').end(Buffer.alloc(sent, 1));
    const [{ bytes }] = (await replies(c, 1)) as unknown as { bytes: number }[];
    // node:net leaves its high-water mark's worth (64 KiB) in the parent's buffer.
    expect(behind).toBeLessThanOrEqual(64 << 10);
    expect(sent - bytes).toBe(behind);
    server.close();
  });

  // Found by a review (2026-12-07): handed over with bytes its reactor read ahead, the parent's
  // copy was closed by a reset, and SO_LINGER 0 is the socket's: the child's close reset the
  // connection too, its reply cut short (5 runs of 6; node:net's close ends its copy alone).
  it.each(['without keepOpen', "with keepOpen, destroyed in that 'data'"])("a connection handed over from its first 'data' of a 1 MB upload (%s): the child's 4 MiB reply and its end reach the peer whole", async (how) => {
    const keepOpen = how !== 'without keepOpen';
    const c = await startChild();
    const server = await listening(backend, (s) =>
      s.once('data', () => {
        c.send('reply', s, { keepOpen });
        if (keepOpen) s.destroy();
      }),
    );
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    client.end(Buffer.alloc(1_000_000, 1));
    const heard = await new Promise<string>((resolve) => {
      let bytes = 0;
      client.on('data', (d: Buffer) => (bytes += d.length));
      client.on('end', () => resolve(`${bytes} bytes, then the end`));
      client.on('error', (err: NodeJS.ErrnoException) => resolve(`${bytes} bytes, then ${err.code}`));
    });
    expect(heard).toBe(`${4 << 20} bytes, then the end`);
    client.destroy();
    server.close();
  });

  // Found by a hunt (2026-12-04): the parent's socket, still writing, sent a FIN from its idle
  // timer's end() or an end() after the handover, and sent a later write(); end(data) before the
  // handover dropped what was queued.
  it('a connection handed over while its end(data) is still going out: every queued byte leaves, and no FIN or later write from the parent', async () => {
    const c = await startChild();
    const big = pattern(11, 8 << 20).toString('latin1');
    const lateWrite: (string | undefined)[] = [];
    const server = await listening(backend, (s) => {
      s.setTimeout(50, () => s.end());
      s.write(Buffer.from(big, 'latin1'));
      s.end('tail');
      c.send('socket', s);
      s.write('late', (err) => lateWrite.push((err as NodeJS.ErrnoException | null)?.code));
    });
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    // A slow reader: the parent is still writing when its idle timer would fire.
    client.pause();
    await reply(c);
    await new Promise((resolve) => setTimeout(resolve, 300));
    client.resume();
    const want = big.length + 'tail'.length + 'child says hi\n'.length;
    const text = await readUntil(client, (t) => t.length >= want);
    expect(text.length).toBe(want);
    expect(text.replace('child says hi\n', '')).toBe(`${big}tail`);
    expect(lateWrite).toEqual(['ERR_SOCKET_CLOSED']);
    client.write('ping');
    expect(await readUntil(client, (t) => t.endsWith('child:ping'))).toBe('child:ping');
    expect(client.readableEnded).toBe(false);
    client.end();
    await once(client, 'close');
    server.close();
  });

  it('a connection handed over while still writing, then end(data) here: that data reaches no one, and no FIN', async () => {
    const c = await startChild();
    const big = pattern(12, 8 << 20).toString('latin1');
    const server = await listening(backend, (s) => {
      s.write(Buffer.from(big, 'latin1'));
      c.send('socket', s);
      s.end('not from here');
    });
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const want = big.length + 'child says hi\n'.length;
    const text = await readUntil(client, (t) => t.length >= want);
    expect(text.replace('child says hi\n', '')).toBe(big);
    client.write('ping');
    expect(await readUntil(client, (t) => t.endsWith('child:ping'))).toBe('child:ping');
    client.end();
    await once(client, 'close');
    server.close();
  });

  it('200 connections handed over as fast as they come (queued behind each acknowledgement): each peer talks to the child alone', async () => {
    const before = socketFds();
    const c = await startChild();
    const server = await listening(backend, (s) => c.send('socket', s));
    const { port } = server.address() as net.AddressInfo;
    const n = 200;
    const answers = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const client = net.connect(port, '127.0.0.1');
        const text = readUntil(client, (t) => t.endsWith(`#${i}.`));
        client.write(`#${i}.`);
        const got = await text;
        client.end();
        return got;
      }),
    );
    // Each peer hears the greeting and its own bytes back, nobody else's.
    answers.forEach((got, i) => expect(got.replace('child says hi\n', '')).toBe(`child:#${i}.`));
    c.send('drop');
    server.close();
    await once(server, 'close');
    c.kill();
    await once(c, 'close');
    await waitFor(() => socketFds() === before, 'every copy closed');
  });

  it('the server counts the connections a child holds, and closes once the child has closed them', async () => {
    const c = await startChild();
    const server = await listening(backend, (s) => c.send('socket', s));
    const { port } = server.address() as net.AddressInfo;
    const got = replies(c, 3);
    const clients = [0, 1, 2].map(() => net.connect(port, '127.0.0.1'));
    expect(await got).toEqual(Array(3).fill({ got: 'socket', kind: 'Socket' }));
    expect(await connections(server)).toBe(3);
    let closed = false;
    server.close(() => (closed = true));
    await sleep(200);
    expect(closed).toBe(false);
    c.send('drop');
    await waitFor(() => closed, 'the server closed after the child closed its connections');
    await Promise.all(clients.map((client) => once(client.resume(), 'close')));
  });

  it('a child killed while handles are on their way (one sent, one queued behind it): every copy is closed, the clients hear the end', async () => {
    const before = socketFds();
    const c = await startChild();
    const childClosed = once(c, 'close');
    const accepted: muxnet.Socket[] = [];
    const server = await listening(backend, (s) => {
      if (accepted.push(s) < 2) return;
      // The second handle waits for the child's acknowledgement of the first, which never comes.
      for (const socket of accepted) c.send('socket', socket, () => {});
      c.kill('SIGKILL');
    });
    const { port } = server.address() as net.AddressInfo;
    const clients = [0, 1].map(() => net.connect(port, '127.0.0.1').on('error', () => {}));
    await Promise.all(clients.map((client) => once(client.resume(), 'close')));
    await childClosed;
    server.close();
    await waitFor(() => socketFds() === before, 'every copy closed');
  });

  it('keepOpen: both processes keep the connection', async () => {
    const c = await startChild();
    const server = await listening(backend);
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const [accepted] = (await once(server, 'connection')) as [muxnet.Socket];
    const before = socketFds();
    const sent = new Promise<Error | null>((resolve) => c.send('socket', accepted, { keepOpen: true }, resolve));
    expect(await sent).toBeNull();
    await reply(c);
    await readUntil(client, (t) => t.includes('child says hi\n'));
    accepted.write('parent still here');
    expect(await readUntil(client, (t) => t.includes('parent still here'))).toContain('parent still here');
    // The copy made for the child is closed once it is sent.
    await waitFor(() => socketFds() === before, 'the copy for the child closed');
    expect(accepted.destroyed).toBe(false);
    accepted.destroy();
    client.destroy();
    server.close();
    await Promise.all([once(client, 'close'), once(server, 'close')]);
  });

  // Found by a hunt (2026-12-04): the reactor accepted ahead (up to 256 a turn), and a close in the
  // first 'connection' reset the rest, though the child could have taken them from the backlog.
  it('a listening server closed here from a connection of a full backlog: the child takes the others, none is reset', async () => {
    const c = await startChild();
    let parentServed = 0;
    const server = await listening(backend, (s) => {
      parentServed++;
      s.end('served by parent');
      server.close();
    });
    const { port } = server.address() as net.AddressInfo;
    c.send('server', server);
    expect(await reply(c)).toEqual({ got: 'server', kind: 'Server' });
    const clients = Array.from({ length: 40 }, () => net.connect(port, '127.0.0.1'));
    const answers = clients.map((client) => readUntil(client, () => false).catch((err: NodeJS.ErrnoException) => err.code));
    // The connects go out on the next tick: then this loop is held while they queue in the
    // backlog (the child takes from it meanwhile: the parent serves one or none).
    await new Promise((resolve) => process.nextTick(resolve));
    const until = Date.now() + 300;
    while (Date.now() < until);
    const got = await Promise.all(answers);
    expect(parentServed).toBeLessThanOrEqual(1);
    expect(got.filter((a) => a === 'served by parent').length).toBe(parentServed);
    expect(got.filter((a) => a === 'served by child').length).toBe(40 - parentServed);
    c.send('close');
    await reply(c);
  });

  it('a listening server: the child accepts from it after the parent closes its own', async () => {
    const c = await startChild();
    const before = socketFds();
    const server = await listening(backend);
    const { port } = server.address() as net.AddressInfo;
    c.send('server', server);
    expect(await reply(c)).toEqual({ got: 'server', kind: 'Server' });
    server.close();
    await once(server, 'close');
    const client = net.connect(port, '127.0.0.1');
    expect(await readUntil(client, (t) => t === 'served by child')).toBe('served by child');
    c.send('close');
    await reply(c);
    await waitFor(() => socketFds() === before, 'the server and its copy closed');
  });

  it('a UDP socket: the child receives on it too', async () => {
    const c = await startChild();
    const before = socketFds();
    const socket = muxdgram.createSocket({ type: 'udp4', backend } as never);
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    const { port } = socket.address();
    c.send('udp', socket);
    expect(await reply(c)).toEqual({ got: 'udp', kind: 'Socket' });
    socket.close();
    const peer = dgram.createSocket('udp4');
    const answer = once(peer, 'message');
    peer.send('ping', port, '127.0.0.1');
    expect(String((await answer)[0])).toBe('child:ping');
    peer.close();
    c.send('close');
    await reply(c);
    await waitFor(() => socketFds() === before, 'the socket and its copy closed');
  });

  it('a connection as a child’s stdout: the child writes to the peer, the parent keeps its socket', async () => {
    const before = socketFds();
    const server = await listening(backend);
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const [conn] = (await once(server, 'connection')) as [muxnet.Socket];
    const spawned = spawn(process.execPath, ['-e', "process.stdout.write('from the child stdout\\n')"], { stdio: ['ignore', conn, 'inherit'] });
    // The copy made for the child is closed at once: only the connection's own fd, the client's and the listener remain.
    expect(socketFds()).toBe(before + 3);
    expect(await readUntil(client, (t) => t.endsWith('\n'))).toBe('from the child stdout\n');
    await once(spawned, 'close');
    // Not read since the spawn, as node:net's: reading again, it hears the client's FIN and closes.
    conn.resume();
    conn.end('and from the parent');
    expect(await readUntil(client, (t) => t.endsWith('parent'))).toBe('and from the parent');
    server.close();
    await waitFor(() => socketFds() === before, 'every socket closed');
  });

  it('a connection as a child’s stdin: from the spawn on the parent reads nothing, as node:net’s, until resume(); the file libuv made blocking for the child blocks no write', async () => {
    const run = (...args: string[]) => fixtureJson('stdio-kept.js', args, { env: { MUXNET_BACKEND: backend } });
    const expected = await run('node:net');
    expect(expected).toMatchObject({ parentRead: 0, childExit: 0, readAfterResume: 5 });
    expect(await run('muxnet')).toEqual(expected);
    // node:net's write waits here for the peer of its own thread, for ever: its reference is the non-blocking socket's.
    expect(await run('muxnet', 'write')).toEqual({ ...expected, timerBeforePeerRead: true, peerGot: 8 << 20 });
  });

  it('a closed socket goes as node:net’s does: the message alone; anything else is refused as before', async () => {
    const c = await startChild();
    const server = await listening(backend);
    server.close();
    c.send('nothing', server);
    expect(await reply(c)).toEqual({ got: 'nothing', kind: 'none' });
    expect(() => c.send('x', {} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_HANDLE_TYPE' }));
    expect(() => c.send(undefined as never, server)).toThrow(expect.objectContaining({ code: 'ERR_MISSING_ARGS' }));
  });
});
