/**
 * The multi-room chat server: a line protocol (`nc` and `telnet` can take
 * part) or length-prefixed frames, rooms, private messages, heartbeats, and
 * limits that stop one client from hurting the others.
 */
import { native } from '../../binding';
import type { BackendName } from '../../fast';
import type { ChatConn, ChatListener, ChatTransport } from './transport';
import { muxnetTransport } from './transport';

type FrameDecoder = InstanceType<typeof native.FrameDecoder>;

export interface ChatServerOptions {
  port?: number;
  host?: string;
  backend?: BackendName;
  transport?: ChatTransport;
  framing?: 'line' | 'length';
  /** Silence after which a client is sent PING; as long again and it is dropped. */
  idleTimeoutMs?: number;
  /** Lines per second a client may send, and the burst it may save up. */
  rate?: number;
  burst?: number;
  maxLine?: number;
  maxClients?: number;
  /** Queued output past which a member is disconnected as too slow. */
  slowCap?: number;
  /** No join/leave announcements: for benchmarks of very large rooms. */
  quiet?: boolean;
}

interface Member {
  conn: ChatConn;
  nick: string;
  room: string;
  decoder: FrameDecoder;
  lastSeen: number;
  pingedAt: number;
  tokens: number;
  refilledAt: number;
  flooding: boolean;
  dropped: number;
  oversize: number;
}

const LOBBY = 'lobby';
const MAX_NICK = 32;
const MAX_OVERSIZE = 3;
const HELP = 'HELP /nick NAME · /join ROOM · /leave · /rooms · /who · /msg NICK text · /me action · /ping · /quit · /help';

/** `2026-11-22T10:00:00Z`: the server's clock, to the second. */
export function timestamp(now = Date.now()): string {
  return new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Control characters never reach other clients; a tab becomes a space. */
export function sanitize(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\t/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '');
}

/** 1–32 characters, no spaces or control characters. */
export function nickError(nick: string): string | undefined {
  if (nick.length < 1 || [...nick].length > MAX_NICK) return `nick must be 1-${MAX_NICK} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f-\u009f]/.test(nick)) return 'nick may not contain spaces or control characters';
  return undefined;
}

export class ChatServer {
  readonly options: Required<Omit<ChatServerOptions, 'backend' | 'transport'>> & { backend?: BackendName; transport: ChatTransport };
  private listener: ChatListener | undefined;
  private readonly members = new Map<ChatConn, Member>();
  private readonly rooms = new Map<string, Set<Member>>();
  private readonly nicks = new Map<string, Member>();
  private guests = 0;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(options: ChatServerOptions = {}) {
    this.options = {
      port: options.port ?? 7001,
      host: options.host ?? '127.0.0.1',
      backend: options.backend,
      transport: options.transport ?? muxnetTransport,
      framing: options.framing ?? 'line',
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
      rate: options.rate ?? 100,
      burst: options.burst ?? 200,
      maxLine: options.maxLine ?? 4096,
      maxClients: options.maxClients ?? 10_000,
      slowCap: options.slowCap ?? 1 << 20,
      quiet: options.quiet ?? false,
    };
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  get clients(): number {
    return this.members.size;
  }

  async start(): Promise<this> {
    const { transport, port, host, backend } = this.options;
    this.listener = await transport.listen(
      { port, host, backend },
      { open: (c) => this.open(c), data: (c, chunk) => this.data(c, chunk), close: (c) => this.closed(c) },
    );
    const every = Math.max(10, Math.min(1000, this.options.idleTimeoutMs / 4));
    this.heartbeat = setInterval(() => this.checkIdle(), every).unref();
    return this;
  }

  /** Says goodbye to everyone, then closes every connection and the listener. */
  stop(): void {
    clearInterval(this.heartbeat);
    this.listener?.close();
    const everyone = [...this.members.values()];
    this.options.transport.broadcast(everyone.map((m) => m.conn), this.frame('SERVER shutting down. Goodbye.'), Infinity);
    for (const m of everyone) m.conn.end();
  }

  private frame(text: string): Buffer {
    const payload = Buffer.from(text);
    return this.options.framing === 'line' ? Buffer.concat([payload, Buffer.from('\n')]) : native.encodeFrame('length', 0xffffffff, payload);
  }

  private send(m: Member, text: string): void {
    if (this.options.transport.isWritable(m.conn)) m.conn.write(this.frame(text));
  }

  /** One buffer to a room (minus `except`); members too slow to keep up are cut off. */
  private toRoom(room: string, text: string, except?: Member): void {
    // Members already leaving (being dropped, or told goodbye) hear nothing more.
    const members = [...(this.rooms.get(room) ?? [])].filter((m) => m !== except && this.options.transport.isWritable(m.conn));
    const slow = this.options.transport.broadcast(members.map((m) => m.conn), this.frame(text), this.options.slowCap);
    for (const conn of slow) {
      const m = this.members.get(conn);
      if (m) this.drop(m, `ERROR too slow: more than ${this.options.slowCap} bytes waiting; disconnected`, 'was too slow and got disconnected');
    }
  }

  private open(conn: ChatConn): void {
    if (this.members.size >= this.options.maxClients) {
      conn.write(this.frame(`ERROR server full (max ${this.options.maxClients} clients); try later`));
      conn.end();
      return;
    }
    const now = Date.now();
    let nick: string;
    do nick = `guest${++this.guests}`;
    while (this.nicks.has(nick));
    const m: Member = {
      conn,
      nick,
      room: LOBBY,
      decoder: new native.FrameDecoder(this.options.framing, this.options.maxLine),
      lastSeen: now,
      pingedAt: 0,
      tokens: this.options.burst,
      refilledAt: now,
      flooding: false,
      dropped: 0,
      oversize: 0,
    };
    this.members.set(conn, m);
    this.nicks.set(nick.toLowerCase(), m);
    this.join(m, LOBBY);
    this.send(m, `WELCOME to muxnet chat. You are ${nick} in ${LOBBY}. /help lists the commands.`);
  }

  private data(conn: ChatConn, chunk: Buffer): void {
    const m = this.members.get(conn);
    if (!m) return;
    m.lastSeen = Date.now();
    m.pingedAt = 0;
    const { frames, tooLong } = m.decoder.push(chunk);
    if (tooLong > 0) {
      if (this.options.framing === 'length') return this.drop(m, `ERROR frame longer than ${this.options.maxLine} bytes; disconnected`);
      m.oversize += tooLong;
      if (m.oversize >= MAX_OVERSIZE) return this.drop(m, 'ERROR too many oversized lines; disconnected');
      this.send(m, `ERROR line longer than ${this.options.maxLine} bytes; dropped`);
    }
    for (const frame of frames) {
      if (!this.members.has(conn)) return;
      if (this.admit(m)) this.line(m, frame.toString('utf8'));
    }
  }

  /** The token bucket: false (and a warning, then a disconnect) when flooding. */
  private admit(m: Member): boolean {
    const now = Date.now();
    const { rate, burst } = this.options;
    m.tokens = Math.min(burst, m.tokens + ((now - m.refilledAt) / 1000) * rate);
    m.refilledAt = now;
    if (m.tokens >= 1) {
      m.tokens -= 1;
      m.flooding = false;
      return true;
    }
    if (!m.flooding) {
      m.flooding = true;
      m.dropped = 0;
      this.send(m, `ERROR rate limit: at most ${rate} lines/s; slow down`);
    }
    if (++m.dropped > burst) this.drop(m, 'ERROR flooding; disconnected');
    return false;
  }

  private line(m: Member, raw: string): void {
    const text = sanitize(raw).trim();
    if (text === '' || text === 'PONG') return; // PONG answers our PING
    if (!text.startsWith('/')) return this.toRoom(m.room, `${timestamp()} ${m.nick}: ${text}`, m);
    const [command, ...args] = text.split(' ');
    const rest = args.join(' ').trim();
    switch (command) {
      case '/nick':
        return this.rename(m, rest);
      case '/join':
        if (!rest || /\s/.test(rest) || rest.length > MAX_NICK) return this.send(m, 'ERROR usage: /join ROOM (1-32 characters, no spaces)');
        if (rest !== m.room) {
          this.leaveRoom(m, `${timestamp()} * ${m.nick} left ${m.room}`);
          this.join(m, rest);
        }
        return this.send(m, `JOINED ${rest}`);
      case '/leave':
        if (m.room !== LOBBY) {
          this.leaveRoom(m, `${timestamp()} * ${m.nick} left ${m.room}`);
          this.join(m, LOBBY);
        }
        return this.send(m, `JOINED ${LOBBY}`);
      case '/rooms':
        return this.send(m, `ROOMS ${[...this.rooms].map(([name, set]) => `${name} (${set.size})`).join(', ')}`);
      case '/who':
        return this.send(m, `WHO ${m.room}: ${[...(this.rooms.get(m.room) ?? [])].map((x) => x.nick).join(', ')}`);
      case '/msg': {
        const [target, ...words] = args;
        const to = target ? this.nicks.get(target.toLowerCase()) : undefined;
        if (!to || words.length === 0) return this.send(m, to ? 'ERROR usage: /msg NICK text' : `ERROR no such nick: ${target ?? ''}`);
        this.send(to, `${timestamp()} ${m.nick} (private): ${words.join(' ')}`);
        return this.send(m, `${timestamp()} -> ${to.nick}: ${words.join(' ')}`);
      }
      case '/me':
        return this.toRoom(m.room, `${timestamp()} * ${m.nick} ${rest}`, m);
      case '/ping':
        return this.send(m, 'PONG');
      case '/quit':
        return this.drop(m, 'BYE', 'quit', true);
      case '/help':
        return this.send(m, HELP);
      default:
        return this.send(m, `ERROR unknown command ${command}; /help lists the commands`);
    }
  }

  private rename(m: Member, nick: string): void {
    const problem = nickError(nick);
    if (problem) return this.send(m, `ERROR ${problem}`);
    const owner = this.nicks.get(nick.toLowerCase());
    if (owner && owner !== m) return this.send(m, `ERROR nick ${nick} is taken`);
    const old = m.nick;
    this.nicks.delete(old.toLowerCase());
    m.nick = nick;
    this.nicks.set(nick.toLowerCase(), m);
    this.send(m, `NICK ${nick}`);
    if (old !== nick) this.toRoom(m.room, `${timestamp()} * ${old} is now known as ${nick}`, m);
  }

  private join(m: Member, room: string): void {
    m.room = room;
    let members = this.rooms.get(room);
    if (!members) this.rooms.set(room, (members = new Set()));
    members.add(m);
    if (!this.options.quiet) this.toRoom(room, `${timestamp()} * ${m.nick} joined ${room}`, m);
  }

  private leaveRoom(m: Member, announcement: string): void {
    const members = this.rooms.get(m.room);
    members?.delete(m);
    if (members?.size === 0 && m.room !== LOBBY) this.rooms.delete(m.room);
    if (!this.options.quiet) this.toRoom(m.room, announcement);
  }

  /** Removes a member: a last line to them, an announcement to their room. */
  private drop(m: Member, notice: string, why = 'disconnected', graceful = false): void {
    if (!this.members.has(m.conn)) return;
    this.forget(m, `${timestamp()} * ${m.nick} ${why}`);
    this.send(m, notice);
    if (graceful) m.conn.end();
    else m.conn.destroy();
  }

  private forget(m: Member, announcement: string): void {
    this.members.delete(m.conn);
    this.nicks.delete(m.nick.toLowerCase());
    this.leaveRoom(m, announcement);
  }

  private closed(conn: ChatConn): void {
    const m = this.members.get(conn);
    if (m) this.forget(m, `${timestamp()} * ${m.nick} disconnected`);
  }

  /** PING after `idleTimeoutMs` of silence; drop after as long again. */
  private checkIdle(): void {
    const now = Date.now();
    const limit = this.options.idleTimeoutMs;
    for (const m of [...this.members.values()]) {
      if (m.pingedAt === 0 && now - m.lastSeen >= limit) {
        m.pingedAt = now;
        this.send(m, 'PING');
      } else if (m.pingedAt !== 0 && now - m.pingedAt >= limit) {
        this.drop(m, 'ERROR idle timeout; disconnected', 'timed out');
      }
    }
  }
}
