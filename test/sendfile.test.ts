// Connection.sendFile over real loopback sockets: order with writes, a
// 1 GiB sparse file checked by hash, FIFOs (which sendfile(2) refuses: the
// read/write loop sends them), errors, and no fd left behind.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, stats, type Connection } from '../src/fast';
import { BACKENDS, openFds, sleep, waitFor } from './helpers';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'muxnet-sendfile-'));

/** A file of `len` pseudo-random bytes; the bytes are returned too. */
function makeFile(name: string, len: number): { file: string; data: Buffer } {
  const data = Buffer.alloc(len);
  for (let i = 0; i < len; i++) data[i] = (i * 2654435761) >>> 24;
  const file = path.join(dir, name);
  fs.writeFileSync(file, data);
  return { file, data };
}

/** A muxnet server doing `serve` with each connection; a node:net client reads to EOF. */
async function exchange<T>(backend: (typeof BACKENDS)[number], serve: (conn: Connection) => Promise<T>): Promise<{ got: Buffer; result: T }> {
  let result!: Promise<T>;
  const server = listen({ port: 0, backend }, { onOpen: (conn) => void (result = serve(conn)) });
  try {
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const sock = net.connect(server.port, '127.0.0.1');
      sock.on('data', (d) => chunks.push(d));
      sock.on('end', resolve);
      sock.on('error', reject);
    });
    return { got: Buffer.concat(chunks), result: await result };
  } finally {
    server.close();
  }
}

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A FIFO made with mkfifo(1). */
function makeFifo(name: string): string {
  const fifo = path.join(dir, name);
  execFileSync('mkfifo', [fifo]);
  return fifo;
}

/**
 * Feeds `data` into a FIFO from this process's fs (libuv's thread pool
 * waits for the reader), in pieces with pauses so the reader finds it
 * empty at times, then closes it: the reader's end of file.
 */
async function feedFifo(fifo: string, data: Buffer): Promise<void> {
  const fh = await fs.promises.open(fifo, 'w');
  try {
    for (let at = 0; at < data.length; at += 100_000) {
      await fh.write(data.subarray(at, at + 100_000));
      await sleep(1);
    }
  } finally {
    await fh.close();
  }
}

describe.each(BACKENDS.map((b) => [b]))('sendFile on %s', (backend) => {
  it('goes after the bytes written before it, and before those written after', async () => {
    const { file, data } = makeFile(`order-${backend}`, 3 << 20);
    const [a, b, c] = [Buffer.alloc(12 << 20, 'a'), Buffer.from('between'), Buffer.from('after all')];
    const { got, result } = await exchange(backend, async (conn) => {
      conn.write(a);
      const first = conn.sendFile(file, { offset: 1000, length: 2 << 20 });
      conn.write(b);
      // An fd the caller keeps: sent from offset 0, whatever its own position.
      const fd = fs.openSync(file, 'r');
      const second = conn.sendFile(fd, { length: 4096 });
      conn.write(c);
      conn.end();
      const sent = await Promise.all([first, second]);
      fs.closeSync(fd);
      return sent;
    });
    expect(result).toEqual([2 << 20, 4096]);
    const want = Buffer.concat([a, data.subarray(1000, 1000 + (2 << 20)), b, data.subarray(0, 4096), c]);
    expect(got.length).toBe(want.length);
    expect(got.equals(want)).toBe(true);
  });

  it('sends to the end of the file by default, and resolves with what a short file had', async () => {
    const { file, data } = makeFile(`tail-${backend}`, 100_000);
    const { got, result } = await exchange(backend, async (conn) => {
      const all = conn.sendFile(file, { offset: 99_000 });
      const short = conn.sendFile(file, { offset: 99_990, length: 1 << 20 });
      conn.end();
      return Promise.all([all, short]);
    });
    expect(result).toEqual([1000, 10]);
    expect(got.equals(Buffer.concat([data.subarray(99_000), data.subarray(99_990)]))).toBe(true);
  });

  it.runIf(process.platform !== 'win32')('sends a FIFO (which sendfile(2) refuses) until its writer closes it, in order with writes and files', async () => {
    const fifo = makeFifo(`fifo-${backend}`);
    const fed = makeFile(`fed-${backend}`, 3 << 20).data;
    const { file, data } = makeFile(`after-fifo-${backend}`, 200_000);
    const [a, b, c] = [Buffer.alloc(4 << 20, 'a'), Buffer.from('between'), Buffer.from('after all')];
    let feeding: Promise<void> | undefined;
    const { got, result } = await exchange(backend, async (conn) => {
      conn.write(a);
      // No length: a FIFO has no size, it is sent to its end.
      const piped = conn.sendFile(fifo);
      feeding = feedFifo(fifo, fed);
      conn.write(b);
      const after = conn.sendFile(file);
      conn.end(c);
      return Promise.all([piped, after]);
    });
    await feeding;
    expect(result).toEqual([fed.length, data.length]);
    const want = Buffer.concat([a, fed, b, data, c]);
    expect(got.length).toBe(want.length);
    expect(sha256(got)).toBe(sha256(want));
  });
});

describe.runIf(process.platform === 'linux')('sendFile of a file sendfile(2) refuses', () => {
  it.each(BACKENDS.map((b) => [b]))("sends /proc/self/cmdline (size 0, sendfile's EINVAL) by the read/write loop on %s", async (backend) => {
    const proc = '/proc/self/cmdline';
    const want = fs.readFileSync(proc);
    const { got, result } = await exchange(backend, async (conn) => {
      conn.write('a');
      // No length: its size, 0, says nothing; it is sent to its end.
      const whole = conn.sendFile(proc);
      conn.write('b');
      const range = conn.sendFile(proc, { offset: 3, length: 5 });
      conn.end();
      return Promise.all([whole, range]);
    });
    expect(result).toEqual([want.length, 5]);
    expect(got.equals(Buffer.concat([Buffer.from('a'), want, Buffer.from('b'), want.subarray(3, 8)]))).toBe(true);
  });
});

describe.runIf(process.platform !== 'win32')('sendFile of a FIFO', () => {
  it('sends exactly `length` bytes of a FIFO fd the caller keeps, which still holds the rest', async () => {
    const fifo = makeFifo('fifo-length');
    const fed = makeFile('fed-length', 600_000).data;
    // Non-blocking, so the open does not wait for the writer.
    const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const feeding = feedFifo(fifo, fed);
    const { got, result } = await exchange('mio', async (conn) => {
      const sent = conn.sendFile(fd, { length: 250_001 });
      conn.end('tail');
      return sent;
    });
    expect(result).toBe(250_001);
    expect(got.equals(Buffer.concat([fed.subarray(0, 250_001), Buffer.from('tail')]))).toBe(true);
    // The caller's fd reads on from there: nothing was read ahead and lost.
    const rest: Buffer[] = [];
    const buf = Buffer.alloc(64 << 10);
    for (let done = false; !done; ) {
      try {
        const n = fs.readSync(fd, buf);
        if (n === 0) done = true;
        else rest.push(Buffer.from(buf.subarray(0, n)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        await sleep(1);
      }
    }
    await feeding;
    fs.closeSync(fd);
    expect(sha256(Buffer.concat(rest))).toBe(sha256(fed.subarray(250_001)));
  });

  it('select: an empty FIFO whose fd is past FD_SETSIZE (unwatchable) is asked again every few ms, not in a busy loop, and sent whole', async () => {
    const fifo = makeFifo('fifo-past-setsize');
    const fed = makeFile('fed-past-setsize', 300_000).data;
    const { got, result } = await exchange('select', async (conn) => {
      // Every fd below 1024 taken: the reactor's copy of the FIFO lands past select's limit.
      const fillers = [fs.openSync('/dev/null', 'r')];
      while (fillers[fillers.length - 1] < 1023) fillers.push(fs.openSync('/dev/null', 'r'));
      const sending = conn.sendFile(fifo);
      for (const fd of fillers) fs.closeSync(fd);
      const before = stats('select').turns;
      await sleep(500);
      const idleTurns = stats('select').turns - before;
      await feedFifo(fifo, fed);
      const sent = await sending;
      conn.end();
      return { sent, idleTurns };
    });
    expect(result.sent).toBe(fed.length);
    expect(sha256(got)).toBe(sha256(fed));
    // Asked every 10 ms: about 50 turns in the half second (it was a turn after turn, thousands).
    expect(result.idleTurns).toBeLessThan(200);
  });

  it('rejects an offset into a FIFO with ESPIPE', async () => {
    const fifo = makeFifo('fifo-offset');
    const { result } = await exchange('mio', async (conn) => {
      const err = await conn.sendFile(fifo, { offset: 1 }).catch((e: NodeJS.ErrnoException) => `${e.code} ${e.syscall}`);
      conn.end();
      return err;
    });
    expect(result).toBe('ESPIPE sendfile');
  });
});

describe('sendFile', () => {
  const big = path.join(dir, 'sparse-1g');
  const size = 1 << 30;
  /** Marks at a few places, so the hash checks placement, not only length. */
  const marks = [0, 123_456_789, size - 9].map((at, i) => ({ at, bytes: Buffer.from(`mark-${i}-:)`) }));

  beforeAll(() => {
    const fd = fs.openSync(big, 'w');
    fs.ftruncateSync(fd, size);
    for (const m of marks) fs.writeSync(fd, m.bytes, 0, m.bytes.length, m.at);
    fs.closeSync(fd);
  });
  afterAll(() => fs.rmSync(big, { force: true }));

  it('moves a 1 GiB sparse file whole (checked by SHA-256)', async () => {
    const expected = createHash('sha256');
    const zeros = Buffer.alloc(1 << 20);
    let at = 0;
    for (const m of marks) {
      for (; at < m.at; ) {
        const n = Math.min(zeros.length, m.at - at);
        expected.update(zeros.subarray(0, n));
        at += n;
      }
      expected.update(m.bytes);
      at += m.bytes.length;
    }
    expect(at).toBe(size);
    let sent: Promise<number> | undefined;
    const server = listen({ port: 0 }, {
      onOpen(conn) {
        sent = conn.sendFile(big);
        conn.end();
      },
    });
    const got = createHash('sha256');
    let bytes = 0;
    await new Promise<void>((resolve, reject) => {
      const sock = net.connect(server.port, '127.0.0.1');
      sock.on('data', (d) => {
        got.update(d);
        bytes += d.length;
      });
      sock.on('end', resolve);
      sock.on('error', reject);
    });
    server.close();
    expect(await sent).toBe(size);
    expect(bytes).toBe(size);
    expect(got.digest('hex')).toBe(expected.digest('hex'));
  }, 120_000);

  it.runIf(process.platform !== 'win32')('sends over a Unix-domain connection too', async () => {
    const { file, data } = makeFile('unix', 1 << 20);
    const sock = path.join(dir, 'sendfile.sock');
    let sent: Promise<number> | undefined;
    const server = listen({ path: sock }, {
      onOpen(conn) {
        conn.write('head:');
        sent = conn.sendFile(file);
        conn.end(':tail');
      },
    });
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      net.connect(sock).on('data', (d) => chunks.push(d)).on('end', resolve).on('error', reject);
    });
    server.close();
    expect(await sent).toBe(data.length);
    expect(Buffer.concat(chunks).equals(Buffer.concat([Buffer.from('head:'), data, Buffer.from(':tail')]))).toBe(true);
  });

  it('rejects with Node-style errors: bad arguments, a missing file, a directory, a closed connection', async () => {
    const { file } = makeFile('errors', 10);
    const { result } = await exchange('mio', async (conn) => {
      const errors = await Promise.all([
        conn.sendFile({} as unknown as string).catch((e: NodeJS.ErrnoException) => e.code),
        conn.sendFile(file, { offset: -1 }).catch((e: NodeJS.ErrnoException) => e.code),
        conn.sendFile(file, { length: 1.5 }).catch((e: NodeJS.ErrnoException) => e.code),
        conn.sendFile(path.join(dir, 'missing')).catch((e: NodeJS.ErrnoException) => `${e.code} ${e.syscall}`),
        conn.sendFile(dir).catch((e: NodeJS.ErrnoException) => e.code),
      ]);
      conn.end();
      errors.push(await conn.sendFile(file).catch((e: NodeJS.ErrnoException) => e.code));
      conn.destroy();
      errors.push(await conn.sendFile(file).catch((e: NodeJS.ErrnoException) => e.code));
      return errors;
    });
    expect(result).toEqual([
      'ERR_INVALID_ARG_TYPE',
      'ERR_OUT_OF_RANGE',
      'ERR_OUT_OF_RANGE',
      'ENOENT open',
      'ERR_INVALID_ARG_VALUE',
      'ERR_STREAM_WRITE_AFTER_END',
      'ERR_SOCKET_CLOSED',
    ]);
  });

  it('rejects a file still queued when the connection is destroyed, and the peer reset fails one in flight', async () => {
    const { file } = makeFile('pending', 8 << 20);
    let pending: Promise<unknown> | undefined;
    const server = listen({ port: 0 }, {
      onOpen(conn) {
        // Far more than the socket buffers hold: the peer resets mid-file.
        pending = conn.sendFile(file).catch((e: NodeJS.ErrnoException) => e.code);
      },
    });
    const sock = net.connect(server.port, '127.0.0.1');
    await new Promise<void>((resolve) => sock.once('data', () => resolve()));
    sock.resetAndDestroy();
    expect(['ECONNRESET', 'EPIPE']).toContain(await pending);

    let destroyed: Promise<unknown> | undefined;
    const server2 = listen({ port: 0 }, {
      onOpen(conn) {
        destroyed = conn.sendFile(file).catch((e: NodeJS.ErrnoException) => e.code);
        conn.destroy();
      },
    });
    const sock2 = net.connect(server2.port, '127.0.0.1');
    await new Promise<void>((resolve) => sock2.on('close', () => resolve()).on('error', () => {}));
    expect(await destroyed).toBe('ERR_SOCKET_CLOSED');
    server.close();
    server2.close();
  });

  it('leaves no fd open: files sent, failed or dropped with their connection (a FIFO waiting for its writer too) are closed', async () => {
    const { file } = makeFile('fds', 4 << 20);
    // The reactors' own fds exist by now (the tests above made them).
    const before = openFds();
    for (const backend of BACKENDS) {
      const { result } = await exchange(backend, async (conn) => {
        const sent = conn.sendFile(file, { length: 1000 });
        const dropped = conn.sendFile(file).catch((e: NodeJS.ErrnoException) => e.code);
        await sent;
        conn.destroy();
        return dropped;
      });
      expect(result).toBe('ERR_SOCKET_CLOSED');
      if (process.platform === 'win32') continue;
      // A FIFO whose writer never comes: watched by the backend, then dropped with its connection.
      const fifo = makeFifo(`fds-${backend}`);
      const { result: waiting } = await exchange(backend, async (conn) => {
        const sent = conn.sendFile(fifo).catch((e: NodeJS.ErrnoException) => e.code);
        await sleep(20);
        conn.destroy();
        return sent;
      });
      expect(waiting).toBe('ERR_SOCKET_CLOSED');
    }
    // The last close is reported in a later turn than the client's end.
    await waitFor(() => openFds() <= before, `open fds back to ${before}`);
    expect(openFds()).toBe(before);
  });
});
