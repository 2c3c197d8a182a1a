/**
 * `muxnet send FILE HOST:PORT` and `muxnet receive --port P --dir D`: move a
 * file over TCP and verify it (see `protocol.ts` for the wire format).
 */
import { promises as fsp } from 'node:fs';
import { parseArgs } from 'node:util';
import { negativesJoined, numberArg, PORT, secondsArg, UsageError, ZERO_OR_DURATION } from '../../args';
import type { BackendName } from '../../fast';
import { startReceiver } from './receive';
import { sendFileTo } from './send';

export { startReceiver, type Received, type ReceiverOptions } from './receive';
export { sendFileTo, type SendResult } from './send';

export const TRANSFER_USAGE = `  send    FILE HOST:PORT [--timeout S]
          send a file to \`muxnet receive\`; exits 0 once the receiver verified it,
          1 if it refused it or gave no answer within S seconds (default 30) of the last byte
  receive receive files from \`muxnet send\`, verified by SHA-256
          --port N        port to listen on (default 7100; 0 picks a free one)
          --host ADDR     IP address to bind (default 127.0.0.1)
          --dir D         where to store the files (default .)
          --once          exit after one file (0 if it verified, 1 if not)
          --idle-timeout S  a sender silent this long is refused, and one that
                          keeps its side open this long after the answer is
                          closed (default 30)
          --drain-timeout S  on SIGINT/SIGTERM, stop listening at once and give
                          transfers under way S seconds (default 10); a
                          second signal stops at once
          --backend NAME  reactor backend`;

/** `HOST:PORT`, `[v6]:PORT`. */
function parseTarget(text: string | undefined): { host: string; port: number } {
  const m = text === undefined ? null : /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  if (!m) throw new UsageError(`expected HOST:PORT, not '${text ?? ''}'`);
  return { host: m[1] ?? m[2], port: numberArg('PORT', m[3], 0, { integer: true, min: 1, max: 65535 }) };
}

export async function runSend(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args: negativesJoined(argv), options: { timeout: { type: 'string' } }, allowPositionals: true, strict: true });
  if (positionals.length !== 2) throw new UsageError('send takes FILE HOST:PORT');
  const [file, where] = positionals;
  const { host, port } = parseTarget(where);
  const timeoutMs = secondsArg('--timeout', values.timeout, 30);
  const r = await sendFileTo(file, host, port, { answerTimeoutMs: timeoutMs, stallTimeoutMs: timeoutMs });
  const ok = r.reply === `OK ${r.sha256}`;
  console.log(`muxnet send: ${r.name} (${r.size} bytes, sha256 ${r.sha256}): ${ok ? 'verified by the receiver' : r.reply}`);
  return ok ? 0 : 1;
}

/** Serves until SIGINT/SIGTERM (or one file with `--once`); resolves with the exit code. */
export async function runReceive(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: negativesJoined(argv),
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      dir: { type: 'string', default: '.' },
      once: { type: 'boolean', default: false },
      'idle-timeout': { type: 'string' },
      'drain-timeout': { type: 'string' },
      backend: { type: 'string' },
    },
    strict: true,
  });
  const port = numberArg('--port', values.port, 7100, PORT);
  const drainMs = secondsArg('--drain-timeout', values['drain-timeout'], 10, ZERO_OR_DURATION);
  const idleTimeoutMs = secondsArg('--idle-timeout', values['idle-timeout'], 30);
  if (!(await fsp.stat(values.dir).catch(() => undefined))?.isDirectory()) throw new UsageError(`--dir ${values.dir} is not a directory`);
  return new Promise((resolve) => {
    // The muxnet/server close; a second signal cuts the transfers under way off at once (their part files removed).
    // Listeners stay on both signals from here to the end: with none for a moment, Node gives
    // the signal its default action back, and a second one then killed the process with its
    // part files left (two SIGTERMs 250 µs apart: 6 of 15 runs).
    let stopping = false;
    const stop = (code: number) => {
      if (stopping) return;
      stopping = true;
      process.on('SIGINT', now);
      process.on('SIGTERM', now);
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      void server.close({ timeout: drainMs }).then(() => resolve(code));
    };
    const now = (signal: string) => {
      console.log(`muxnet receive: ${signal} again, stopping now`);
      void server.close({ timeout: 0 });
    };
    const onSignal = (signal: string) => {
      stop(0);
      console.log(`muxnet receive: ${signal}, stopping (transfers under way get up to ${drainMs / 1000} s)`);
    };
    const server = startReceiver({
      port,
      host: values.host,
      dir: values.dir,
      backend: values.backend as BackendName | undefined,
      idleTimeoutMs,
      onFile(f) {
        if (f.path) console.log(`muxnet receive: ${f.name} (${f.size} bytes, sha256 ${f.sha256}) verified, stored as ${f.path}`);
        else console.log(`muxnet receive: ${f.name} (${f.size} bytes) rejected: ${f.error}`);
        if (values.once) stop(f.path ? 0 : 1);
      },
    });
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    console.log(`muxnet receive: listening on tcp ${values.host}:${server.port}, storing in ${values.dir}`);
  });
}
