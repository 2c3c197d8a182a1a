/**
 * `muxnet receive --port P --dir D`: takes files sent by `muxnet send`,
 * writes each to a part file in D with backpressure (the connection pauses
 * while the disk lags), hashes as it goes, and gives it the name
 * `D/<name>` only if size and SHA-256 match and nothing has that name yet;
 * the sender hears `OK` or `ERR`.
 * A sender silent for `idleTimeoutMs` is cut off (`ERR idle …`), and one
 * that keeps its side open after the answer is closed as long after it.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { constants as fsConstants, createWriteStream, promises as fsp, type WriteStream } from 'node:fs';
import path from 'node:path';
import { listen, type BackendName, type Connection, type SocketAddress } from '../../fast';
import { validateInteger } from '../../options';
import { closeGracefully, LiveSet, type CloseOptions } from '../../server';
import { MAX_HEADER, parseHeader, type Header } from './protocol';

export interface Received {
  name: string;
  size: number;
  sha256: string;
  /** Stored under this path (verified), or why not. */
  path?: string;
  error?: string;
}

export interface ReceiverOptions {
  port: number;
  host: string;
  dir: string;
  backend?: BackendName;
  /**
   * A transfer that receives nothing for this long is refused (`ERR idle
   * for …`, its part file removed), and a connection still open this long
   * after its answer is closed (default 30 000 ms). Time the receiver
   * spends waiting for its own disk does not count.
   */
  idleTimeoutMs?: number;
  /** Called once per transfer, verified or not. */
  onFile(file: Received): void;
}

/** One transfer's state, in `conn.data`. */
interface Transfer {
  /**
   * The length prefix and header so far, as received: joined once the
   * prefix is whole and once the header is (a header sent a byte at a time
   * must not cost a copy of all before it per byte).
   */
  head: Buffer[];
  headBytes: number;
  /** Prefix and header length, once the prefix is here. */
  headNeeds?: number;
  header?: Header;
  out?: WriteStream;
  hash?: Hash;
  got: number;
  part?: string;
  /** Reading stopped until the file stream drains. */
  paused: boolean;
  finished: boolean;
  /** Bytes came after the last one announced, before the verdict: the file is refused. */
  excess: boolean;
  /** The `OK`/`ERR` line is on its way: from then on the peer has `idleTimeoutMs` to close. */
  answered: boolean;
  /** `Date.now()` of the last input, or of the answer. */
  lastSeen: number;
}

export interface Receiver {
  readonly port: number;
  address(): SocketAddress | string | null;
  /**
   * Stops listening at once; transfers under way may finish for `timeout`
   * ms (default 0), then are cut off (their part files removed). The
   * `muxnet/server` close.
   */
  close(options?: CloseOptions): Promise<void>;
}

const MORE_THAN_ANNOUNCED = 'more bytes than the header said';

/**
 * Gives `part` the name `final` unless something has that name already
 * (`EEXIST`): a hard link, then the part file's name removed; copied
 * (`COPYFILE_EXCL`) on a file system without hard links.
 */
async function storeNew(part: string, final: string): Promise<void> {
  try {
    await fsp.link(part, final);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    // A copy cut short (a full disk) leaves nothing under the name: libuv removes what it made.
    await fsp.copyFile(part, final, fsConstants.COPYFILE_EXCL);
  }
  await fsp.rm(part, { force: true }).catch(() => {});
}

export function startReceiver(opts: ReceiverOptions): Receiver {
  const idleTimeoutMs = validateInteger(opts.idleTimeoutMs, 'options.idleTimeoutMs', 30_000, 1, 2_147_483_647);
  const live = new LiveSet<Connection<Transfer>>();
  /** Ends `conn` with the verdict line; the peer then has `idleTimeoutMs` to close its side. */
  const answer = (conn: Connection<Transfer>, t: Transfer, line: string) => {
    t.answered = true;
    t.lastSeen = Date.now();
    if (!conn.closed) conn.end(line);
  };
  const fail = (conn: Connection<Transfer>, t: Transfer, reason: string) => {
    if (t.finished) return;
    t.finished = true;
    t.paused = false;
    conn.resume();
    // Removed once its stream has closed: a stream still opening creates the file after an
    // earlier rm (a part file was left behind). Best effort: one that cannot be removed stays.
    const part = t.part;
    const removePart = () => void (part && fsp.rm(part, { force: true }).catch(() => {}));
    if (t.out && !t.out.closed) t.out.once('close', removePart).destroy();
    else removePart();
    if (t.header) opts.onFile({ ...t.header, error: reason });
    answer(conn, t, `ERR ${reason}\n`);
  };

  const complete = (conn: Connection<Transfer>, t: Transfer) => {
    const h = t.header!;
    t.finished = true;
    // A 'drain' may never come once the file is ended: read on (the peer's FIN).
    t.paused = false;
    conn.resume();
    const digest = t.hash!.digest('hex');
    const refuse = async (reason: string, detail = reason) => {
      await fsp.rm(t.part!, { force: true }).catch(() => {});
      opts.onFile({ ...h, error: detail });
      answer(conn, t, `ERR ${reason}\n`);
    };
    t.out!.end((err?: Error | null) => {
      // The hash is of the bytes received: the disk must have taken them all too.
      if (err) return void refuse(`cannot write: ${err.message}`);
      if (t.excess) return void refuse(MORE_THAN_ANNOUNCED);
      if (digest !== h.sha256) return void refuse('sha256 mismatch', `sha256 mismatch (got ${digest})`);
      const final = path.join(opts.dir, h.name);
      // Linked, not renamed: a file already there is never replaced (a rename did, silently:
      // of senders of one name, the last won and all heard OK). The link fails if it exists.
      storeNew(t.part!, final).then(
        () => {
          opts.onFile({ ...h, path: final });
          answer(conn, t, `OK ${digest}\n`);
        },
        // The name as JSON, and no message that holds it: one the sender chose may hold a line
        // break, and the answer is one line.
        (e: NodeJS.ErrnoException) => void refuse(e.code === 'EEXIST' ? `${JSON.stringify(h.name)} exists` : `cannot store: ${e.code ?? 'error'}`, `cannot store: ${e.message}`),
      );
    });
  };

  /** File bytes: hashed, written; the connection pauses while the disk lags. */
  const body = (conn: Connection<Transfer>, t: Transfer, chunk: Buffer) => {
    const h = t.header!;
    if (t.got + chunk.length > h.size) return fail(conn, t, MORE_THAN_ANNOUNCED);
    t.got += chunk.length;
    t.hash!.update(chunk);
    if (!t.out!.write(chunk) && !t.paused) {
      t.paused = true;
      conn.pause();
      t.out!.once('drain', () => {
        t.paused = false;
        // The wait for the disk is not the sender's silence: its clock starts again now.
        t.lastSeen = Date.now();
        conn.resume();
      });
    }
    if (t.got === h.size) complete(conn, t);
  };

  const start = (conn: Connection<Transfer>, t: Transfer, header: Header) => {
    t.header = header;
    t.hash = createHash('sha256');
    // One part file per transfer: two uploads of one name never share it. Not named after the
    // file: a name of up to 255 bytes (the most a directory entry holds) would not fit with more.
    t.part = path.join(opts.dir, `.muxnet-${randomBytes(8).toString('hex')}.part`);
    t.out = createWriteStream(t.part);
    t.out.on('error', (err) => fail(conn, t, `cannot write: ${err.message}`));
  };

  const server = listen<Transfer>(
    // Half-open: a sender that ends its side after the file still hears the verdict.
    { port: opts.port, host: opts.host, backend: opts.backend, allowHalfOpen: true },
    {
      onOpen(conn) {
        conn.data = { head: [], headBytes: 0, got: 0, paused: false, finished: false, excess: false, answered: false, lastSeen: Date.now() };
        live.add(conn);
      },
      onData(conn, chunk) {
        const t = conn.data!;
        if (t.finished) {
          // Past the announced size while the verdict is being made: it will be a refusal.
          if (!t.answered) t.excess = true;
          return;
        }
        t.lastSeen = Date.now();
        if (t.header) return body(conn, t, chunk);
        // A copy: a view would keep the reactor's whole read slab alive while the header trickles in.
        t.head.push(Buffer.from(chunk));
        t.headBytes += chunk.length;
        if (t.headNeeds === undefined) {
          if (t.headBytes < 4) return;
          t.head = [Buffer.concat(t.head)];
          const len = t.head[0].readUInt32BE(0);
          if (len > MAX_HEADER) return fail(conn, t, 'header too long');
          t.headNeeds = 4 + len;
        }
        if (t.headBytes < t.headNeeds) return;
        const head = Buffer.concat(t.head);
        const header = parseHeader(head.subarray(4, t.headNeeds));
        if (typeof header === 'string') return fail(conn, t, header);
        const rest = head.subarray(t.headNeeds);
        t.head = [];
        start(conn, t, header);
        if (rest.length > 0) body(conn, t, rest);
        else if (header.size === 0) complete(conn, t);
      },
      // The sender's FIN before its file or header was whole: refused now, not at the idle timeout.
      onEnd(conn) {
        const t = conn.data!;
        if (!t.finished) fail(conn, t, t.header ? `connection ended after ${t.got} of ${t.header.size} bytes` : 'connection ended inside the header');
      },
      onClose(conn) {
        live.delete(conn);
        const t = conn.data;
        if (t && !t.finished && t.header) fail(conn, t, `connection closed after ${t.got} of ${t.header.size} bytes`);
      },
    },
  );
  // One timer for all connections (not one per chunk): a silent sender is
  // cut off, an answered one that keeps its side open is closed.
  const period = Math.max(10, Math.min(1000, idleTimeoutMs / 4));
  let swept = Date.now();
  const sweep = setInterval(
    () => {
      const now = Date.now();
      // Run late: this process was held up (a stalled loop runs its timers before
      // it reads), so what senders sent meanwhile is still unread. Judged next time.
      const late = now - swept > 2 * period;
      swept = now;
      if (late) return;
      for (const conn of live) {
        const t = conn.data!;
        // Paused: waiting for our own disk, not for the peer.
        if (t.paused || now - t.lastSeen < idleTimeoutMs) continue;
        if (t.answered) conn.destroy();
        else if (!t.finished) fail(conn, t, `idle for ${idleTimeoutMs / 1000} s`);
      }
    },
    period,
  );
  sweep.unref();
  return {
    get port() {
      return server.port;
    },
    address: () => server.address(),
    close: (options?: CloseOptions) => closeGracefully(server, live, options).finally(() => clearInterval(sweep)),
  };
}
