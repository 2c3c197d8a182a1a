/**
 * The chat client. Interactive (a terminal): incoming lines print above the
 * prompt without clobbering what you type; `/quit` or Ctrl-D leaves; if the
 * server goes away it says so and reconnects with backoff. Non-interactive
 * (stdin is a pipe): sends each stdin line, read only as fast as the server
 * takes them, prints what arrives, and leaves once stdin ends. Runs on
 * muxnet's own resilient client (`muxnet/client`) and drop-in `dgram`.
 */
import readline from 'node:readline';
import * as dgram from '../../dgram';
import { connect } from '../../client';
import { FrameDecoder } from '../../fast';
import { sanitize } from './server';

export interface ClientOptions {
  host: string;
  port: number;
  nick?: string;
  udp?: boolean;
  /** UDP: heartbeat period is a third of this. */
  intervalMs?: number;
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  interactive: boolean;
}

const MAX_BACKOFF_MS = 10_000;
const QUIT = '/quit\n';
/**
 * The longest line taken from the server. The server's own replies have no
 * bound of theirs (`/who` in a room of 10 000 members), and a relayed line
 * is as long as the server's `--max-line` allows; a longer one is dropped
 * and said so, not buffered without end.
 */
const MAX_SERVER_LINE = 16 << 20;

/**
 * Prints above the prompt, keeping what the user is typing. Once the
 * interface is closed (Ctrl-D; the goodbye may still arrive) there is no
 * prompt to keep: Node 24 throws on `prompt()` after `close()`.
 */
function printer(rl: readline.Interface, opts: ClientOptions): (line: string) => void {
  let prompting = opts.interactive;
  rl.on('close', () => (prompting = false));
  return (line) => {
    if (!prompting) return void opts.output.write(`${line}\n`);
    readline.clearLine(opts.output, 0);
    readline.cursorTo(opts.output, 0);
    opts.output.write(`${line}\n`);
    rl.prompt(true);
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

function droppedNotice(count: number): string {
  return `* ${count === 1 ? 'a line' : `${count} lines`} from the server dropped: longer than ${MAX_SERVER_LINE >> 20} MiB`;
}

function tcpClient(opts: ClientOptions, rl: readline.Interface, print: (line: string) => void): Promise<number> {
  return new Promise((resolve) => {
    const where = `${opts.host}:${opts.port}`;
    // Lines typed while the server is away wait in the client's queue.
    const client = connect({ host: opts.host, port: opts.port, reconnect: { initialDelay: 500, maxDelay: MAX_BACKOFF_MS } });
    let decoder = new FrameDecoder('line', MAX_SERVER_LINE);
    let quitting = false;
    let opened = false;
    /** Lines the client's queue refused (each said so): they count as not delivered. */
    let refused = 0;
    let lastFailure: Error | undefined;
    // After /quit the server answers BYE and closes; don't wait for ever if it can't.
    const giveUpSoon = () => setTimeout(() => client.destroy(), 2000).unref();
    client.on('open', (conn) => {
      decoder = new FrameDecoder('line', MAX_SERVER_LINE);
      opened = true;
      if (opts.interactive) print(`* connected to ${where}`);
      // Ahead of any queued line: the nick is about this connection.
      if (opts.nick) conn.write(`/nick ${opts.nick}\n`);
      if (quitting) giveUpSoon();
    });
    client.on('data', (chunk) => {
      const { frames, tooLong, tooLongAt } = decoder.push(chunk);
      for (const [i, frame] of frames.entries()) {
        if (i === tooLongAt) print(droppedNotice(tooLong));
        const line = frame.toString('utf8');
        if (line === 'PING') client.send('PONG\n');
        // A server may be hostile: no escape sequence of its reaches the terminal.
        else print(sanitize(line));
      }
      if (tooLongAt === frames.length) print(droppedNotice(tooLong));
    });
    client.on('overflow', ({ data }) => print(`* not sent (the queue is full): ${data.toString('utf8').trimEnd()}`));
    client.on('reconnecting', ({ delay, cause }) => {
      lastFailure = cause;
      // After /quit the server answers BYE and closes: that is the end.
      if (quitting) return client.destroy();
      // Never connected yet: say why, rather than "disconnected".
      print(opened ? `* disconnected from ${where}; reconnecting in ${delay / 1000} s` : `* cannot reach ${where} (${cause.message}); retrying in ${delay / 1000} s`);
    });
    client.on('closed', ({ unsent }) => {
      // Our own /quit is no line of the user's.
      const lost = unsent.filter((line) => line.toString() !== QUIT).length;
      if (lost > 0) print(`* ${lost} line${lost === 1 ? '' : 's'} not sent: ${where} ${lastFailure ? `unreachable (${lastFailure.message})` : 'closed'}`);
      rl.close();
      resolve(lost + refused > 0 ? 1 : 0);
    });
    const sendQuit = () => {
      client.send(QUIT);
      if (client.state === 'open') giveUpSoon();
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
    rl.on('line', (line) => {
      if (line.trim() === '/quit') return quit();
      if (!client.send(`${line}\n`)) refused++;
      if (opts.interactive) rl.prompt();
      // From a pipe, stdin is read only as fast as the server takes the lines: past half
      // the queue, reading stops until it is written out. The other half takes what
      // readline has already read (it hands on the rest of its chunk after pause()).
      else if (client.queued > client.queueLimit / 2) rl.pause();
    });
    // Once quitting, stdin is done with (and the interface may be closed).
    if (!opts.interactive) client.on('drain', () => !quitting && rl.resume());
    rl.on('close', quit);
    if (opts.interactive) rl.prompt();
  });
}

function udpClient(opts: ClientOptions, rl: readline.Interface, print: (line: string) => void): Promise<number> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(opts.host.includes(':') ? 'udp6' : 'udp4');
    let heartbeat: NodeJS.Timeout | undefined;
    let ended = false;
    // A connected dgram socket sends without an address only once connected (after
    // the address is looked up): lines typed meanwhile wait here.
    let waiting: string[] | undefined = [];
    const send = (text: string) => (waiting ? waiting.push(text) : sock.send(text));
    const leave = () => {
      clearInterval(heartbeat);
      sock.send('quit', () => {
        sock.close();
        resolve(0);
      });
    };
    sock.on('message', (msg) => print(sanitize(msg.toString('utf8'))));
    sock.on('error', (err) => print(`* ${err.message}`));
    sock.connect(opts.port, opts.host, (err) => {
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
      sock.send('hb');
      for (const line of lines) sock.send(line);
      heartbeat = setInterval(() => sock.send('hb'), Math.max(100, (opts.intervalMs ?? 10_000) / 3));
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
