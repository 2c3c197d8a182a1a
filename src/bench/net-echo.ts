/**
 * The echo server the benchmark runs on `node:net`, and on muxnet's drop-in
 * layer: the same idiomatic code (`'data'` → `write`, pausing while the
 * peer does not read), with only the module swapped. Run in its own process:
 *   node net-echo.js <node:net|muxnet> <tcp|udp> <host> <port>
 * Prints `listening on <proto> HOST:PORT` once ready.
 */
import type * as Net from 'node:net';
import type * as Dgram from 'node:dgram';

const [impl = 'node:net', protocol = 'tcp', host = '127.0.0.1', port = '0'] = process.argv.slice(2);
const muxnet = impl === 'muxnet';
// eslint-disable-next-line @typescript-eslint/no-require-imports
if (muxnet) (require('../stats') as typeof import('../stats')).printStatsOnSignal();

if (protocol === 'udp') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const dgram: typeof Dgram = require(muxnet ? '../dgram' : 'node:dgram');
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.on('message', (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address));
  socket.bind(Number(port), host, () => console.log(`listening on udp ${host}:${socket.address().port}`));
} else {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const net: typeof Net = require(muxnet ? '../net' : 'node:net');
  const server = net.createServer({ noDelay: true }, (sock) => {
    sock.on('data', (chunk) => {
      if (!sock.write(chunk)) sock.pause();
    });
    sock.on('drain', () => sock.resume());
    sock.on('error', () => sock.destroy());
  });
  server.listen(Number(port), host, () => console.log(`listening on tcp ${host}:${(server.address() as Net.AddressInfo).port}`));
}
process.on('SIGTERM', () => process.exit(0));
