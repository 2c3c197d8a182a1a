/**
 * muxnet: sockets for Node.js on a Rust reactor (mio, poll or select).
 *
 * This entry point carries the fast API (also at `muxnet/fast`); the
 * drop-in `node:net` layer will join it here.
 */
export * from './fast';
export { systemError, type SystemError } from './errors';
