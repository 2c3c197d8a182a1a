/**
 * Datagram chat with heartbeat membership: any datagram makes its sender a
 * live member; `hb` only refreshes; `quit` leaves at once; members silent
 * for longer than the interval expire. Each message goes to every other
 * live member as the line `TIMESTAMP ADDRESS:PORT: text\n`.
 */
import { bind, type BackendName, type UdpSocket } from '../../fast';
import { joinHostPort } from '../../args';
import { validateInteger } from '../../options';
import { pacing, sanitize, takeToken, timestamp, type Bucket } from './server';

export interface UdpChatOptions {
  port?: number;
  host?: string;
  backend?: BackendName;
  /** Silence after which a member expires. */
  intervalMs?: number;
  /**
   * The longest message relayed, in bytes (default 4096; at most 65 000, so
   * that the relayed line still fits one datagram); longer ones are dropped,
   * as received and as relayed (bytes that are not UTF-8 relay as U+FFFD, 3 bytes each).
   */
  maxMessage?: number;
  /** Members at most (default 10 000): a new sender past them is ignored until one leaves or expires. */
  maxMembers?: number;
  /**
   * Messages a second one member's are relayed at most (default 100), saving
   * up to twice that; the rest are dropped (each costs a send per member).
   */
  rate?: number;
}

/** Room left in a 65 507-byte IPv4 datagram for the timestamp and the sender's address. */
const MAX_MESSAGE = 65_000;

interface Peer extends Bucket {
  address: string;
  port: number;
  lastSeen: number;
}

export class UdpChatServer {
  private socket: UdpSocket | undefined;
  private readonly peers = new Map<string, Peer>();
  private sweeper: NodeJS.Timeout | undefined;
  readonly intervalMs: number;
  readonly maxMessage: number;
  readonly maxMembers: number;
  readonly rate: number;
  private readonly burst: number;

  constructor(private readonly options: UdpChatOptions = {}) {
    this.intervalMs = options.intervalMs ?? 10_000;
    this.maxMessage = validateInteger(options.maxMessage, 'options.maxMessage', 4096, 1, MAX_MESSAGE);
    this.maxMembers = validateInteger(options.maxMembers, 'options.maxMembers', 10_000, 1, 2 ** 31 - 1);
    ({ rate: this.rate, burst: this.burst } = pacing(options.rate));
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
      {
        onMessage: (msg, rinfo) => {
          // From port 0 (forged: no socket can bind it): no member could be answered there.
          if (rinfo.port !== 0) this.message(msg.length > this.maxMessage ? undefined : msg.toString('utf8'), rinfo.address, rinfo.port);
        },
        // A relayed line the kernel refused later (a batch's sends leave after it): that member
        // is gone, unless the send buffer was only full (the line is dropped, as UDP may).
        onSendError: (err) => {
          if (err.code === 'EAGAIN' || err.code === 'ENOBUFS' || !err.address || err.port === undefined) return;
          this.peers.delete(joinHostPort(err.address, err.port));
        },
      },
    );
    this.sweeper = setInterval(() => this.expire(), Math.max(10, this.intervalMs / 4)).unref();
    return this;
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.socket?.close();
  }

  /** `text` undefined: a message over `maxMessage`, dropped (it still says the sender is alive). */
  private message(text: string | undefined, address: string, port: number): void {
    const key = joinHostPort(address, port);
    if (text?.trim() === 'quit') {
      this.peers.delete(key);
      return;
    }
    const now = Date.now();
    let peer = this.peers.get(key);
    if (!peer) {
      // Full: a newcomer is not heard (each member costs a send per message relayed).
      if (this.peers.size >= this.maxMembers) return;
      peer = { address, port, lastSeen: now, tokens: this.burst, refilledAt: now };
      this.peers.set(key, peer);
    }
    peer.lastSeen = now;
    if (text === undefined || text.trim() === 'hb') return;
    // Lines sent in one datagram (`nc -u` sends what one read of its input gives) stay
    // apart as words of one message: the control characters go, so `one\ntwo` was `onetwo`.
    const clean = sanitize(text.replace(/[\r\n]+/g, ' ')).trim();
    // Nothing to say (Enter pressed in `nc -u`): a heartbeat, as an empty TCP line is nothing.
    if (clean === '') return;
    // Measured again as relayed: each byte that is not UTF-8 becomes a 3-byte U+FFFD, and a
    // line past what one datagram carries would fail for every member (each then dropped).
    if (Buffer.byteLength(clean) > this.maxMessage) return;
    // Past its rate: dropped, unanswered (a reply to a forged source would be a reflection).
    if (!takeToken(peer, this.rate, this.burst, now)) return;
    // One line per datagram, ended as the TCP chat's are: a line-oriented peer (`nc -u`,
    // socat) that prints datagrams as they come shows one message per line.
    const line = Buffer.from(`${timestamp()} ${key}: ${clean}\n`);
    // (A Map walk survives deleting the entry it is on.)
    for (const [other, peer] of this.peers) {
      if (other === key) continue;
      try {
        this.socket!.send(line, peer.port, peer.address);
      } catch {
        // Refused at once for this member alone (its route is gone): the others still get it.
        this.peers.delete(other);
      }
    }
  }

  private expire(): void {
    const cutoff = Date.now() - this.intervalMs;
    for (const [key, peer] of this.peers) if (peer.lastSeen < cutoff) this.peers.delete(key);
  }
}
