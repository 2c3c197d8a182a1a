// Real loopback upstreams for the proxy tests, each with a close().
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { waitFor } from '../helpers';

export interface TestUpstream {
  port: number;
  /** Connections it accepted. */
  accepted: () => number;
  close: () => Promise<void>;
}

export const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A node:net server; `close()` destroys its connections too. */
export async function nodeServer(onConnection: (sock: net.Socket) => void, port = 0): Promise<TestUpstream> {
  const socks = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    accepted++;
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    sock.on('error', () => {});
    onConnection(sock);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of socks) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** node:net echo (ends when the client ends). */
export const nodeEcho = (port = 0) => nodeServer((s) => s.pipe(s), port);

/** Accepts, then resets at once. */
export const resetter = () => nodeServer((s) => s.resetAndDestroy());

/** Accepts and never reads. */
export const neverReads = () => nodeServer((s) => s.pause());

/**
 * Reads until the client's FIN and then answers `reply` (after the FIN: a
 * half-close must pass through), ending with its own FIN; `received` holds
 * the hashes of what each connection got.
 */
export async function halfCloseServer(reply: Buffer): Promise<TestUpstream & { received: string[] }> {
  const received: string[] = [];
  const up = await nodeServer((s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => {
      received.push(sha(Buffer.concat(chunks)));
      s.end(reply);
    });
  });
  return { ...up, received };
}

/**
 * A listener that never accepts and whose accept queue is full, so a
 * connect to it neither succeeds nor fails: it times out. A child process
 * listens with a backlog of 1 (node:net takes 0 for its default) and sleeps; connections fill the queue.
 */
export async function blackhole(): Promise<TestUpstream> {
  const child = spawn(
    process.execPath,
    ['-e', "const s=require('net').createServer().listen({port:0,host:'127.0.0.1',backlog:1},()=>{console.log(s.address().port);Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0)})"],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await waitFor(() => /\n/.test(out), 'the blackhole to listen');
  const port = Number(out.trim());
  const fillers: net.Socket[] = [];
  // Fill the queue until a connect hangs.
  for (;;) {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => {});
    fillers.push(sock);
    const connected = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 300);
      sock.once('connect', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    if (!connected) break;
    if (fillers.length > 64) throw new Error('the blackhole keeps accepting');
  }
  return {
    port,
    accepted: () => 0,
    close: async () => {
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** Connects through the proxy, sends `payload`, ends, and collects all it gets until the close. */
export function exchange(port: number, payload: Buffer, ms = 15_000): Promise<{ data: Buffer; error?: Error }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let error: Error | undefined;
    const timer = setTimeout(() => sock.destroy(new Error(`exchange timed out after ${Buffer.concat(chunks).length} bytes`)), ms);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (err) => (error = err));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), error });
    });
    sock.end(payload);
  });
}

export { randomBytes };
