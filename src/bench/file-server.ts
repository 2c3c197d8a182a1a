/**
 * The file servers the benchmark compares: each connection gets the whole
 * file, then FIN.
 *   node file-server.js <muxnet|node:net> <host> <bytes>
 * `muxnet` sends it with `Connection.sendFile` (sendfile(2): the kernel
 * copies it); `node:net` with `fs.createReadStream(file).pipe(socket)`, as
 * Node code usually does. The file (byte `i` is `i mod 256`, which the load
 * client checks) is made in the temp dir at start and removed on exit.
 * Prints `listening on tcp HOST:PORT` once ready.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { listen } from '../fast';

const [impl = 'muxnet', host = '127.0.0.1', size = String(256 << 20)] = process.argv.slice(2);

const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'muxnet-bench-')), 'file');
process.on('exit', () => fs.rmSync(path.dirname(file), { recursive: true, force: true }));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

const ramp = Buffer.alloc(1 << 20);
for (let i = 0; i < ramp.length; i++) ramp[i] = i & 0xff;
const fd = fs.openSync(file, 'w');
// A multiple of 256 long, each piece continues the ramp.
for (let left = Number(size); left > 0; left -= ramp.length) fs.writeSync(fd, ramp, 0, Math.min(left, ramp.length));
fs.closeSync(fd);

if (impl === 'muxnet') {
  const server = listen({ port: 0, host }, {
    onOpen(conn) {
      conn.sendFile(file).then(
        () => conn.end(),
        () => conn.destroy(),
      );
    },
  });
  console.log(`listening on tcp ${host}:${server.port}`);
} else {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    fs.createReadStream(file).on('error', () => socket.destroy()).pipe(socket);
  });
  server.listen(0, host, () => console.log(`listening on tcp ${host}:${(server.address() as net.AddressInfo).port}`));
}
