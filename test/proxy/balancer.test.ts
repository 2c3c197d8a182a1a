// The balancing strategies on their own: no sockets, many picks.
import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/client';
import { Balancer, formatStats, type Upstream } from '../../src/proxy';

const A = { port: 9001 };
const B = { port: 9002 };
const C = { port: 9003 };

function counts(balancer: Balancer, picks: Upstream[]): number[] {
  return balancer.upstreams.map((u) => picks.filter((p) => p === u).length);
}

function pickMany(balancer: Balancer, n: number, client = (i: number) => `10.0.${i >> 8}.${i & 255}`): Upstream[] {
  return Array.from({ length: n }, (_, i) => balancer.pick(client(i))!);
}

describe('Balancer', () => {
  it('round-robin takes each in turn', () => {
    const b = new Balancer([A, B, C]);
    expect(pickMany(b, 7).map((u) => u.port)).toEqual([9001, 9002, 9003, 9001, 9002, 9003, 9001]);
  });

  it("weighted is nginx's smooth weighted round-robin: spread out, not bunched", () => {
    const b = new Balancer([{ ...A, weight: 3 }, B], { strategy: 'weighted' });
    expect(pickMany(b, 8).map((u) => u.port)).toEqual([9001, 9001, 9002, 9001, 9001, 9001, 9002, 9001]);
    // nginx's own example: weights 5, 1, 1 give a a b a c a a.
    const n = new Balancer([{ ...A, weight: 5 }, B, C], { strategy: 'weighted' });
    expect(pickMany(n, 7).map((u) => 'abc'[u.port - 9001]).join('')).toBe('aabacaa');
  });

  it('weighted honours the weights exactly over 10 000 picks, random is uniform within six standard deviations', () => {
    const specs = [{ ...A, weight: 1 }, { ...B, weight: 3 }, { ...C, weight: 6 }];
    const w = new Balancer(specs, { strategy: 'weighted' });
    expect(counts(w, pickMany(w, 10_000))).toEqual([1000, 3000, 6000]);
    // Each count is binomial(10 000, 1/3): σ ≈ 47. A 5 % bound (3.5 σ) failed about once in 700
    // runs; 6 σ fails a fair picker about once in 10^8 runs and still catches a biased one
    // (one upstream favoured by a tenth is off by 7 σ).
    const picks = 10_000;
    const sigma = Math.sqrt((picks * (1 / 3) * 2) / 3);
    const r = new Balancer([A, B, C], { strategy: 'random' });
    for (const n of counts(r, pickMany(r, picks))) expect(Math.abs(n - picks / 3)).toBeLessThan(6 * sigma);
  });

  it('least-connections picks the fewest live pairs per weight', () => {
    const b = new Balancer([A, { ...B, weight: 2 }], { strategy: 'least-connections' });
    const [a, bb] = b.upstreams;
    const open = (n: number) =>
      Array.from({ length: n }, () => {
        const u = b.pick('client')!;
        b.acquire(u);
        return u;
      });
    open(30);
    expect([a.live, bb.live]).toEqual([10, 20]);
    for (let i = 0; i < 6; i++) b.release(bb);
    // b has 14 live for weight 2 (7 each) against a's 10: the next six go to it, then they alternate.
    expect(open(6).every((u) => u === bb)).toBe(true);
    expect([a.live, bb.live]).toEqual([10, 20]);
  });

  it('source-hash keeps a client on one upstream, spreads clients, and moves only those of an upstream that leaves', () => {
    const b = new Balancer([A, B, C], { strategy: 'source-hash', maxFailures: 1 });
    const clients = Array.from({ length: 3000 }, (_, i) => `192.168.${i >> 8}.${i & 255}`);
    const first = clients.map((c) => b.pick(c)!);
    expect(clients.map((c) => b.pick(c))).toEqual(first);
    for (const n of counts(b, first)) expect(Math.abs(n - 1000)).toBeLessThan(150);
    const [, gone] = b.upstreams;
    b.report(gone, false);
    const after = clients.map((c) => b.pick(c)!);
    clients.forEach((_, i) => {
      if (first[i] !== gone) expect(after[i]).toBe(first[i]);
      else expect(after[i]).not.toBe(gone);
    });
  });

  it('ejects after maxFailures in a row, re-admits on a success, and tries ejected ones only as a last resort', () => {
    const b = new Balancer([A, B], { maxFailures: 2 });
    const [a, bb] = b.upstreams;
    expect(b.report(a, false)).toBe(false);
    expect(b.report(a, true)).toBe(false); // the count starts again
    expect(b.report(a, false)).toBe(false);
    expect(b.report(a, false)).toBe(true);
    expect(a.healthy).toBe(false);
    expect(pickMany(b, 4).every((u) => u === bb)).toBe(true);
    // With the healthy one excluded (it failed this client), the ejected one is still tried.
    expect(b.pick('x', new Set([bb]))).toBe(a);
    expect(b.pick('x', new Set([a, bb]))).toBeUndefined();
    expect(b.report(a, true)).toBe(true);
    expect(a.healthy).toBe(true);
  });

  it('rejects bad upstreams and options with Node-style errors', () => {
    expect(() => new Balancer([])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new Balancer([{ port: 0 }])).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT' }));
    expect(() => new Balancer([{ port: 1, host: 'example.com' }])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new Balancer([{ port: 1, weight: 0 }])).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Balancer([A], { strategy: 'fastest' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    const b = new Balancer([A]);
    expect(() => b.report(new Balancer([A]).upstreams[0], true)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    // Not a TypeError of its own code's making (reading a property of null, a Symbol as text).
    expect(() => new Balancer([A], null as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new Balancer([A, A], { strategy: 'source-hash' }).pick(Symbol('x') as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => formatStats(undefined as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => backoffDelay(undefined as never, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => b.pick('127.0.0.1', [A] as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    // A field left out takes the client's default (initialDelay 100, factor 2); a bad one throws as connect() does (NaN before).
    expect(backoffDelay({ maxDelay: 5000 }, 3, 0)).toBe(400);
    expect(() => backoffDelay({ factor: '2' as never }, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => backoffDelay({}, 0)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => backoffDelay({}, 1, 2)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});
