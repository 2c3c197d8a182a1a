// `muxnet send` / `muxnet receive` as a user runs them: real processes, a
// real file, verified by SHA-256; a peer lying about the hash or the name
// is refused and nothing it sent is kept.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sendFileTo, startReceiver, type Received } from '../src/apps/transfer';
import { encodeHeader } from '../src/apps/transfer/protocol';
import { downPort, fixtureJson, hangingPort, loopbackName, netConnect, runCli, sleep, waitFor, type Running } from './helpers';
import { within } from './net/daemons';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'muxnet-transfer-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const run = (args: string[]): Running => runCli(args, 30_000);

/** `muxnet receive --once` (or `args`) into a fresh directory; resolves with its port once it listens. */
async function receiver(name: string, args = ['--once']): Promise<Running & { port: number; into: string }> {
  const into = fs.mkdtempSync(path.join(dir, `${name}-`));
  const r = run(['receive', '--port', '0', '--dir', into, ...args]);
  const port = await new Promise<number>((resolve, reject) => {
    r.child.stdout!.on('data', () => {
      const m = /listening on tcp 127\.0\.0\.1:(\d+)/.exec(r.output());
      if (m) resolve(Number(m[1]));
    });
    void r.exited.then((code) => reject(new Error(`exited ${code}:\n${r.output()}`)));
  });
  return { ...r, port, into };
}

/** Sends a raw header and body, returns the receiver's answer line. */
function rawSend(port: number, header: Buffer, body: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    let reply = '';
    const sock = net.connect(port, '127.0.0.1', () => sock.end(Buffer.concat([header, body])));
    sock.on('data', (d) => (reply += d));
    sock.on('close', () => resolve(reply));
    sock.on('error', reject);
  });
}

/** A file of `size` bytes of `fill` to send raw: its bytes, hash, and the header announcing it. */
function payload(name: string, size: number, fill: number) {
  const body = Buffer.alloc(size, fill);
  const sha = createHash('sha256').update(body).digest('hex');
  return { body, sha, header: encodeHeader({ name, size, sha256: sha }) };
}

describe('muxnet send / receive', () => {
  it('moves a file and both sides verify it', async () => {
    const data = Buffer.alloc(5 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 11)) & 0xff;
    const file = path.join(dir, 'payload.bin');
    fs.writeFileSync(file, data);
    const sha = createHash('sha256').update(data).digest('hex');
    const rx = await receiver('ok');
    const tx = run(['send', file, `127.0.0.1:${rx.port}`]);
    expect(await tx.exited).toBe(0);
    expect(await rx.exited).toBe(0);
    expect(tx.output()).toContain(`payload.bin (${data.length} bytes, sha256 ${sha}): verified by the receiver`);
    expect(rx.output()).toContain(`payload.bin (${data.length} bytes, sha256 ${sha}) verified`);
    expect(fs.readFileSync(path.join(rx.into, 'payload.bin')).equals(data)).toBe(true);
    expect(fs.readdirSync(rx.into)).toEqual(['payload.bin']);
  });

  it('refuses bytes that do not match the header hash, and keeps nothing', async () => {
    const rx = await receiver('bad-hash');
    const body = Buffer.from('not what was promised');
    const reply = await rawSend(rx.port, encodeHeader({ name: 'x.txt', size: body.length, sha256: 'a'.repeat(64) }), body);
    expect(reply).toBe('ERR sha256 mismatch\n');
    expect(await rx.exited).toBe(1);
    expect(rx.output()).toContain('x.txt (21 bytes) rejected: sha256 mismatch');
    expect(fs.readdirSync(rx.into)).toEqual([]);
  });

  // Found 2026-12-05 (a hunt): a rename replaced what was there, a read-only file too; of senders
  // of one name the last won, and every one heard OK.
  it('a name already there (a file or a directory) is refused, never replaced; of two senders of one new name, one stores it', async () => {
    const rx = await receiver('taken', []);
    const old = path.join(rx.into, 'taken.txt');
    fs.writeFileSync(old, 'old');
    fs.chmodSync(old, 0o444);
    fs.mkdirSync(path.join(rx.into, 'folder'));
    for (const name of ['taken.txt', 'folder']) {
      const { body, header } = payload(name, 10, 1);
      expect(await rawSend(rx.port, header, body)).toBe(`ERR "${name}" exists\n`);
    }
    expect(fs.readFileSync(old, 'utf8')).toBe('old');
    const first = payload('twice.bin', 50_000, 2);
    const second = payload('twice.bin', 50_000, 3);
    const replies = await Promise.all([first, second].map(({ header, body }) => rawSend(rx.port, header, body)));
    expect([...replies].sort()).toEqual([`ERR "twice.bin" exists\n`, expect.stringMatching(/^OK /)]);
    const stored = replies[0].startsWith('OK ') ? first : second;
    expect(fs.readFileSync(path.join(rx.into, 'twice.bin')).equals(stored.body)).toBe(true);
    expect(fs.readdirSync(rx.into).sort()).toEqual(['folder', 'taken.txt', 'twice.bin']);
    rx.child.kill('SIGTERM');
    expect(await rx.exited).toBe(0);
  });

  it('SIGTERM: no new sender, the transfer under way finishes and is stored, a stalled one is cut at the deadline', async () => {
    const rx = await receiver('drain', ['--drain-timeout', '2']);
    const { body, sha, header } = payload('late.bin', 100_000, 7);
    /** A sender that has sent the header and the first 1000 bytes. */
    const sender = async () => {
      const sock = await netConnect(rx.port);
      const state = { sock, reply: '', closed: new Promise((r) => sock.on('close', r)) };
      sock.on('data', (d) => (state.reply += d));
      sock.on('error', () => {});
      await new Promise((r) => sock.write(Buffer.concat([header, body.subarray(0, 1000)]), r));
      return state;
    };
    const live = await sender();
    const stalled = await sender();
    rx.child.kill('SIGTERM');
    await waitFor(() => /SIGTERM, stopping/.test(rx.output()), 'the stopping line');
    await expect(netConnect(rx.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    live.sock.end(body.subarray(1000));
    await live.closed;
    expect(live.reply).toBe(`OK ${sha}\n`);
    // The stalled sender hears nothing more: it is closed at the deadline, and its part file removed.
    await stalled.closed;
    expect(stalled.reply).toBe('');
    expect(await rx.exited).toBe(0);
    expect(fs.readFileSync(path.join(rx.into, 'late.bin')).equals(body)).toBe(true);
    expect(fs.readdirSync(rx.into)).toEqual(['late.bin']);
  });

  it('a second SIGTERM stops at once: the transfer under way is cut off and its part file removed', async () => {
    const rx = await receiver('again', ['--drain-timeout', '60']);
    const { body, header } = payload('cut.bin', 100_000, 8);
    const sock = await netConnect(rx.port);
    sock.on('error', () => {});
    const closed = new Promise((r) => sock.on('close', r));
    await new Promise((r) => sock.write(Buffer.concat([header, body.subarray(0, 1000)]), r));
    await waitFor(() => fs.readdirSync(rx.into).length === 1, 'the part file');
    rx.child.kill('SIGTERM');
    await waitFor(() => /SIGTERM, stopping/.test(rx.output()), 'the stopping line');
    rx.child.kill('SIGTERM');
    // Not the 60 s the first one gave.
    expect(await within(rx.exited, 'the receiver to exit', 10_000)).toBe(0);
    await closed;
    expect(rx.output()).toContain('SIGTERM again, stopping now');
    expect(fs.readdirSync(rx.into)).toEqual([]);
  });

  // Found 2026-12-05 (a hunt): between the first signal's listener and the second's there was
  // none, the default action came back, and a signal then killed it with its part files left.
  it('two SIGTERMs 250 µs apart: exit 0, the part file removed', async () => {
    for (let run = 0; run < 6; run++) {
      // Two signals that come before the first is handled are one (then the drain's deadline).
      const rx = await receiver(`twice-${run}`, ['--drain-timeout', '0.3']);
      const { body, header } = payload('cut.bin', 100_000, 8);
      const sock = await netConnect(rx.port);
      sock.on('error', () => {});
      await new Promise((r) => sock.write(Buffer.concat([header, body.subarray(0, 1000)]), r));
      await waitFor(() => fs.readdirSync(rx.into).length === 1, 'the part file');
      rx.child.kill('SIGTERM');
      const sent = process.hrtime.bigint();
      while (process.hrtime.bigint() - sent < 250_000n);
      rx.child.kill('SIGTERM');
      expect(await within(rx.exited, 'the receiver to exit', 10_000)).toBe(0);
      expect(fs.readdirSync(rx.into)).toEqual([]);
      sock.destroy();
    }
  });

  it('--idle-timeout: a silent sender is refused (before its header or mid-file, nothing kept), one that stays half-open after the answer is closed; a header a byte at a time is taken', async () => {
    const rx = await receiver('idle', ['--idle-timeout', '1']);
    const { body, sha, header } = payload('slow.bin', 50_000, 9);
    /** A sender that keeps its side open whatever it hears: only the receiver closes. */
    const sender = async () => {
      const sock = net.connect({ port: rx.port, host: '127.0.0.1', allowHalfOpen: true });
      const state = { sock, reply: '', ended: false, closed: new Promise((r) => sock.on('close', r)) };
      sock.on('data', (d) => (state.reply += d));
      sock.on('end', () => (state.ended = true));
      sock.on('error', () => {});
      await new Promise((r) => sock.once('connect', r));
      return state;
    };
    /**
     * Once the receiver has answered and ended its side, bytes are sent until
     * it has closed the connection: its kernel then resets it. (Closed while
     * still half-open, it would take them in silence for ever.)
     */
    const closedByReceiver = async (state: Awaited<ReturnType<typeof sender>>) => {
      await waitFor(() => state.ended, 'the answer and the end of the receiver side');
      const poke = setInterval(() => state.sock.write('x'), 50);
      await state.closed;
      clearInterval(poke);
    };
    const silent = await sender();
    const midFile = await sender();
    midFile.sock.write(Buffer.concat([header, body.subarray(0, 20_000)]));
    await Promise.all([closedByReceiver(silent), closedByReceiver(midFile)]);
    expect(silent.reply).toBe('ERR idle for 1 s\n');
    expect(midFile.reply).toBe('ERR idle for 1 s\n');
    await waitFor(() => fs.readdirSync(rx.into).length === 0, 'the part file to be removed');
    expect(rx.output()).toContain(`slow.bin (${body.length} bytes) rejected: idle for 1 s`);

    // Every byte of the header in its own write, a turn apart: slow, not silent.
    const byteWise = await sender();
    for (const byte of header) {
      await new Promise((r) => byteWise.sock.write(Buffer.of(byte), r));
      await new Promise((r) => setImmediate(r));
    }
    byteWise.sock.write(body);
    await closedByReceiver(byteWise);
    expect(byteWise.reply).toBe(`OK ${sha}\n`);
    expect(fs.readFileSync(path.join(rx.into, 'slow.bin')).equals(body)).toBe(true);
    rx.child.kill('SIGTERM');
    expect(await rx.exited).toBe(0);
  });

  it('idleTimeoutMs: a receiver held up longer than it does not refuse a sender whose bytes wait unread (its timers run before its reads)', async () => {
    const files: Received[] = [];
    const rx = startReceiver({ port: 0, host: '127.0.0.1', dir: fs.mkdtempSync(path.join(dir, 'stalled-')), idleTimeoutMs: 200, onFile: (f) => files.push(f) });
    const { body, sha, header } = payload('stalled.bin', 1000, 5);
    const sock = await netConnect(rx.port);
    let reply = '';
    sock.on('data', (d) => (reply += d));
    const closed = new Promise((r) => sock.on('close', r));
    sock.write(header.subarray(0, 1));
    // The first byte taken (else this proves nothing, and passes): the sender is seen then.
    await sleep(50);
    // From a setImmediate (after this turn's reads, before its timers), the next bytes reach
    // the receiver's kernel at once; this thread (the receiver's too) is then held for three
    // idle timeouts: its sweep runs before they are read.
    await new Promise((r) => setImmediate(r));
    sock.write(header.subarray(1));
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600);
    sock.end(body);
    await closed;
    expect(reply).toBe(`OK ${sha}\n`);
    expect(files.map((f) => f.error ?? 'ok')).toEqual(['ok']);
    await rx.close();
  });

  it('send --timeout: a receiver that takes the file and never answers makes send exit 1', async () => {
    const mute = net.createServer((s) => s.resume());
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const file = path.join(dir, 'mute.bin');
    fs.writeFileSync(file, Buffer.alloc(10_000, 3));
    const tx = run(['send', file, `127.0.0.1:${(mute.address() as net.AddressInfo).port}`, '--timeout', '0.3']);
    expect(await tx.exited).toBe(1);
    expect(tx.output()).toContain('no answer from the receiver within 0.3 s of the last byte');
    mute.close();
    await expect(run(['send', file, '127.0.0.1:1', '--timeout', '0']).exited).resolves.toBe(2);
  });

  // Found 2026-12-05 (a hunt): its timers and connection held send for the whole --timeout.
  it('send: a receiver that answers OK and keeps its side open does not hold send', async () => {
    const file = path.join(dir, 'kept-open.bin');
    fs.writeFileSync(file, Buffer.alloc(10_000, 6));
    const sha = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    const held: net.Socket[] = [];
    let got = 0;
    // Half-open: it keeps its side after send's FIN.
    const open = net.createServer({ allowHalfOpen: true }, (s) => {
      held.push(s);
      s.on('data', (d) => {
        got += d.length;
        if (got >= 10_000) s.write(`OK ${sha}\n`);
      });
    });
    await new Promise<void>((r) => open.listen(0, '127.0.0.1', r));
    const tx = run(['send', file, `127.0.0.1:${(open.address() as net.AddressInfo).port}`, '--timeout', '20']);
    expect(await within(tx.exited, 'send to exit after the answer', 5000)).toBe(0);
    expect(tx.output()).toContain('verified by the receiver');
    for (const s of held) s.destroy();
    open.close();
  });

  // Found 2026-12-05 (a review): after an early ERR, send went on sending the whole file.
  it('send: a refusal while the file is still leaving stops the sending; exit 1', async () => {
    const file = path.join(dir, 'refused-early.bin');
    fs.writeFileSync(file, Buffer.alloc(64 * 1024 * 1024, 7));
    let got = 0;
    const closed: Promise<unknown>[] = [];
    const refusing = net.createServer({ allowHalfOpen: true }, (s) => {
      closed.push(new Promise((r) => s.on('close', r)));
      s.on('error', () => {});
      s.once('data', () => s.write('ERR no thanks\n'));
      s.on('data', (d) => (got += d.length));
      s.on('end', () => s.end());
    });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    const tx = run(['send', file, `127.0.0.1:${(refusing.address() as net.AddressInfo).port}`]);
    expect(await tx.exited).toBe(1);
    expect(tx.output()).toContain('ERR no thanks');
    await Promise.all(closed);
    expect(got).toBeLessThan(32 * 1024 * 1024);
    fs.rmSync(file);
    refusing.close();
  });

  it('send --timeout: a receiver that stops reading, or a connect that hangs, makes send exit 1 (not wait for ever)', async () => {
    const held: net.Socket[] = [];
    // Takes the connection and never reads: the file fills the socket buffers and stops there.
    const deaf = net.createServer((s) => (s.pause(), held.push(s)));
    await new Promise<void>((r) => deaf.listen(0, '127.0.0.1', r));
    const file = path.join(dir, 'unread.bin');
    fs.writeFileSync(file, Buffer.alloc(64 * 1024 * 1024, 5));
    const tx = run(['send', file, `127.0.0.1:${(deaf.address() as net.AddressInfo).port}`, '--timeout', '0.5']);
    expect(await tx.exited).toBe(1);
    expect(tx.output()).toMatch(/the receiver took no byte for 0\.5 s \(\d+ bytes left to send\)/);
    fs.rmSync(file);
    for (const s of held) s.destroy();
    deaf.close();
    if (process.platform !== 'linux') return;
    const hanging = await hangingPort();
    try {
      const small = path.join(dir, 'small.bin');
      fs.writeFileSync(small, 'x');
      const hung = run(['send', small, `127.0.0.1:${hanging.port}`, '--timeout', '0.5']);
      expect(await hung.exited).toBe(1);
      expect(hung.output()).toContain(`no connection to 127.0.0.1:${hanging.port} within 0.5 s`);
    } finally {
      hanging.close();
    }
  });

  it('sendFileTo: a connect that throws leaves no stall timer behind (it fired later on a connection never made: an uncaught ReferenceError)', async () => {
    const file = path.join(dir, 'never-sent.bin');
    fs.writeFileSync(file, 'x');
    await expect(sendFileTo(file, '127.0.0.1', 70_000, { stallTimeoutMs: 20 })).rejects.toMatchObject({ code: 'ERR_SOCKET_BAD_PORT' });
    // Past the stall timeout: vitest fails the run on an uncaught error.
    await sleep(100);
  });

  it('send: an answer split inside a character is read whole; an endless answer line fails the send at 16 KiB, without holding the sender', async () => {
    const file = path.join(dir, 'answered.bin');
    fs.writeFileSync(file, Buffer.alloc(1000, 4));
    const answer = Buffer.from('ERR cannot store: /srv/dépôt/ü.txt\n');
    const cut = answer.indexOf(Buffer.from('é')) + 1;
    const endless = Buffer.alloc(64 * 1024, 0x41);
    let flood = false;
    let flooded = 0;
    const answering = net.createServer((s) => {
      s.on('error', () => {});
      s.setNoDelay(true);
      s.once('data', () => {
        if (flood) {
          // Without a bound, the sender kept it all (and rescanned it per chunk).
          const more = (): void => {
            while (flooded < 64 * 1024 * 1024 && s.write(endless)) flooded += endless.length;
          };
          s.on('drain', more);
          more();
          return;
        }
        s.write(answer.subarray(0, cut));
        setTimeout(() => s.end(answer.subarray(cut)), 50);
      });
    });
    await new Promise<void>((r) => answering.listen(0, '127.0.0.1', r));
    const at = `127.0.0.1:${(answering.address() as net.AddressInfo).port}`;
    const split = run(['send', file, at]);
    expect(await split.exited).toBe(1);
    expect(split.output()).toContain('ERR cannot store: /srv/dépôt/ü.txt');
    flood = true;
    const flooder = run(['send', file, at]);
    expect(await flooder.exited).toBe(1);
    expect(flooder.output()).toContain("the receiver's answer is longer than 16384 bytes");
    expect(flooded).toBeLessThan(64 * 1024 * 1024);
    answering.close();
  });

  it('refuses a name with a directory in it', async () => {
    const rx = await receiver('bad-name');
    const reply = await rawSend(rx.port, encodeHeader({ name: '../escape', size: 1, sha256: 'a'.repeat(64) }), Buffer.from('x'));
    expect(reply).toBe('ERR bad file name\n');
    rx.child.kill('SIGTERM');
    expect(await rx.exited).toBe(0);
    expect(fs.existsSync(path.join(dir, 'escape'))).toBe(false);
    expect(fs.readdirSync(rx.into)).toEqual([]);
  });

  // Found by a hunt: an early FIN was refused only at the idle timeout (30 s by default, the
  // socket and part file held meanwhile, and the wrong reason given); a zero-byte file with
  // bytes after its header was stored; a legal name of 236-255 bytes could not be written.
  it('refuses an early end at its FIN, bytes past a zero-byte file, a name over 255 bytes; stores names up to 255 bytes', async () => {
    const rx = await receiver('edges', []);
    const { body, header } = payload('cut.bin', 10, 1);
    const t0 = Date.now();
    expect(await rawSend(rx.port, header, body.subarray(0, 4))).toBe('ERR connection ended after 4 of 10 bytes\n');
    expect(await rawSend(rx.port, header.subarray(0, 6), Buffer.alloc(0))).toBe('ERR connection ended inside the header\n');
    // Well within the 30 s idle timeout: refused at the FIN.
    expect(Date.now() - t0).toBeLessThan(5000);
    const empty = payload('zero.txt', 0, 0);
    expect(await rawSend(rx.port, empty.header, Buffer.from('extra!'))).toBe('ERR more bytes than the header said\n');
    const longest = 'é'.repeat(127) + 'a';
    expect(Buffer.byteLength(longest)).toBe(255);
    const named = payload(longest, 3, 7);
    expect(await rawSend(rx.port, named.header, named.body)).toBe(`OK ${named.sha}\n`);
    const tooLong = payload('é'.repeat(128), 3, 7);
    expect(await rawSend(rx.port, tooLong.header, tooLong.body)).toBe('ERR bad file name\n');
    expect(await rawSend(rx.port, empty.header, Buffer.alloc(0))).toBe(`OK ${empty.sha}\n`);
    await waitFor(() => fs.readdirSync(rx.into).length === 2, 'only the stored files left');
    expect(fs.readdirSync(rx.into).sort()).toEqual([longest, 'zero.txt'].sort());
    expect(fs.readFileSync(path.join(rx.into, 'zero.txt')).length).toBe(0);
    rx.child.kill('SIGTERM');
    expect(await rx.exited).toBe(0);
  });

  it('a bad command line exits 2 with the usage; a missing file or a refused connection, 1', async () => {
    const usage = run(['send', 'only-one-arg']);
    expect(await usage.exited).toBe(2);
    expect(usage.output()).toContain('usage: muxnet');
    const missing = run(['send', path.join(dir, 'missing'), '127.0.0.1:1']);
    expect(await missing.exited).toBe(1);
    expect(missing.output()).toContain('ENOENT');
    const port = await downPort();
    const refused = run(['send', __filename, `127.0.0.1:${port}`]);
    expect(await refused.exited).toBe(1);
    expect(refused.output()).toContain(`connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  // Found 2026-12-05: README says HOST:PORT, and a host name was a usage error (IP addresses only).
  it('send takes a host name (looked up with dns.lookup); one that does not resolve exits 1 with the resolver\'s error', async (ctx) => {
    const file = path.join(dir, 'by-name.txt');
    fs.writeFileSync(file, 'sent to a name');
    const nowhere = run(['send', file, 'nothing.invalid:7100']);
    expect(await nowhere.exited).toBe(1);
    expect(nowhere.output()).toMatch(/muxnet send: getaddrinfo (ENOTFOUND|EAI_AGAIN) nothing\.invalid/);
    const portless = run(['send', file, 'nothing.invalid']);
    expect(await portless.exited).toBe(2);
    expect(portless.output()).toContain("expected HOST:PORT, not 'nothing.invalid'");
    const name = await loopbackName();
    // Said, not passed quietly: this machine has no name for 127.0.0.1 but localhost.
    if (!name) return ctx.skip();
    const rx = await receiver('by-name');
    const tx = run(['send', file, `${name}:${rx.port}`]);
    expect(await tx.exited).toBe(0);
    expect(tx.output()).toContain('by-name.txt (14 bytes');
    expect(await rx.exited).toBe(0);
  });

  // Found 2026-12-05: a --dir it cannot create files in was taken, and every file then refused.
  it.skipIf(process.platform !== 'linux')('receive refuses a --dir it cannot create files in, at start (exit 2), as root too', async () => {
    const rx = run(['receive', '--port', '0', '--dir', '/proc']);
    expect(await rx.exited).toBe(2);
    expect(rx.output()).toMatch(/--dir \/proc is not writable \(E[A-Z]+\)/);
    expect(rx.output()).toContain('usage: muxnet receive');
  });

  // Found 2026-12-05: names and answers are the peer's to choose, and were printed raw (a line
  // break split the log line; an escape sequence reached the terminal).
  it('a name or answer with control characters is printed escaped, on one line', async () => {
    const rx = await receiver('escaped');
    const odd = payload('two\nlines\u001b[31m.txt', 3, 0x61);
    expect(await rawSend(rx.port, odd.header, odd.body)).toBe(`OK ${odd.sha}\n`);
    expect(await rx.exited).toBe(0);
    expect(rx.output()).toContain('muxnet receive: two\\u000alines\\u001b[31m.txt (3 bytes');
    expect(fs.readdirSync(rx.into)).toEqual(['two\nlines\u001b[31m.txt']);
    const liar = net.createServer((sock) => {
      sock.on('error', () => {});
      // And the text of an escape, told from one by its backslash, doubled.
      sock.once('data', () => sock.end('ERR \u001b[2Jcleared \\u000a\r\n'));
    });
    await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
    const file = path.join(dir, 'to-liar.txt');
    fs.writeFileSync(file, 'x');
    const tx = run(['send', file, `127.0.0.1:${(liar.address() as net.AddressInfo).port}`]);
    expect(await tx.exited).toBe(1);
    expect(tx.output()).toContain('to-liar.txt (1 bytes, sha256 ');
    expect(tx.output()).toContain('): ERR \\u001b[2Jcleared \\\\u000a\\u000d\n');
    liar.close();
  });

  // Found 2026-12-05: its SIGINT/SIGTERM listeners stayed after it resolved (a program that went
  // on could no longer be stopped by a signal's default action).
  it('runReceive leaves no signal listener once it has resolved', async () => {
    expect(await fixtureJson('receive-signals.js')).toEqual({ before: 0, during: 2, after: 0, code: 0, reply: 'OK' });
  });

  it.skipIf(process.platform === 'win32')('send refuses what is not a regular file before it connects: a device, a FIFO or a directory exits 2 with the usage; a /proc file (its size says 0) exits 1', async () => {
    let connections = 0;
    const listener = net.createServer((s) => (connections++, s.destroy()));
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const at = `127.0.0.1:${(listener.address() as net.AddressInfo).port}`;
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // Bounded: /dev/zero was hashed for ever (whatever --timeout said), a FIFO with no writer waited for ever.
    for (const [file, kind] of [['/dev/zero', 'a device'], [fifo, 'a FIFO'], [dir, 'a directory']]) {
      const tx = runCli(['send', file, at, '--timeout', '1'], 5000);
      expect(await tx.exited).toBe(2);
      expect(tx.output()).toContain(`muxnet: ${file} is ${kind}, not a regular file`);
      expect(tx.output()).toContain('usage: muxnet send');
    }
    if (process.platform === 'linux') {
      // Announced as 0 bytes and hashed by what it holds, it drew the receiver's sha256 mismatch.
      const proc = runCli(['send', '/proc/self/status', at], 5000);
      expect(await proc.exited).toBe(1);
      expect(proc.output()).toContain('/proc/self/status holds more than the 0 bytes its size says');
    }
    expect(connections).toBe(0);
    listener.close();
  });
});
