// A chat client for tests: a real node:net socket speaking the line protocol.
import nodeNet from 'node:net';
import { FrameDecoder } from '../../src/fast';
import { waitFor } from '../helpers';

/** A line-protocol client that records every line it receives. */
export class LineClient {
  readonly lines: string[] = [];
  closed = false;
  private readonly decoder = new FrameDecoder('line', 1 << 20);
  private constructor(readonly sock: nodeNet.Socket) {
    sock.on('data', (chunk) => {
      for (const f of this.decoder.push(chunk).frames) this.lines.push(f.toString());
    });
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => {});
  }

  static async connect(port: number): Promise<LineClient> {
    const sock = nodeNet.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const c = new LineClient(sock);
    await waitFor(() => c.lines.some((l) => l.startsWith('WELCOME')), 'the welcome line');
    return c;
  }

  say(line: string): void {
    this.sock.write(`${line}\n`);
  }

  /** Sends a command and waits for the first reply line that matches. */
  async ask(line: string, reply: RegExp, ms?: number): Promise<string> {
    const from = this.lines.length;
    this.say(line);
    return this.expect(reply, `a reply to ${line} matching ${reply}`, from, ms);
  }

  /** Waits for the first line from index `from` on that matches `pattern`, and returns it. */
  async expect(pattern: RegExp, what = `a line matching ${pattern}`, from = 0, ms?: number): Promise<string> {
    const match = () => this.lines.slice(from).find((l) => pattern.test(l));
    await waitFor(() => match() !== undefined, what, ms);
    return match()!;
  }

  chat(): string[] {
    return this.lines.filter((l) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ [^*]/.test(l));
  }
}
