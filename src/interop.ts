/**
 * `import net from 'muxnet'` compiled by TypeScript (`esModuleInterop`) or
 * Babel reads `.default` of a CommonJS module marked `__esModule`, as ours
 * are; node's own modules carry no mark and are their own default. So a
 * drop-in module is its own `default` too: not enumerable, its keys stay
 * node:net's and node:dgram's.
 */
export function ownDefault(moduleExports: object): void {
  Object.defineProperty(moduleExports, 'default', { value: moduleExports, enumerable: false, writable: true, configurable: true });
}
