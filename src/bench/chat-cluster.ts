/**
 * The cross-server chat the benchmark measures: a `redis-server` (a child
 * process, pinned beside the load client as the proxy cells' echo server
 * is) and two chat servers linked through it, in this one process as
 * `--workers 2` (two reactors on one port: the kernel spreads the members
 * over them, and the load client's CPU figure covers both):
 *   node chat-cluster.js <host>
 * Prints `listening on HOST:PORT (…, redis pid N)` once ready; Redis stops with it.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { startWorkers } from '../apps/chat/launch';
import { pinning } from './runner';

const host = process.argv[2] ?? '127.0.0.1';

async function freePort(): Promise<number> {
  const probe = net.createServer().listen(0, host);
  await new Promise((resolve) => probe.once('listening', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function main(): Promise<void> {
  const redisPort = await freePort();
  const argv = [...pinning().client, 'redis-server', '--port', String(redisPort), '--bind', host, '--save', '', '--appendonly', 'no'];
  const redis = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  process.on('exit', () => redis.kill('SIGKILL'));
  let out = '';
  await new Promise<void>((resolve, reject) => {
    redis.stdout!.on('data', function onData(d: Buffer) {
      out += d;
      if (!out.includes('Ready to accept connections')) return;
      redis.stdout!.off('data', onData);
      redis.stdout!.resume();
      resolve();
    });
    redis.once('error', reject);
    redis.once('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${out}`)));
  });
  // The same settings as the single chat server of the chat cells.
  const pool = await startWorkers(
    {
      net: 'muxnet',
      server: { port: 0, host, rate: 1e9, burst: 2e9, maxClients: 20_000, quiet: true },
      redis: { url: `redis://${host}:${redisPort}`, nodeId: 'bench' },
    },
    2,
  );
  process.on('SIGTERM', () => void pool.stop().then(() => process.exit(0)));
  console.log(`muxnet chat cluster: listening on ${host}:${pool.port} (2 servers, redis pid ${redis.pid})`);
}

main().catch((err: Error) => {
  console.error(`chat-cluster: ${err.message}`);
  process.exit(1);
});
