/**
 * `muxnet send FILE HOST:PORT` and `muxnet receive --port P --dir D`: move a
 * file over TCP and verify it (see `protocol.ts` for the wire format).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { negativesJoined, numberArg, parseTarget, PORT, resolveHost, secondsArg, UsageError, ZERO_OR_DURATION } from '../../args';
import type { BackendName } from '../../fast';
import { printable } from './protocol';
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

export async function runSend(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args: negativesJoined(argv), options: { timeout: { type: 'string' } }, allowPositionals: true, strict: true });
  if (positionals.length !== 2) throw new UsageError('send takes FILE HOST:PORT');
  const [file, where] = positionals;
  // No default port: 0 is what none given reads as.
  const [host, port] = parseTarget(where, 0, 'PORT');
  if (port === 0) throw new UsageError(`expected HOST:PORT, not '${where}'`);
  const timeoutMs = secondsArg('--timeout', values.timeout, 30);
  const r = await sendFileTo(file, await resolveHost(host), port, { answerTimeoutMs: timeoutMs, stallTimeoutMs: timeoutMs });
  const ok = r.reply === `OK ${r.sha256}`;
  // The answer is the receiver's to choose: printed escaped, as the file's name.
  console.log(printable(`muxnet send: ${r.name} (${r.size} bytes, sha256 ${r.sha256}): ${ok ? 'verified by the receiver' : r.reply}`));
  return ok ? 0 : 1;
}

/** A directory the receiver can create files in: made and removed again (root's `access()` says yes to a read-only one). */
async function checkDir(dir: string): Promise<void> {
  if (!(await fsp.stat(dir).catch(() => undefined))?.isDirectory()) throw new UsageError(`--dir ${dir} is not a directory`);
  try {
    await fsp.rmdir(await fsp.mkdtemp(path.join(dir, '.muxnet-probe-')));
  } catch (err) {
    throw new UsageError(`--dir ${dir} is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
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
  await checkDir(values.dir);
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
      void server.close({ timeout: drainMs }).then(() => {
        // Nothing is left to cut off: a caller that goes on gets the default action back.
        process.removeListener('SIGINT', now);
        process.removeListener('SIGTERM', now);
        resolve(code);
      });
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
        // The name is the sender's to choose (a line break split the log line): printed escaped.
        if (f.path) console.log(printable(`muxnet receive: ${f.name} (${f.size} bytes, sha256 ${f.sha256}) verified, stored as ${f.path}`));
        else console.log(printable(`muxnet receive: ${f.name} (${f.size} bytes) rejected: ${f.error}`));
        if (values.once) stop(f.path ? 0 : 1);
      },
    });
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    console.log(`muxnet receive: listening on tcp ${values.host}:${server.port}, storing in ${values.dir}`);
  });
}
