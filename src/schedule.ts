/**
 * Node's scheduling functions, out of a fake clock's reach. Test runners'
 * fake timers (vitest's, jest's) replace the globals, before muxnet loads
 * or after; node:net's internals keep to Node's own timers, and so does
 * muxnet, taking them from `node:timers`, which those fakes leave alone
 * (sinon's own install() replaces them there too). The tick and microtask
 * queues are the ones there were when muxnet loaded: Node offers no other
 * way to them, so fakes of `process.nextTick` installed before that (jest's
 * `fakeTimers.enableGlobally`) hold muxnet's ticks (README). So a tick a fake
 * clock drops on its restore cannot leave a batch unfinished (every later
 * datagram queued behind it), nor a FIN, a 'close' or an onClose wait for
 * a clock no one ticks, and a socket's timeout runs on real time, as
 * node:net's does.
 */
import timers from 'node:timers';

export const nextTick = process.nextTick;
export const { queueMicrotask } = globalThis;
export const { setImmediate, clearImmediate, setTimeout, clearTimeout } = timers;
