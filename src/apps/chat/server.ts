/**
 * The multi-room chat server: a line protocol (`nc` and `telnet` can take
 * part) or length-prefixed frames, rooms, private messages, heartbeats, and
 * limits that stop one client from hurting the others.
 *
 * Joins, leaves, nick changes and disconnects are announced in batches:
 * they collect for up to `announceMs` (less if a line is relayed to the
 * room first: it follows them) and go out as one line per room, so a crowd
 * arriving or leaving at once costs a few broadcasts, not one per member
 * per member.
 */
import { invalidArgValue } from '../../errors';
import { encodeFrame, FrameDecoder, type BackendName } from '../../fast';
import { closeTimeout, LiveSet, type CloseOptions } from '../../server/drain';
import { DEGRADED, HELD, type ChatLink, type LocalChat } from './link';
import type { ChatConn, ChatListener, ChatTransport } from './transport';
import { muxnetTransport } from './transport';

export interface ChatServerOptions {
  port?: number;
  host?: string;
  backend?: BackendName;
  transport?: ChatTransport;
  framing?: 'line' | 'length';
  /** Silence after which a client is sent PING; as long again and it is dropped. */
  idleTimeoutMs?: number;
  /** Lines per second a client may send (100), and the burst it may save up (see `pacing`). */
  rate?: number;
  burst?: number;
  maxLine?: number;
  maxClients?: number;
  /** Queued output past which a member is disconnected as too slow. */
  slowCap?: number;
  /** No join/leave announcements: for benchmarks of very large rooms. */
  quiet?: boolean;
  /** How long announcements collect before they go out, one line per room (default 100 ms). */
  announceMs?: number;
  /** Share the port with other servers in this process or others (`SO_REUSEPORT`; muxnet only). */
  reusePort?: boolean;
  /** The cluster this server belongs to (`RedisLink`): rooms, nicks and presence across servers. */
  link?: ChatLink;
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
  /** The line it is sending is too long and was already answered with `ERROR`. */
  overlong: boolean;
  /** Its announcements in its room not sent yet. */
  unannounced: Announcement[];
  /**
   * Lines admitted while a command of its waits on the cluster (`/nick`,
   * `/who`, …): handled after it, in order, as a single server would.
   */
  held: string[] | undefined;
}

/** `NICK WHAT` to a room, as `TIME * alice joined lobby`. */
interface Announcement {
  member: Member;
  nick: string;
  what: string;
  join: boolean;
  /** The member left before its join was announced: nobody hears of it. */
  cancelled: boolean;
}

const LOBBY = 'lobby';
const MAX_NICK = 32;
const MAX_OVERSIZE = 3;
/** Names an announcement lists before `and N others`, and kinds of event before `and N more`. */
const MAX_NAMED = 10;
/**
 * Lines a flooding member may have dropped in a row before it is cut off,
 * at the fewest (else its burst): a slow rate's burst of one cut off a
 * member who pasted three lines.
 */
const FLOOD_GRACE = 10;
const HELP = 'HELP /nick NAME · /join ROOM · /leave · /rooms · /who · /msg NICK text · /me action · /ping · /quit · /help';

/** `2026-11-22T10:00:00Z`: the server's clock, to the second. */
export function timestamp(now = Date.now()): string {
  return new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Control characters never reach other clients, nor the marks that turn
 * text right to left (an override makes what follows it read backwards on
 * the receiver's terminal: `\u202e` before a word); a tab becomes a space,
 * and so do the line and paragraph separators (a client that breaks lines
 * at them, as JavaScript's `^`/`$` and many editors do, would show the rest
 * as a line of its own: a forged `<admin>` line). Joiners stay (emoji
 * sequences need them). Composed (NFC): `José` typed two ways is one nick,
 * and one room.
 */
export function sanitize(text: string): string {
  return text.replace(/[\t\u2028\u2029]/g, ' ').replace(/[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu, '').normalize('NFC');
}

/**
 * What makes a name look like another's: spaces, control, format (a bidi
 * override, a zero-width space), unassigned and private-use characters,
 * those Unicode calls default-ignorable (Hangul fillers) and the blank
 * symbols (the blank Braille pattern, a null notehead, the Khitan filler).
 */
const INVISIBLE = /[\s\p{C}\p{Default_Ignorable_Code_Point}\u2800\u{1d159}\u{16fe4}]/u;

/**
 * 1–32 characters, none of them invisible (see `INVISIBLE`), not a guest's name.
 */
export function nickError(nick: string): string | undefined {
  if (nick.length < 1 || [...nick].length > MAX_NICK) return `nick must be 1-${MAX_NICK} characters`;
  if (INVISIBLE.test(nick)) return 'nick may not contain spaces, control or invisible characters';
  // Members taking the names a server gives its next guests made each of those a chain of
  // renames (in a cluster, a Redis round trip each).
  if (/^guest\d+(\.|$)/i.test(nick)) return 'nicks guestN and guestN.NODE are kept for guests';
  return undefined;
}

/**
 * A sender's pace, checked: `rate` messages a second (100 by default),
 * saving up to `burst` — by default twice the rate, and at least one (a
 * bucket under one token never lets one through: `rate: 0.4`).
 */
export function pacing(rate: unknown = 100, burst?: unknown): { rate: number; burst: number } {
  if (typeof rate !== 'number' || !(rate > 0) || !Number.isFinite(rate)) throw invalidArgValue('options.rate', rate, 'must be a positive number');
  const saved = burst ?? Math.max(1, 2 * rate);
  if (typeof saved !== 'number' || !(saved >= 1) || !Number.isFinite(saved)) throw invalidArgValue('options.burst', burst, 'must be a number of at least 1');
  return { rate, burst: saved };
}

/** A sender's token bucket: `rate` lines a second, saving up to `burst`. */
export interface Bucket {
  tokens: number;
  refilledAt: number;
}

/** Takes a token from `b` if it has one (refilled for the time since). */
export function takeToken(b: Bucket, rate: number, burst: number, now = Date.now()): boolean {
  b.tokens = Math.min(burst, b.tokens + ((now - b.refilledAt) / 1000) * rate);
  b.refilledAt = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

/** `a`, `a and b`, `a, b and c`, … `a, b, … j and 12 others`. */
function names(nicks: string[]): string {
  if (nicks.length === 1) return nicks[0];
  if (nicks.length <= MAX_NAMED) return `${nicks.slice(0, -1).join(', ')} and ${nicks.at(-1)}`;
  return `${nicks.slice(0, MAX_NAMED).join(', ')} and ${nicks.length - MAX_NAMED} others`;
}

/**
 * One line for a room's batch of announcements, whatever its size:
 * `a and b joined lobby; c disconnected; d is now known as e`.
 */
function summary(batch: Announcement[]): string {
  const byWhat = new Map<string, string[]>();
  for (const { nick, what } of batch) {
    const nicks = byWhat.get(what);
    if (nicks) nicks.push(nick);
    else byWhat.set(what, [nick]);
  }
  const groups = [...byWhat];
  const parts = groups.slice(0, MAX_NAMED).map(([what, nicks]) => `${names(nicks)} ${what}`);
  const more = groups.slice(MAX_NAMED).reduce((n, [, nicks]) => n + nicks.length, 0);
  return more > 0 ? `${parts.join('; ')}; and ${more} more` : parts.join('; ');
}

export class ChatServer {
  readonly options: Required<Omit<ChatServerOptions, 'backend' | 'transport' | 'link'>> & { backend?: BackendName; transport: ChatTransport };
  private readonly link: ChatLink | undefined;
  private listener: ChatListener | undefined;
  private readonly members = new Map<ChatConn, Member>();
  /** Once `stop()` ran: the connections it ended and waits for. */
  private leaving: LiveSet<ChatConn> | undefined;
  /**
   * Told goodbye (`/quit`, server full) and ended, members no more: each is
   * closed when its peer closes too, or after `idleTimeoutMs` (a peer that
   * keeps its side open holds no connection for ever), or by `stop()`.
   */
  private readonly ending = new Map<ChatConn, NodeJS.Timeout>();
  private readonly rooms = new Map<string, Set<Member>>();
  private readonly nicks = new Map<string, Member>();
  private guests = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Announcements waiting for the next batch, by room. */
  private readonly pending = new Map<string, Announcement[]>();
  private announcer: NodeJS.Timeout | undefined;
  private announcedAt = 0;

  constructor(options: ChatServerOptions = {}) {
    this.options = {
      port: options.port ?? 7001,
      host: options.host ?? '127.0.0.1',
      backend: options.backend,
      transport: options.transport ?? muxnetTransport,
      framing: options.framing ?? 'line',
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
      ...pacing(options.rate, options.burst),
      maxLine: options.maxLine ?? 4096,
      maxClients: options.maxClients ?? 10_000,
      slowCap: options.slowCap ?? 1 << 20,
      quiet: options.quiet ?? false,
      announceMs: options.announceMs ?? 100,
      reusePort: options.reusePort ?? false,
    };
    this.link = options.link;
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  get clients(): number {
    return this.members.size;
  }

  async start(): Promise<this> {
    const { transport, port, host, backend, reusePort } = this.options;
    await this.link?.attach(this.linked());
    try {
      this.listener = await transport.listen(
        { port, host, backend, reusePort },
        { open: (c) => this.open(c), data: (c, chunk) => this.data(c, chunk), close: (c) => this.closed(c) },
      );
    } catch (err) {
      // The link's connections would otherwise keep the process alive with nothing to serve.
      await this.link?.close();
      throw err;
    }
    const every = Math.max(10, Math.min(1000, this.options.idleTimeoutMs / 4));
    this.heartbeat = setInterval(() => this.checkIdle(), every).unref();
    return this;
  }

  /** The server as its link sees it: what other servers send here. */
  private linked(): LocalChat {
    return {
      deliverRoom: (room, text) => this.deliver(this.rooms.get(room) ?? [], text),
      deliverPrivate: (nick, text) => {
        const to = this.nicks.get(nick.toLowerCase());
        if (to) this.send(to, text);
        return to !== undefined;
      },
      departed: (room, nicks) => {
        if (!this.options.quiet) this.toRoom(room, `${timestamp()} * ${names(nicks)} disconnected`);
      },
      lost: (nick) => {
        const m = this.nicks.get(nick.toLowerCase());
        if (m) this.renameLost(m);
      },
      notice: (text) => this.deliver(this.members.values(), text),
    };
  }

  /**
   * Closes the listener, says goodbye to everyone and ends every
   * connection; those still open after `options.timeout` ms (default
   * 5000: a member that does not read its goodbye) are closed. In a
   * cluster, leaves it meanwhile. Resolves once all of that is done.
   */
  async stop(options?: CloseOptions): Promise<void> {
    const timeout = closeTimeout(options, 5000);
    clearInterval(this.heartbeat);
    // Those who left before go out now (the leaving reap names the members here at the stop);
    // none is queued after it: the leaving reap announces everyone here once, and no one here
    // is left to hear a departure (one queued meanwhile went out beside the reap's: twice).
    // (A member dropped by this flush, too slow, queues its own: flushed again.)
    do {
      clearTimeout(this.announcer);
      this.announceAll();
    } while (this.pending.size > 0);
    this.listener?.close();
    const everyone = [...this.members.values()];
    this.options.transport.broadcast(everyone.map((m) => m.conn), this.frame('SERVER shutting down. Goodbye.'), Infinity);
    const leaving = (this.leaving ??= new LiveSet<ChatConn>());
    for (const m of everyone) leaving.add(m.conn);
    for (const m of everyone) m.conn.end();
    // Those already told goodbye go with the others, at the same deadline.
    for (const [conn, timer] of this.ending) {
      clearTimeout(timer);
      leaving.add(conn);
    }
    this.ending.clear();
    await Promise.all([leaving.drain(timeout, (conn) => conn.destroy()), this.link?.close()]);
  }

  private frame(text: string): Buffer {
    return encodeFrame(this.options.framing, text);
  }

  /**
   * A line to one member, under the same `slowCap` as a room's: a member
   * that never reads but keeps asking (`/who`, `/msg` to itself) is cut
   * off there too, not left to queue what it never takes.
   */
  private send(m: Member, text: string): void {
    const { transport, slowCap } = this.options;
    if (!transport.isWritable(m.conn)) return;
    // Written now, not corked: a last line before a destroy must still go.
    m.conn.write(this.frame(text));
    if (transport.queued(m.conn) > slowCap) this.tooSlow(m);
  }

  /** Its queue is dropped, the notice with it: a member too slow to read has no room for one. */
  private tooSlow(m: Member): void {
    const { slowCap } = this.options;
    this.drop(m, `ERROR too slow: more than ${slowCap} bytes waiting; disconnected`, 'disconnected (too slow)');
  }

  /** A line to a room (minus `except`), after the announcements it has not heard yet. */
  private toRoom(room: string, text: string, except?: Member): void {
    this.announce(room);
    this.deliver(this.rooms.get(room) ?? [], text, except);
    this.link?.publish(room, text);
  }

  /**
   * One buffer to `members` but `except`. Members already leaving
   * (dropped, or told goodbye) hear nothing; those too slow to keep up are
   * cut off, those whose connection failed are let go. Either way their
   * departure is only queued: nothing here sends to a room again.
   */
  private deliver(members: Iterable<Member>, text: string, except?: Member): void {
    const { transport, slowCap } = this.options;
    const conns: ChatConn[] = [];
    for (const m of members) if (m !== except && transport.isWritable(m.conn)) conns.push(m.conn);
    const { slow, failed } = transport.broadcast(conns, this.frame(text), slowCap);
    for (const conn of slow) {
      const m = this.members.get(conn);
      if (m) this.tooSlow(m);
    }
    for (const conn of failed) this.closed(conn);
  }

  /** Queues `NICK WHAT` for `room`'s next batch of announcements. */
  private enqueue(room: string, m: Member, what: string, join = false): void {
    if (this.options.quiet || this.leaving) return;
    const announcement: Announcement = { member: m, nick: m.nick, what, join, cancelled: false };
    m.unannounced.push(announcement);
    const batch = this.pending.get(room);
    if (batch) batch.push(announcement);
    else this.pending.set(room, [announcement]);
    if (this.announcer === undefined) {
      const wait = Math.max(0, this.announcedAt + this.options.announceMs - Date.now());
      this.announcer = setTimeout(() => this.announceAll(), wait).unref();
    }
  }

  private announceAll(): void {
    this.announcer = undefined;
    this.announcedAt = Date.now();
    for (const room of [...this.pending.keys()]) this.announce(room);
  }

  /**
   * Sends `room` its pending announcements as one line, to everyone in it:
   * those who just joined or changed their nick hear it too, as in IRC.
   */
  private announce(room: string): void {
    const pending = this.pending.get(room);
    if (!pending) return;
    this.pending.delete(room);
    const batch = pending.filter((a) => !a.cancelled);
    // Only this room's: the member may have others waiting in another room's batch.
    for (const a of batch) a.member.unannounced = a.member.unannounced.filter((u) => u !== a);
    if (batch.length === 0) return;
    const line = `${timestamp()} * ${summary(batch)}`;
    this.deliver(this.rooms.get(room) ?? [], line);
    this.link?.publish(room, line);
  }

  private open(conn: ChatConn): void {
    if (this.members.size >= this.options.maxClients) {
      conn.write(this.frame(`ERROR server full (max ${this.options.maxClients} clients); try later`));
      this.endSoon(conn);
      return;
    }
    const now = Date.now();
    const nick = this.guestNick();
    const m: Member = {
      conn,
      nick,
      room: LOBBY,
      decoder: new FrameDecoder(this.options.framing, this.options.maxLine),
      lastSeen: now,
      pingedAt: 0,
      tokens: this.options.burst,
      refilledAt: now,
      flooding: false,
      dropped: 0,
      oversize: 0,
      overlong: false,
      unannounced: [],
      held: undefined,
    };
    this.members.set(conn, m);
    this.nicks.set(nick.toLowerCase(), m);
    this.join(m, LOBBY);
    this.send(m, `WELCOME to muxnet chat. You are ${nick} in ${LOBBY}. /help lists the commands.`);
    if (this.link && !this.link.connected) this.send(m, this.link.idHeldElsewhere ? HELD : DEGRADED);
    this.claimGuest(m);
  }

  /** A nick no member here has; in a cluster, one with this server's name in it. */
  private guestNick(): string {
    let nick: string;
    do nick = `guest${++this.guests}${this.link?.guestSuffix ?? ''}`.slice(0, MAX_NICK);
    while (this.nicks.has(nick.toLowerCase()));
    return nick;
  }

  /** Claims a guest nick across the cluster; if another server has it, the member gets another one. */
  private claimGuest(m: Member): void {
    const nick = m.nick;
    void this.link?.claim(nick).then((claim) => {
      if (claim === 'taken' && this.members.has(m.conn) && m.nick === nick) this.renameLost(m);
    });
  }

  /**
   * Another server holds `m`'s nick (both took it while Redis was out of
   * reach; the other claimed it first): `m` becomes a guest again.
   */
  private renameLost(m: Member): void {
    const guest = this.guestNick();
    this.send(m, `ERROR nick ${m.nick} is held on another server; you are now ${guest}`);
    // That line may have been one too many for a member that does not read: dropped, it keeps no nick.
    if (!this.members.has(m.conn)) return;
    this.setNick(m, guest);
    this.claimGuest(m);
  }

  private data(conn: ChatConn, chunk: Buffer): void {
    const m = this.members.get(conn);
    if (!m) return;
    const { frames, tooLong, tooLongAt } = m.decoder.push(chunk);
    // A sign of life is a line: bytes that end none (a line that never ends, a trickle) are not.
    if (frames.length > 0 || tooLong > 0) {
      m.lastSeen = Date.now();
      m.pingedAt = 0;
    }
    // In stream order: the lines before the first one too long, its verdict, then (for lines) the rest.
    this.frames(m, tooLong > 0 ? frames.slice(0, tooLongAt) : frames);
    if (!this.members.has(conn)) return;
    if (tooLong > 0) {
      if (this.options.framing === 'length') return this.drop(m, `ERROR frame longer than ${this.options.maxLine} bytes; disconnected`);
      // The first of them may be the line answered while it was still coming.
      const unanswered = m.overlong ? tooLong - 1 : tooLong;
      m.overlong = false;
      if (unanswered > 0 && !this.overlong(m, unanswered)) return;
      this.frames(m, frames.slice(tooLongAt));
      if (!this.members.has(conn)) return;
    }
    // A line already past the limit is answered now, not when (if ever) its newline comes.
    if (m.decoder.dropping > 0 && !m.overlong && this.overlong(m, 1)) m.overlong = true;
  }

  /** Counts `lines` dropped as too long and answers them; false if that cut the member off. */
  private overlong(m: Member, lines: number): boolean {
    m.oversize += lines;
    if (m.oversize >= MAX_OVERSIZE) {
      this.drop(m, 'ERROR too many oversized lines; disconnected');
      return false;
    }
    this.send(m, `ERROR line longer than ${this.options.maxLine} bytes; dropped`);
    return true;
  }

  private frames(m: Member, frames: Buffer[]): void {
    for (const frame of frames) {
      if (!this.members.has(m.conn)) return;
      if (!this.admit(m)) continue;
      if (m.held) m.held.push(frame.toString('utf8'));
      else this.line(m, frame.toString('utf8'));
    }
  }

  /** `m`'s later lines wait until `answer` (a command's reply from the cluster) is done. */
  private inOrder(m: Member, answer: Promise<void>): void {
    m.held = [];
    void answer.finally(() => {
      const held = m.held ?? [];
      m.held = undefined;
      for (const [i, text] of held.entries()) {
        if (!this.members.has(m.conn)) return;
        // Another command that waits: the rest wait for it in turn.
        const waiting = m.held as string[] | undefined;
        if (waiting) return void waiting.push(...held.slice(i));
        this.line(m, text);
      }
    });
  }

  /** The token bucket: false (and a warning, then a disconnect) when flooding. */
  private admit(m: Member): boolean {
    const { rate, burst } = this.options;
    if (takeToken(m, rate, burst)) {
      m.flooding = false;
      return true;
    }
    if (!m.flooding) {
      m.flooding = true;
      m.dropped = 0;
      this.send(m, `ERROR rate limit: at most ${rate} lines/s; slow down`);
    }
    if (++m.dropped > Math.max(burst, FLOOD_GRACE)) this.drop(m, 'ERROR flooding; disconnected');
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
        // A room name too: `lobby\u200b` showed as a second lobby.
        if (!rest || INVISIBLE.test(rest) || rest.length > MAX_NICK) return this.send(m, 'ERROR usage: /join ROOM (1-32 characters, no spaces or invisible characters)');
        if (rest !== m.room) {
          this.leaveRoom(m, `left ${m.room}`);
          this.join(m, rest);
        }
        return this.send(m, `JOINED ${rest}`);
      case '/leave':
        if (m.room !== LOBBY) {
          this.leaveRoom(m, `left ${m.room}`);
          this.join(m, LOBBY);
        }
        return this.send(m, `JOINED ${LOBBY}`);
      case '/rooms':
        return this.listRooms(m);
      case '/who':
        return this.who(m);
      case '/msg':
        return this.whisper(m, args);
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

  /** `ROOMS lobby (3), dev (2)`: this server's rooms, then the others', members counted across the cluster. */
  private listRooms(m: Member): void {
    const counts = new Map([...this.rooms].map(([name, set]) => [name, set.size]));
    const reply = () => this.send(m, `ROOMS ${[...counts].map(([name, n]) => `${name} (${n})`).join(', ')}`);
    if (!this.link) return reply();
    this.inOrder(
      m,
      this.link.rooms().then((remote) => {
        for (const [name, n] of remote) counts.set(name, (counts.get(name) ?? 0) + n);
        reply();
      }),
    );
  }

  /** `WHO room: a, b`: members here first, then on the other servers. */
  private who(m: Member): void {
    const room = m.room;
    const here = [...(this.rooms.get(room) ?? [])].map((x) => x.nick);
    const reply = (there: string[]) => this.send(m, `WHO ${room}: ${[...here, ...there].join(', ')}`);
    if (!this.link) return reply([]);
    this.inOrder(m, this.link.who(room).then(reply));
  }

  private whisper(m: Member, [target, ...words]: string[]): void {
    const to = target ? this.nicks.get(target.toLowerCase()) : undefined;
    const text = words.join(' ');
    if (to && text) {
      this.send(to, `${timestamp()} ${m.nick} (private): ${text}`);
      return this.send(m, `${timestamp()} -> ${to.nick}: ${text}`);
    }
    if (to || !target || !text || !this.link) return this.send(m, to ? 'ERROR usage: /msg NICK text' : `ERROR no such nick: ${target ?? ''}`);
    // Not here: the server that holds the nick's claim delivers it.
    this.inOrder(
      m,
      this.link.whisper(target, `${timestamp()} ${m.nick} (private): ${text}`).then((sent) => {
        this.send(m, sent ? `${timestamp()} -> ${target}: ${text}` : `ERROR no such nick: ${target}`);
      }),
    );
  }

  /** `/nick`: unique here at once; in a cluster, once Redis has granted the claim. */
  private rename(m: Member, nick: string): void {
    const owner = this.nicks.get(nick.toLowerCase());
    // A guest may repeat (or recase) the name it was given: only others' taking it made chains.
    const problem = owner === m ? undefined : nickError(nick);
    if (problem) return this.send(m, `ERROR ${problem}`);
    if (owner && owner !== m) return this.send(m, `ERROR nick ${nick} is taken`);
    const link = this.link;
    if (!link || owner === m) return this.setNick(m, nick);
    // Its next lines wait for the answer: a line after `/nick` goes out under the new nick.
    this.inOrder(m, link.claim(nick).then((claim) => {
      const gone = !this.members.has(m.conn);
      const holder = this.nicks.get(nick.toLowerCase());
      if (gone || claim === 'taken' || (holder && holder !== m)) {
        // Another member here got it while Redis answered: the claim is theirs, not released.
        if (gone && claim === 'ok' && !holder) link.release(nick);
        if (!gone) this.send(m, `ERROR nick ${nick} is taken`);
        return;
      }
      // Offline: unique here for now; the link claims it once Redis is back.
      const old = m.nick;
      this.setNick(m, nick);
      link.release(old);
    }));
  }

  private setNick(m: Member, nick: string): void {
    if (nick !== m.nick) this.enqueue(m.room, m, `is now known as ${nick}`);
    this.nicks.delete(m.nick.toLowerCase());
    // The new name first: the room keeps a member here throughout (its channel stays subscribed).
    this.link?.presence(nick, m.room);
    if (nick !== m.nick) this.link?.presence(m.nick, undefined);
    m.nick = nick;
    this.nicks.set(nick.toLowerCase(), m);
    this.send(m, `NICK ${nick}`);
  }

  private join(m: Member, room: string): void {
    this.link?.presence(m.nick, room);
    m.room = room;
    let members = this.rooms.get(room);
    if (!members) this.rooms.set(room, (members = new Set()));
    members.add(m);
    this.enqueue(room, m, `joined ${room}`, true);
  }

  /**
   * Takes `m` out of its room at once (it hears nothing more there) and
   * queues `NICK WHAT` for the room; a member whose join the room has not
   * heard of yet leaves unannounced, its join and nick changes with it.
   */
  private leaveRoom(m: Member, what: string): void {
    const members = this.rooms.get(m.room);
    members?.delete(m);
    if (members?.size === 0 && m.room !== LOBBY) this.rooms.delete(m.room);
    if (m.unannounced.some((a) => a.join)) for (const a of m.unannounced) a.cancelled = true;
    else this.enqueue(m.room, m, what);
    m.unannounced = [];
  }

  /** Removes a member: a last line to them, an announcement to their room. */
  private drop(m: Member, notice: string, why = 'disconnected', graceful = false): void {
    if (!this.members.has(m.conn)) return;
    this.forget(m, why);
    this.send(m, notice);
    if (graceful) this.endSoon(m.conn);
    else m.conn.destroy();
  }

  /** Ends `conn` (what is queued still goes), and closes it if its peer has not within `idleTimeoutMs`. */
  private endSoon(conn: ChatConn): void {
    conn.end();
    if (this.leaving) return this.leaving.add(conn);
    this.ending.set(conn, setTimeout(() => conn.destroy(), this.options.idleTimeoutMs).unref());
  }

  private forget(m: Member, why: string): void {
    this.members.delete(m.conn);
    this.nicks.delete(m.nick.toLowerCase());
    this.leaveRoom(m, why);
    this.link?.presence(m.nick, undefined);
    this.link?.release(m.nick);
  }

  private closed(conn: ChatConn): void {
    this.leaving?.delete(conn);
    clearTimeout(this.ending.get(conn));
    this.ending.delete(conn);
    const m = this.members.get(conn);
    if (!m) return;
    // Lines held for a command's answer (a client that sent `/who` and its
    // last lines, then its FIN) are handled now, not lost with it.
    const held = m.held ?? [];
    m.held = undefined;
    for (const text of held) {
      if (!this.members.has(conn)) return;
      this.line(m, text);
    }
    if (this.members.has(conn)) this.forget(m, 'disconnected');
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
