// Real database servers for the library tests: each started on a free
// loopback port in its own temp dir, stopped and removed by `stop()`.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, chownSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export interface Daemon {
  port: number;
  /** Stops it with its kind's signal, or `signal` (SIGKILL: a crash), and removes its dir. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** A program the tests run: its name, and where it is (undefined when it is not installed). */
export interface Program {
  name: string;
  /** Where its binaries are, or undefined when it is not installed. */
  binDir: string | undefined;
}

interface DaemonKind extends Program {
  /** Starts one on `port` (default: a free one), e.g. again where one was stopped; `extraArgs` go last. */
  start(port?: number, extraArgs?: string[]): Promise<Daemon>;
}

/** `promise`, or a failure naming `what` after `ms`. */
export function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const isExecutable = (path: string) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The first of `dirs` holding an executable `bin`. */
const findDir = (bin: string, dirs: string[]) => dirs.find((dir) => isExecutable(join(dir, bin)));

const PATH_DIRS = (process.env.PATH ?? '').split(':').filter(Boolean);

/** `name` from `dirs` (default: $PATH), e.g. a client program that ships beside a server. */
export const program = (name: string, dirs = PATH_DIRS): Program => ({ name, binDir: findDir(name, dirs) });

/**
 * Whether the cases that need `kind` are skipped: only outside CI, and then
 * saying so. Under CI (`$CI` set) a missing server makes them fail: .ci/run
 * installs it.
 */
export function skipWithout(kind: Program): boolean {
  if (kind.binDir !== undefined || process.env.CI) return false;
  console.warn(`${kind.name} is not installed: skipping the cases that need it (.ci/install-test-programs installs it)`);
  return true;
}

/** Starts `kind` before the suite's cases, stops it after them; gives its port. */
export function runDuring(kind: DaemonKind, extraArgs?: string[]): () => number {
  let daemon: Daemon | undefined;
  beforeAll(async () => {
    daemon = await kind.start(undefined, extraArgs);
  });
  afterAll(() => daemon?.stop());
  return () => {
    if (daemon === undefined) throw new Error(`${kind.name} is not running`);
    return daemon.port;
  };
}

async function freePort(): Promise<number> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await within(once(probe, 'listening'), 'a free port');
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * Spawns `bin` with `args(dir, port)` and resolves once its output says
 * `ready`; `stop` sends `signal`, waits for the exit (SIGKILL after 10 s) and
 * removes the dir. `user` runs it as that uid/gid (the dir is theirs).
 */
async function startDaemon(opts: {
  kind: DaemonKind;
  bin: string;
  args: (dir: string, port: number) => string[];
  ready: string;
  signal: NodeJS.Signals;
  user?: { uid: number; gid: number };
  prepare?: (dir: string) => void;
  port?: number;
  extraArgs?: string[];
}): Promise<Daemon> {
  const { kind, user } = opts;
  if (kind.binDir === undefined) throw new Error(`${kind.name} is not installed: .ci/install-test-programs installs it`);
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), `muxnet-${kind.name}-`));
  if (user) chownSync(dir, user.uid, user.gid);
  let child: ReturnType<typeof spawn> | undefined;
  const stop = async (signal = opts.signal) => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill(signal);
      await within(exited, `${kind.name} to exit`).catch(() => child?.kill('SIGKILL'));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  let log = '';
  try {
    opts.prepare?.(dir);
    const running = spawn(join(kind.binDir, opts.bin), [...opts.args(dir, port), ...(opts.extraArgs ?? [])], { stdio: ['ignore', 'pipe', 'pipe'], ...user });
    child = running;
    await within(
      new Promise<void>((resolve, reject) => {
        const onOutput = (d: Buffer) => {
          log += d;
          if (log.includes(opts.ready)) resolve();
        };
        running.stdout?.on('data', onOutput);
        running.stderr?.on('data', onOutput);
        running.once('error', reject);
        running.once('exit', (code) => reject(new Error(`${kind.name} exited (${code}):\n${log}`)));
      }),
      `${kind.name} to be ready`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, stop };
}

export const REDIS: DaemonKind = {
  name: 'redis-server',
  binDir: findDir('redis-server', PATH_DIRS),
  start: (port, extraArgs) =>
    startDaemon({
      kind: REDIS,
      port,
      extraArgs,
      bin: 'redis-server',
      args: (dir, port) => ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--logfile', ''],
      ready: 'Ready to accept connections',
      signal: 'SIGTERM',
    }),
};

/** Debian's PostgreSQL: /usr/lib/postgresql/<version>/bin, the newest first, else $PATH (psql and pgbench are there too). */
export const postgresDirs = () => {
  let versions: string[] = [];
  try {
    versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
  } catch {
    // not Debian's layout
  }
  return [...versions.map((v) => `/usr/lib/postgresql/${v}/bin`), ...PATH_DIRS];
};

/** postgres refuses to run as root: as root, run it as the `postgres` user. */
const postgresUser = () => {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root and there is no postgres user to run postgres as');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
};

/** The superuser the test cluster is made with (trust authentication, loopback only). */
export const POSTGRES_USER = 'muxnet';

export const POSTGRES: DaemonKind = {
  name: 'postgres',
  binDir: findDir('postgres', postgresDirs()),
  start: (port, extraArgs) => {
    const user = postgresUser();
    return startDaemon({
      kind: POSTGRES,
      port,
      extraArgs,
      bin: 'postgres',
      user,
      prepare: (dir) => {
        const initdb = spawnSync(
          join(POSTGRES.binDir ?? '', 'initdb'),
          ['-D', join(dir, 'data'), '-A', 'trust', '-U', POSTGRES_USER, '--no-sync'],
          { encoding: 'utf8', timeout: 30_000, ...user },
        );
        if (initdb.status !== 0) throw new Error(`initdb failed (${initdb.status ?? initdb.signal}):\n${initdb.stdout}${initdb.stderr}`);
      },
      args: (dir, port) => [
        '-D', join(dir, 'data'),
        '-p', String(port),
        '-k', dir,
        '-c', 'listen_addresses=127.0.0.1',
        '-c', 'fsync=off',
      ],
      ready: 'database system is ready to accept connections',
      // Fast shutdown: roll back and disconnect whatever is still connected.
      signal: 'SIGINT',
    });
  },
};
