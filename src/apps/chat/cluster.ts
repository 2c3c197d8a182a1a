/**
 * Chat rooms across servers over Redis pub/sub, the pattern of Socket.IO's
 * Redis adapter: a relayed line is published once per room, and every
 * server with members in that room fans it out to them with one broadcast.
 *
 * In Redis (every key under `prefix`):
 * - `nick:<lowercase nick>` → the owning server's id, `SET NX PX`: a claim
 *   under a lease the owner refreshes every third of it;
 * - `nodes`: a sorted set of server ids scored by when their lease ends
 *   (Redis's clock, so servers' clocks may differ);
 * - `members:<id>`: a hash, nick → room, of each server's members;
 * - `owner:<id>`: the incarnation of the server holding the id, under its lease;
 * - channels `room:<room>` (lines for a room) and `node:<id>:<incarnation>`
 *   (private lines; `node:<id>` for a server without one, see WHISPER).
 * A server whose lease ends (it died) is reaped by whichever live server
 * gets to it first — atomically, in a script, so its members are announced
 * gone exactly once — and its nicks expire with their own leases.
 *
 * The Redis client is ioredis, connected over muxnet's drop-in `net` (a
 * `Connector`): the cluster's links run on the same reactor as the chat.
 */
import { createHash, randomBytes } from 'node:crypto';
import type nodeNet from 'node:net';
import { hostname } from 'node:os';
import { AbstractConnector, Redis, type RedisOptions } from 'ioredis';
import { connect } from '../../net';
import type { BackendName } from '../../fast';
import { DEGRADED, HELD, type ChatLink, type Claim, type LocalChat } from './link';

export interface RedisLinkOptions {
  /** `redis://[user:password@]host:port[/db]`. */
  url: string;
  /** This server's name in the cluster (default `hostname-pid`); unique per server. */
  nodeId?: string;
  /** How long a nick claim and a server's presence last unless refreshed (default 10 000 ms). */
  leaseMs?: number;
  /** Prefix of every key and channel (default `muxnet:chat:`). */
  prefix?: string;
  /** The reactor backend of the Redis connections. */
  backend?: BackendName;
}

/**
 * Takes the node id (KEYS[1]) for this incarnation (ARGV[1]) for a lease
 * (ARGV[2]); 0 if another incarnation holds it.
 */
const HOLD_ID = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/**
 * The hold on a node id (KEYS[1]): its holder and when it ends, by Redis's
 * clock (so a late answer is not taken for a refresh); -1 if it never does.
 */
const HOLD_STATE = `
local holder = redis.call('GET', KEYS[1])
if not holder then return {} end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then return { holder, -1 } end
local t = redis.call('TIME')
return { holder, t[1] * 1000 + math.floor(t[2] / 1000) + left }`;

/**
 * Refreshes this server's hold on its id (KEYS[3]), its lease and its nicks;
 * claims the nicks Redis lost. Returns [was missing, ms since its last
 * refresh (-1 if missing), ...lost indices], or [-1] if another incarnation
 * holds the id (nothing refreshed).
 */
const HEARTBEAT = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local lease = tonumber(ARGV[2])
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[3] then return { -1 } end
redis.call('SET', KEYS[3], ARGV[3], 'PX', lease)
local last = redis.call('ZSCORE', KEYS[1], ARGV[1])
local out = { redis.call('ZADD', KEYS[1], now + lease, ARGV[1]), last and now - (tonumber(last) - lease) or -1 }
redis.call('PEXPIRE', KEYS[2], 86400000)
for i = 4, #KEYS do
  local owner = redis.call('GET', KEYS[i])
  if owner == ARGV[1] then redis.call('PEXPIRE', KEYS[i], lease)
  elseif not owner then redis.call('SET', KEYS[i], ARGV[1], 'PX', lease)
  else out[#out + 1] = i - 3 end
end
return out`;

/**
 * Removes servers whose lease ended over ARGV[3] ms ago (or ARGV[2], this
 * server leaving or its previous incarnation, unless an incarnation other
 * than this one, ARGV[4], holds the id) and returns them: id, then its
 * members as an HGETALL list.
 */
const REAP = `
local dead = { ARGV[2] }
if ARGV[2] == '' then
  local t = redis.call('TIME')
  dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', t[1] * 1000 + math.floor(t[2] / 1000) - tonumber(ARGV[3]))
else
  local holder = redis.call('GET', ARGV[1] .. 'owner:' .. ARGV[2])
  if holder and holder ~= ARGV[4] then return {} end
end
local out = {}
for _, id in ipairs(dead) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local key = ARGV[1] .. 'members:' .. id
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGETALL', key)
    redis.call('DEL', key)
  end
end
return out`;

/** The members (HGETALL lists) of the live servers but ARGV[2]. */
const ROSTER = `
local t = redis.call('TIME')
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], t[1] * 1000 + math.floor(t[2] / 1000), '+inf')
local out = {}
for _, id in ipairs(ids) do
  if id ~= ARGV[2] then out[#out + 1] = redis.call('HGETALL', ARGV[1] .. 'members:' .. id) end
end
return out`;

/**
 * Deletes the claims in KEYS still held by ARGV[1] — if ARGV[2] (a node
 * id's hold) is given, only unless an incarnation other than ARGV[3] holds
 * it, else -1.
 */
const RELEASE = `
if ARGV[2] ~= '' then
  local holder = redis.call('GET', ARGV[2])
  if holder and holder ~= ARGV[3] then return -1 end
end
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0`;

/*
 * The writes of a server that stood still past its lease (a twin may have
 * taken its id meanwhile: `members:<id>` and the nicks valued `<id>` are
 * then the twin's) are made only unless another incarnation holds the id
 * (KEYS[1], if set, is ARGV[1]; a hold Redis lost is taken again at the
 * next beat); -1 if another does.
 */

/** Sets (ARGV[3] a room) or deletes (ARGV[3] empty) member ARGV[2] in hash KEYS[2]. */
const PRESENCE = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return -1 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[2], ARGV[2]) else redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
return 1`;

/** Claims nick KEYS[2] for server ARGV[2] for ARGV[3] ms: 1 (also when it is already that server's), or 0 if another's. */
const CLAIM = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return -1 end
local owner = redis.call('GET', KEYS[2])
if not owner then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) return 1 end
if owner == ARGV[2] then return 1 end
return 0`;

/**
 * A private line (ARGV[3]) for nick KEYS[1], published to the channel of the
 * incarnation holding its owner's id, `node:<id>:<incarnation>` — a server
 * that stood still while a twin took its id is not subscribed to it. Else
 * to `node:<id>`: a server whose hold Redis lost, or one of an earlier
 * version (a rolling upgrade), which has no channel of its own. 0 when no
 * other server (not ARGV[1]) has the nick.
 */
const WHISPER = `
local owner = redis.call('GET', KEYS[1])
if not owner or owner == ARGV[1] then return 0 end
local holder = redis.call('GET', ARGV[2] .. 'owner:' .. owner)
if holder then
  local n = redis.call('PUBLISH', ARGV[2] .. 'node:' .. owner .. ':' .. holder, ARGV[3])
  if n > 0 then return n end
end
return redis.call('PUBLISH', ARGV[2] .. 'node:' .. owner, ARGV[3])`;

/** `[k1, v1, k2, v2]` as pairs. */
function pairs(list: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < list.length; i += 2) out.push([list[i], list[i + 1]]);
  return out;
}

/** Characters published without an answer before Redis is taken for stalled (under its 32 MB pub/sub output limit). */
const MAX_PUBLISHING = 8 * 1024 * 1024;

export class RedisLink implements ChatLink {
  readonly nodeId: string;
  readonly leaseMs: number;
  readonly guestSuffix: string;
  private readonly prefix: string;
  /** This process's incarnation: a restarted server's counter starts again from 1. */
  private readonly origin: string;
  private seq = 0;
  /** Characters of the lines published and not answered yet, and when Redis last answered one (or the first was sent). */
  private publishing = 0;
  private answeredAt = 0;
  /** The last publish: the ones before it are done when it is (one connection, in order). */
  private published: Promise<unknown> = Promise.resolve();
  /**
   * The last sequence number delivered per origin: a line is never delivered
   * twice. In two generations, turned over every lease: an origin heard from
   * in neither (a server that left, or restarted as a new incarnation) is
   * forgotten, where one entry per incarnation ever seen grew for as long
   * as this server ran.
   */
  private delivered = new Map<string, number>();
  private deliveredBefore = new Map<string, number>();
  private turnedAt = Date.now();
  /** This server's members: nick → room. */
  private readonly here = new Map<string, string>();
  /** Rooms with members here, and how many: the room channels subscribed to. */
  private readonly roomCounts = new Map<string, number>();
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private local: LocalChat | undefined;
  /** Both connections ready, subscribed and registered: lines cross servers. */
  private up = false;
  /** Members were told delivery is degraded; they are told when it is restored. */
  private toldDegraded = false;
  /** When this server was last (re)linked: it reaps only after a whole lease, so the others had time to come back too. */
  private linkedAt = 0;
  /** After a beat of its own came late: its refresh before the stall, and until when only servers whose lease ended before it are reaped. */
  private stalledFrom = 0;
  private stalledUntil = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private linking: Promise<void> | undefined;
  private linkAgain = false;
  /** Connections to Redis lost so far (either one): a link that saw one is not up. */
  private drops = 0;
  /** Connections closed for not answering, until their 'close'. */
  private readonly dropping = new Set<Redis>();
  /** The channels the subscriber connection is subscribed to (none after it drops). */
  private readonly subscribed = new Set<string>();
  /** Members moved while not linked: relinking writes them (again, if it was under way). */
  private moved = false;
  /** When the beat under way (or the link under way) began; 0 when none. */
  private beatingSince = 0;
  private linkingSince = 0;
  private closing = false;
  /** close() has begun: a beat still under way must not register this server again. */
  private leaving = false;
  /**
   * Not linked yet in this process: what Redis holds under this node id is
   * a previous incarnation's (restarted under the same `--node-id` after a
   * crash), whose members are announced gone once this one is linked.
   */
  private firstLink = true;
  /** That incarnation's members, by room, until they are announced. */
  private predecessor: Map<string, string[]> | undefined;
  private held = false;
  /** The Redis connections' longest retry delay. */
  private retryCapMs = 0;
  /** While held: when the id was first seen free (0: not seen free since). */
  private freeSince = 0;
  /** While held: when the hold ended when last looked at (Redis's clock); whether it was seen refreshed (its server is live). */
  private holdEnd = 0;
  private holderLive = false;

  constructor(options: RedisLinkOptions) {
    this.nodeId = options.nodeId ?? `${hostname()}-${process.pid}`;
    this.leaseMs = options.leaseMs ?? 10_000;
    this.prefix = options.prefix ?? 'muxnet:chat:';
    // Guests are `guestN.NODE` in at most 32 characters: a long node id is
    // shortened with a hash of it, not cut (ids sharing a prefix, such as a
    // deployment's pods or `host-pid-w1` and `-w2`, would collide).
    this.guestSuffix = `.${this.nodeId.length <= 16 ? this.nodeId : `${this.nodeId.slice(0, 7)}-${createHash('sha256').update(this.nodeId).digest('hex').slice(0, 8)}`}`;
    this.origin = `${this.nodeId}/${randomBytes(6).toString('hex')}`;
    const backend = options.backend;
    class MuxnetConnector extends AbstractConnector {
      private readonly target: { host: string; port: number };
      constructor(opts: unknown) {
        const o = opts as { host: string; port: number; disconnectTimeout: number };
        super(o.disconnectTimeout);
        this.target = o;
      }
      connect() {
        this.connecting = true;
        this.stream = connect({ host: this.target.host, port: this.target.port, backend }) as unknown as nodeNet.Socket;
        return Promise.resolve(this.stream);
      }
    }
    const cap = (this.retryCapMs = Math.min(2000, this.leaseMs));
    const redisOptions: RedisOptions = {
      // Over TLS (rediss://) ioredis's own connector does the handshake.
      Connector: options.url.startsWith('rediss:') ? undefined : MuxnetConnector,
      // Reconnect forever, backing off up to a lease (2 s at most).
      retryStrategy: (times) => Math.min(cap, 25 * 2 ** Math.min(times, 10)),
      // While Redis is away, commands fail at once: nothing queues up, local rooms go on.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResubscribe: false,
      lazyConnect: true,
      // A connection dropped for not answering is destroyed at once: its FIN would wait (2 s by
      // default) on a Redis that reads nothing, and members would hear of it that much later.
      disconnectTimeout: 0,
    };
    // The lines relayed in one reactor turn go to Redis in one write; Redis then sends each
    // subscribed server the turn's lines together, and its broadcast corks them per member.
    this.cmd = new Redis(options.url, { ...redisOptions, enableAutoPipelining: true });
    this.sub = new Redis(options.url, redisOptions);
    for (const r of [this.cmd, this.sub]) {
      // Errors are followed by 'close' and a reconnect; 'close' is where we react.
      r.on('error', () => {});
      r.on('close', () => {
        this.dropping.delete(r);
        // What was seen of the hold is not known to hold over the outage (one seen free, then
        // Redis gone for a while, was taken at once on its return, before its server relinked).
        this.freeSince = 0;
        this.holdEnd = 0;
        this.drops++;
        if (r === this.sub) this.subscribed.clear();
        this.down();
      });
    }
    this.cmd.on('ready', () => void this.relink());
    this.sub.on('ready', () => void this.relink());
    this.sub.on('message', (channel: string, message: string) => this.message(channel, message));
  }

  async attach(local: LocalChat): Promise<void> {
    this.local = local;
    const first = (r: Redis) => r.connect().catch(() => {});
    // A Redis that accepts and never answers: serve degraded after a lease.
    let waited: NodeJS.Timeout | undefined;
    const lease = new Promise<void>((resolve) => (waited = setTimeout(resolve, this.leaseMs)));
    await Promise.race([Promise.all([first(this.cmd), first(this.sub)]).then(() => this.relink()), lease]);
    clearTimeout(waited);
    // Held: a crashed incarnation's hold runs out within a lease, and is waited for before this
    // server listens — else its members were announced gone after new ones took their names
    // (a restarted server's guest1.b heard its own departure). A live twin's is not.
    // (Long enough for the hold to run out and the id to be seen free for `holdId`'s while.)
    const until = Date.now() + Math.max(1.5 * this.leaseMs, this.leaseMs + this.retryCapMs + 500 + this.leaseMs / 8);
    // (A live one's is seen refreshed within a third of a lease: no use waiting it out.)
    while (this.held && !this.holderLive && this.ready && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, this.leaseMs / 8));
      // Within the wait: a Redis that stops answering meanwhile must not keep it from listening.
      let left: NodeJS.Timeout | undefined;
      await Promise.race([this.relink(), new Promise((resolve) => (left = setTimeout(resolve, until - Date.now())))]);
      clearTimeout(left);
    }
    if (this.held) this.warnHeld();
    // Not linked yet: members are told at once (see ChatServer), and told when it is.
    this.toldDegraded = !this.up;
    this.heartbeat = setInterval(() => void this.beat(), this.leaseMs / 3);
    this.heartbeat.unref();
  }

  private key(kind: string, name: string): string {
    return `${this.prefix}${kind}:${name}`;
  }

  private nickKey(nick: string): string {
    return this.key('nick', nick.toLowerCase());
  }

  get connected(): boolean {
    return this.up;
  }

  /**
   * Another server holds this node id (a twin started under it by mistake,
   * or one stopped without leaving less than a lease ago): this one is not
   * linked until the id is free, rather than take that server's members for
   * a previous incarnation's and announce them gone.
   */
  get idHeldElsewhere(): boolean {
    return this.held;
  }

  private get ready(): boolean {
    return !this.closing && this.cmd.status === 'ready' && this.sub.status === 'ready';
  }

  /** A connection to Redis was lost (or the id taken: `HELD`): members hear once that other servers are out of reach. */
  private down(notice = DEGRADED): void {
    if (!this.up) return;
    this.up = false;
    if (this.closing) return;
    this.toldDegraded = true;
    this.local?.notice(notice);
  }

  private warnHeld(): void {
    const which = this.holderLive
      ? 'a live one, its hold refreshed: give each server its own --node-id'
      : 'a live one: give each its own --node-id; or one that crashed, whose hold has not run out';
    console.warn(`muxnet chat: node id ${this.nodeId} is held by another server (${which}): serving this server's members alone until it is free`);
  }

  /**
   * Another server took this id while this one was linked (it stood still
   * past its lease, or Redis restarted without its data): said, and its
   * channels left — a private line for the id, and room lines, reached both.
   */
  private stepBack(notice: boolean): void {
    this.held = true;
    this.warnHeld();
    if (notice && !this.closing) {
      this.toldDegraded = true;
      this.local?.notice(HELD);
    }
    const channels = [...this.subscribed];
    this.subscribed.clear();
    if (channels.length > 0) this.sub.unsubscribe(...channels).catch(() => {});
  }

  /** Taken while this server stood still past its lease (a guarded write said so): unlinked until it is free again. */
  private heldElsewhere(): void {
    if (this.held) return; // said once, by the first write that found it
    this.down(HELD);
    this.stepBack(false);
  }

  /**
   * Takes the node id, or finds it held. Held already, it takes the id only
   * once seen free for a while — a quarter of a lease, and longer than the
   * Redis connections' longest retry delay: when Redis lost it (restarted
   * without its data), the server that held it, relinking as it reconnects,
   * takes it back, not a twin.
   */
  private async holdId(): Promise<boolean> {
    const owner = this.key('owner', this.nodeId);
    if (this.held) {
      const [holder, end] = (await this.cmd.eval(HOLD_STATE, 1, owner)) as [string?, number?];
      if (holder !== undefined && holder !== this.origin) {
        this.freeSince = 0;
        // Ending later than when last looked at (past a rounding): refreshed. A hold with no end is not.
        if (end! > 0 && this.holdEnd > 0 && end! > this.holdEnd + 10) this.holderLive = true;
        this.holdEnd = end!;
        return false;
      }
      this.holdEnd = 0;
      this.holderLive = false;
      // Free, for a while; or its own (a beat took it again when Redis had lost it): at once.
      if (holder === undefined) {
        this.freeSince ||= Date.now();
        if (Date.now() - this.freeSince < Math.max(this.leaseMs / 4, this.retryCapMs + 500)) return false;
      }
    }
    this.freeSince = 0;
    return (await this.cmd.eval(HOLD_ID, 1, owner, this.origin, this.leaseMs)) === 1;
  }

  /** Both connections are ready: subscribe, register, and tell members if they were told of trouble. */
  private relink(): Promise<void> {
    // A 'ready' while a link runs: that link may have subscribed on the
    // connection just replaced, so it runs again once this one is done.
    if (this.linking) {
      this.linkAgain = true;
      return this.linking;
    }
    const linking = async () => {
      do {
        this.linkAgain = false;
        await this.link();
      } while (this.linkAgain);
    };
    this.linkingSince = Date.now();
    this.linking = linking().finally(() => {
      this.linking = undefined;
      this.linkingSince = 0;
    });
    return this.linking;
  }

  private async link(): Promise<void> {
    if (!this.ready || this.up) return;
    const drops = this.drops;
    try {
      if (!(await this.holdId())) {
        // Held since this server was last linked: said (at the first link, attach says it after its wait).
        if (!this.held && !this.firstLink) this.stepBack(true);
        this.held = true;
        // Tried again at each beat: one that died lets its hold run out within a lease.
        return;
      }
      this.held = false;
      // Taken (and its nicks freed) before this incarnation's presence replaces it.
      if (this.firstLink) {
        this.predecessor = await this.reap(this.nodeId);
        this.firstLink = false;
      }
      do {
        this.moved = false;
        const wanted = [this.key('node', this.nodeId), this.key('node', `${this.nodeId}:${this.origin}`), ...[...this.roomCounts.keys()].map((r) => this.key('room', r))];
        // Rooms emptied while Redis was away, on a subscriber connection that stayed.
        const stale = [...this.subscribed].filter((c) => !wanted.includes(c));
        if (stale.length > 0) await this.sub.unsubscribe(...stale);
        for (const c of stale) this.subscribed.delete(c);
        await this.sub.subscribe(...wanted);
        for (const c of wanted) this.subscribed.add(c);
        await this.register();
      } while (this.moved);
    } catch {
      return; // lost again: the next 'ready' tries again
    }
    // A connection dropped meanwhile: what was subscribed or written may be
    // gone with it. Its 'ready' links again (or has asked to: linkAgain).
    if (!this.ready || this.up || drops !== this.drops) return;
    this.up = true;
    this.linkedAt = Date.now();
    if (this.predecessor) this.departed(this.predecessor);
    this.predecessor = undefined;
    if (this.toldDegraded) {
      this.toldDegraded = false;
      this.local?.notice('SERVER cross-server delivery restored');
    }
  }

  /** Writes this server's whole presence and refreshes its lease and claims. */
  private async register(): Promise<void> {
    const members = this.key('members', this.nodeId);
    const multi = this.cmd.multi().del(members);
    if (this.here.size > 0) multi.hset(members, Object.fromEntries(this.here));
    await multi.exec();
    await this.refresh();
  }

  /**
   * The heartbeat script: renames the members whose nick another server
   * holds. Says whether this server was missing from the live set, and how
   * long ago its lease was last refreshed.
   */
  private async refresh(): Promise<{ missing: boolean; since: number }> {
    const nicks = [...this.here.keys()];
    const keys = [this.key('nodes', 'all'), this.key('members', this.nodeId), this.key('owner', this.nodeId), ...nicks.map((n) => this.nickKey(n))];
    const [missing, since, ...lost] = (await this.cmd.eval(HEARTBEAT, keys.length, ...keys, this.nodeId, this.leaseMs, this.origin)) as number[];
    if (missing === -1) {
      this.heldElsewhere();
      throw new Error(`node id ${this.nodeId} is held by another server`);
    }
    for (const i of lost) this.local?.lost(nicks[i - 1]);
    return { missing: missing === 1, since };
  }

  private async beat(): Promise<void> {
    this.forgetQuietOrigins();
    // A beat or a link still unanswered after a lease: Redis holds the
    // connections and does not answer (stopped, a silent network). Dropped,
    // so members hear it is down and what waits on it fails.
    const waiting = this.beatingSince || this.linkingSince;
    if (waiting && Date.now() - waiting > this.leaseMs) return this.drop();
    // A relink that failed half-way (Redis lost again meanwhile) is tried again here.
    if (!this.up) return this.relink();
    if (this.beatingSince) return;
    this.beatingSince = Date.now();
    try {
      // The subscriber connection answers too, or it is as good as lost.
      await Promise.all([this.sub.ping(), this.keepAlive()]);
    } catch {
      // Redis went away mid-beat: 'close' says so, 'ready' relinks.
    } finally {
      this.beatingSince = 0;
    }
  }

  private async keepAlive(): Promise<void> {
    // Missing from the live set (reaped while away, or Redis lost its data): register again.
    const { missing, since } = await this.refresh();
    // (Not once leaving: its reap may have come between — registered again, it would be reaped
    // a lease later, its members announced gone a second time.)
    if (this.leaving) return;
    if (missing) await this.register();
    // Refreshed late (beats are a third of a lease apart): Redis or this process stood still,
    // and the other servers' beats, held up alike, may be queued behind this one — their leases
    // ran out while they were live (their members were announced gone after a pause of Redis
    // just under a lease). For a lease from then, only those whose lease had ended before this
    // server's refresh before the stall are reaped: gone while all was well.
    const now = Date.now();
    if (missing || since > this.leaseMs / 2) {
      this.stalledFrom = now - (missing ? this.leaseMs : since);
      this.stalledUntil = now + this.leaseMs;
    }
    // For a lease (a busy server's beat may wait behind megabytes of its lines).
    const grace = now < this.stalledUntil ? now - this.stalledFrom : 0;
    if (now - this.linkedAt >= this.leaseMs) this.departed(await this.reap('', grace));
  }

  /**
   * Redis is not answering: both connections are closed (what they had
   * queued is dropped), which runs the degraded path; ioredis reconnects.
   */
  private drop(): void {
    if (this.closing) return;
    // Once per connection until it has closed (each call would add ioredis a timer and a listener).
    for (const r of [this.cmd, this.sub]) {
      if (this.dropping.has(r)) continue;
      this.dropping.add(r);
      r.disconnect(true);
    }
  }

  /** Once a lease: the origins heard from in the last generation only are dropped. */
  private forgetQuietOrigins(): void {
    const now = Date.now();
    if (now - this.turnedAt < this.leaseMs) return;
    this.turnedAt = now;
    this.deliveredBefore = this.delivered;
    this.delivered = new Map();
  }

  /** Removes dead servers (or this one, leaving, or its previous incarnation) and frees their nicks; returns their members by room. */
  private async reap(id: string, grace = 0): Promise<Map<string, string[]>> {
    const gone = (await this.cmd.eval(REAP, 1, this.key('nodes', 'all'), this.prefix, id, grace, this.origin)) as (string | string[])[];
    const byRoom = new Map<string, string[]>();
    for (let i = 0; i + 1 < gone.length; i += 2) {
      const members = pairs(gone[i + 1] as string[]);
      for (const [nick, room] of members) {
        const nicks = byRoom.get(room);
        if (nicks) nicks.push(nick);
        else byRoom.set(room, [nick]);
      }
      // Best effort: a claim left behind (Redis lost meanwhile) ends with its lease. The
      // members are announced all the same (a first link that failed here lost them).
      await this.releaseAll(gone[i] as string, members.map(([nick]) => nick), '').catch(() => {});
    }
    return byRoom;
  }

  /** Announces reaped members gone, to their rooms on every server. */
  private departed(byRoom: Map<string, string[]>): void {
    for (const [room, nicks] of byRoom) this.local?.departed(room, nicks);
  }

  /** Deletes the claims on `nicks` that `owner` still holds; if `hold` (a node id's) is given, only unless another incarnation holds it. */
  private async releaseAll(owner: string, nicks: string[], hold: string): Promise<void> {
    const keys = nicks.map((n) => this.nickKey(n));
    if (keys.length > 0 && (await this.cmd.eval(RELEASE, keys.length, ...keys, owner, hold, this.origin)) === -1) this.heldElsewhere();
  }

  publish(room: string, text: string): void {
    if (!this.up) return;
    const message = `${this.origin}\n${++this.seq}\n${text}`;
    // Lines Redis has not answered yet are held in this process: past a
    // bound, with no answer for a while (a busy Redis answers on), it is
    // not keeping up (stopped, or a network that stalls) and is dropped.
    if (this.publishing > MAX_PUBLISHING && Date.now() - this.answeredAt > this.leaseMs / 3) return this.drop();
    if (this.publishing === 0) this.answeredAt = Date.now();
    this.publishing += message.length;
    this.published = this.cmd
      .publish(this.key('room', room), message)
      .catch(() => {})
      .finally(() => {
        this.publishing -= message.length;
        this.answeredAt = Date.now();
      });
  }

  private message(channel: string, message: string): void {
    const local = this.local;
    // Held by another server: its lines are that server's (until the channels are left).
    if (!local || this.held) return;
    const roomPrefix = this.key('room', '');
    if (channel.startsWith(roomPrefix)) {
      const [origin, seq, ...text] = message.split('\n');
      const n = Number(seq);
      if (origin === this.origin || n <= (this.delivered.get(origin) ?? this.deliveredBefore.get(origin) ?? 0)) return;
      this.delivered.set(origin, n);
      local.deliverRoom(channel.slice(roomPrefix.length), text.join('\n'));
    } else {
      const [nick, ...text] = message.split('\n');
      local.deliverPrivate(nick, text.join('\n'));
    }
  }

  presence(nick: string, room: string | undefined): void {
    const before = this.here.get(nick);
    if (before === room) return;
    if (before !== undefined) {
      this.here.delete(nick);
      this.count(before, -1);
    }
    if (room !== undefined) {
      this.here.set(nick, room);
      this.count(room, +1);
    }
    if (!this.up) {
      this.moved = true; // registering again writes it all
      return;
    }
    this.cmd
      .eval(PRESENCE, 2, this.key('owner', this.nodeId), this.key('members', this.nodeId), this.origin, nick, room ?? '')
      .then((done) => done === -1 && this.heldElsewhere())
      .catch(() => {});
  }

  /** Subscribes to a room's channel with its first member here, unsubscribes after its last. */
  private count(room: string, delta: number): void {
    const n = (this.roomCounts.get(room) ?? 0) + delta;
    if (n > 0) this.roomCounts.set(room, n);
    else this.roomCounts.delete(room);
    if (!this.up) return; // relinking subscribes to what is here then
    const channel = this.key('room', room);
    if (n === 1 && delta > 0) {
      this.subscribed.add(channel);
      this.sub.subscribe(channel).catch(() => {});
    } else if (n === 0) {
      this.subscribed.delete(channel);
      this.sub.unsubscribe(channel).catch(() => {});
    }
  }

  async claim(nick: string): Promise<Claim> {
    if (!this.up) return 'offline';
    try {
      // A claim of our own (a member's old nick, not yet released) is ours to keep.
      const claimed = await this.cmd.eval(CLAIM, 2, this.key('owner', this.nodeId), this.nickKey(nick), this.origin, this.nodeId, this.leaseMs);
      if (claimed === -1) {
        this.heldElsewhere();
        return 'offline';
      }
      return claimed === 1 ? 'ok' : 'taken';
    } catch {
      return 'offline';
    }
  }

  release(nick: string): void {
    if (this.up) this.releaseAll(this.nodeId, [nick], this.key('owner', this.nodeId)).catch(() => {});
  }

  async whisper(nick: string, text: string): Promise<boolean> {
    if (!this.up) return false;
    try {
      return ((await this.cmd.eval(WHISPER, 1, this.nickKey(nick), this.nodeId, this.prefix, `${nick}\n${text}`)) as number) > 0;
    } catch {
      return false;
    }
  }

  /** The members of the other live servers, as [nick, room]. */
  private async others(): Promise<[string, string][]> {
    if (!this.up) return [];
    try {
      const lists = (await this.cmd.eval(ROSTER, 1, this.key('nodes', 'all'), this.prefix, this.nodeId)) as string[][];
      return lists.flatMap(pairs);
    } catch {
      return [];
    }
  }

  async who(room: string): Promise<string[]> {
    return (await this.others()).filter(([, r]) => r === room).map(([nick]) => nick);
  }

  async rooms(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const [, room] of await this.others()) counts.set(room, (counts.get(room) ?? 0) + 1);
    return counts;
  }

  async close(): Promise<void> {
    this.leaving = true;
    clearInterval(this.heartbeat);
    const goodbye = async () => {
      if (this.up) {
        try {
          this.departed(await this.reap(this.nodeId));
          // The id is free for a restart at once.
          await this.cmd.eval(RELEASE, 1, this.key('owner', this.nodeId), this.origin, '', '');
          // The departures are pipelined (sent at the end of the tick): out before QUIT.
          await this.published;
        } catch {
          // Redis went away: the leases run out by themselves.
        }
      }
      this.closing = true;
      this.up = false;
      for (const r of [this.cmd, this.sub]) await r.quit().catch(() => r.disconnect());
    };
    // A Redis that does not answer is given a lease in all, then left.
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([goodbye(), new Promise((resolve) => (waited = setTimeout(resolve, this.leaseMs)))]);
    clearTimeout(waited);
    this.closing = true;
    this.up = false;
    // Those the goodbye did not close (a disconnect of a closed one would leave ioredis a timer).
    for (const r of [this.cmd, this.sub]) if (r.status !== 'end') r.disconnect();
  }
}
