// The README's JavaScript examples, run as a user would: each block is a
// program that asserts its own results and must exit 0 by itself.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { adopt, bind, broadcast, connect, discardTransfer, encodeFrame, FrameDecoder, listen, reportStats, type Connection } from '../src/fast';
import { closeGracefully, LiveSet } from '../src/server';

const root = path.join(__dirname, '..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
const run = promisify(execFile);

describe('README examples', () => {
  it('has examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4);
  });

  it.each(blocks.map((code, i) => [i + 1, code]))('example %i runs and exits by itself', async (_n, code) => {
    // Run from the package root so `require('muxnet/…')` resolves to this package.
    const { stderr } = await run(process.execPath, ['-e', code as string], { cwd: root, timeout: 10_000 });
    expect(stderr).toBe('');
  });
});

// The Reference's functions, called with what a user may get wrong: each throws (or rejects
// with) Node's error, with its code, at the call: never the native layer's own message
// (`Get TypedArray info failed`), a TypeError without a code, or a 1 ms timer.
describe("the fast API's argument errors", () => {
  const type = (name: string) => expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining(`"${name}"`) });
  const range = (name: string) => expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining(`"${name}"`) });

  it('write(), send() and broadcast() take a string or a Uint8Array, and name the argument', async () => {
    let heard = '';
    let onEnd!: () => void;
    const ended = new Promise<void>((resolve) => (onEnd = resolve));
    const server = listen({ port: 0 }, { onData: (_conn, chunk) => void (heard += chunk), onEnd: () => onEnd() });
    const conn = await new Promise<Connection>((resolve, reject) => {
      connect({ port: server.port }, { onOpen: resolve, onClose: (_c, err) => err && reject(err) });
    });
    const udp = bind({ port: 0 }, {});
    try {
      for (const bad of [5, undefined, {}, new Uint16Array(2), new ArrayBuffer(2)]) {
        expect(() => conn.write(bad as never)).toThrow(type('data'));
        expect(() => udp.send(bad as never, 9, '127.0.0.1')).toThrow(type('data'));
        expect(() => broadcast([conn], bad as never)).toThrow(type('data'));
      }
      expect(() => broadcast(undefined as never, 'x')).toThrow(type('connections'));
      expect(() => broadcast(null as never, 'x')).toThrow(type('connections'));
      // A bad member fails the whole call before anything is sent, to anyone.
      expect(() => broadcast([conn, { token: 1 } as never], 'lost')).toThrow(type('connections'));
      conn.end('sent');
      await ended;
      expect(heard).toBe('sent');
    } finally {
      udp.close();
      conn.destroy();
      server.close();
    }
  });

  it('FrameDecoder.push() and encodeFrame() check the bytes before the native codec does', () => {
    const decoder = new FrameDecoder('line', 16);
    expect(() => decoder.push('a\n' as never)).toThrow(type('chunk'));
    expect(() => decoder.push(undefined as never)).toThrow(type('chunk'));
    expect(decoder.push(Buffer.from('a\n')).frames.map(String)).toEqual(['a']);
    expect(() => encodeFrame('line', 5 as never)).toThrow(type('payload'));
    expect(() => encodeFrame('line', 'a\nb')).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining("'payload'") }));
    expect(() => encodeFrame('length', 'abc', 2)).toThrow(range('payload.byteLength'));
    expect(encodeFrame('length', 'ab', 2)).toEqual(Buffer.from([0, 0, 0, 2, 0x61, 0x62]));
  });

  it('reportStats() takes a label and a period setInterval can keep', () => {
    expect(() => reportStats(undefined as never, undefined, 1)).toThrow(type('label'));
    expect(() => reportStats('x', undefined, '1' as never)).toThrow(type('seconds'));
    // Each would otherwise print every millisecond.
    for (const bad of [NaN, 0, -1, Infinity, 3e6]) expect(() => reportStats('x', undefined, bad)).toThrow(range('seconds'));
    clearInterval(reportStats('x', undefined, 2_147_483));
  });

  it('listen() and connect() take a path or a port and host, not both (one was ignored)', () => {
    const value = (name: string) => expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining(`'options.${name}' cannot be given with options.path`) });
    const socketPath = path.join(os.tmpdir(), `muxnet-readme-${process.pid}.sock`);
    expect(() => listen({ path: socketPath, port: 0 }, {})).toThrow(value('port'));
    expect(() => listen({ path: socketPath, host: '127.0.0.1' }, {})).toThrow(value('host'));
    expect(() => connect({ path: socketPath, port: 7000 } as never, {})).toThrow(value('port'));
    expect(existsSync(socketPath)).toBe(false);
  });

  it('adopt() and discardTransfer() need a ticket', () => {
    expect(() => adopt(undefined as never, {})).toThrow(type('ticket'));
    expect(() => discardTransfer(undefined as never)).toThrow(type('ticket'));
    expect(() => adopt(-1, {})).toThrow(range('ticket'));
  });

  it("LiveSet.drain() and closeGracefully() check their arguments (muxnet/server)", async () => {
    const live = new LiveSet<{ destroy(): void }>();
    expect(() => live.drain(NaN, () => {})).toThrow(range('timeout'));
    expect(() => live.drain('5' as never, () => {})).toThrow(type('timeout'));
    expect(() => live.drain(5, undefined as never)).toThrow(type('expire'));
    await expect(closeGracefully(undefined as never, live, {})).rejects.toEqual(type('listener'));
    await expect(closeGracefully({ close() {} }, [] as never, {})).rejects.toEqual(type('live'));
    await expect(closeGracefully({ close() {} }, live, { timeout: -1 })).rejects.toEqual(range('options.timeout'));
  });

  // Found by a hunt (2026-12-05): a drain once settled stayed settled, and its deadline stayed.
  it('LiveSet.drain() after an earlier drain finished is a drain of its own: it waits, then expires the members left', async () => {
    const live = new LiveSet<string>();
    await live.drain(0, () => {});
    live.add('late');
    const expired: string[] = [];
    let done = false;
    const drained = live.drain(50, (m) => (expired.push(m), live.delete(m))).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 10));
    expect([done, live.size]).toEqual([false, 1]);
    await drained;
    expect([expired, live.size]).toEqual([['late'], 0]);
    // And once more, after a drain that waited.
    live.add('later');
    const again = live.drain(0, (m) => (expired.push(m), live.delete(m)));
    expect(again).toBeInstanceOf(Promise);
    await again;
    expect(expired).toEqual(['late', 'later']);
  });
});

describe('FrameDecoder and a hostile length header', () => {
  // The README: a frame over maxFrame is dropped unbuffered. One within it used to be reserved
  // whole at its header: 4 bytes from a peer, and an allocation of up to 4 GiB that, where the
  // address space or the overcommit policy refuses it, aborts the process.
  it.runIf(process.platform === 'linux')('costs the bytes that came, not the length announced: the process lives', async () => {
    const code = `const { FrameDecoder } = require('muxnet/fast');
const decoder = new FrameDecoder('length', 0xffffffff);
decoder.push(Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3]));
console.log(decoder.buffered);`;
    // An address space smaller than the frame announced (about 4 GiB).
    const { stdout } = await run('sh', ['-c', 'ulimit -v 3000000 && exec "$0" -e "$1"', process.execPath, code], { cwd: root, timeout: 10_000 });
    expect(stdout).toBe('7\n'); // its header and 3 bytes

  });
});
