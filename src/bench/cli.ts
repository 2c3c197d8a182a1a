/**
 * `npm run bench [-- options]`: the same echo workloads against node:net,
 * muxnet (drop-in and fast API, each backend), the pure-Rust reference and
 * (UDP) a plain C server, side by side in one run. Options: `USAGE` below.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { negativesJoined, numberArg, POSITIVE } from '../args';
import { FULL, QUICK } from './cells';
import { markdown, plots } from './report';
import { killAll, loadgenBinary, pinning, runMatrix } from './runner';
import { cReferenceBinary, cReferenceSource, cReferenceStale, proxyReferenceBinary, referenceBinary, servers, type ServerSpec } from './servers';

const root = path.join(__dirname, '..', '..');

const USAGE = `usage: npm run bench [-- options]
  --quick               a small matrix, short cells (about two minutes)
  --servers a,b         server ids (default: all): node, net, mio, mio-thread, poll, select, rust,
                        c-plain (UDP: plain C recvfrom/sendto, built with cc -O2),
                        proxy-node, proxy-muxnet, proxy-muxnet-splice (splice on),
                        proxy-rust (pure Rust, no JavaScript), proxy-direct (the proxy cells),
                        file-node, file-muxnet (the file cell; see --list)
  --cells a,b           cell ids (default: the matrix); see bench/README or --list
  --duration S          measured seconds per cell and round (default 1.5; quick 1)
  --warmup S            warm-up seconds per cell and round (default 0.5; quick 0.3)
  --rounds N            run the matrix N times, report each cell's median round, with latency
                        and CPU cost the medians of the rounds' own (default 3; quick 1)
  --out DIR             where the results go (default bench/results)
  --list                print servers and cells, run nothing
  --help                print this, run nothing
environment: MUXNET_BENCH_CPUS=S,C pins the servers to CPU S and the load client to CPU C
                        (default: the first two CPUs this process may run on)`;

/** A command line that makes no sense: the message and the usage, exit 2. */
function fail(message: string): never {
  console.error(`bench: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function pick<T extends { id: string }>(all: T[], ids: string | undefined, what: string): T[] {
  if (!ids) return all;
  const wanted = ids.split(',');
  const unknown = wanted.filter((id) => !all.some((x) => x.id === id));
  if (unknown.length) fail(`unknown ${what}: ${unknown.join(', ')} (known: ${all.map((x) => x.id).join(', ')})`);
  return all.filter((x) => wanted.includes(x.id));
}

/** The native load client and the Rust reference servers, built if missing. */
function ensureBinaries(specs: ServerSpec[]): void {
  if (!existsSync(loadgenBinary)) execFileSync('cargo', ['build', '--release', '-p', 'muxnet-loadgen'], { cwd: root, stdio: 'inherit' });
  if (!existsSync(referenceBinary) || !existsSync(proxyReferenceBinary)) {
    execFileSync('cargo', ['build', '--release', '-p', 'muxnet-core', '--example', 'echo-reference', '--example', 'proxy-reference'], { cwd: root, stdio: 'inherit' });
  }
  if (specs.some((s) => s.id === 'c-plain' && !s.unavailable) && cReferenceStale()) {
    mkdirSync(path.dirname(cReferenceBinary), { recursive: true });
    execFileSync('cc', ['-O2', '-o', cReferenceBinary, cReferenceSource], { cwd: root, stdio: 'inherit' });
  }
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: negativesJoined(process.argv.slice(2)),
      options: {
        quick: { type: 'boolean', default: false },
        servers: { type: 'string' },
        cells: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        rounds: { type: 'string' },
        out: { type: 'string' },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    fail((e as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const allCells = values.quick ? QUICK : FULL;
  // Picked again once the Rust references are built: a spec says whether its binary exists when made.
  let specs = pick(servers(), values.servers, 'server');
  const cells = pick(values.cells ? [...FULL, ...QUICK.filter((q) => !FULL.some((f) => f.id === q.id))] : allCells, values.cells, 'cell');
  if (values.list) {
    console.log(`servers: ${servers().map((s) => `${s.id}${s.unavailable ? ' (unavailable)' : ''}`).join(', ')}`);
    console.log(`cells (full): ${FULL.map((c) => c.id).join(', ')}\ncells (quick): ${QUICK.map((c) => c.id).join(', ')}`);
    return;
  }
  let duration, warmup, rounds, pin;
  try {
    duration = numberArg('--duration', values.duration, values.quick ? 1 : 1.5, POSITIVE);
    warmup = numberArg('--warmup', values.warmup, values.quick ? 0.3 : 0.5);
    rounds = numberArg('--rounds', values.rounds, values.quick ? 1 : 3, { integer: true, min: 1 });
    pin = pinning();
  } catch (e) {
    fail((e as Error).message);
  }

  ensureBinaries(specs);
  specs = pick(servers(), values.servers, 'server');
  const env = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.availableParallelism(),
    platform: `${process.platform} ${os.release()}`,
    pinning: pin.note,
    duration,
    warmup,
    rounds,
  };
  const method = `${warmup} s warm-up + ${duration} s per cell${rounds > 1 ? `, median of ${rounds} rounds of the whole matrix` : ''}`;
  console.error(`bench: ${env.cpus} × ${env.cpu}, Node ${env.node}; ${pin.note}; ${method}`);

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}; stopping every started process\n`);
      void killAll().then(() => process.exit(128 + os.constants.signals[signal]));
    });
  }
  const results = await runMatrix(specs, cells, {
    host: '127.0.0.1',
    warmup,
    duration,
    rounds,
    onProgress: (line) => process.stderr.write(`\r\x1b[K${line}`),
  });
  process.stderr.write('\r\x1b[K');

  const table = markdown(results, cells);
  console.log(`## muxnet benchmark, ${env.date}\n\n${env.cpus} × ${env.cpu}; Node ${env.node}; ${env.pinning}; ${method}.\n`);
  console.log(table);

  const dir = path.resolve(values.out ?? path.join(root, 'bench', 'results'));
  mkdirSync(dir, { recursive: true });
  const stamp = env.date.replace(/[:.]/g, '-');
  const { throughput, idle } = plots(results, cells);
  writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify({ env, cells, results }, null, 2));
  writeFileSync(path.join(dir, `${stamp}.md`), table);
  if (throughput) writeFileSync(path.join(dir, `${stamp}-throughput.svg`), throughput);
  if (idle) writeFileSync(path.join(dir, `${stamp}-idle.svg`), idle);
  const shown = path.relative(process.cwd(), path.join(dir, stamp));
  console.error(`bench: results in ${shown.startsWith('..') ? path.join(dir, stamp) : shown}.{json,md}${throughput ? ' and *.svg' : ''}`);
}

main().catch(async (e) => {
  console.error(e);
  await killAll();
  process.exit(1);
});
