/**
 * node:net's and node:dgram's `diagnostics_channel` messages, published on
 * the same named channels, so a subscriber (an APM, a tracer) sees muxnet's
 * sockets and servers as it sees node's: `net.client.socket`,
 * `net.server.socket`, `udp.socket`, and the `net.server.listen` tracing
 * channel (`asyncStart`, then `asyncEnd` or `error`).
 */
import dc from 'node:diagnostics_channel';
import { nodeFrom } from './versions';

export const clientSocket = dc.channel('net.client.socket');
export const serverSocket = dc.channel('net.server.socket');
export const udpSocket = dc.channel('udp.socket');
export const serverListen = dc.tracingChannel<unknown, { server: object; options?: object; error?: Error }>('net.server.listen');

/**
 * Since Node 24.2 and 22.17 (nodejs/node#58349; not 23) every `socket.connect()`
 * publishes on `net.client.socket`; before, only `net.connect()`/`createConnection()`.
 */
export const EVERY_CONNECT_PUBLISHES = nodeFrom([22, 17], [24, 2]);
