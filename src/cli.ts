#!/usr/bin/env node
/**
 * `muxnet <command>`: the apps users run.
 *   muxnet echo [--port 7000] [--host 127.0.0.1] [--udp] [--backend mio|poll|select] [--drain-timeout 5]
 *   muxnet chat serve|connect …
 *   muxnet proxy --listen HOST:PORT --upstream HOST:PORT[,weight=N] …
 *   muxnet send FILE HOST:PORT | muxnet receive --port P --dir D
 */
import { parseArgs } from 'node:util';
import { DURATION, joinHostPort, negativesJoined, numberArg, PORT, secondsArg, ZERO_OR_DURATION } from './args';
import { startEcho } from './apps/echo';
import { CHAT_USAGE, runChat } from './apps/chat';
import { PROXY_USAGE, runProxy } from './apps/proxy/cli';
import { runReceive, runSend, TRANSFER_USAGE } from './apps/transfer';
import { onStopSignal } from './apps/signals';
import { printStatsOnSignal, reportStats } from './stats';
import { BACKENDS, type BackendName } from './fast';

const ECHO_USAGE = `  echo    TCP (or UDP) echo server
          --port N        port to listen on (default 7000; 0 picks a free one)
          --host ADDR     IP address to bind (default 127.0.0.1; ::1 for IPv6)
          --udp           echo datagrams instead of TCP
          --backend NAME  ${BACKENDS.join(' | ')} (default: $MUXNET_BACKEND or mio)
          --stats S       every S seconds, a line of the reactor's counters
          --drain-timeout S  on SIGINT/SIGTERM, stop listening at once and give
                          open connections S seconds (default 5) before closing
                          them; a second signal stops at once`;

/** Each command's part of the usage: what `muxnet COMMAND --help` and its usage errors print. */
const COMMAND_USAGE = new Map([
  ['echo', ECHO_USAGE],
  ['chat', CHAT_USAGE],
  ['proxy', PROXY_USAGE],
  ['send', TRANSFER_USAGE],
  ['receive', TRANSFER_USAGE],
]);

const USAGE = `usage: muxnet <command> [options]

commands:
${ECHO_USAGE}
${CHAT_USAGE}
${PROXY_USAGE}
${TRANSFER_USAGE}

  muxnet --help | --version`;

/** The usage of `command` alone, if it is one; else all of it. */
function usage(command: string | undefined): string {
  const section = command === undefined ? undefined : COMMAND_USAGE.get(command);
  return section === undefined ? USAGE : `usage: muxnet ${command} [options]\n${section}\n\n  muxnet --help: every command`;
}

/** A command line that makes no sense: the message, the command's usage, exit 2. */
function fail(message: string, command?: string): never {
  console.error(`muxnet: ${message}\n\n${usage(command)}`);
  process.exit(2);
}

function echo(argv: string[]): void {
  let values;
  let port;
  let statsEvery = 0;
  let drainMs = 0;
  try {
    ({ values } = parseArgs({
      args: negativesJoined(argv),
      options: {
        port: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        udp: { type: 'boolean', default: false },
        backend: { type: 'string' },
        stats: { type: 'string' },
        'drain-timeout': { type: 'string' },
      },
      strict: true,
    }));
    port = numberArg('--port', values.port, 7000, PORT);
    statsEvery = numberArg('--stats', values.stats, 0, DURATION);
    drainMs = secondsArg('--drain-timeout', values['drain-timeout'], 5, ZERO_OR_DURATION);
  } catch (err) {
    fail((err as Error).message, 'echo');
  }
  let server;
  try {
    server = startEcho({ port, host: values.host, udp: values.udp, backend: values.backend as BackendName | undefined });
  } catch (err) {
    const e = err as Error & { code?: string };
    // A bad option (host, backend) exits 2 with the usage, as in the other commands; a failure to listen, 1.
    if (e.code?.startsWith('ERR_')) fail(e.message, 'echo');
    console.error(`muxnet echo: ${e.message}`);
    process.exit(1);
  }

  const { stats } = server;
  const summary = () =>
    server.protocol === 'tcp'
      ? `${stats.open} open, ${stats.accepted} accepted, ${stats.bytes} bytes echoed`
      : `${stats.datagrams} datagrams, ${stats.bytes} bytes received${stats.dropped > 0 ? `, ${stats.dropped} unanswered` : ''}`;
  // A line only when something changed (none for a server nobody used yet).
  let last = summary();
  const ticker = setInterval(() => {
    const now = summary();
    if (now !== last) console.log(`muxnet echo: ${now}`);
    last = now;
  }, 5000).unref();

  const reporter = statsEvery > 0 ? reportStats('muxnet echo', server.backend, statsEvery) : undefined;
  // The muxnet/server close: no new connections, the open ones get the
  // deadline. A second signal stops at once.
  onStopSignal((signal) => {
    clearInterval(ticker);
    clearInterval(reporter);
    const closed = server.close({ timeout: drainMs });
    // Said once the listener is closed: a client that reads it is refused.
    console.log(`muxnet echo: ${signal}, stopping: ${summary()}`);
    void closed.then(() => console.log(`muxnet echo: stopped: ${summary()}`));
  });
  printStatsOnSignal(server.backend);

  // Announced only once a signal can stop it cleanly.
  console.log(`muxnet echo: listening on ${server.protocol} ${joinHostPort(server.address, server.port)} (backend ${server.backend}, wake ${server.wakeMode})`);
}

function main(argv: string[]): void {
  const [command, ...rest] = argv;
  // `muxnet COMMAND --help` (or -h, anywhere before a `--`): that command's usage.
  const options = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (COMMAND_USAGE.has(command) && (options.includes('--help') || options.includes('-h'))) {
    console.log(usage(command));
    return;
  }
  switch (command) {
    case 'echo':
      return echo(rest);
    case 'chat':
    case 'proxy':
      // A command line that makes no sense exits 2 with the usage; a failure to serve (a name
      // that does not resolve, a port taken), 1.
      (command === 'chat' ? runChat(rest) : runProxy(rest)).catch((err: Error & { code?: string }) => {
        if (err.code?.startsWith('ERR_')) fail(err.message, command);
        console.error(`muxnet ${command}: ${err.message}`);
        process.exit(1);
      });
      return;
    case 'send':
    case 'receive':
      // A bad command line exits 2 with the usage; a failed or rejected transfer, 1.
      (command === 'send' ? runSend(rest) : runReceive(rest)).then(
        (code) => (process.exitCode = code),
        (err: Error & { code?: string }) => {
          if (err.code?.startsWith('ERR_')) fail(err.message, command);
          console.error(`muxnet ${command}: ${err.message}`);
          process.exit(1);
        },
      );
      return;
    case '--version':
    case '-v':
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      console.log(require('../package.json').version);
      return;
    case '--help':
    case '-h':
    case undefined:
      console.log(USAGE);
      return;
    default:
      fail(`unknown command: ${command}`);
  }
}

// The reader of our output went away (`muxnet chat connect | head -1`): nothing more can be said,
// so stop at once and quietly, with the status of a program SIGPIPE ends (Node ignores that
// signal, and the write's EPIPE was an uncaught stack trace).
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(128 + 13);
  throw err;
});

main(process.argv.slice(2));
