/**
 * muxnet: sockets for Node.js on a Rust reactor (mio, poll or select).
 *
 * `require('muxnet')` is the drop-in `node:net`; the lean callback API is
 * `muxnet/fast`.
 */
export * from './net';
