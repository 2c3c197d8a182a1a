/**
 * Node's scheduling functions as they were when muxnet loaded. Fake timers
 * a test installs later (sinon's, jest's) replace the globals. The drop-in,
 * the fast API and the reactor keep to the real ones, so a tick a fake clock
 * drops on its restore cannot leave a batch unfinished (every later datagram
 * queued behind it), hold back a FIN or lose an onClose, and a socket's
 * timeout runs on real time, as node:net's does (from Node's internal timers).
 */
export const nextTick = process.nextTick;
export const { setImmediate, clearImmediate, setTimeout, clearTimeout, queueMicrotask } = globalThis;
