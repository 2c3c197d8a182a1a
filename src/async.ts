/**
 * The async API (`muxnet/async`): the `asyncio` streams of muxnet, on the
 * fast path. Reads are pulled — the reactor stops reading a connection while
 * nobody awaits it and its small read-ahead is full — and writes resolve
 * once the kernel has the bytes.
 *
 * ```ts
 * import { connect } from 'muxnet/async';
 * const conn = await connect({ port: 7000, timeout: 1000 });
 * await conn.write('ping\n');
 * for await (const line of conn.frames('line')) console.log(String(line));
 * ```
 *
 * Failures are rejections with Node's codes (`ECONNREFUSED`, `ETIMEDOUT`,
 * `ECONNRESET`, `ABORT_ERR`, …). A server's handler gets the same object
 * for an accepted connection (`this.stream` in `muxnet/server`).
 */
import { connect as fastConnect, encodeFrame, FrameDecoder, type Connection, type ConnectionHandlers, type ConnectOptions, type Framing } from './fast';
import { abortError, codedError, systemError, uvErrno } from './errors';
import { heldCopy } from './reactor';
import { toBytes, validateAbortSignal, validateHost, validateInteger, validateObject } from './options';

export type { Framing } from './fast';

/**
 * The fast API's `connect` options (with `allowHalfOpen: false`, the
 * default, this side ends when the peer's end arrives, as in node:net; set
 * it to reply after reading to the end), plus these.
 */
export interface AsyncConnectOptions extends ConnectOptions {
  /** Milliseconds to wait for the connection; then it fails with `ETIMEDOUT`. */
  timeout?: number;
  /** Aborts the connect (rejects with `ABORT_ERR`). */
  signal?: AbortSignal;
  /** Bytes read ahead while nobody awaits, before the reactor stops reading (default 16 KiB). */
  highWaterMark?: number;
}

export interface SignalOption {
  signal?: AbortSignal;
}

export interface FramesOptions extends SignalOption {
  /** The longest frame accepted (default 1 MiB); a longer one fails with `ERR_MUXNET_FRAME_TOO_LONG`. */
  maxFrame?: number;
}

const DEFAULT_HIGH_WATER_MARK = 16 * 1024;
const DEFAULT_MAX_FRAME = 1024 * 1024;

interface Waiter<V> {
  resolve(value: V): void;
  reject(err: Error): void;
}

/** A pending read: settled by data, the end, an error or its signal. */
interface Reader extends Waiter<Buffer | null> {
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** `options.signal`, checked: a bad one is the error to reject with, as Node's promise APIs do. */
function signalOf(options: SignalOption | undefined): AbortSignal | undefined | Error {
  try {
    return validateAbortSignal(validateObject(options, 'options').signal, 'options.signal');
  } catch (err) {
    return err as Error;
  }
}

/**
 * `promise`, its rejection marked handled: a write nobody awaits (the
 * README's fire-and-forget writes) that fails with the connection must not
 * end the process as an unhandled rejection — the failure reaches whoever
 * reads, and an `await` of it still throws.
 */
function quietly<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

function destroyedError(): Error {
  return codedError('Cannot call write after a stream was destroyed', 'ERR_STREAM_DESTROYED');
}

function framesBusy(): Error {
  return codedError('A frames() iterator is reading this stream: leave its loop (or call its return()) first', 'ERR_MUXNET_FRAMES_BUSY');
}

/**
 * Where `frame`, decoded from `chunk`, ends in it: after its `\n` (or
 * `\r\n`), or its payload. A frame that started in earlier chunks (only a
 * chunk's first can) has `before` of its bytes there.
 */
function frameEnd(framing: Framing, chunk: Buffer, frame: Buffer, before: number): number {
  const whole = frame.buffer === chunk.buffer && frame.byteOffset >= chunk.byteOffset && frame.byteOffset + frame.length <= chunk.byteOffset + chunk.length;
  if (framing === 'length') return whole ? frame.byteOffset - chunk.byteOffset + frame.length : frame.length + 4 - before;
  if (!whole) return chunk.indexOf(0x0a) + 1;
  const end = frame.byteOffset - chunk.byteOffset + frame.length;
  return end + (chunk[end] === 0x0d ? 2 : 1);
}

/**
 * A TCP connection read with `await` and `for await`. Reading is pulled:
 * once `highWaterMark` bytes wait unread, the reactor stops reading this
 * socket (the kernel's buffers fill and the peer's writes slow down) until
 * the next `read()`.
 */
export class AsyncConnection implements AsyncIterable<Buffer> {
  /** The fast-API connection underneath (addresses, `setNoDelay`, …). */
  readonly connection: Connection<unknown>;
  private readonly highWaterMark: number;
  private readonly chunks: Buffer[] = [];
  private head = 0;
  private unread = 0;
  private paused = false;
  private ended = false;
  private closed = false;
  /** Bytes dropped since `discardInput()` (-1: not discarding). */
  private discarded = -1;
  private error: Error | undefined;
  private readonly readers: Reader[] = [];
  /** A frames() iterator has begun and not yet left its loop: it holds a partial frame. */
  private decoding = false;
  private writers: Waiter<void>[] = [];
  private opening: Waiter<AsyncConnection> | undefined;

  /** @internal */
  constructor(connection: Connection<unknown>, highWaterMark = DEFAULT_HIGH_WATER_MARK, opening?: Waiter<AsyncConnection>) {
    this.connection = connection;
    this.highWaterMark = highWaterMark;
    this.opening = opening;
  }

  get remoteAddress(): string | undefined {
    return this.connection.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.connection.remotePort;
  }

  /** Bytes received and not yet read. */
  get readableLength(): number {
    return this.unread;
  }

  /** Whether the reactor has stopped reading this socket for want of a reader. */
  get readPaused(): boolean {
    return this.paused;
  }

  /**
   * The next chunk received, or `null` after the peer's end (with
   * `allowHalfOpen`, this side stays open for writing until `end()`). Data that
   * arrived before an error is read first; then the error rejects.
   */
  read(options?: SignalOption): Promise<Buffer | null> {
    const signal = signalOf(options);
    if (signal instanceof Error) return Promise.reject(signal);
    // The frame iterator holds bytes read ahead of what it yielded: a read now would skip them.
    if (this.decoding) return Promise.reject(framesBusy());
    return this.nextChunk(signal);
  }

  private nextChunk(signal: AbortSignal | undefined): Promise<Buffer | null> {
    if (this.head < this.chunks.length) return Promise.resolve(this.take());
    if (this.error) return Promise.reject(this.error);
    if (this.ended || this.closed) return Promise.resolve(null);
    if (signal?.aborted) return Promise.reject(abortError(signal.reason));
    this.setPaused(false);
    return new Promise((resolve, reject) => {
      const reader: Reader = { resolve, reject, signal, onAbort: undefined };
      if (signal) {
        reader.onAbort = () => {
          const at = this.readers.indexOf(reader);
          if (at >= 0) this.readers.splice(at, 1);
          reject(abortError(signal.reason));
        };
        signal.addEventListener('abort', reader.onAbort, { once: true });
      }
      this.readers.push(reader);
    });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    for (let chunk = await this.read(); chunk !== null; chunk = await this.read()) yield chunk;
  }

  /**
   * The stream cut into frames (`'line'`: without the `\n`; `'length'`:
   * without the 4-byte header), decoded in Rust. One frame iterator at a
   * time (bytes of a partial frame stay in it: a second one begun before the
   * first has left its loop fails with `ERR_MUXNET_FRAMES_BUSY`, as does a
   * `read()` meanwhile; one driven by hand with `next()` is left by its
   * `return()`); leaving its loop gives the bytes after the last frame it
   * yielded back to `read()`. Ends with the
   * stream; an unfinished frame at the end fails with
   * `ERR_MUXNET_INCOMPLETE_FRAME`.
   */
  frames(framing: Framing, options?: FramesOptions): AsyncGenerator<Buffer, void, undefined> {
    const opts = validateObject(options, 'options') as FramesOptions;
    const maxFrame = validateInteger(opts.maxFrame, 'options.maxFrame', DEFAULT_MAX_FRAME, 1, 0xffffffff);
    const decoder = new FrameDecoder(framing, maxFrame);
    return this.decode(decoder, framing, maxFrame, { signal: opts.signal });
  }

  private async *decode(decoder: FrameDecoder, framing: Framing, maxFrame: number, read: SignalOption): AsyncGenerator<Buffer, void, undefined> {
    const signal = signalOf(read);
    if (signal instanceof Error) throw signal;
    // Left at a frame (break, return, a throw in its body), the loop gives back the bytes after
    // it: `chunk` from `rest` on. Left while it waits for bytes (an abort), the decoder's.
    let chunk: Buffer | null = null;
    let rest = -1;
    let waiting = false;
    // Two decoders taking turns at the reads would each see half the stream: garbled frames.
    if (this.decoding) throw framesBusy();
    this.decoding = true;
    try {
      for (;;) {
        waiting = true;
        chunk = await this.nextChunk(signal);
        waiting = false;
        if (chunk === null) break;
        // Of a frame completed by this chunk, the bytes that came before it.
        const before = decoder.buffered;
        const { frames, tooLong, tooLongAt } = decoder.push(chunk);
        const good = tooLong > 0 ? tooLongAt : frames.length;
        for (let i = 0; i < good; i++) {
          rest = frameEnd(framing, chunk, frames[i], before);
          yield frames[i];
        }
        // Not kept while the next read waits: the decoder has what is needed of it.
        rest = -1;
        chunk = null;
        // A line past maxFrame fails now, not at its newline: its bytes are not kept meanwhile,
        // and a stream that ends inside it ends inside a bad frame, not cleanly.
        // The bad frame and the lines after it in this chunk are never read as good.
        if (tooLong > 0 || decoder.dropping > 0) throw codedError(`A frame is longer than maxFrame (${maxFrame} bytes)`, 'ERR_MUXNET_FRAME_TOO_LONG');
      }
      if (decoder.buffered > 0) throw codedError(`The stream ended inside a frame (${decoder.buffered} bytes)`, 'ERR_MUXNET_INCOMPLETE_FRAME');
    } finally {
      this.decoding = false;
      // Read next, by read() or another frames(). A frame spanning reads is kept by the decoder
      // alone (its own memory, not views pinning the read slabs its pieces came in).
      const back = rest >= 0 ? chunk!.subarray(rest) : waiting && decoder.buffered > 0 ? decoder.pending() : undefined;
      if (back !== undefined && back.length > 0) this.unshift(back);
    }
  }

  /** Puts `bytes` back in front of what is unread. */
  private unshift(bytes: Buffer): void {
    const reader = this.settleReader();
    if (reader) return reader.resolve(bytes);
    if (this.head > 0) this.chunks[--this.head] = heldCopy(bytes);
    else this.chunks.unshift(heldCopy(bytes));
    this.unread += bytes.length;
    if (this.unread >= this.highWaterMark) this.setPaused(true);
  }

  /**
   * Sends `data`; resolves once the kernel has all of it (at once, or when
   * the queue drains). Aborting a write that is still queued destroys the
   * connection: its bytes may be half sent.
   */
  write(data: Uint8Array | string, options?: SignalOption): Promise<void> {
    const signal = signalOf(options);
    if (signal instanceof Error) return Promise.reject(signal);
    let bytes: Uint8Array;
    try {
      // A bad argument is named first, in any state, as node:net's write() does.
      bytes = toBytes(data, 'data');
    } catch (err) {
      return Promise.reject(err);
    }
    if (signal?.aborted) return Promise.reject(abortError(signal.reason));
    if (this.closed || this.connection.closed) return quietly(Promise.reject(this.error ?? destroyedError()));
    try {
      if (this.connection.write(bytes)) return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
    return quietly(new Promise((resolve, reject) => {
      if (!signal) {
        this.writers.push({ resolve, reject });
        return;
      }
      const onAbort = () => {
        const err = abortError(signal.reason);
        reject(err);
        this.destroy(err);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = () => signal.removeEventListener('abort', onAbort);
      this.writers.push({
        resolve: () => (settle(), resolve()),
        reject: (err) => (settle(), reject(err)),
      });
    }));
  }

  /** One frame: `payload` with its delimiter or length header, as `frames()` reads it. */
  writeFrame(framing: Framing, payload: Uint8Array | string, options?: SignalOption): Promise<void> {
    let frame: Buffer;
    try {
      frame = encodeFrame(framing, payload);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.write(frame, options);
  }

  /**
   * Half-closes after the queued bytes (writing `data` first); resolves
   * once they and the FIN are with the kernel. Reading goes on until the
   * peer ends too.
   */
  end(data?: Uint8Array | string): Promise<void> {
    // Data after the close fails as `write()` fails; a bare end is done already.
    if (this.closed) return data !== undefined ? this.write(data) : this.error ? quietly(Promise.reject(this.error)) : Promise.resolve();
    try {
      this.connection.end(data);
    } catch (err) {
      return Promise.reject(err);
    }
    // Closed by now (writing `data` failed): the close, next tick, settles it.
    if (!this.connection.closed && this.connection.bufferedAmount === 0) return Promise.resolve();
    return quietly(new Promise((resolve, reject) => this.writers.push({ resolve, reject })));
  }

  /**
   * Closes now, dropping what is queued both ways (writes not sent, bytes
   * read ahead and not yet taken); pending and later reads and writes fail
   * with `err` (if given; reads give `null` without one).
   */
  destroy(err?: Error): void {
    // What fails from now on fails with `err`, before the close arrives; after a clean close
    // too while read-ahead was left (else the next read() handed it out, and the error was lost).
    if (!this.connection.closed || this.unread > 0) this.error ??= err;
    this.chunks.length = this.head = this.unread = 0;
    this.connection.destroy(err);
  }

  private take(): Buffer {
    const chunk = this.chunks[this.head];
    this.chunks[this.head++] = undefined as never;
    if (this.head === this.chunks.length) this.chunks.length = this.head = 0;
    this.unread -= chunk.length;
    if (this.unread < this.highWaterMark) this.setPaused(false);
    return chunk;
  }

  private setPaused(on: boolean): void {
    if (this.paused === on || this.closed) return;
    this.paused = on;
    if (on) this.connection.pause();
    else this.connection.resume();
  }

  private settleReader(): Reader | undefined {
    const reader = this.readers.shift();
    if (reader?.onAbort) reader.signal!.removeEventListener('abort', reader.onAbort);
    return reader;
  }

  /** @internal */
  onOpen(): void {
    this.opening?.resolve(this);
    this.opening = undefined;
  }

  /** @internal Whether the peer's end has come (a server's lingering close asks). */
  get inputEnded(): boolean {
    return this.ended;
  }

  /**
   * @internal Drops what is unread and all input from now on, reading on;
   * returns a count of the bytes dropped so far.
   */
  discardInput(): () => number {
    this.chunks.length = this.head = this.unread = 0;
    this.discarded = 0;
    this.setPaused(false);
    return () => this.discarded;
  }

  /** @internal */
  onData(chunk: Buffer): void {
    if (this.discarded >= 0) {
      this.discarded += chunk.length;
      return;
    }
    const reader = this.settleReader();
    if (reader) return reader.resolve(chunk);
    // Held until read: a copy that pins no read slab (see heldCopy).
    this.chunks.push(heldCopy(chunk));
    this.unread += chunk.length;
    if (this.unread >= this.highWaterMark) this.setPaused(true);
  }

  /** @internal */
  onDrain(): void {
    const writers = this.writers;
    this.writers = [];
    for (const w of writers) w.resolve();
  }

  /** @internal */
  onEnd(): void {
    this.ended = true;
    for (let r = this.settleReader(); r; r = this.settleReader()) r.resolve(null);
  }

  /** @internal */
  onClose(err?: Error): void {
    this.closed = true;
    this.error ??= err;
    if (this.opening) {
      this.opening.reject(err ?? destroyedError());
      this.opening = undefined;
    }
    for (let r = this.settleReader(); r; r = this.settleReader()) {
      if (err) r.reject(err);
      else r.resolve(null);
    }
    const writers = this.writers;
    this.writers = [];
    // A clean close sent everything queued (the FIN goes after it); one
    // that `destroy()` made (here or on `this.connection`) dropped it.
    for (const w of writers) {
      if (err) w.reject(err);
      else if (this.connection.destroyed) w.reject(destroyedError());
      else w.resolve();
    }
  }
}

/** Routes the fast API's events to the `AsyncConnection` in `conn.data`. */
const HANDLERS: ConnectionHandlers<AsyncConnection> = {
  onOpen: (conn) => conn.data!.onOpen(),
  onData: (conn, chunk) => conn.data!.onData(chunk),
  onDrain: (conn) => conn.data!.onDrain(),
  onEnd: (conn) => conn.data!.onEnd(),
  onClose: (conn, err) => conn.data!.onClose(err),
};

/**
 * Connects over TCP; resolves once connected. Rejects with the connect
 * error (`ECONNREFUSED`, …), `ETIMEDOUT` after `timeout` ms, or
 * `ABORT_ERR` when `signal` aborts.
 */
export async function connect(options: AsyncConnectOptions): Promise<AsyncConnection> {
  const opts = validateObject(options, 'options') as AsyncConnectOptions;
  const timeout = validateInteger(opts.timeout, 'options.timeout', 0, 0, 2 ** 31 - 1);
  const highWaterMark = validateInteger(opts.highWaterMark, 'options.highWaterMark', DEFAULT_HIGH_WATER_MARK, 0, 2 ** 31 - 1);
  const signal = validateAbortSignal(opts.signal, 'options.signal');
  if (signal?.aborted) throw abortError(signal.reason);
  const { timeout: _t, signal: _s, highWaterMark: _h, ...connectOptions } = opts;
  const conn = fastConnect<AsyncConnection>(connectOptions, HANDLERS);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<AsyncConnection>((resolve, reject) => {
      conn.data = new AsyncConnection(conn as Connection<unknown>, highWaterMark, { resolve, reject });
      if (timeout > 0) {
        timer = setTimeout(() => conn.destroy(systemError(uvErrno('ETIMEDOUT'), 'connect', opts.path ?? validateHost(opts.host), opts.port)), timeout);
      }
      if (signal) {
        onAbort = () => conn.destroy(abortError(signal.reason));
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  } finally {
    clearTimeout(timer);
    if (onAbort) signal!.removeEventListener('abort', onAbort);
  }
}
