/**
 * `muxnet send FILE HOST:PORT`: hashes the file, sends the header, then the
 * file with `sendFile` (the kernel copies it: no byte through JavaScript),
 * and waits for the receiver's verdict (at most `answerTimeoutMs` once
 * the file has left).
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../args';
import { connect } from '../../fast';
import { validateInteger } from '../../options';
import { encodeHeader } from './protocol';

export interface SendResult {
  name: string;
  size: number;
  sha256: string;
  /** The receiver's answer line, as sent (`OK …` or `ERR …`). */
  reply: string;
}

/**
 * The hash of the `size` bytes stat gave, read up to one byte past them: a
 * file that holds more would be announced with one size and hashed by
 * another (the receiver answers a mismatch). One that holds fewer fails
 * when it is sent.
 */
async function sha256Of(file: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  let read = 0;
  for await (const chunk of createReadStream(file, { end: size })) {
    read += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
  }
  if (read > size) throw new Error(`${file} holds more than the ${size} bytes its size says (a file of /proc or /sys, or one being written)`);
  return hash.digest('hex');
}

/** An answer is one short line (`OK …`, `ERR …` with a path): a longer one is not a receiver's. */
const MAX_ANSWER = 16 * 1024;

export interface SendOptions {
  /** How long the receiver may take to answer once the whole file has left (default 30 000 ms). */
  answerTimeoutMs?: number;
  /**
   * How long the connect may take, and how long the receiver may take no
   * byte of the header or file (default 30 000 ms): a receiver that stops
   * reading does not hold the sender for ever.
   */
  stallTimeoutMs?: number;
}

export async function sendFileTo(file: string, host: string, port: number, options: SendOptions = {}): Promise<SendResult> {
  const answerTimeoutMs = validateInteger(options.answerTimeoutMs, 'options.answerTimeoutMs', 30_000, 1, 2_147_483_647);
  const stallTimeoutMs = validateInteger(options.stallTimeoutMs, 'options.stallTimeoutMs', 30_000, 1, 2_147_483_647);
  const stat = await fsp.stat(file);
  // A device, FIFO or socket has no size to announce; hashing one may never end (/dev/zero, a FIFO with no writer).
  if (!stat.isFile()) {
    const kind = stat.isDirectory() ? 'a directory' : stat.isFIFO() ? 'a FIFO' : stat.isSocket() ? 'a socket' : 'a device';
    throw new UsageError(`${file} is ${kind}, not a regular file`);
  }
  const sha256 = await sha256Of(file, stat.size);
  const name = path.basename(file);
  return new Promise((resolve, reject) => {
    const reply: Buffer[] = [];
    let replyBytes = 0;
    let done = false;
    let waiting: NodeJS.Timeout | undefined;
    // Until the last byte has left, the bytes still to send (-1 while
    // connecting) must change within `stallTimeoutMs`.
    let left = -1;
    let opened = false;
    let movedAt = Date.now();
    let stalled: NodeJS.Timeout | undefined;
    /** The whole file has left (an answer before that is a refusal: the rest is not sent). */
    let fileSent = false;
    const conn = connect(
      { host, port },
      {
        onOpen(c) {
          opened = true;
          c.write(encodeHeader({ name, size: stat.size, sha256 }));
          c.sendFile(file, { length: stat.size }).then(
            (sent) => {
              // A file that shrank since stat: the receiver would wait for the rest.
              if (sent !== stat.size) return c.destroy(new Error(`${file} changed while it was sent (${sent} of ${stat.size} bytes)`));
              fileSent = true;
              // The answer (and the close) may have come in the same turn as the last byte.
              if (done || c.closed) return;
              clearInterval(stalled);
              waiting = setTimeout(() => c.destroy(new Error(`no answer from the receiver within ${answerTimeoutMs / 1000} s of the last byte`)), answerTimeoutMs);
            },
            (err: Error) => c.destroy(err),
          );
        },
        onData(c, chunk) {
          if (done) return;
          // Bytes, decoded once the line is whole: a character split between two
          // reads stays whole, and only the new chunk is searched.
          const nl = chunk.indexOf(0x0a);
          const part = nl < 0 ? chunk : chunk.subarray(0, nl);
          replyBytes += part.length;
          if (replyBytes > MAX_ANSWER) return c.destroy(new Error(`the receiver's answer is longer than ${MAX_ANSWER} bytes`));
          reply.push(Buffer.from(part));
          if (nl < 0) return;
          done = true;
          // The answer is all: no timer, nor the connection, holds the process while the
          // receiver closes (one that kept its side open held it for the whole timeout).
          clearTimeout(waiting);
          clearInterval(stalled);
          if (fileSent) conn.end();
          else conn.destroy();
          conn.unref();
          resolve({ name, size: stat.size, sha256, reply: Buffer.concat(reply).toString('utf8') });
        },
        onClose(_, err) {
          clearTimeout(waiting);
          clearInterval(stalled);
          if (!done) reject(err ?? new Error('the receiver closed the connection without an answer'));
        },
      },
    );
    const watch = () => {
      const now = opened ? conn.bufferedAmount : -1;
      if (now !== left) {
        left = now;
        movedAt = Date.now();
      } else if (Date.now() - movedAt >= stallTimeoutMs) {
        const seconds = stallTimeoutMs / 1000;
        conn.destroy(new Error(left < 0 ? `no connection to ${host}:${port} within ${seconds} s` : `the receiver took no byte for ${seconds} s (${left} bytes left to send)`));
      }
    };
    // Started once connect() has returned (a throw from it leaves no timer), and not if its close came within the call.
    if (!conn.closed) stalled = setInterval(watch, Math.min(1000, stallTimeoutMs));
  });
}
