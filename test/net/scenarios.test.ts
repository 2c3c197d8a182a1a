// One scenario suite, run against node:net itself and against muxnet's
// drop-in layer on each backend: every expectation is checked against Node.
import { once } from 'node:events';
import nodeNet from 'node:net';
import { describe, expect, it } from 'vitest';
import * as muxnet from '../../src/net';

type Net = typeof nodeNet;
const IMPLS: [string, Net, string | undefined][] = [
  ['node:net', nodeNet, undefined],
  ['muxnet (mio)', muxnet as unknown as Net, 'mio'],
  ['muxnet (poll)', muxnet as unknown as Net, 'poll'],
  ['muxnet (select)', muxnet as unknown as Net, 'select'],
];

describe.each(IMPLS)('%s', (_name, net, backend) => {
  // node:net ignores the muxnet-only `backend` option.
  const serverOpts = (extra: Record<string, unknown> = {}) => ({ backend, ...extra }) as nodeNet.ServerOpts;
  const listening = async (server: nodeNet.Server, ...args: unknown[]) => {
    (server.listen as (...a: unknown[]) => void)(...(args.length ? args : [0, '127.0.0.1']));
    await once(server, 'listening');
    return (server.address() as nodeNet.AddressInfo).port;
  };
  const dial = (port: number, extra: Record<string, unknown> = {}) => net.connect({ port, host: '127.0.0.1', backend, ...extra } as nodeNet.NetConnectOpts);

  it('emits connect, ready, data, end, close in node:net order', async () => {
    const events: string[] = [];
    const server = net.createServer(serverOpts(), (s) => {
      s.on('data', (d) => s.write(d));
      s.on('end', () => events.push('server end'));
      s.on('close', (hadError) => events.push(`server close ${hadError}`));
    });
    const port = await listening(server);
    const c = dial(port);
    c.on('connect', () => events.push('connect'));
    c.on('ready', () => {
      events.push('ready');
      c.write('hello');
    });
    c.on('data', (d) => {
      events.push(`data ${d}`);
      c.end();
    });
    c.on('end', () => events.push('end'));
    await once(c, 'close');
    events.push('close');
    await new Promise((r) => server.close(r));
    expect(events).toEqual(['connect', 'ready', 'data hello', 'server end', 'server close false', 'end', 'close']);
  });

  it('reports ECONNREFUSED with code, errno, syscall, address, port, then close(true)', async () => {
    const probe = nodeNet.createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as nodeNet.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const c = dial(port);
    const order: string[] = [];
    const [err] = (await once(c, 'error')) as [NodeJS.ErrnoException & { address: string; port: number }];
    order.push('error');
    const [hadError] = await once(c, 'close');
    order.push(`close ${hadError}`);
    expect(order).toEqual(['error', 'close true']);
    expect(err).toMatchObject({ code: 'ECONNREFUSED', errno: -111, syscall: 'connect', address: '127.0.0.1', port });
    expect(err.message).toBe(`connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it('emits EADDRINUSE on the server like node:net', async () => {
    const first = net.createServer(serverOpts());
    const port = await listening(first);
    const second = net.createServer(serverOpts());
    second.listen(port, '127.0.0.1');
    const [err] = (await once(second, 'error')) as [NodeJS.ErrnoException & { address: string; port: number }];
    expect(err).toMatchObject({ code: 'EADDRINUSE', errno: -98, syscall: 'listen', address: '127.0.0.1', port });
    expect(err.message).toBe(`listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
    expect(second.listening).toBe(false);
    await new Promise((r) => first.close(r));
  });

  it('accepts every listen() form', async () => {
    for (const args of [[0, '127.0.0.1'], [{ port: 0, host: '127.0.0.1' }], [0], []]) {
      const server = net.createServer(serverOpts(), (s) => s.end('hi'));
      const done = new Promise<void>((r) => (server.listen as (...a: unknown[]) => void)(...args, () => r()));
      await done;
      const addr = server.address() as nodeNet.AddressInfo;
      expect(addr.port).toBeGreaterThan(0);
      if (args.length === 0 || (args.length === 1 && typeof args[0] === 'number')) expect(addr).toMatchObject({ address: '::', family: 'IPv6' });
      const c = dial(addr.port);
      const [data] = await once(c, 'data');
      expect(String(data)).toBe('hi');
      c.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('keeps a half-open connection when allowHalfOpen is set', async () => {
    const server = net.createServer(serverOpts({ allowHalfOpen: true }), (s) => {
      s.resume();
      s.on('end', () => s.end('late reply'));
    });
    const port = await listening(server);
    const c = dial(port);
    await once(c, 'connect');
    c.end();
    const chunks: Buffer[] = [];
    c.on('data', (d) => chunks.push(d));
    await once(c, 'end');
    expect(Buffer.concat(chunks).toString()).toBe('late reply');
    await once(c, 'close');
    await new Promise((r) => server.close(r));
  });

  it('emits timeout after inactivity and keeps the socket open', async () => {
    const server = net.createServer(serverOpts(), () => {});
    const port = await listening(server);
    const c = dial(port);
    await once(c, 'connect');
    const start = Date.now();
    c.setTimeout(60);
    await once(c, 'timeout');
    expect(Date.now() - start).toBeGreaterThanOrEqual(50);
    expect(c.destroyed).toBe(false);
    c.destroy();
    server.close();
  });

  it('calls write callbacks and counts bytesWritten/bytesRead', async () => {
    const server = net.createServer(serverOpts(), (s) => s.pipe(s));
    const port = await listening(server);
    const c = dial(port);
    await once(c, 'connect');
    const written = await new Promise<boolean>((r) => c.write(Buffer.alloc(1000, 1), () => r(true)));
    expect(written).toBe(true);
    c.setEncoding('utf8');
    c.write('é', 'utf8');
    let text = '';
    c.on('data', (d) => (text += d));
    await new Promise<void>((r) => {
      const check = () => (c.bytesRead >= 1002 ? r() : setTimeout(check, 5));
      check();
    });
    expect(c.bytesWritten).toBe(1002);
    expect(text.endsWith('é')).toBe(true);
    c.destroy();
    server.close();
  });

  it('applies backpressure: write() false past the high-water mark, then drain', async () => {
    let serverSide: nodeNet.Socket | undefined;
    let received = 0;
    const server = net.createServer(serverOpts({ pauseOnConnect: true }), (s) => {
      serverSide = s;
      s.on('data', (d) => (received += d.length));
    });
    const port = await listening(server);
    const c = dial(port);
    await once(c, 'connect');
    const chunk = Buffer.alloc(1 << 20, 7);
    let writes = 0;
    while (c.write(chunk)) {
      writes++;
      if (writes > 256) throw new Error('write() never returned false');
    }
    const total = (writes + 1) * chunk.length;
    expect(c.writableLength).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(received).toBe(0);
    serverSide!.resume();
    await once(c, 'drain');
    await new Promise<void>((r) => {
      const check = () => (received >= total ? r() : setTimeout(check, 5));
      check();
    });
    expect(received).toBe(total);
    c.destroy();
    server.close();
  });

  it('reports addresses on both ends', async () => {
    let serverSide: nodeNet.Socket | undefined;
    const server = net.createServer(serverOpts(), (s) => (serverSide = s));
    const port = await listening(server);
    const c = dial(port);
    await once(c, 'connect');
    await new Promise<void>((r) => {
      const check = () => (serverSide ? r() : setTimeout(check, 2));
      check();
    });
    expect(c).toMatchObject({ remoteAddress: '127.0.0.1', remotePort: port, remoteFamily: 'IPv4', localAddress: '127.0.0.1' });
    expect(serverSide).toMatchObject({ remoteAddress: '127.0.0.1', remotePort: c.localPort, localPort: port });
    expect(c.address()).toEqual({ address: '127.0.0.1', family: 'IPv4', port: c.localPort });
    c.destroy();
    server.close();
  });

  it('counts connections and closes the server only after they end', async () => {
    const server = net.createServer(serverOpts(), (s) => s.resume());
    const port = await listening(server);
    const c = dial(port);
    await once(c, 'connect');
    await new Promise((r) => setTimeout(r, 20));
    const count = await new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
    expect(count).toBe(1);
    let closed = false;
    server.close(() => (closed = true));
    expect(server.listening).toBe(false);
    await new Promise((r) => setTimeout(r, 30));
    expect(closed).toBe(false);
    c.end();
    await once(server, 'close');
    const err = await new Promise<Error | undefined>((r) => server.close(r));
    expect(err).toMatchObject({ code: 'ERR_SERVER_NOT_RUNNING' });
  });

  it('destroy(err) emits error then close(true)', async () => {
    const server = net.createServer(serverOpts(), () => {});
    const port = await listening(server);
    const c = dial(port);
    await once(c, 'connect');
    const order: string[] = [];
    c.on('error', (e) => order.push(`error ${e.message}`));
    c.on('close', (h) => order.push(`close ${h}`));
    const closed = new Promise((r) => c.on('close', r));
    c.destroy(new Error('boom'));
    await closed;
    expect(order).toEqual(['error boom', 'close true']);
    server.close();
  });

  it('resetAndDestroy() sends RST: the peer sees ECONNRESET', async () => {
    let peerError: NodeJS.ErrnoException | undefined;
    const peerClosed = new Promise<void>((resolve) => {
      const server = net.createServer(serverOpts(), (s) => {
        s.on('error', (e) => (peerError = e));
        s.on('close', () => {
          server.close();
          resolve();
        });
      });
      listening(server).then((port) => {
        const c = dial(port);
        c.on('connect', () => setTimeout(() => c.resetAndDestroy(), 20));
      });
    });
    await peerClosed;
    expect(peerError).toMatchObject({ code: 'ECONNRESET' });
  });

  it('resolves host names with dns.lookup', async () => {
    const server = net.createServer(serverOpts(), (s) => s.end('named'));
    const port = await listening(server, 0, '127.0.0.1');
    const c = net.connect({ port, host: 'localhost', family: 4, backend } as nodeNet.NetConnectOpts);
    const [data] = await once(c, 'data');
    expect(String(data)).toBe('named');
    c.destroy();
    server.close();
  });

  it('sends corked writes together', async () => {
    const server = net.createServer(serverOpts(), (s) => s.pipe(s));
    const port = await listening(server);
    const c = dial(port);
    await once(c, 'connect');
    c.cork();
    c.write('a');
    c.write('b');
    c.write('c');
    process.nextTick(() => c.uncork());
    let text = '';
    c.on('data', (d) => (text += d));
    await new Promise<void>((r) => {
      const check = () => (text.length >= 3 ? r() : setTimeout(check, 2));
      check();
    });
    expect(text).toBe('abc');
    c.destroy();
    server.close();
  });
});
