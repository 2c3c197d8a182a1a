/**
 * Datagram chat with heartbeat membership: any datagram makes its sender a
 * live member; `hb` only refreshes; `quit` leaves at once; members silent
 * for longer than the interval expire. Each message goes to every other
 * live member as `TIMESTAMP ADDRESS:PORT: text`.
 */
import { bind, type BackendName, type UdpSocket } from '../../fast';
import { sanitize, timestamp } from './server';

export interface UdpChatOptions {
  port?: number;
  host?: string;
  backend?: BackendName;
  /** Silence after which a member expires. */
  intervalMs?: number;
}

interface Peer {
  address: string;
  port: number;
  lastSeen: number;
}

export class UdpChatServer {
  private socket: UdpSocket | undefined;
  private readonly peers = new Map<string, Peer>();
  private sweeper: NodeJS.Timeout | undefined;
  readonly intervalMs: number;

  constructor(private readonly options: UdpChatOptions = {}) {
    this.intervalMs = options.intervalMs ?? 10_000;
  }

  get port(): number {
    return this.socket?.address()?.port ?? 0;
  }

  /** Live members, as `address:port`. */
  get members(): string[] {
    return [...this.peers.keys()];
  }

  start(): this {
    this.socket = bind(
      { port: this.options.port ?? 7002, host: this.options.host ?? '127.0.0.1', backend: this.options.backend },
      { onMessage: (msg, rinfo) => this.message(msg.toString('utf8'), rinfo.address, rinfo.port) },
    );
    this.sweeper = setInterval(() => this.expire(), Math.max(10, this.intervalMs / 4)).unref();
    return this;
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.socket?.close();
  }

  private message(text: string, address: string, port: number): void {
    const key = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
    if (text.trim() === 'quit') {
      this.peers.delete(key);
      return;
    }
    this.peers.set(key, { address, port, lastSeen: Date.now() });
    if (text.trim() === 'hb') return;
    const line = Buffer.from(`${timestamp()} ${key}: ${sanitize(text).trim()}`);
    for (const [other, peer] of this.peers) if (other !== key) this.socket!.send(line, peer.port, peer.address);
  }

  private expire(): void {
    const cutoff = Date.now() - this.intervalMs;
    for (const [key, peer] of this.peers) if (peer.lastSeen < cutoff) this.peers.delete(key);
  }
}
