/**
 * `muxnet chat serve` and `muxnet chat connect`.
 */
import { parseArgs } from 'node:util';
import { numberArg, parseTarget, PORT, POSITIVE, secondsArg, UsageError } from '../../args';
import { reportStats, type BackendName } from '../../fast';
import { runClient } from './client';
import { ChatServer } from './server';
import { nodeTransport, nodeCorkedTransport, muxnetTransport, type ChatTransport } from './transport';
import { UdpChatServer } from './udp';

export { ChatServer, UdpChatServer, runClient, nodeTransport, nodeCorkedTransport, muxnetTransport };

/** `--net`: the network stack the chat server runs on. */
const TRANSPORTS: Record<string, ChatTransport> = { muxnet: muxnetTransport, node: nodeTransport, 'node-corked': nodeCorkedTransport };

export const CHAT_USAGE = `  chat serve   multi-room chat server (TCP line protocol; nc/telnet can join)
          --port N (7001; UDP 7002) --host ADDR (127.0.0.1) --backend NAME
          --framing line|length   --idle-timeout S (60)   --rate N (100 lines/s, burst 2N)
          --max-clients N (10000) --max-line BYTES (4096)  --net node (run on node:net)
          --quiet  no join/leave announcements (benchmarks of huge rooms)
          --stats S  every S seconds, a line of the reactor's counters (muxnet only)
          --udp  datagram chat with heartbeats   --interval S (10: UDP expiry)
  chat connect [host:port] --nick NAME [--udp] [--interval S]`;

export async function runChat(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      backend: { type: 'string' },
      framing: { type: 'string', default: 'line' },
      'idle-timeout': { type: 'string' },
      rate: { type: 'string' },
      'max-clients': { type: 'string' },
      'max-line': { type: 'string' },
      net: { type: 'string' },
      udp: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      interval: { type: 'string' },
      stats: { type: 'string' },
      nick: { type: 'string' },
    },
  });
  if (sub === 'serve') return serve(values);
  if (sub === 'connect') {
    const [host, port] = parseTarget(positionals[0], values.udp ? 7002 : 7001);
    return runClient({
      host,
      port,
      nick: values.nick,
      udp: values.udp,
      intervalMs: secondsArg('--interval', values.interval, 10),
      input: process.stdin,
      output: process.stdout,
      interactive: Boolean(process.stdin.isTTY),
    }).then(() => process.exit(0));
  }
  throw new UsageError(`unknown chat command: ${sub ?? '(none)'}; use chat serve or chat connect`);
}

type Values = Record<string, string | boolean | undefined>;

async function serve(values: Values): Promise<void> {
  const backend = values.backend as BackendName | undefined;
  const host = values.host as string;
  if (values.udp) {
    const port = numberArg('--port', values.port as string | undefined, 7002, PORT);
    const server = new UdpChatServer({ port, host, backend, intervalMs: secondsArg('--interval', values.interval as string | undefined, 10) }).start();
    onSignal(() => server.stop());
    console.log(`muxnet chat: UDP chat on ${host}:${server.port} (expiry ${server.intervalMs / 1000} s)`);
    return;
  }
  const transport = TRANSPORTS[(values.net as string | undefined) ?? 'muxnet'];
  if (!transport) throw new UsageError(`--net must be one of ${Object.keys(TRANSPORTS).join(', ')}, not ${values.net}`);
  const rate = numberArg('--rate', values.rate as string | undefined, 100, POSITIVE);
  const statsEvery = numberArg('--stats', values.stats as string | undefined, 0, POSITIVE);
  if (statsEvery > 0 && transport !== muxnetTransport) throw new UsageError('--stats reports the muxnet reactor: it needs --net muxnet');
  if (values.framing !== 'line' && values.framing !== 'length') throw new UsageError(`--framing must be line or length, not ${values.framing}`);
  const server = await new ChatServer({
    port: numberArg('--port', values.port as string | undefined, 7001, PORT),
    host,
    backend,
    transport,
    framing: values.framing,
    idleTimeoutMs: secondsArg('--idle-timeout', values['idle-timeout'] as string | undefined, 60),
    rate,
    burst: rate * 2,
    maxClients: numberArg('--max-clients', values['max-clients'] as string | undefined, 10_000, { integer: true, min: 1 }),
    maxLine: numberArg('--max-line', values['max-line'] as string | undefined, 4096, { integer: true, min: 1, max: 0xffffffff }),
    quiet: Boolean(values.quiet),
  }).start();
  const reporter = statsEvery > 0 ? reportStats('muxnet chat', backend, statsEvery) : undefined;
  onSignal(() => {
    clearInterval(reporter);
    server.stop();
  });
  console.log(`muxnet chat: listening on ${host}:${server.port} (${server.options.transport.name}, ${server.options.framing} framing)`);
}

function onSignal(stop: () => void): void {
  const handler = (signal: string) => {
    console.log(`muxnet chat: ${signal}, saying goodbye`);
    stop();
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
