/**
 * `muxnet/proxy`: a load-balancing TCP proxy on the fast API, and its
 * balancing strategies on their own.
 *
 * ```ts
 * import { createProxy } from 'muxnet/proxy';
 * const proxy = createProxy({ port: 8000, upstreams: [{ host: '127.0.0.1', port: 9001 }, { host: '127.0.0.1', port: 9002, weight: 3 }], strategy: 'weighted' });
 * proxy.on('upstream-down', (u, err) => console.log(`${u.address} down: ${err.message}`));
 * ```
 */
export * from './apps/proxy';
