/** The workload matrix: what the load client does in each cell. */

export interface Cell {
  id: string;
  group: 'echo' | 'idle' | 'udp' | 'memory' | 'chat' | 'proxy' | 'file';
  /** Which servers run it: the echo servers, the chat servers, the proxies or the file servers. */
  servers: 'echo' | 'chat' | 'proxy' | 'file';
  protocol: 'tcp' | 'udp';
  connections: number;
  idle: number;
  payload: number;
  depth: number;
}

function echo(connections: number, payload: number, depth: number): Cell {
  const size = payload >= 1024 ? `${payload / 1024}KiB` : `${payload}B`;
  return { id: `tcp-${connections}x${size}-d${depth}`, group: 'echo', servers: 'echo', protocol: 'tcp', connections, idle: 0, payload, depth };
}

function idle(idleCount: number): Cell {
  return { id: `idle-${idleCount}+100`, group: 'idle', servers: 'echo', protocol: 'tcp', connections: 100, idle: idleCount, payload: 64, depth: 1 };
}

/** UDP echo: `sockets` client sockets, one 64 B datagram in flight on each, to one server socket. */
function udp(sockets: number): Cell {
  return { id: `udp-${sockets}x64B`, group: 'udp', servers: 'echo', protocol: 'udp', connections: sockets, idle: 0, payload: 64, depth: 1 };
}

const UDP = udp(16);

/**
 * Server RSS per connection, measured with `idle` connections that never
 * send. Where the fd limit is lower than `count`, the runner holds as many
 * as it allows and says so.
 */
function memory(count: number): Cell {
  return { id: `memory-${count}`, group: 'memory', servers: 'echo', protocol: 'tcp', connections: 1, idle: count, payload: 64, depth: 1 };
}

/** One sender, `members` receivers in one room, 16 lines in flight. */
function chat(members: number): Cell {
  return { id: `chat-1to${members}`, group: 'chat', servers: 'chat', protocol: 'tcp', connections: members, idle: 0, payload: 64, depth: 16 };
}

/** TCP echo through a proxy (or straight to the echo server, for the direct line). */
function proxy(connections: number, payload: number, depth: number): Cell {
  const cell = echo(connections, payload, depth);
  return { ...cell, id: cell.id.replace('tcp-', 'proxy-'), group: 'proxy', servers: 'proxy' };
}

/**
 * Proxy RSS per idle pair (client side and upstream side): `count` idle
 * connections through it. Each pair holds two fds in the proxy; this
 * machine's fd limit (20 000) bounds the count.
 */
function proxyMemory(count: number): Cell {
  return { ...memory(count), id: `proxy-memory-${count}`, servers: 'proxy' };
}

/** Downloads of a `size`-byte file, one at a time: the server's CPU per byte served. */
function file(size: number): Cell {
  return { id: `file-${size / (1 << 20)}MiB`, group: 'file', servers: 'file', protocol: 'tcp', connections: 1, idle: 0, payload: size, depth: 1 };
}

export const FULL: Cell[] = [
  echo(1, 64, 1),
  echo(100, 64, 1),
  echo(1000, 64, 1),
  echo(10000, 64, 1),
  echo(100, 16384, 1),
  echo(100, 64, 16),
  echo(100, 16384, 16),
  idle(0),
  idle(1000),
  idle(10000),
  UDP,
  udp(100),
  memory(10000),
  memory(100000),
  chat(100),
  chat(1000),
  chat(10000),
  proxy(100, 64, 1),
  proxy(100, 16384, 1),
  proxy(100, 64, 16),
  proxy(100, 16384, 16),
  proxyMemory(5000),
  file(256 << 20),
];

export const QUICK: Cell[] = [echo(100, 64, 1), echo(100, 16384, 1), idle(1000), UDP, memory(2000), chat(1000), proxy(100, 64, 1)];
