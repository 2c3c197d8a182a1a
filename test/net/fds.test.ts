// Sockets handed over by file descriptor — `server.listen({ fd })`,
// `new net.Socket({ fd })`, dgram `bind({ fd })` — as systemd's socket
// activation or a parent process hands them: the child in
// test/fixtures/fds-given.js gets them as fds 3 to 6 and uses them with
// muxnet on each backend and with node:net/node:dgram; both must do and
// say the same, and close each given fd with its socket.
import { execFile, execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKENDS, waitFor } from '../helpers';
import * as muxnet from '../../src/net';
import * as muxnetDgram from '../../src/dgram';

const fixture = path.join(__dirname, '..', 'fixtures', 'fds-given.js');

/** The node:net handle's fd: the only way Node gives a socket's fd to a child. */
const fdOf = (s: net.Server | net.Socket | dgram.Socket) => (s as unknown as { _handle: { fd: number } })._handle.fd;

/** Runs the fixture with fresh sockets as its fds 3–6 (this process closes its copies at once); its report. */
async function run(impl: 'muxnet' | 'node', backend: string): Promise<Record<string, unknown>> {
  const echo = net.createServer((c) => c.pipe(c)).listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const tcp = net.createServer().listen(0, '127.0.0.1');
  // Of the abstract namespace: a parent's close would remove a file.
  const unixName = `muxnet-fds-${process.pid}-${impl}-${backend}`;
  const unix = net.createServer().listen(`\0${unixName}`);
  const conn = net.connect((echo.address() as net.AddressInfo).port, '127.0.0.1');
  const udp = dgram.createSocket('udp4').bind(0, '127.0.0.1');
  await Promise.all([once(tcp, 'listening'), once(unix, 'listening'), once(conn, 'connect'), once(udp, 'listening')]);
  const child = spawn(process.execPath, ['--no-deprecation', fixture, impl, backend, unixName], {
    stdio: ['ignore', 'pipe', 'inherit', fdOf(tcp), fdOf(conn), fdOf(udp), fdOf(unix)],
  });
  // The child holds its own copies now: these go, as a parent's do.
  tcp.close();
  unix.close();
  conn.destroy();
  udp.close();
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const [code] = await once(child, 'exit');
  echo.close();
  expect(code, out).toBe(0);
  return JSON.parse(out);
}

// Linux: abstract names, and /proc/self/fd to tell which sockets are still held.
describe.runIf(process.platform === 'linux')('sockets handed over by fd', () => {
  let reference: Record<string, unknown>;

  it('node:net and node:dgram: what the muxnet runs are held to', async () => {
    reference = await run('node', 'mio');
    expect(reference.listen).toEqual({ family: 'IPv4', answer: 'served on fd 3', numberKept: true, answer2: 'served on fd 3' });
    expect(reference.closed).toEqual([3, 4, 5, 6]);
  }, 20_000);

  for (const backend of BACKENDS) {
    it(`${backend}: served, answered and closed as node:net's; wrong kinds refused with Node's errors`, async () => {
      const got = await run('muxnet', backend);
      // Found by a hunt (2026-12-05): the number was closed at once, reused, and a worker's listen refused (EINVAL).
      expect(got.listen).toEqual({ family: 'IPv4', answer: 'served on fd 3', numberKept: true, worker: 'listening', answer2: 'served on fd 3' });
      expect(got.unix).toEqual({ address: null, answer: 'served on fd 6' });
      expect(got.socket).toEqual({ remote: '127.0.0.1', readable: true, writable: true, echo: 'echoed through fd 4' });
      expect(got.udp).toEqual({ listeningInBind: true, address: '127.0.0.1', message: 'sent to fd 5' });
      expect(got.closed).toEqual([3, 4, 5, 6]);
      expect(got.errors).toEqual(reference.errors);
      expect(reference).toMatchObject({ socket: got.socket, udp: got.udp, unix: got.unix });
    }, 20_000);
  }

  // node:net connects the handle it wraps; the drop-in took the fd for a connected one: a
  // false 'connect', then EPIPE, nothing sent.
  it('new Socket({ fd }) of a TCP socket bound and not connected: connect() goes out from it, as node:net', async () => {
    const echo = net.createServer((c) => c.pipe(c)).listen(0, '127.0.0.1');
    await once(echo, 'listening');
    try {
      for (const [impl, backend] of [['node', 'mio'], ...BACKENDS.map((b) => ['muxnet', b])]) {
        // Node has no public bound-only TCP socket before 24's BoundSocket: its binding makes one.
        const { TCP, constants } = (process as unknown as { binding(name: string): any }).binding('tcp_wrap');
        const handle = new TCP(constants.SOCKET);
        expect(handle.bind('127.0.0.1', 0)).toBe(0);
        const bound: { port?: number } = {};
        handle.getsockname(bound);
        const child = spawn(process.execPath, ['--no-deprecation', path.join(__dirname, '..', 'fixtures', 'fd-unconnected.js'), impl, backend, 'connect', String((echo.address() as net.AddressInfo).port)], {
          stdio: ['ignore', 'pipe', 'inherit', handle.fd],
        });
        handle.close();
        let out = '';
        child.stdout!.on('data', (d) => (out += d));
        const [code] = await once(child, 'exit');
        // A second socket on the fd kept to connect from is refused, as node:net's (it was
        // taken, and the number closed under the first).
        expect([code, JSON.parse(out)], `${impl} ${backend}`).toEqual([0, { events: [], second: 'EEXIST', echo: 'through fd 3', localPort: bound.port }]);
      }
    } finally {
      echo.close();
    }
  });

  // A reset connection has no peer either: taken for one never connected, it waited for a
  // connect() for ever (and a cluster worker handed one died of 'accept ENOTCONN').
  it('new Socket({ fd }) of a connection reset before it was handed over reports the reset and closes, as node:net', async () => {
    for (const [impl, backend] of [['node', 'mio'], ...BACKENDS.map((b) => ['muxnet', b])]) {
      let client!: net.Socket;
      const accepted = new Promise<net.Socket>((resolve) => {
        const server = net.createServer({ pauseOnConnect: true }, (c) => {
          c.on('error', () => {});
          server.close();
          resolve(c);
        });
        server.listen(0, '127.0.0.1', () => {
          client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
          client.on('error', () => {});
        });
      });
      const conn = await accepted;
      client.resetAndDestroy();
      await new Promise((r) => setTimeout(r, 100));
      const child = spawn(process.execPath, ['--no-deprecation', path.join(__dirname, '..', 'fixtures', 'fd-unconnected.js'), impl, backend, 'reset'], {
        stdio: ['ignore', 'pipe', 'inherit', fdOf(conn)],
      });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      const [code] = await once(child, 'exit');
      conn.destroy();
      expect([code, JSON.parse(out)], `${impl} ${backend}`).toEqual([0, { events: ['error ECONNRESET read', 'close true'] }]);
    }
  });

  // Found by a hunt (2026-12-07): taken with `readable: false`, it was read anyway, and the peer's
  // first bytes ended it with ERR_STREAM_PUSH_AFTER_EOF, its writes lost (3 of 3).
  it('new Socket({ fd, readable: false }) of a connection whose peer spoke first reads nothing and writes on, as node:net', async () => {
    for (const [impl, backend] of [['node', 'mio'], ...BACKENDS.map((b) => ['muxnet', b])]) {
      const got: string[] = [];
      let client!: net.Socket;
      const accepted = new Promise<net.Socket>((resolve) => {
        const server = net.createServer({ pauseOnConnect: true }, (c) => {
          server.close();
          resolve(c);
        });
        server.listen(0, '127.0.0.1', () => {
          client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => client.write('banner'));
          client.setEncoding('latin1');
          client.on('data', (d: string) => got.push(d));
          client.on('end', () => got.push('<end>'));
          client.on('error', () => {});
        });
      });
      const conn = await accepted;
      const child = spawn(process.execPath, ['--no-deprecation', path.join(__dirname, '..', 'fixtures', 'fd-unconnected.js'), impl, backend, 'write-only'], {
        stdio: ['ignore', 'pipe', 'inherit', fdOf(conn)],
      });
      conn.destroy();
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      const [code] = await once(child, 'exit');
      await waitFor(() => got.includes('<end>'), `the peer's end (${impl} ${backend})`);
      client.destroy();
      expect([code, JSON.parse(out), got.join('')], `${impl} ${backend}`).toEqual([0, { events: ['finish'] }, 'ping<end>']);
    }
  });

  // The drop-in took a copy of its own reactor's socket and closed the number under it: the next
  // socket made got the number, and bytes written to one connection reached another's peer; its
  // wake-up pipe closed so left the reactor deaf.
  it.each(BACKENDS)("an fd muxnet's own reactor holds (a connection, its wake-up pipe) is refused with EEXIST and left to it, on %s", async (backend) => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [path.join(__dirname, '..', 'fixtures', 'own-fds.js'), backend], { timeout: 20_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    const report = JSON.parse(out);
    // a's socket and node:net's end of it at least; the reactor's wake-up pipe on poll and select.
    expect(report.fds).toBeGreaterThanOrEqual(backend === 'mio' ? 2 : 4);
    // bind({ fd }) of a stream socket says its kind first, as node:dgram (ERR_INVALID_FD_TYPE).
    expect(report.got.every((g: string) => /^EEXIST EEXIST (EEXIST|ERR_INVALID_FD_TYPE)$/.test(g)), report.got.join(', ')).toBe(true);
    expect(report.closed).toEqual([]);
    expect(report.echoes).toEqual(['for a', 'for b']);
  });

  // Found by a review (2026-12-05): a listen({ fd }) failing here (EMFILE: no fd for the copy)
  // closed the number a worker still served; the next file opened got it, and the worker's close
  // (the last copy) closed that file. And the last copy let go in a worker closed the number with
  // fs.closeSync, which warned of an fd "not opened in unmanaged mode".
  it.each(BACKENDS)("a given fd another thread serves outlives this thread's failed listen; the worker's last copy closes it without a warning, on %s", async (backend) => {
    const given = net.createServer().listen(0, '127.0.0.1');
    await once(given, 'listening');
    const args = [path.join(__dirname, '..', 'fixtures', 'fd-last-copy.js'), backend];
    const child = spawn('sh', ['-c', 'ulimit -n 128 && exec "$0" "$@"', process.execPath, '--no-deprecation', ...args], { stdio: ['ignore', 'pipe', 'inherit', fdOf(given)] });
    given.close();
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const [code] = await once(child, 'exit');
    expect([code, out && JSON.parse(out)]).toEqual([0, { listen: 'EMFILE', givenKept: true, warnings: [], fileWritten: true, givenClosed: true }]);
  });

  // node:net opens a FIFO's fd as a pipe handle, listen() fails (ENOTSOCK), and the handle's close
  // closes the fd: the caller gave it away. The drop-in did the same but left the fd open.
  it('listen({ fd }) failing on a FIFO closes the fd given, as node:net', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'muxnet-fds-'));
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    /** The FIFO's inode while `fd` still names it (its number may be taken again once closed). */
    const names = (fd: number, ino: number) => {
      try {
        return fstatSync(fd).ino === ino;
      } catch {
        return false;
      }
    };
    try {
      const impls: [string, () => net.Server][] = [['node:net', () => net.createServer()], ...BACKENDS.map((backend): [string, () => net.Server] => [backend, () => muxnet.createServer({ backend }) as unknown as net.Server])];
      for (const [name, create] of impls) {
        const fd = openSync(fifo, 'r+');
        const ino = fstatSync(fd).ino;
        const server = create();
        server.listen({ fd });
        const [error] = (await once(server, 'error')) as [NodeJS.ErrnoException];
        // Its own properties as node:net's, `address: null` among them (the drop-in had none).
        expect({ ...error }, name).toEqual({ code: 'ENOTSOCK', errno: -88, syscall: 'listen', address: null });
        expect(names(fd, ino), `${name}: the FIFO's fd still open`).toBe(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // An fd one of Node's own handles watches is refused, as libuv refuses it (EEXIST), and left to
  // that handle. The drop-in took a copy and closed the fd under libuv, which aborted the
  // process at its next poll (epoll_ctl EBADF).
  it("an fd node:net or node:dgram still watches is refused with EEXIST, theirs left working", async () => {
    const orig = net.createServer((c) => c.end('still served')).listen(0, '127.0.0.1');
    await once(orig, 'listening');
    const conn = net.connect((orig.address() as net.AddressInfo).port, '127.0.0.1');
    const udp = dgram.createSocket('udp4').bind(0, '127.0.0.1');
    await Promise.all([once(conn, 'connect'), once(udp, 'listening')]);
    const servers: [string, net.Server][] = [['node:net', net.createServer()], ...BACKENDS.map((backend): [string, net.Server] => [backend, muxnet.createServer({ backend }) as unknown as net.Server])];
    try {
      for (const [name, server] of servers) {
        server.listen({ fd: fdOf(orig) });
        const [error] = (await once(server, 'error')) as [NodeJS.ErrnoException];
        expect([error.code, error.syscall], name).toEqual(['EEXIST', 'listen']);
      }
      // Of the wrong kind, it is said first, as node:net's check comes first.
      const wrongKind = (fn: () => unknown) => {
        try {
          fn();
          return 'none';
        } catch (e) {
          return `${(e as Error).constructor.name} ${(e as NodeJS.ErrnoException).code}: ${(e as Error).message}`;
        }
      };
      expect(wrongKind(() => new net.Socket({ fd: fdOf(udp) }))).toBe('TypeError ERR_INVALID_FD_TYPE: Unsupported fd type: UDP');
      expect(wrongKind(() => dgram.createSocket('udp4').bind({ fd: fdOf(conn) }))).toBe('TypeError ERR_INVALID_FD_TYPE: Unsupported fd type: TCP');
      for (const backend of BACKENDS) {
        expect(wrongKind(() => new muxnet.Socket({ fd: fdOf(udp), backend } as never))).toBe('TypeError ERR_INVALID_FD_TYPE: Unsupported fd type: UDP');
        expect(wrongKind(() => muxnetDgram.createSocket({ type: 'udp4', backend } as never).bind({ fd: fdOf(conn) }))).toBe('TypeError ERR_INVALID_FD_TYPE: Unsupported fd type: TCP');
        expect(() => new muxnet.Socket({ fd: fdOf(conn), backend } as never), backend).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'open' }));
        const socket = muxnetDgram.createSocket({ type: 'udp4', backend } as never);
        expect(() => socket.bind({ fd: fdOf(udp) }), backend).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'open' }));
        socket.close();
      }
      // node:net's server, socket and node:dgram's socket still work, their fds theirs.
      const client = net.connect((orig.address() as net.AddressInfo).port, '127.0.0.1');
      let reply = '';
      client.on('data', (d) => (reply += d));
      await once(client, 'end');
      expect(reply).toBe('still served');
      udp.send('ping', (udp.address() as net.AddressInfo).port, '127.0.0.1');
      const [msg] = await once(udp, 'message');
      expect(String(msg)).toBe('ping');
      expect(fstatSync(fdOf(conn)).isSocket()).toBe(true);
    } finally {
      conn.destroy();
      udp.close();
      orig.close();
    }
  }, 20_000);

  // libuv never closes fds 0-2 with a handle: a socket given as stdin stays in the process after
  // the socket made on it is destroyed, and 0 is not the number of the next file opened. The
  // drop-in closed it at once.
  it('a socket made on fd 0 (stdin) leaves fd 0 open, as node:net', async () => {
    const server = net.createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const conn = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await once(conn, 'connect');
    const dist = path.join(__dirname, '..', '..', 'dist', 'net', 'index.js');
    const fd0 = async (impl: string, backend: string) => {
      const code = `const fs = require('node:fs');
        const net = require(${JSON.stringify(impl)});
        const socket = new net.Socket({ fd: 0, backend: ${JSON.stringify(backend)} });
        socket.on('close', () => {
          let kind;
          try { kind = fs.fstatSync(0).isSocket() ? 'socket' : 'another file'; } catch { kind = 'closed'; }
          process.stdout.write(kind);
        }).destroy();`;
      const child = spawn(process.execPath, ['--no-deprecation', '-e', code], { stdio: [fdOf(conn), 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      await once(child, 'exit');
      return out;
    };
    try {
      expect(await fd0('node:net', 'mio'), 'node:net').toBe('socket');
      for (const backend of BACKENDS) expect(await fd0(dist, backend), backend).toBe('socket');
    } finally {
      conn.destroy();
      server.close();
    }
  }, 20_000);
});
