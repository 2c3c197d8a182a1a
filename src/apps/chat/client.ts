/**
 * The chat client. Interactive (a terminal): incoming lines print above the
 * prompt without clobbering what you type; `/quit` or Ctrl-D leaves; if the
 * server goes away it says so and reconnects with backoff. Non-interactive
 * (stdin is a pipe): sends each stdin line, read only as fast as the server
 * takes them, prints what arrives, and leaves once stdin ends. Lines go at
 * most `rate` a second, so a long paste or a piped file is not cut off by
 * the server's flood limit. It exits 0 only when the server confirmed the
 * end (`BYE` after `/quit`: every line before it was read). Runs on
 * muxnet's own resilient client (`muxnet/client`) and drop-in `dgram`.
 */
import readline from 'node:readline';
import * as dgram from '../../dgram';
import { connect } from '../../client';
import { FrameDecoder } from '../../fast';
import { sanitize, takeToken } from './server';

export interface ClientOptions {
  /** An IP address; over TCP a host name too (looked up again at each reconnect). */
  host: string;
  port: number;
  nick?: string;
  udp?: boolean;
  /** UDP: heartbeat period is a third of this. */
  intervalMs?: number;
  /** TCP: lines sent per second at most (default 100, the server's own default `--rate`). */
  rate?: number;
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  interactive: boolean;
}

const MAX_BACKOFF_MS = 10_000;
const QUIT = '/quit\n';
const PING = '/ping\n';
/** In the pacer's queue, our own `/ping` (every line there but these ends with a newline): it costs the server's rate as a line does. */
const CONFIRM = '/ping (ours)';
/** How long after `/quit` went out the server's `BYE` is waited for. */
const BYE_WAIT_MS = 5000;
/** Lines sent, then this long with none: a `/ping` asks the server to confirm them. */
const CONFIRM_AFTER_MS = 500;
/**
 * The longest line taken from the server. The server's own replies have no
 * bound of theirs (`/who` in a room of 10 000 members), and a relayed line
 * is as long as the server's `--max-line` allows; a longer one is dropped
 * and said so, not buffered without end.
 */
const MAX_SERVER_LINE = 16 << 20;
/**
 * What may wait for a reader of the output that does not keep up before
 * lines from the server are dropped (and said so once it drains): UDP lines
 * are lossy anyway (and anyone may forge them); TCP ones are kept longer.
 */
const MAX_UDP_BACKLOG = 1 << 20;
const MAX_TCP_BACKLOG = 64 << 20;

/**
 * Prints above the prompt, keeping what the user is typing. Once the
 * interface is closed (Ctrl-D; the goodbye may still arrive) there is no
 * prompt to keep: Node 24 throws on `prompt()` after `close()`.
 */
/** Prints a line; one `fromServer` may be dropped while the output does not keep up (the client's own notices never are). */
type Print = (line: string, fromServer?: boolean) => void;

function printer(rl: readline.Interface, opts: ClientOptions): Print {
  let prompting = opts.interactive;
  rl.on('close', () => (prompting = false));
  const out = opts.output as NodeJS.WritableStream & { writableLength?: number };
  const backlogCap = opts.udp ? MAX_UDP_BACKLOG : MAX_TCP_BACKLOG;
  let dropped = 0;
  const write = (line: string) => {
    if (!prompting) return void out.write(`${line}\n`);
    readline.clearLine(out, 0);
    readline.cursorTo(out, 0);
    out.write(`${line}\n`);
    rl.prompt(true);
  };
  return (line, fromServer = false) => {
    // Output nobody reads (a paused pipe) held every line the server sent, without end.
    if (fromServer && (out.writableLength ?? 0) > backlogCap) {
      if (dropped++ === 0) {
        out.once('drain', () => {
          write(`* ${dropped === 1 ? 'a line' : `${dropped} lines`} from the server dropped: the output did not keep up`);
          dropped = 0;
        });
      }
      return;
    }
    write(line);
  };
}

/**
 * Runs the client until it leaves; resolves with the exit code: 0, or 1 when
 * lines could not be delivered (the server was never reached, or went away
 * while they waited).
 */
export function runClient(opts: ClientOptions): Promise<number> {
  const rl = readline.createInterface({ input: opts.input, output: opts.interactive ? opts.output : undefined, terminal: opts.interactive, prompt: '> ' });
  const print = printer(rl, opts);
  return opts.udp ? udpClient(opts, rl, print) : tcpClient(opts, rl, print);
}

/** A line's first word, as the server reads a command (`/quit see you` quits). */
function command(line: string): string {
  return line.trim().split(/\s/, 1)[0];
}

function droppedNotice(count: number): string {
  return `* ${count === 1 ? 'a line' : `${count} lines`} from the server dropped: longer than ${MAX_SERVER_LINE >> 20} MiB`;
}

function tcpClient(opts: ClientOptions, rl: readline.Interface, print: Print): Promise<number> {
  return new Promise((resolve) => {
    const where = `${opts.host}:${opts.port}`;
    // Lines typed while the server is away wait in the client's queue.
    const client = connect({ host: opts.host, port: opts.port, reconnect: { initialDelay: 500, maxDelay: MAX_BACKOFF_MS } });
    const pace = new Pacer(opts.rate ?? 100);
    let decoder = new FrameDecoder('line', MAX_SERVER_LINE);
    let quitting = false;
    let opened = false;
    /** Connected now (lines sent meanwhile are handed to the connection, not queued for the next). */
    let connected = false;
    /** The server's BYE: it read every line before the /quit. */
    let confirmed = false;
    /** stdin has ended: the /quit follows the last line paced out. */
    let inputEnded = false;
    /** Lines the client's queue refused (each said so): they count as not delivered. */
    let refused = 0;
    let lastFailure: Error | undefined;
    /** A server's `ERROR …; disconnected`: why the connection that follows ends. */
    let dropped: string | undefined;
    // The server answers lines in order: its PONG to a /ping says it read every line before.
    // Lines not yet confirmed so are in doubt if the connection breaks.
    /** Lines sent since the last /ping. */
    let unconfirmed = 0;
    /** The /pings awaiting their PONG: the lines each confirms, and whether the user asked (its PONG is printed). */
    const pings: { lines: number; asked: boolean }[] = [];
    /** Lines handed to the connection that no PONG has confirmed yet. */
    const awaitingConfirmation = () => unconfirmed + pings.reduce((sum, p) => sum + p.lines, 0);
    /** Lines in doubt: sent on connections that broke before confirming them. */
    let inDoubt = 0;
    let confirmTimer: NodeJS.Timeout | undefined;
    const ping = (asked: boolean): boolean => {
      // A queue too full to take it: the lines wait for the next one.
      if (client.queued + PING.length > client.queueLimit) return false;
      client.send(PING);
      pings.push({ lines: unconfirmed, asked });
      unconfirmed = 0;
      return true;
    };
    // After a quiet moment, or every `rate` lines of a steady stream: ask (the reply is not printed).
    let asking = false;
    const ask = () => {
      if (asking || quitting || unconfirmed === 0) return;
      asking = true;
      pace.push(CONFIRM);
    };
    const confirmSoon = () => {
      clearTimeout(confirmTimer);
      if (unconfirmed >= pace.rate) ask();
      else confirmTimer = setTimeout(ask, CONFIRM_AFTER_MS).unref();
    };
    let byeTimer: NodeJS.Timeout | undefined;
    // After /quit the server answers BYE and closes; don't wait for ever if it can't.
    const waitForBye = () => (byeTimer ??= setTimeout(() => client.destroy(), BYE_WAIT_MS).unref());
    client.on('open', (conn) => {
      decoder = new FrameDecoder('line', MAX_SERVER_LINE);
      opened = true;
      connected = true;
      dropped = undefined;
      if (opts.interactive) print(`* connected to ${where}`);
      // Ahead of any queued line: the nick is about this connection.
      if (opts.nick) conn.write(`/nick ${opts.nick}\n`);
      if (quitting) waitForBye();
      pace.release();
    });
    client.on('data', (chunk) => {
      const { frames, tooLong, tooLongAt } = decoder.push(chunk);
      for (const [i, frame] of frames.entries()) {
        if (i === tooLongAt) print(droppedNotice(tooLong));
        const line = frame.toString('utf8');
        if (line === 'PING') client.send('PONG\n');
        else if (line === 'PONG' && pings.length > 0 && !pings.shift()!.asked) continue;
        // A server may be hostile: no escape sequence of its reaches the terminal.
        else print(sanitize(line), true);
        if (line === 'BYE' && quitting) confirmed = true;
        else if (line.startsWith('ERROR ') && line.endsWith('disconnected')) dropped = sanitize(line);
      }
      if (tooLongAt === frames.length) print(droppedNotice(tooLong));
    });
    client.on('overflow', ({ data }) => print(`* not sent (the queue is full): ${data.toString('utf8').trimEnd()}`));
    client.on('reconnecting', ({ delay, cause }) => {
      lastFailure = cause;
      // After /quit the server answers BYE and closes: that is the end.
      if (quitting) return client.destroy();
      pace.hold();
      // What the broken connection was handed and did not confirm (lines queued for the next one
      // count too: "may", not "did not").
      if (connected) {
        inDoubt += awaitingConfirmation();
        unconfirmed = 0;
        pings.length = 0;
      }
      connected = false;
      // Input ended while away: what is left is not sent (said at the close).
      if (inputEnded) return client.destroy();
      // Never connected yet: say why, rather than "disconnected".
      const why = dropped ? ` (${dropped})` : '';
      print(opened ? `* disconnected from ${where}${why}; reconnecting in ${delay / 1000} s` : `* cannot reach ${where} (${cause.message}); retrying in ${delay / 1000} s`);
    });
    client.on('closed', ({ unsent }) => {
      clearTimeout(byeTimer);
      clearTimeout(confirmTimer);
      pace.stop();
      // Our own /quit and /pings are no lines of the user's; lines still paced out never went.
      const queued = unsent.filter((line) => line.toString() !== QUIT && line.toString() !== PING).length;
      const lost = queued + pace.waiting.filter((line) => line !== QUIT && line !== CONFIRM).length;
      const why = dropped ?? (lastFailure ? `unreachable (${lastFailure.message})` : 'closed');
      if (lost > 0) print(`* ${lost} line${lost === 1 ? '' : 's'} not sent: ${where} ${why}`);
      // Handed to the connection, never confirmed: the server may not have read them. Its BYE
      // confirms every line of the last connection.
      const unanswered = confirmed ? 0 : Math.max(0, awaitingConfirmation() - queued);
      const doubt = inDoubt + unanswered;
      const because = unanswered > 0 ? `${where} did not confirm the end (no BYE${dropped || lastFailure ? `; ${why}` : ''})` : 'a connection broke before the server confirmed them';
      if (doubt > 0) print(`* ${doubt} line${doubt === 1 ? '' : 's'} sent may not have arrived: ${because}`);
      rl.close();
      resolve(lost + refused + doubt > 0 ? 1 : 0);
    });
    const sendQuit = () => {
      client.send(QUIT);
      if (client.state === 'open') waitForBye();
    };
    const quit = () => {
      if (quitting) return;
      quitting = true;
      // Away (waiting to reconnect): leave now. Connecting (stdin from a pipe may end
      // before the first connect does): the queued lines and the /quit go once it is open.
      if (client.state === 'reconnecting') return client.destroy();
      // A queue too full to take the /quit: it follows once the lines ahead have gone.
      if (client.queued + QUIT.length > client.queueLimit) client.once('drain', sendQuit);
      else sendQuit();
    };
    /** From a pipe, stdin is read only as fast as the lines go: at the pace, and while the queue is under half full. */
    const flowing = () => pace.waiting.length < pace.rate && client.queued <= client.queueLimit / 2;
    const resumeInput = () => {
      if (!opts.interactive && !quitting && !inputEnded && flowing()) rl.resume();
    };
    pace.onLine = (line) => {
      if (line === QUIT) {
        // What follows the /quit is not for sending.
        pace.stop();
        pace.waiting.length = 0;
        return quit();
      }
      if (line === CONFIRM) {
        asking = false;
        if (connected && unconfirmed > 0) ping(false);
        return;
      }
      if (command(line) === '/ping') refused += ping(true) ? 0 : 1;
      else if (client.send(line)) unconfirmed++;
      else refused++;
      confirmSoon();
      resumeInput();
    };
    pace.onIdle = () => inputEnded && quit();
    rl.on('line', (line) => {
      if (quitting) return;
      pace.push(command(line) === '/quit' ? QUIT : `${line}\n`);
      if (opts.interactive) rl.prompt();
      // readline hands on the rest of its chunk after pause(): the pacer's queue holds it.
      else if (!flowing()) rl.pause();
    });
    if (!opts.interactive) client.on('drain', resumeInput);
    rl.on('close', () => {
      inputEnded = true;
      if (pace.waiting.length === 0 || client.state === 'reconnecting') quit();
    });
    if (opts.interactive) rl.prompt();
  });
}

/**
 * Lines out at most `rate` a second, in a burst of at most `rate`: the
 * server's token bucket allows `rate` with a burst of twice that, so a
 * pasted or piped text of any length is never taken for a flood (until
 * 2026-12-05 a piped file past 200 lines was cut off by it, and the client
 * said "unreachable" or nothing). Held while there is no connection: what
 * is typed or piped meanwhile goes at the same pace once one is open.
 */
class Pacer {
  readonly waiting: string[] = [];
  onLine: (line: string) => void = () => {};
  /** The queue ran empty. */
  onIdle: () => void = () => {};
  /** Its token bucket (`takeToken`): a burst of one second's lines at most. */
  tokens: number;
  refilledAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  /** No connection to send on: lines wait here, not in a queue that would go out in one burst. */
  private held = true;

  constructor(readonly rate: number) {
    this.tokens = rate;
  }

  push(line: string): void {
    this.waiting.push(line);
    if (this.timer === undefined && !this.held) this.pump();
  }

  hold(): void {
    this.held = true;
    this.stop();
  }

  release(): void {
    this.held = false;
    if (this.timer === undefined) this.pump();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private pump(): void {
    this.timer = undefined;
    if (this.held) return;
    const now = Date.now();
    while (this.waiting.length > 0 && takeToken(this, this.rate, this.rate, now)) this.onLine(this.waiting.shift()!);
    if (this.held) return;
    if (this.waiting.length > 0) this.timer = setTimeout(() => this.pump(), Math.ceil(((1 - this.tokens) / this.rate) * 1000));
    else this.onIdle();
  }
}

function udpClient(opts: ClientOptions, rl: readline.Interface, print: Print): Promise<number> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(opts.host.includes(':') ? 'udp6' : 'udp4');
    let heartbeat: NodeJS.Timeout | undefined;
    let ended = false;
    /**
     * The kernel said nothing listens there (an ICMP port unreachable, as ECONNREFUSED):
     * lines sent around it were dropped. Datagrams are never confirmed otherwise.
     */
    let refused = false;
    // Every send is told its outcome: the refusal (taken by the send after the one that drew
    // it) is silent for a send with no callback, and a run of lines sent in one tick gave
    // the 'error' event no turn (one or three lines to a closed port exited 0).
    const sent = (err: Error | null) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ECONNREFUSED') refused = true;
    };
    const datagram = (text: string) => sock.send(text, sent);
    // A connected dgram socket sends without an address only once connected (after
    // the address is looked up): lines typed meanwhile wait here.
    let waiting: string[] | undefined = [];
    const send = (text: string) => (waiting ? waiting.push(text) : datagram(text));
    const leave = () => {
      clearInterval(heartbeat);
      sock.send('quit', (err) => {
        sent(err);
        sock.close();
        if (refused) print(`* nothing listened at ${opts.host}:${opts.port} at times: lines may not have arrived`);
        resolve(refused ? 1 : 0);
      });
    };
    sock.on('message', (msg) => print(sanitize(msg.toString('utf8')), true));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') refused = true;
      print(`* ${err.message}`);
    });
    sock.connect(opts.port, opts.host, (err?: Error) => {
      const lines = waiting ?? [];
      waiting = undefined;
      if (err) {
        // Nothing can be sent (the address did not resolve, say).
        print(`* ${err.message}`);
        ended = true;
        sock.close();
        rl.close();
        return resolve(1);
      }
      datagram('hb');
      for (const line of lines) datagram(line);
      heartbeat = setInterval(() => datagram('hb'), Math.max(100, (opts.intervalMs ?? 10_000) / 3));
      if (ended) leave();
    });
    rl.on('line', (line) => {
      if (line.trim() === '/quit') return rl.close();
      send(line);
      if (opts.interactive) rl.prompt();
    });
    rl.on('close', () => {
      if (ended) return;
      ended = true;
      if (!waiting) leave();
    });
    if (opts.interactive) rl.prompt();
  });
}
