/**
 * What a chat server needs from the cluster it belongs to, and what the
 * cluster needs back from it. The server knows nothing of Redis: it talks
 * to a `ChatLink` (`cluster.ts` is the Redis one); without a link it is a
 * single server, exactly as before.
 */

/** What members hear while Redis is out of reach. */
export const DEGRADED = "SERVER cross-server delivery degraded (Redis unreachable): this server's rooms still work; reconnecting";

/** What members hear while another server holds this one's node id. */
export const HELD = "SERVER cross-server delivery paused: this server's node id is in use by another server; this server's rooms still work";

/** The outcome of claiming a nick for the whole cluster. */
export type Claim = 'ok' | 'taken' | 'offline';

/** The server, as its link sees it. */
export interface LocalChat {
  /** A line from another server to `room`'s members here. */
  deliverRoom(room: string, text: string): void;
  /** A private line from another server; false if `nick` is not here. */
  deliverPrivate(nick: string, text: string): boolean;
  /** Members of another server gone without a word (it died): announce them to `room` everywhere. */
  departed(room: string, nicks: string[]): void;
  /** Another server holds `nick` (claimed while Redis was unreachable): its member here is renamed. */
  lost(nick: string): void;
  /** A line to every member here (cross-server delivery degraded or restored). */
  notice(text: string): void;
}

export interface ChatLink {
  /** Connects; resolves when linked, or when the first attempt failed (then it retries, degraded). */
  attach(local: LocalChat): Promise<void>;
  /** Linked: lines cross servers (false while Redis is out of reach). */
  readonly connected: boolean;
  /** Not linked because another server holds this one's node id (members are told `HELD`, not `DEGRADED`). */
  readonly idHeldElsewhere?: boolean;
  /** A name that sets this server's guest nicks apart from the others'. */
  readonly guestSuffix: string;
  /** `text` went to `room`'s members here; the other servers' members get it too. */
  publish(room: string, text: string): void;
  /** `nick` is now in `room` here (or no longer here, with `room` undefined). */
  presence(nick: string, room: string | undefined): void;
  /** Claims `nick` for this server (atomic across the cluster). */
  claim(nick: string): Promise<Claim>;
  release(nick: string): void;
  /** A private line to a member of another server; false if no server has `nick`. */
  whisper(nick: string, text: string): Promise<boolean>;
  /** Nicks in `room` on the other servers (empty while degraded). */
  who(room: string): Promise<string[]>;
  /** Members per room on the other servers (empty while degraded). */
  rooms(): Promise<Map<string, number>>;
  /** Leaves the cluster: this server's members are announced gone everywhere, its nicks freed. */
  close(): Promise<void>;
}
