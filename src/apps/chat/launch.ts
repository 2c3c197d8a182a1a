/**
 * Starts `muxnet chat serve`: one server on this thread, or `--workers N`
 * servers, each a worker thread with its own reactor listening on the same
 * port (`SO_REUSEPORT`: the kernel spreads connections over them), linked
 * through Redis like servers on different machines.
 */
import { hostname } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { RedisLinkOptions } from './cluster';
import { ChatServer, type ChatServerOptions } from './server';
import { muxnetTransport, nodeCorkedTransport, nodeTransport, type ChatTransport } from './transport';

/** `--net`: the network stack the chat server runs on. */
export const TRANSPORTS: Record<string, ChatTransport> = { muxnet: muxnetTransport, node: nodeTransport, 'node-corked': nodeCorkedTransport };

/** A server's settings as plain data: a worker thread gets them as its `workerData`. */
export interface ChatConfig {
  server: Omit<ChatServerOptions, 'transport' | 'link'>;
  /** A key of `TRANSPORTS`. */
  net: string;
  redis?: Omit<RedisLinkOptions, 'backend'>;
  /** On stop, how long members get to read their goodbye before they are closed (ms). */
  drainMs?: number;
}

/** One server on this thread, in the cluster if `config.redis` says so. */
export async function startServer(config: ChatConfig): Promise<ChatServer> {
  const { server, net, redis } = config;
  // ioredis is loaded only for a cluster.
  const link = redis ? new (await import('./cluster')).RedisLink({ ...redis, backend: server.backend }) : undefined;
  const started = await new ChatServer({ ...server, transport: TRANSPORTS[net], link }).start();
  // (A link held by another server has said so.)
  if (redis && !link?.connected && !link?.idHeldElsewhere) console.warn(`muxnet chat: Redis at ${new URL(redis.url).host} unreachable: serving this server's members alone, reconnecting`);
  return started;
}

export interface Workers {
  port: number;
  /** Stops every worker's server (each leaves the cluster); resolves once all have exited. */
  stop(): Promise<void>;
}

/**
 * `count` servers on worker threads, one port: the first listens on
 * `config.server.port` (0: any), the others on the port it got. Each is
 * its own node of the cluster, `NODE-wI`.
 */
export async function startWorkers(config: ChatConfig, count: number): Promise<Workers> {
  const base = config.redis?.nodeId ?? `${hostname()}-${process.pid}`;
  const workers: Worker[] = [];
  const exited: Promise<void>[] = [];
  const spawn = (i: number, port: number) =>
    new Promise<number>((resolve, reject) => {
      const worker = new Worker(__filename, {
        workerData: {
          chatWorker: {
            ...config,
            server: { ...config.server, port, reusePort: true },
            redis: config.redis && { ...config.redis, nodeId: `${base}-w${i}` },
          } satisfies ChatConfig,
        },
      });
      workers.push(worker);
      exited.push(new Promise((r) => worker.once('exit', () => r())));
      worker.once('message', (msg: { port?: number; error?: string }) => (msg.error ? reject(new Error(msg.error)) : resolve(msg.port ?? 0)));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`chat worker ${i} exited (${code}) before listening`)));
    });
  const stop = async () => {
    for (const w of workers) w.postMessage('stop');
    await Promise.all(exited);
  };
  try {
    const port = await spawn(1, config.server.port ?? 7001);
    for (let i = 2; i <= count; i++) await spawn(i, port);
    return { port, stop };
  } catch (err) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw err;
  }
}

// A worker thread: serve until told to stop, then leave the cluster and exit.
const job = isMainThread ? undefined : (workerData as { chatWorker?: ChatConfig } | undefined)?.chatWorker;
if (job && parentPort) {
  const port = parentPort;
  startServer(job).then(
    (server) => {
      port.on('message', (msg) => {
        if (msg === 'stop') void server.stop({ timeout: job.drainMs }).then(() => process.exit(0));
      });
      port.postMessage({ port: server.port });
    },
    (err: Error) => port.postMessage({ error: err.message }),
  );
}
