// The native addon, loaded through the loader `napi build` generates at the
// package root (it picks the local build or the platform package).
import type * as Native from '../index';

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: typeof Native = require('../index.js');

export type NativeReactor = Native.Reactor;
export type SocketAddress = Native.SocketAddress;
export type IoCount = Native.IoCount;
export type ReactorStats = Native.ReactorStats;
