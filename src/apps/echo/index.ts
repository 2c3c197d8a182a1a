/**
 * TCP and UDP echo servers on the fast API: what `npx muxnet echo` runs and
 * what the benchmark measures.
 */
import { bind, listen, type BackendName, type Connection, type SocketAddress } from '../../fast';
import { closeGracefully, LiveSet, type CloseOptions } from '../../server';

export interface EchoOptions {
  port?: number;
  host?: string;
  udp?: boolean;
  backend?: BackendName;
}

export interface EchoStats {
  /** Connections open now (TCP). */
  open: number;
  /** Connections accepted so far (TCP). */
  accepted: number;
  /** Datagrams received (UDP), each echoed unless counted in `dropped`. */
  datagrams: number;
  /** Bytes received: over TCP each written back; over UDP an unanswered datagram's are counted too (a refused reply's size is not known). */
  bytes: number;
  /** Of those datagrams, the ones not answered (UDP): from port 0, or the reply refused by the kernel (a forged sender) or without room in the send buffer. */
  dropped: number;
}

export interface EchoServer {
  readonly protocol: 'tcp' | 'udp';
  readonly address: string;
  readonly port: number;
  readonly backend: BackendName;
  /** `'fd'` or `'thread'`: how the reactor wakes the JS thread. */
  readonly wakeMode: string;
  readonly stats: EchoStats;
  /**
   * Stops listening at once; open connections may go on (and their peers
   * close them) for `timeout` ms (default 0), then the rest are closed.
   * Resolves once every connection is closed — the `muxnet/server` close.
   */
  close(options?: CloseOptions): Promise<void>;
}

/** Starts an echo server; throws at once if the address is taken. */
export function startEcho(options: EchoOptions = {}): EchoServer {
  const stats: EchoStats = { open: 0, accepted: 0, datagrams: 0, bytes: 0, dropped: 0 };
  if (options.udp) {
    const socket = bind(
      { port: options.port, host: options.host, backend: options.backend },
      {
        onMessage(msg, rinfo, sock) {
          stats.datagrams++;
          stats.bytes += msg.length;
          // From port 0 (forged: no socket can bind it) there is nobody to answer.
          if (rinfo.port !== 0) sock.send(msg, rinfo.port, rinfo.address);
          else stats.dropped++;
        },
        // A reply the kernel refuses when the batch's datagrams leave: a forged sender
        // (a broadcast address: EACCES) or a full send buffer. Dropped, as UDP may drop it,
        // and counted; without this handler the error would be thrown and stop the server.
        onSendError() {
          stats.dropped++;
        },
      },
    );
    const local = socket.address()!;
    return {
      protocol: 'udp',
      address: local.address,
      port: local.port,
      backend: socket.reactor.backend,
      wakeMode: socket.reactor.wakeMode,
      stats,
      // No connections to wait for.
      close: async () => socket.close(),
    };
  }
  const conns = new LiveSet<Connection>();
  const server = listen(
    { port: options.port, host: options.host, backend: options.backend },
    {
      onOpen(conn) {
        stats.open++;
        stats.accepted++;
        conns.add(conn);
      },
      onData(conn, chunk) {
        stats.bytes += chunk.length;
        // A peer that does not read its echoes stops being read from.
        if (!conn.write(chunk)) conn.pause();
      },
      onDrain(conn) {
        conn.resume();
      },
      onClose(conn) {
        stats.open--;
        conns.delete(conn);
      },
      onError(err) {
        console.error(`muxnet echo: ${err.message}`);
      },
    },
  );
  // Listening on a port, not a path: an address, not a string.
  const local = server.address() as SocketAddress;
  return {
    protocol: 'tcp',
    address: local.address,
    port: local.port,
    backend: server.backend,
    wakeMode: server.reactor.wakeMode,
    stats,
    close: (options?: CloseOptions) => closeGracefully(server, conns, options),
  };
}
