/**
 * The proxies the benchmark compares, each in its own process in front of
 * a muxnet fast echo server (a child process, pinned beside the load
 * client so that the proxy's core is the proxy's alone):
 *   node proxy-server.js <muxnet|muxnet-splice|node:net> <host>
 * `muxnet` is `muxnet/proxy` (pairs joined with pipe(), relayed in Rust;
 * `muxnet-splice` with `splice: true`);
 * `node:net` is the idiomatic Node proxy, `client.pipe(upstream).pipe(client)`.
 * Prints `listening on tcp HOST:PORT` once ready; the echo server stops with it.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { createProxy } from '../proxy';
import { upstreamEcho } from './servers';

const [impl = 'muxnet', host = '127.0.0.1'] = process.argv.slice(2);

const argv = upstreamEcho(host);
const echo = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
process.on('exit', () => echo.kill('SIGKILL'));
process.on('SIGTERM', () => process.exit(0));

let out = '';
echo.stdout!.on('data', function onData(d: Buffer) {
  out += d;
  const m = /listening on tcp \[?[^\]\s]+?\]?:(\d+)/.exec(out);
  if (!m) return;
  echo.stdout!.off('data', onData);
  echo.stdout!.resume();
  serve(Number(m[1]));
});

function serve(upstreamPort: number): void {
  if (impl !== 'node:net') {
    const proxy = createProxy({ host, port: 0, upstreams: [{ host, port: upstreamPort }], splice: impl === 'muxnet-splice' });
    console.log(`listening on tcp ${host}:${proxy.port}`);
    return;
  }
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host, port: upstreamPort, noDelay: true });
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  server.listen(0, host, () => console.log(`listening on tcp ${host}:${(server.address() as net.AddressInfo).port}`));
}
