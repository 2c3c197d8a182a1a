/**
 * Sockets taken by file descriptor rather than made: handed over by the
 * cluster primary (see ./cluster), or given as `listen({ fd })`,
 * `new net.Socket({ fd })` and dgram `bind({ fd })` — systemd's socket
 * activation, a socket a parent process left open. The reactor serves a
 * copy (muxnet-core's `inherit_*`); the given number stays open meanwhile.
 */
import { fstatSync } from 'node:fs';
import { isatty } from 'node:tty';
import { native } from './binding';
import { coded, systemError, uvErrno } from './errors';
import type { Adopted } from './net/bound';
import { unsupported } from './net/unsupported';
import { openReactor, openReactors, type Reactor } from './reactor';

/** `inherit()`'s kinds: a bound or listening stream socket, a connected stream, a bound UDP socket. */
export const INHERIT_LISTENER = 0;
export const INHERIT_STREAM = 1;
export const INHERIT_DATAGRAM = 2;

/** What `inherit()` says of an fd that is no socket of the kind asked for (or none at all). */
export const NOT_A_SOCKET_FOR_US = [uvErrno('EBADF'), uvErrno('ENOTSOCK'), uvErrno('EINVAL')];

/**
 * Takes `fd` as the caller's own (not shared with other processes) into
 * `reactor`, which serves a copy; returns its token or a negative errno. On
 * success the given number stays open, as node:net's handle owns it until
 * the socket closes: `givenFd(fd).release()` lets it go then. Closed at
 * once, the number went to the next file or socket opened, and another
 * thread given it (each worker listening on systemd's socket) found that
 * one instead — a connection of this thread's, whose fd it then closed.
 */
export function takeFd(reactor: Reactor, fd: number, kind: number, backlog = 0, noDelay = false): number {
  // One of muxnet's own on this thread (a socket a reactor serves, its wake-up pipe, one a
  // socket keeps to connect from, a given one served…): refused as libuv refuses an fd it watches.
  if (keptToConnect.has(fd) || openReactors().some((r) => r.native.holdsFd(fd))) return -uvErrno('EEXIST');
  // A stream socket never connected is no connection to serve: its socket connects from it.
  if (kind === INHERIT_STREAM && KINDS[kind].includes(fdKind(reactor, fd)) && reactor.native.neverConnected(fd)) return NOT_CONNECTED;
  const token = reactor.native.inherit(fd, kind, backlog, noDelay, false);
  if (token >= 0) reactor.native.holdGivenFd(fd);
  return token;
}

/**
 * A given fd `takeFd` took into `reactor`, let go with the server or socket
 * serving it (once): its number is closed when no thread's copy serves it
 * any more (the reactor lets go of what is left if its thread ends first).
 */
export function givenFd(fd: number, reactor: Reactor): { release(): void } {
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      if (reactor.native.releaseGivenFd(fd)) giveUp(fd);
    },
  };
}

/**
 * Closes a given fd that node:net's handle would have closed — unless a
 * copy still serves it on another thread (a failed `listen({ fd })` here
 * closed a worker's number, which the next file opened then got), or it is
 * 0, 1 or 2: libuv never closes stdio fds with a handle (so a socket given
 * as stdin stays open in the process, as with node:net, and its number is
 * not reused by the next file opened). Closed natively: `fs.closeSync` in a
 * worker warns of an fd "not opened in unmanaged mode".
 */
export function giveUp(fd: number): void {
  const errno = native.closeGivenFd(fd);
  if (errno < 0) throw systemError(-errno, 'close');
}

/**
 * Takes `fd` into `backend`'s reactor for a call that throws what it
 * refuses (`new net.Socket({ fd })`, dgram `bind({ fd })`): the reactor
 * and the token. An fd that is no socket of `kind` throws node's
 * `ERR_INVALID_FD_TYPE`, naming what it is as Node does — but a pipe given
 * as a stream (node:net wraps those as a Pipe) `ERR_MUXNET_UNSUPPORTED`.
 */
export function takeFdOrThrow(backend: unknown, fd: number, kind: number): { reactor: Reactor; token: number } {
  const reactor = openReactor(backend);
  if (typeof reactor === 'number') throw systemError(-reactor, 'open');
  const token = takeFd(reactor, fd, kind);
  // One of Node's own handles watches it (EEXIST): its kind is said first, as node:net's check comes first.
  if (NOT_A_SOCKET_FOR_US.includes(-token) || (token === -uvErrno('EEXIST') && !KINDS[kind].includes(fdKind(reactor, fd)))) {
    const what = fdKind(reactor, fd);
    if (what === 'PIPE' && kind === INHERIT_STREAM) throw unsupported('net.Socket({ fd }) on a pipe');
    throw coded(new TypeError(`Unsupported fd type: ${what}`), 'ERR_INVALID_FD_TYPE');
  }
  // A stream socket not connected: the caller connects from it.
  if (token < 0 && !(kind === INHERIT_STREAM && token === NOT_CONNECTED)) throw systemError(-token, 'open');
  return { reactor, token };
}

/** What `takeFdOrThrow` gives for a stream socket that is not connected (bound, or not even that): nothing was taken. */
export const NOT_CONNECTED = -uvErrno('ENOTCONN');

/** The fd kinds (`fdKind`) each inherit kind takes. */
const KINDS: Record<number, string[]> = { [INHERIT_LISTENER]: ['TCP', 'PIPE'], [INHERIT_STREAM]: ['TCP', 'PIPE'], [INHERIT_DATAGRAM]: ['UDP'] };

/** The fds of `unconnectedFd`s not yet released: no other socket or server may take them. */
const keptToConnect = new Set<number>();

/**
 * A stream socket given by fd that is not connected, kept as node:net keeps
 * it until `connect()`: the connect goes out from it (from a copy; the
 * given fd is closed once the copy serves it, or with the socket).
 */
export function unconnectedFd(fd: number, reactor: Reactor): Adopted {
  let held = true;
  keptToConnect.add(fd);
  return {
    fd,
    // A Unix-domain one connects to a path; where it is bound is not asked.
    path: fdKind(reactor, fd) === 'PIPE' ? '' : undefined,
    local: undefined,
    release() {
      if (held) {
        keptToConnect.delete(fd);
        giveUp(fd);
      }
      held = false;
    },
  };
}

/** What `fd` is, as libuv's `uv_guess_handle` (Node's `guessHandleType`) names it. */
export function fdKind(reactor: Reactor, fd: number): string {
  let stat;
  try {
    stat = fstatSync(fd);
  } catch {
    return 'UNKNOWN';
  }
  if (stat.isSocket()) return reactor.native.socketKind(fd);
  if (stat.isFIFO()) return 'PIPE';
  if (stat.isCharacterDevice() && isatty(fd)) return 'TTY';
  if (stat.isFile() || stat.isCharacterDevice()) return 'FILE';
  return 'UNKNOWN';
}
