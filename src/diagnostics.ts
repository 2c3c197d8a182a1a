/**
 * node:net's and node:dgram's `diagnostics_channel` messages, published on
 * the same named channels, so a subscriber (an APM, a tracer) sees muxnet's
 * sockets and servers as it sees node's: `net.client.socket`,
 * `net.server.socket`, `udp.socket`, and the `net.server.listen` tracing
 * channel (`asyncStart`, then `asyncEnd` or `error`).
 */
import dc from 'node:diagnostics_channel';

export const clientSocket = dc.channel('net.client.socket');
export const serverSocket = dc.channel('net.server.socket');
export const udpSocket = dc.channel('udp.socket');
export const serverListen = dc.tracingChannel<unknown, { server: object; options?: object; error?: Error }>('net.server.listen');

const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
/**
 * Since Node 24.2 and 22.17 (nodejs/node#58349; not 23) every `socket.connect()`
 * publishes on `net.client.socket`; before, only `net.connect()`/`createConnection()`.
 */
export const EVERY_CONNECT_PUBLISHES = major > 24 || (major === 24 && minor >= 2) || (major === 22 && minor >= 17);
