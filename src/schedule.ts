/**
 * Node's scheduling functions as they were when muxnet loaded. Fake timers
 * a test installs later (sinon's, jest's) replace the globals, which
 * node:net's and node:dgram's own internals never call: the drop-in and its
 * reactor keep to the real ones too, so a tick a fake clock drops on its
 * restore cannot leave a batch unfinished (every later datagram queued
 * behind it) nor hold back a FIN, and a socket's timeout runs on real time.
 */
export const nextTick = process.nextTick;
export const { setImmediate, clearImmediate, setTimeout, clearTimeout, queueMicrotask } = globalThis;
