/**
 * The chat client. Interactive (a terminal): incoming lines print above the
 * prompt without clobbering what you type; `/quit` or Ctrl-D leaves; if the
 * server goes away it says so and reconnects with backoff. Non-interactive
 * (stdin is a pipe): sends each stdin line, prints what arrives, and leaves
 * once stdin ends. Runs on muxnet's own resilient client (`muxnet/client`)
 * and drop-in `dgram`.
 */
import readline from 'node:readline';
import * as dgram from '../../dgram';
import { connect } from '../../client';
import { FrameDecoder } from '../../fast';

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

export function runClient(opts: ClientOptions): Promise<void> {
  const rl = readline.createInterface({ input: opts.input, output: opts.interactive ? opts.output : undefined, terminal: opts.interactive, prompt: '> ' });
  const print = printer(rl, opts);
  return opts.udp ? udpClient(opts, rl, print) : tcpClient(opts, rl, print);
}

function tcpClient(opts: ClientOptions, rl: readline.Interface, print: (line: string) => void): Promise<void> {
  return new Promise((resolve) => {
    const where = `${opts.host}:${opts.port}`;
    // Lines typed while the server is away wait in the client's queue.
    const client = connect({ host: opts.host, port: opts.port, reconnect: { initialDelay: 500, maxDelay: MAX_BACKOFF_MS } });
    let decoder = new FrameDecoder('line', 1 << 16);
    let quitting = false;
    client.on('open', (conn) => {
      decoder = new FrameDecoder('line', 1 << 16);
      if (opts.interactive) print(`* connected to ${where}`);
      // Ahead of any queued line: the nick is about this connection.
      if (opts.nick) conn.write(`/nick ${opts.nick}\n`);
    });
    client.on('data', (chunk) => {
      for (const frame of decoder.push(chunk).frames) {
        const line = frame.toString('utf8');
        if (line === 'PING') client.send('PONG\n');
        else print(line);
      }
    });
    client.on('overflow', ({ data }) => print(`* not sent (the queue is full): ${data.toString('utf8').trimEnd()}`));
    client.on('reconnecting', ({ delay }) => {
      // After /quit the server answers BYE and closes: that is the end.
      if (quitting) return client.destroy();
      print(`* disconnected from ${where}; reconnecting in ${delay / 1000} s`);
    });
    client.on('closed', () => {
      rl.close();
      resolve();
    });
    const quit = () => {
      if (quitting) return;
      quitting = true;
      if (client.state !== 'open') return client.destroy();
      client.send('/quit\n');
      // The server answers BYE and closes; don't wait for ever if it can't.
      setTimeout(() => client.destroy(), 2000).unref();
    };
    rl.on('line', (line) => {
      if (line.trim() === '/quit') return quit();
      client.send(`${line}\n`);
      if (opts.interactive) rl.prompt();
    });
    rl.on('close', quit);
    if (opts.interactive) rl.prompt();
  });
}

function udpClient(opts: ClientOptions, rl: readline.Interface, print: (line: string) => void): Promise<void> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(opts.host.includes(':') ? 'udp6' : 'udp4');
    sock.on('message', (msg) => print(msg.toString('utf8')));
    sock.on('error', (err) => print(`* ${err.message}`));
    sock.connect(opts.port, opts.host);
    sock.send('hb');
    const heartbeat = setInterval(() => sock.send('hb'), Math.max(100, (opts.intervalMs ?? 10_000) / 3));
    rl.on('line', (line) => {
      if (line.trim() === '/quit') return rl.close();
      sock.send(line);
      if (opts.interactive) rl.prompt();
    });
    rl.on('close', () => {
      clearInterval(heartbeat);
      sock.send('quit', () => {
        sock.close();
        resolve();
      });
    });
    if (opts.interactive) rl.prompt();
  });
}
