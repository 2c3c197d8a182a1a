/**
 * Node's own node:net and node:dgram, as muxnet's modules use them, whatever
 * a loader maps those names to: an alias of `node:net` to muxnet (jest's
 * `moduleNameMapper`, a bundler's `alias`) would hand muxnet itself back,
 * half loaded. `process.getBuiltinModule` (Node 20.16 on) asks Node directly.
 */
import type * as Dgram from 'node:dgram';
import type * as Net from 'node:net';

export const nodeNet: typeof Net = process.getBuiltinModule?.('node:net') ?? require('node:net');
export const nodeDgram: typeof Dgram = process.getBuiltinModule?.('node:dgram') ?? require('node:dgram');
export const { isIP } = nodeNet;
