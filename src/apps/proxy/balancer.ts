/**
 * Load-balancing strategies for the proxy, usable on their own: a
 * `Balancer` picks an upstream for a client (`pick`) and learns from the
 * outcome (`report`), ejecting an upstream after `maxFailures` failures in
 * a row and re-admitting it on its next success.
 */
import { joinHostPort } from '../../args';
import { invalidArgType, invalidArgValue } from '../../errors';
import { validateHost, validateInteger, validateObject, validatePort } from '../../options';

/** How a `Balancer` chooses among the healthy upstreams. */
export type Strategy = 'round-robin' | 'random' | 'weighted' | 'least-connections' | 'source-hash';

export const STRATEGIES: readonly Strategy[] = ['round-robin', 'random', 'weighted', 'least-connections', 'source-hash'];

/** An upstream as given: where it is, and its weight (default 1). */
export interface UpstreamSpec {
  /** An IP address (default 127.0.0.1). */
  host?: string;
  port: number;
  /** 1 to 1000. */
  weight?: number;
}

/** An upstream and what the balancer knows of it. */
export interface Upstream {
  readonly host: string;
  readonly port: number;
  /** Its share in `weighted` (and the tie-breaker of `least-connections`, `source-hash`). */
  readonly weight: number;
  /** `host:port` (`[host]:port` for IPv6). */
  readonly address: string;
  /** False once ejected, until a success re-admits it. */
  readonly healthy: boolean;
  /** Failures in a row. */
  readonly failures: number;
  /** Pairs open (or connecting) to it: what `least-connections` counts. */
  readonly live: number;
}

type State = { -readonly [K in keyof Upstream]: Upstream[K] };

export interface BalancerOptions {
  strategy?: Strategy;
  /** Failures in a row that eject an upstream (default 2). */
  maxFailures?: number;
}

/** The largest weight. */
export const MAX_WEIGHT = 1000;

/** Checks `{ host, port, weight }`; throws Node's errors naming `name`. */
export function parseUpstream(spec: UpstreamSpec, name = 'upstream'): Required<UpstreamSpec> {
  const given = validateObject(spec, name);
  return {
    host: validateHost(given.host, `${name}.host`),
    port: validatePort(given.port, `${name}.port`, false),
    weight: validateInteger(given.weight, `${name}.weight`, 1, 1, MAX_WEIGHT),
  };
}

/** FNV-1a, 32 bits, with murmur3's finalizer so that strings differing in one character land far apart. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Chooses upstreams for clients. Only healthy upstreams are picked while
 * any remains; when none does, the ejected ones are tried as a last resort
 * (a probe may not have re-admitted them yet).
 *
 * - `round-robin`: each in turn.
 * - `random`: uniformly.
 * - `weighted`: nginx's smooth weighted round-robin — weights 3 and 1 give
 *   a, a, b, a, … (spread out, never a, a, a, b).
 * - `least-connections`: the fewest live pairs per unit of weight.
 * - `source-hash`: rendezvous hashing of the client address — a client keeps
 *   its upstream while the set of healthy upstreams is the same, and only
 *   the clients of an upstream that leaves move.
 */
export class Balancer {
  readonly strategy: Strategy;
  readonly maxFailures: number;
  private readonly states: State[];
  private cursor = 0;
  /** `weighted`: each upstream's current weight (nginx's `current_weight`). */
  private readonly current = new Map<Upstream, number>();

  constructor(upstreams: readonly UpstreamSpec[], opts: BalancerOptions = {}) {
    if (!Array.isArray(upstreams) || upstreams.length === 0) throw invalidArgValue('upstreams', upstreams, 'must be a non-empty array');
    const options = validateObject(opts, 'options') as BalancerOptions;
    const strategy = options.strategy ?? 'round-robin';
    if (!STRATEGIES.includes(strategy)) throw invalidArgValue('strategy', strategy, `must be one of: ${STRATEGIES.join(', ')}`);
    this.strategy = strategy;
    this.maxFailures = validateInteger(options.maxFailures, 'maxFailures', 2, 1, 2 ** 31 - 1);
    this.states = upstreams.map((spec, i) => {
      const { host, port, weight } = parseUpstream(spec, `upstreams[${i}]`);
      return { host, port, weight, address: joinHostPort(host, port), healthy: true, failures: 0, live: 0 };
    });
  }

  /** Every upstream, in the order given. */
  get upstreams(): readonly Upstream[] {
    return this.states;
  }

  /**
   * The upstream for a client at `clientAddress`, skipping those in
   * `exclude` (the ones that already failed this client); undefined when
   * none is left.
   */
  pick(clientAddress: string, exclude?: ReadonlySet<Upstream>): Upstream | undefined {
    if (typeof clientAddress !== 'string') throw invalidArgType('clientAddress', 'of type string', clientAddress);
    if (exclude !== undefined && typeof (exclude as Partial<ReadonlySet<Upstream>> | null)?.has !== 'function') throw invalidArgType('exclude', 'a Set of upstreams', exclude);
    const open = this.states.filter((u) => !exclude?.has(u));
    const healthy = open.filter((u) => u.healthy);
    const candidates = healthy.length > 0 ? healthy : open;
    if (candidates.length === 0) return undefined;
    switch (this.strategy) {
      case 'round-robin':
        return this.roundRobin(candidates);
      case 'random':
        return candidates[Math.floor(Math.random() * candidates.length)];
      case 'weighted':
        return this.smoothWeighted(candidates);
      case 'least-connections':
        return this.leastConnections(candidates);
      case 'source-hash':
        return this.rendezvous(candidates, clientAddress);
    }
  }

  /**
   * How a connection to `upstream` went. A failure counts towards ejection;
   * a success clears the count and re-admits an ejected upstream. Returns
   * true when this changed whether the upstream is healthy.
   */
  report(upstream: Upstream, ok: boolean): boolean {
    const state = this.own(upstream);
    const was = state.healthy;
    if (ok) {
      state.failures = 0;
      state.healthy = true;
    } else {
      state.failures++;
      if (state.failures >= this.maxFailures) state.healthy = false;
    }
    return state.healthy !== was;
  }

  /** A pair to `upstream` opened (connecting counts): `least-connections` sees it. */
  acquire(upstream: Upstream): void {
    this.own(upstream).live++;
  }

  /** A pair to `upstream` closed. */
  release(upstream: Upstream): void {
    this.own(upstream).live--;
  }

  private own(upstream: Upstream): State {
    if (!this.states.includes(upstream as State)) throw invalidArgValue('upstream', upstream?.address, 'is not one of this balancer’s upstreams');
    return upstream as State;
  }

  /** The next candidate at or after the cursor, in the order given. */
  private roundRobin(candidates: State[]): State {
    const n = this.states.length;
    for (let i = 0; i < n; i++) {
      const u = this.states[(this.cursor + i) % n];
      if (candidates.includes(u)) {
        this.cursor = (this.cursor + i + 1) % n;
        return u;
      }
    }
    return candidates[0];
  }

  /** nginx's `ngx_http_upstream_get_peer`: raise each by its weight, take the highest, lower it by the total. */
  private smoothWeighted(candidates: State[]): State {
    let total = 0;
    let best: State | undefined;
    let bestWeight = -Infinity;
    for (const u of candidates) {
      const w = (this.current.get(u) ?? 0) + u.weight;
      this.current.set(u, w);
      total += u.weight;
      if (w > bestWeight) [best, bestWeight] = [u, w];
    }
    this.current.set(best!, bestWeight - total);
    return best!;
  }

  /** Fewest live pairs per unit of weight; ties go round the list. */
  private leastConnections(candidates: State[]): State {
    const least = Math.min(...candidates.map((u) => u.live / u.weight));
    return this.roundRobin(candidates.filter((u) => u.live / u.weight === least));
  }

  /** Weighted rendezvous hashing: the highest `-weight / ln(hash)` wins. */
  private rendezvous(candidates: State[], clientAddress: string): State {
    let best = candidates[0];
    let bestScore = -Infinity;
    for (const u of candidates) {
      const unit = (hash32(`${clientAddress}|${u.address}`) + 0.5) / 2 ** 32;
      const score = -u.weight / Math.log(unit);
      if (score > bestScore) [best, bestScore] = [u, score];
    }
    return best;
  }
}
