/**
 * `muxnet chat serve` and `muxnet chat connect`.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { DURATION, joinHostPort, negativesJoined, numberArg, parseTarget, PORT, POSITIVE, resolveHost, secondsArg, UsageError, ZERO_OR_DURATION } from '../../args';
import { reportStats, type BackendName } from '../../fast';
import { runClient } from './client';
import { startServer, startWorkers, TRANSPORTS, type ChatConfig } from './launch';
import { ChatServer } from './server';
import { nodeTransport, nodeCorkedTransport, muxnetTransport } from './transport';
import { UdpChatServer } from './udp';
import { onStopSignal } from '../signals';

export { ChatServer, UdpChatServer, runClient, nodeTransport, nodeCorkedTransport, muxnetTransport };

export const CHAT_USAGE = `  chat serve   multi-room chat server (TCP line protocol; nc/telnet can join)
          --port N (7001; UDP 7002) --host ADDR (127.0.0.1) --backend NAME
          --framing line|length   --idle-timeout S (60)   --rate N (100 lines/s, burst 2N)
          --max-clients N (10000) --max-line BYTES (4096)
          --slow-cap BYTES (1048576)  output queued for a member past which it is cut off (TCP)
          --net muxnet|node|node-corked  the stack it runs on (muxnet; node: node:net)
          --quiet  no join/leave announcements (benchmarks of huge rooms)
          --stats S  every S seconds, a line of the reactor's counters (muxnet only)
          --udp  datagram chat with heartbeats   --interval S (10: UDP expiry)
                 (--max-clients: members; --rate: messages/s a member's relayed, past them dropped)
                 (--max-line: at most 65000; a longer datagram is dropped)
          --redis redis://HOST:PORT  rooms, nicks and /who across servers sharing this Redis
          --node-id NAME (hostname-pid)  --lease S (10: nick and presence lease)
          --workers N|auto  N servers on worker threads, one port (needs --redis)
          --drain-timeout S (5)  on SIGINT/SIGTERM, how long members get to read
                   the goodbye before their connections are closed
  chat connect [host:port] [--nick NAME] [--rate N (100 lines/s at most)]
               (TCP; exits 1 if lines were not sent, or the server did not confirm the end)
  chat connect [host:port] --udp [--interval S]   (no nicks: members are named by address:port;
               exits 1 if the kernel said nothing listens there)`;

export async function runChat(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values, positionals, tokens } = parseArgs({
    args: negativesJoined(rest),
    allowPositionals: true,
    tokens: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      backend: { type: 'string' },
      framing: { type: 'string', default: 'line' },
      'idle-timeout': { type: 'string' },
      rate: { type: 'string' },
      'max-clients': { type: 'string' },
      'max-line': { type: 'string' },
      'slow-cap': { type: 'string' },
      net: { type: 'string' },
      udp: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      interval: { type: 'string' },
      stats: { type: 'string' },
      nick: { type: 'string' },
      redis: { type: 'string' },
      'node-id': { type: 'string' },
      lease: { type: 'string' },
      workers: { type: 'string' },
      'drain-timeout': { type: 'string' },
    },
  });
  // One parser for both: an option of the other command is an error, not silently ignored.
  const given = tokens.flatMap((t) => (t.kind === 'option' ? [t.name] : []));
  if (sub === 'serve') {
    if (positionals.length > 0) throw new UsageError(`chat serve takes no address (use --port and --host), not '${positionals[0]}'`);
    if (given.includes('nick')) throw new UsageError('--nick is for chat connect');
    return serve(values);
  }
  if (sub === 'connect') {
    const wrong = given.find((name) => !CONNECT_OPTIONS.has(name));
    if (wrong !== undefined) throw new UsageError(`--${wrong} is for chat serve; chat connect takes HOST:PORT, --nick, --rate, --udp and --interval`);
    if (positionals.length > 1) throw new UsageError(`chat connect takes one HOST:PORT, not '${positionals.join(' ')}'`);
    const [host, port] = parseTarget(positionals[0], values.udp ? 7002 : 7001);
    if (values.udp && values.nick !== undefined) throw new UsageError('--nick: the UDP chat has no nicks (members are named by address:port)');
    // Each is one kind's: given to the other, it would be ignored without a word.
    if (values.udp && values.rate !== undefined) throw new UsageError('--rate: the UDP chat is not paced (it is for TCP)');
    if (!values.udp && values.interval !== undefined) throw new UsageError('--interval: the heartbeat period of the UDP chat (--udp); a TCP connection has none of its own');
    // A name that does not resolve ends it at once; over TCP the name itself goes to
    // muxnet/client, which looks it up again at each reconnect and tries each address.
    const address = await resolveHost(host);
    return runClient({
      host: values.udp ? address : host,
      port,
      nick: values.nick,
      udp: values.udp,
      intervalMs: secondsArg('--interval', values.interval, 10),
      rate: numberArg('--rate', values.rate, 100, POSITIVE),
      input: process.stdin,
      output: process.stdout,
      interactive: Boolean(process.stdin.isTTY),
      // Exits once stdout has taken what was printed: a pipe read slowly held most of it still.
    }).then((code) => void process.stdout.write('', () => process.exit(code)));
  }
  throw new UsageError(`unknown chat command: ${sub ?? '(none)'}; use chat serve or chat connect`);
}

/** The options `chat connect` takes; every other one is `chat serve`'s. */
const CONNECT_OPTIONS = new Set(['nick', 'rate', 'udp', 'interval']);

type Values = Record<string, string | boolean | undefined>;

async function serve(values: Values): Promise<void> {
  const backend = values.backend as BackendName | undefined;
  const host = values.host as string;
  if (values.udp) {
    if (values['slow-cap'] !== undefined) throw new UsageError('--slow-cap: a UDP member has no queue to cap (it is for TCP)');
    const port = numberArg('--port', values.port as string | undefined, 7002, PORT);
    const intervalMs = secondsArg('--interval', values.interval as string | undefined, 10);
    const maxMessage = numberArg('--max-line', values['max-line'] as string | undefined, 4096, { integer: true, min: 1, max: 65_000 });
    const maxMembers = numberArg('--max-clients', values['max-clients'] as string | undefined, 10_000, { integer: true, min: 1 });
    const rate = numberArg('--rate', values.rate as string | undefined, 100, POSITIVE);
    const server = new UdpChatServer({ port, host, backend, intervalMs, maxMessage, maxMembers, rate }).start();
    onSignal(() => server.stop());
    console.log(`muxnet chat: UDP chat on ${joinHostPort(host, server.port)} (expiry ${server.intervalMs / 1000} s, at most ${maxMembers} members, ${rate} messages/s each)`);
    return;
  }
  const net = (values.net as string | undefined) ?? 'muxnet';
  const transport = TRANSPORTS[net];
  if (!transport) throw new UsageError(`--net must be one of ${Object.keys(TRANSPORTS).join(', ')}, not ${values.net}`);
  const rate = numberArg('--rate', values.rate as string | undefined, 100, POSITIVE);
  const statsEvery = numberArg('--stats', values.stats as string | undefined, 0, DURATION);
  if (statsEvery > 0 && transport !== muxnetTransport) throw new UsageError('--stats reports the muxnet reactor: it needs --net muxnet');
  if (values.framing !== 'line' && values.framing !== 'length') throw new UsageError(`--framing must be line or length, not ${values.framing}`);
  const redis = clusterArgs(values);
  const workers = values.workers === 'auto' ? availableParallelism() : numberArg('--workers', values.workers as string | undefined, 1, { integer: true, min: 1 });
  if (values.workers !== undefined && !redis) throw new UsageError('--workers links its servers through Redis: it needs --redis URL');
  if (values.workers !== undefined && transport !== muxnetTransport) throw new UsageError('--workers shares one port between reactors: it needs --net muxnet');
  if (values.workers !== undefined && statsEvery > 0) throw new UsageError('--stats reports one reactor: it cannot be used with --workers');
  const config: ChatConfig = {
    net,
    redis,
    drainMs: secondsArg('--drain-timeout', values['drain-timeout'] as string | undefined, 5, ZERO_OR_DURATION),
    server: {
      port: numberArg('--port', values.port as string | undefined, 7001, PORT),
      host,
      backend,
      framing: values.framing,
      idleTimeoutMs: secondsArg('--idle-timeout', values['idle-timeout'] as string | undefined, 60),
      rate,
      maxClients: numberArg('--max-clients', values['max-clients'] as string | undefined, 10_000, { integer: true, min: 1 }),
      maxLine: numberArg('--max-line', values['max-line'] as string | undefined, 4096, { integer: true, min: 1, max: 0xffffffff }),
      slowCap: numberArg('--slow-cap', values['slow-cap'] as string | undefined, 1 << 20, { integer: true, min: 1 }),
      quiet: Boolean(values.quiet),
    },
  };
  // The URL may carry a password: only its host is printed.
  const linked = redis ? `, Redis ${new URL(redis.url).host}` : '';
  if (values.workers !== undefined) {
    const pool = await startWorkers(config, workers);
    onSignal(() => void pool.stop());
    console.log(`muxnet chat: listening on ${joinHostPort(host, pool.port)} (${transport.name}, ${values.framing} framing${linked}, ${workers} workers)`);
    return;
  }
  const server = await startServer(config);
  const reporter = statsEvery > 0 ? reportStats('muxnet chat', backend, statsEvery) : undefined;
  onSignal(() => {
    clearInterval(reporter);
    void server.stop({ timeout: config.drainMs });
  });
  console.log(`muxnet chat: listening on ${joinHostPort(host, server.port)} (${server.options.transport.name}, ${server.options.framing} framing${linked})`);
}

/** `--redis`, `--node-id`, `--lease`: the cluster, if any. */
function clusterArgs(values: Values): ChatConfig['redis'] {
  const url = values.redis as string | undefined;
  if (url === undefined) {
    for (const option of ['node-id', 'lease'] as const) if (values[option] !== undefined) throw new UsageError(`--${option} names this server in a cluster: it needs --redis URL`);
    return undefined;
  }
  if (!/^rediss?:\/\/./.test(url)) throw new UsageError(`--redis must be a redis:// or rediss:// URL, not '${url}'`);
  const nodeId = values['node-id'] as string | undefined;
  if (nodeId !== undefined && !/^[\w.-]{1,64}$/.test(nodeId)) throw new UsageError(`--node-id must be 1-64 letters, digits, '.', '-' or '_', not '${nodeId}'`);
  return { url, nodeId, leaseMs: secondsArg('--lease', values.lease as string | undefined, 10) };
}

/** The goodbye on the first SIGINT/SIGTERM; a second stops at once. */
function onSignal(stop: () => void): void {
  onStopSignal((signal) => {
    console.log(`muxnet chat: ${signal}, saying goodbye`);
    stop();
  });
}
