/**
 * What the chat server needs from a network stack, so the same server runs
 * on muxnet's fast API and on node:net (the benchmark compares the two).
 */
import nodeNet from 'node:net';
import { broadcast, listen, type BackendName, type Connection } from '../../fast';
import { unsupported } from '../../net/unsupported';

/** One client connection, as the chat server sees it. */
export interface ChatConn {
  write(data: Buffer): void;
  /** Half-close after what is queued (the goodbye still arrives). */
  end(): void;
  destroy(): void;
}

export interface TransportHandlers {
  open(conn: ChatConn): void;
  data(conn: ChatConn, chunk: Buffer): void;
  close(conn: ChatConn): void;
}

export interface ChatListener {
  readonly port: number;
  close(): void;
}

export interface ListenOptions {
  port: number;
  host: string;
  backend?: BackendName;
  /** Share the port (`SO_REUSEPORT`): several servers, one per worker thread. muxnet only. */
  reusePort?: boolean;
}

/** Thousands of clients may connect at once: a deep accept queue. */
const BACKLOG = 4096;

export interface ChatTransport {
  readonly name: string;
  listen(options: ListenOptions, handlers: TransportHandlers): Promise<ChatListener>;
  /** Still takes writes: not closed, not ending (its close may not have been reported yet). */
  isWritable(conn: ChatConn): boolean;
  /** Bytes waiting for the kernel to take them (not those only corked for this tick). */
  queued(conn: ChatConn): number;
  /** Writes `data` to every connection in `conns`; returns those that need attention. */
  broadcast(conns: ChatConn[], data: Buffer, cap: number): Fanout;
}

/** The connections a broadcast could not serve. */
export interface Fanout {
  /** More than the cap waits in their queue: they do not read. */
  slow: ChatConn[];
  /** The write failed: the connection is gone (its close follows). */
  failed: ChatConn[];
}


/** muxnet's fast API: room fan-out is one N-API call, whatever the room size. */
export const muxnetTransport: ChatTransport = {
  name: 'muxnet',
  async listen(options, handlers) {
    const server = listen(
      { port: options.port, host: options.host, backend: options.backend, backlog: BACKLOG, reusePort: options.reusePort },
      {
        onOpen: (conn) => handlers.open(conn),
        onData: (conn, chunk) => handlers.data(conn, chunk),
        onClose: (conn) => handlers.close(conn),
      },
    );
    return { port: server.port, close: () => server.close() };
  },
  isWritable: (conn) => (conn as Connection).writable,
  queued: (conn) => (conn as Connection).bufferedAmount,
  broadcast(conns, data, cap) {
    const result: Fanout = { slow: [], failed: [] };
    for (const conn of broadcast(conns as Connection[], data, cap)) (conn.bufferedAmount > cap ? result.slow : result.failed).push(conn);
    return result;
  },
};

/**
 * node:net, the baseline: one `write()` per member per line, as Node code
 * usually does; `cork` batches the lines of one tick into one writev per
 * member, as muxnet's broadcast does.
 */
function nodeTransportWith(cork: boolean): ChatTransport {
  /** Bytes corked per socket in this tick. */
  const corkedBytes = new Map<nodeNet.Socket, number>();
  const uncork = (s: nodeNet.Socket) => {
    corkedBytes.delete(s);
    s.uncork();
  };
  /** Corks `s` for this tick if it is not yet; returns the bytes corked with these `len`. */
  const corkFor = (s: nodeNet.Socket, len: number) => {
    const before = corkedBytes.get(s);
    if (before === undefined) {
      s.cork();
      process.nextTick(uncork, s);
    }
    const corked = (before ?? 0) + len;
    corkedBytes.set(s, corked);
    return corked;
  };
  return {
    name: cork ? 'node:net, corked' : 'node:net',
    listen(options, handlers) {
      // node:net has it only from Node 22.12 on (muxnet runs on 20 too): never a silent difference.
      if (options.reusePort) return Promise.reject(unsupported('reusePort for the chat server on node:net'));
      return new Promise((resolve, reject) => {
        const server = nodeNet.createServer({ noDelay: true }, (sock) => {
          handlers.open(sock);
          sock.on('data', (chunk) => handlers.data(sock, chunk));
          sock.on('error', () => sock.destroy());
          sock.on('close', () => handlers.close(sock));
        });
        server.once('error', reject);
        server.listen({ port: options.port, host: options.host, backlog: BACKLOG }, () => {
          resolve({ port: (server.address() as nodeNet.AddressInfo).port, close: () => server.close() });
        });
      });
    },
    isWritable: (conn) => !(conn as nodeNet.Socket).destroyed && !(conn as nodeNet.Socket).writableEnded,
    queued: (conn) => (conn as nodeNet.Socket).writableLength - (corkedBytes.get(conn as nodeNet.Socket) ?? 0),
    broadcast(conns, data, cap) {
      const result: Fanout = { slow: [], failed: [] };
      for (const s of conns as nodeNet.Socket[]) {
        const corked = cork ? corkFor(s, data.length) : 0;
        s.write(data);
        if (s.destroyed) result.failed.push(s);
        // Only what the kernel held back counts, not what this tick corked.
        else if (s.writableLength - corked > cap) result.slow.push(s);
      }
      return result;
    },
  };
}

export const nodeTransport = nodeTransportWith(false);
export const nodeCorkedTransport = nodeTransportWith(true);
