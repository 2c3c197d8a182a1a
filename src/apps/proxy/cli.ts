/**
 * `muxnet proxy`: the load-balancing proxy from the command line.
 */
import { parseArgs } from 'node:util';
import { joinHostPort, negativesJoined, numberArg, parseTarget, resolveHost, secondsArg, UsageError, ZERO_OR_DURATION } from '../../args';
import type { BackendName } from '../../fast';
import { createProxy, formatStats, MAX_WEIGHT, STRATEGIES, type Strategy, type UpstreamSpec } from '.';
import { onStopSignal } from '../signals';

export const PROXY_USAGE = `  proxy   load-balancing TCP proxy (pairs relayed in Rust with pipe())
          --listen HOST:PORT        where to listen (default 127.0.0.1:8000; port 0 picks one)
          --upstream HOST:PORT[,weight=N]   an upstream (repeat; at least one)
          --strategy NAME           ${STRATEGIES.join(' | ')} (default round-robin)
          --connect-timeout S (2)   --health-interval S (2)   --health-timeout S (0.5)
          --max-failures N (2)      failures in a row that eject an upstream
          --max-connections N       clients beyond this many are closed at once
          --drain-timeout S (10)    on SIGINT/SIGTERM, how long live pairs may finish
          --splice                  relay bulk input with splice(2) (Linux; costs the peers more, see README)
          --backend NAME`;

/** `HOST:PORT[,weight=N]` from the command line. */
function upstreamArg(text: string): UpstreamSpec {
  const [target, ...params] = text.split(',');
  let weight: number | undefined;
  for (const param of params) {
    const m = /^weight=(.*)$/.exec(param);
    if (!m) throw new UsageError(`--upstream ${text}: unknown parameter '${param}' (only weight=N)`);
    weight = numberArg('weight', m[1], 1, { integer: true, min: 1, max: MAX_WEIGHT });
  }
  if (!target.includes(':')) throw new UsageError(`--upstream must be HOST:PORT[,weight=N], not '${text}'`);
  const [host, port] = parseTarget(target, 0, '--upstream port');
  return { host, port, weight };
}

/**
 * Runs the proxy until SIGINT/SIGTERM, then drains it. Rejects with a
 * `UsageError` for a bad command line, with the resolver's error for a
 * host name that does not resolve.
 */
export async function runProxy(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: negativesJoined(argv),
    options: {
      listen: { type: 'string' },
      upstream: { type: 'string', multiple: true },
      strategy: { type: 'string' },
      'connect-timeout': { type: 'string' },
      'health-interval': { type: 'string' },
      'health-timeout': { type: 'string' },
      'max-failures': { type: 'string' },
      'max-connections': { type: 'string' },
      'drain-timeout': { type: 'string' },
      splice: { type: 'boolean' },
      backend: { type: 'string' },
    },
    strict: true,
  });
  const [host, port] = parseTarget(values.listen, 8000, '--listen port', 0);
  const upstreams = (values.upstream ?? []).map(upstreamArg);
  if (upstreams.length === 0) throw new UsageError('give at least one --upstream HOST:PORT');
  const strategy = (values.strategy ?? 'round-robin') as Strategy;
  if (!STRATEGIES.includes(strategy)) throw new UsageError(`--strategy must be one of ${STRATEGIES.join(', ')}, not ${values.strategy}`);
  const maxConnections = values['max-connections'];
  const options = {
    host,
    port,
    upstreams,
    strategy,
    backend: values.backend as BackendName | undefined,
    connectTimeoutMs: secondsArg('--connect-timeout', values['connect-timeout'], 2),
    healthIntervalMs: secondsArg('--health-interval', values['health-interval'], 2),
    healthTimeoutMs: secondsArg('--health-timeout', values['health-timeout'], 0.5),
    maxFailures: numberArg('--max-failures', values['max-failures'], 2, { integer: true, min: 1 }),
    maxConnections: maxConnections === undefined ? undefined : numberArg('--max-connections', maxConnections, 0, { integer: true, min: 1, max: 2_147_483_647 }),
    splice: values.splice,
  };
  const drainMs = secondsArg('--drain-timeout', values['drain-timeout'], 10, ZERO_OR_DURATION);
  // Host names looked up once, at start, after every option is checked (as HAProxy does by default).
  options.host = await resolveHost(host);
  for (const upstream of upstreams) upstream.host = await resolveHost(upstream.host!);
  const proxy = createProxy(options);

  proxy.on('upstream-down', (u, err: Error) => console.log(`muxnet proxy: upstream ${u.address} down (${err.message})`));
  proxy.on('upstream-up', (u) => console.log(`muxnet proxy: upstream ${u.address} up`));
  proxy.on('unavailable', (client: string) => console.log(`muxnet proxy: no upstream for ${client}`));
  proxy.on('error', (err: Error) => console.error(`muxnet proxy: ${err.message}`));

  let last = formatStats(proxy.stats());
  const ticker = setInterval(() => {
    const now = formatStats(proxy.stats());
    if (now !== last) console.log(`muxnet proxy: ${now}`);
    last = now;
  }, 5000).unref();

  // A second signal stops at once.
  onStopSignal((signal) => {
    clearInterval(ticker);
    console.log(`muxnet proxy: ${signal}, draining ${proxy.stats().live} pairs (up to ${drainMs / 1000} s)`);
    void proxy.close({ timeout: drainMs }).then((stats) => console.log(`muxnet proxy: stopped: ${formatStats(stats)}`));
  });

  const { address, port: bound } = proxy.address()!;
  const splicing = values.splice ? ', bulk spliced' : '';
  console.log(`muxnet proxy: listening on tcp ${joinHostPort(address, bound)} (${strategy}, ${upstreams.length} upstream${upstreams.length === 1 ? '' : 's'}, backend ${proxy.backend}${splicing})`);
}
