// Real servers for the library tests (redis-server, PostgreSQL, MariaDB,
// mosquitto, memcached, sshd): each started on a free loopback port in its own
// temp dir, stopped and removed by `stop()`.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, chownSync, constants, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { freePort } from '../helpers';

export interface Daemon {
  port: number;
  /** Its temp dir (e.g. where sshd's client key is). */
  dir: string;
  /** Stops it with its kind's signal, or `signal` (SIGKILL: a crash), and removes its dir. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Sends it `signal` (SIGSTOP: a server that holds its connections and reads nothing; SIGCONT). */
  signal(signal: NodeJS.Signals): void;
}

/** A program the tests run: its name, and where it is (undefined when it is not installed). */
export interface Program {
  name: string;
  /** Where its binaries are, or undefined when it is not installed. */
  binDir: string | undefined;
}

export interface DaemonKind extends Program {
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
  const daemon = daemonDuring(kind, extraArgs);
  return () => daemon().port;
}

/** Starts `kind` before the suite's cases, stops it after them; gives the Daemon. */
export function daemonDuring(kind: DaemonKind, extraArgs?: string[]): () => Daemon {
  let daemon: Daemon | undefined;
  beforeAll(async () => {
    daemon = await kind.start(undefined, extraArgs);
  });
  afterAll(() => daemon?.stop());
  return () => {
    if (daemon === undefined) throw new Error(`${kind.name} is not running`);
    return daemon;
  };
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
  const { binDir, name } = opts.kind;
  if (binDir === undefined) throw new Error(`${name} is not installed: .ci/install-test-programs installs it`);
  if (opts.port !== undefined) return startDaemonOn(opts, binDir, opts.port);
  // A port freed for it may be handed to another socket before the daemon
  // binds it: one that exits before it is ready gets another port (twice).
  for (let tries = 1; ; tries++) {
    try {
      return await startDaemonOn(opts, binDir, await freePort());
    } catch (err) {
      if (tries === 3 || !(err instanceof ExitedEarly)) throw err;
    }
  }
}

/** A daemon's exit before it said it was ready. */
class ExitedEarly extends Error {}

async function startDaemonOn(opts: Parameters<typeof startDaemon>[0], binDir: string, port: number): Promise<Daemon> {
  const { kind, user } = opts;
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
    const running = spawn(join(binDir, opts.bin), [...opts.args(dir, port), ...(opts.extraArgs ?? [])], { stdio: ['ignore', 'pipe', 'pipe'], ...user });
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
        running.once('exit', (code) => reject(new ExitedEarly(`${kind.name} exited (${code}):\n${log}`)));
      }),
      `${kind.name} to be ready`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, dir, stop, signal: (signal) => void child?.kill(signal) };
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

/** Runs `bin` to completion in `dir`'s setup, failing with its output. */
function setup(bin: string, args: string[], what: string) {
  const run = spawnSync(bin, args, { encoding: 'utf8', timeout: 30_000 });
  if (run.status !== 0) throw new Error(`${what} failed (${run.status ?? run.signal}):\n${run.stdout}${run.stderr}`);
}

/** mariadbd refuses to run as root unless told to (root is the superuser in the tests' CI). */
const asRoot = () => (process.getuid?.() === 0 ? ['--user=root'] : []);

/**
 * MariaDB with a fresh data dir: `root` without a password over TCP, LOAD DATA
 * LOCAL allowed, packets up to 64 MiB, TLS on request.
 */
export const MARIADB: DaemonKind = {
  name: 'mariadbd',
  binDir: findDir('mariadbd', ['/usr/sbin', ...PATH_DIRS]),
  start: (port, extraArgs) =>
    startDaemon({
      kind: MARIADB,
      port,
      extraArgs,
      bin: 'mariadbd',
      prepare: (dir) =>
        setup(
          'mariadb-install-db',
          ['--no-defaults', `--datadir=${join(dir, 'data')}`, ...asRoot(), '--auth-root-authentication-method=normal', '--skip-test-db'],
          'mariadb-install-db',
        ),
      args: (dir, port) => [
        '--no-defaults',
        `--datadir=${join(dir, 'data')}`,
        ...asRoot(),
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--socket=${join(dir, 'sock')}`,
        `--pid-file=${join(dir, 'pid')}`,
        '--skip-log-bin',
        '--innodb-buffer-pool-size=16M',
        '--local-infile=1',
        '--max-allowed-packet=64M',
        // TLS with the tests' self-signed localhost certificate (a client asks for it after the greeting).
        `--ssl-cert=${join(__dirname, '../fixtures/tls/cert.pem')}`,
        `--ssl-key=${join(__dirname, '../fixtures/tls/key.pem')}`,
      ],
      ready: 'ready for connections',
      signal: 'SIGTERM',
    }),
};

/** mosquitto listening on 127.0.0.1 only, anonymous clients allowed. */
export const MOSQUITTO: DaemonKind = {
  name: 'mosquitto',
  binDir: findDir('mosquitto', ['/usr/sbin', ...PATH_DIRS]),
  start: (port, extraArgs) =>
    startDaemon({
      kind: MOSQUITTO,
      port,
      extraArgs,
      bin: 'mosquitto',
      prepare: (dir) => writeFileSync(join(dir, 'mosquitto.conf'), 'allow_anonymous true\npersistence false\n'),
      args: (dir, port) => ['-c', join(dir, 'mosquitto.conf'), '-p', String(port)],
      ready: ' running',
      signal: 'SIGTERM',
    }),
};

/** memcached on 127.0.0.1, TCP only, items up to 4 MiB (`-vv` says when it listens). */
export const MEMCACHED: DaemonKind = {
  name: 'memcached',
  binDir: findDir('memcached', PATH_DIRS),
  start: (port, extraArgs) =>
    startDaemon({
      kind: MEMCACHED,
      port,
      extraArgs,
      bin: 'memcached',
      args: (_dir, port) => ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-I', '4m', '-m', '64', '-vv', ...(process.getuid?.() === 0 ? ['-u', 'root'] : [])],
      ready: 'server listening',
      signal: 'SIGTERM',
    }),
};

/** The user the tests log in to sshd as: whoever runs them, with the key in the daemon's dir. */
export const SSH_USER = userInfo().username;

/**
 * OpenSSH's sshd on 127.0.0.1 with a host key and a client key (`client_key`
 * in its dir) made for it: public-key login only, as the user running the
 * tests, sftp served in-process.
 */
export const SSHD: DaemonKind = {
  name: 'sshd',
  binDir: findDir('sshd', ['/usr/sbin', ...PATH_DIRS]),
  start: (port, extraArgs) =>
    startDaemon({
      kind: SSHD,
      port,
      extraArgs,
      bin: 'sshd',
      prepare: (dir) => {
        // As root sshd wants its privilege separation dir (made by the system's service, which is not running).
        if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
        for (const key of ['host_key', 'client_key']) setup('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, key)], 'ssh-keygen');
        writeFileSync(
          join(dir, 'sshd_config'),
          [
            `HostKey ${join(dir, 'host_key')}`,
            `AuthorizedKeysFile ${join(dir, 'client_key.pub')}`,
            'ListenAddress 127.0.0.1',
            'PasswordAuthentication no',
            'KbdInteractiveAuthentication no',
            'PubkeyAuthentication yes',
            'PermitRootLogin prohibit-password',
            'AllowTcpForwarding yes',
            // The temp dir is not the user's home: no ownership checks on it.
            'StrictModes no',
            'UsePAM no',
            'PidFile none',
            'Subsystem sftp internal-sftp',
            '',
          ].join('\n'),
        );
      },
      // sshd wants its absolute path (it re-executes itself for each connection).
      args: (dir, port) => ['-D', '-e', '-f', join(dir, 'sshd_config'), '-p', String(port)],
      ready: 'Server listening on',
      signal: 'SIGTERM',
    }),
};
