/**
 * The servers the benchmark compares, each started as its own process that
 * prints `listening on <proto> HOST:PORT` once ready.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { pinning } from './runner';

export interface ServerSpec {
  /** Short id used by `--servers`. */
  id: string;
  /** What the table calls it. */
  label: string;
  /** How the JS thread is woken ('fd', 'thread'), or what else to say. */
  wake: string;
  udp: boolean;
  /** Connections (active + idle) it cannot hold, with the reason. */
  limit?: { connections: number; reason: string };
  /** Why it cannot run here, if it cannot. */
  unavailable?: string;
  /** What it serves: the echo cells, the chat fan-out cells, echo through a proxy, or file downloads. */
  kind: 'echo' | 'chat' | 'proxy' | 'file';
  /** It serves no TCP (the plain C server is UDP only). */
  udpOnly?: boolean;
  /** It prints its reactor's counters on SIGUSR2 (a muxnet server). */
  stats?: boolean;
  command(protocol: 'tcp' | 'udp', host: string): { cmd: string; args: string[]; env?: Record<string, string> };
}

const root = path.join(__dirname, '..', '..');
const dist = path.join(root, 'dist');
export const referenceBinary = path.join(root, 'target', 'release', 'examples', 'echo-reference');
/** The pure-Rust proxy (muxnet-core's pipe() with no JavaScript), the proxy cells' ceiling. */
export const proxyReferenceBinary = path.join(root, 'target', 'release', 'examples', 'proxy-reference');
/** The plain C UDP echo server (recvfrom/sendto, no batching): its source, and where `cc` puts it. */
export const cReferenceSource = path.join(root, 'bench', 'reference', 'udp-echo.c');
export const cReferenceBinary = path.join(root, 'target', 'c-reference', 'udp-echo');

/** The C reference is built when missing or older than its source. */
export function cReferenceStale(): boolean {
  return !existsSync(cReferenceBinary) || statSync(cReferenceBinary).mtimeMs < statSync(cReferenceSource).mtimeMs;
}

const onPath = (name: string) => (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir && existsSync(path.join(dir, name)));

/** Why the C reference cannot run here, if it cannot. */
function cReferenceUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'the plain C reference uses epoll (Linux only)';
  if (cReferenceStale() && !onPath('cc')) return 'no C compiler (cc) on PATH to build bench/reference/udp-echo.c';
  return undefined;
}

function nodeEcho(impl: 'node:net' | 'muxnet') {
  return (protocol: 'tcp' | 'udp', host: string) => ({
    cmd: process.execPath,
    args: [path.join(dist, 'bench', 'net-echo.js'), impl, protocol, host, '0'],
  });
}

function fastEcho(backend: string, wake?: string) {
  return (protocol: 'tcp' | 'udp', host: string) => ({
    cmd: process.execPath,
    args: [path.join(dist, 'cli.js'), 'echo', '--port', '0', '--host', host, '--backend', backend, ...(protocol === 'udp' ? ['--udp'] : [])],
    env: wake ? { MUXNET_WAKE: wake } : undefined,
  });
}

/** The echo handler through `muxnet/server` (mio), in one of its modes. */
function handlerEcho(mode: 'reactor' | 'serial' | 'workers' | 'async') {
  return (_protocol: 'tcp' | 'udp', host: string) => ({ cmd: process.execPath, args: [path.join(dist, 'bench', 'server-echo.js'), mode, host, '0'] });
}

function chatServer(net: 'muxnet' | 'node' | 'node-corked') {
  return (_protocol: 'tcp' | 'udp', host: string) => ({
    cmd: process.execPath,
    args: [path.join(dist, 'cli.js'), 'chat', 'serve', '--port', '0', '--host', host, '--net', net, '--rate', '1000000000', '--max-clients', '20000', '--quiet'],
  });
}

/** Two chat servers linked through a Redis it starts (the cross-server fan-out). */
function chatCluster(_protocol: 'tcp' | 'udp', host: string) {
  return { cmd: process.execPath, args: [path.join(dist, 'bench', 'chat-cluster.js'), host] };
}

const hasRedis = onPath('redis-server');

/** `muxnet-splice`: the muxnet proxy with `splice: true`, to measure one against the other. */
function proxyServer(impl: 'muxnet' | 'muxnet-splice' | 'node:net') {
  return (_protocol: 'tcp' | 'udp', host: string) => ({ cmd: process.execPath, args: [path.join(dist, 'bench', 'proxy-server.js'), impl, host] });
}

/**
 * The command of a proxy cell's upstream, the fast echo server, pinned beside
 * the load client: the proxy's core is the proxy's alone.
 */
export function upstreamEcho(host: string): string[] {
  return [...pinning().client, process.execPath, path.join(dist, 'cli.js'), 'echo', '--port', '0', '--host', host];
}

/** The pure-Rust proxy in front of the upstream it starts. */
function rustProxy(_protocol: 'tcp' | 'udp', host: string) {
  return { cmd: proxyReferenceBinary, args: ['--host', host, '--port', '0', '--', ...upstreamEcho(host)] };
}

function fileServer(impl: 'muxnet' | 'node:net') {
  return (_protocol: 'tcp' | 'udp', host: string) => ({ cmd: process.execPath, args: [path.join(dist, 'bench', 'file-server.js'), impl, host, String(256 << 20)] });
}

const FD_SETSIZE = { connections: 1000, reason: 'select(2): fds < FD_SETSIZE (1024)' };

export function servers(): ServerSpec[] {
  const dropIn = existsSync(path.join(dist, 'net', 'index.js'));
  return [
    { kind: 'echo', id: 'node', label: 'node:net', wake: 'libuv', udp: true, command: nodeEcho('node:net') },
    {
      kind: 'echo',
      id: 'node-onread',
      label: 'node:net onread',
      wake: 'libuv',
      udp: false,
      unavailable: 'Node offers onread to client sockets only; accepted sockets cannot use it',
      command: nodeEcho('node:net'),
    },
    {
      kind: 'echo',
      id: 'net',
      label: 'muxnet net (drop-in)',
      wake: 'fd',
      udp: true,
      unavailable: dropIn ? undefined : 'the drop-in layer is not built yet',
      stats: true,
      command: nodeEcho('muxnet'),
    },
    { kind: 'echo', id: 'mio', label: 'muxnet fast mio', wake: 'fd', udp: true, stats: true, command: fastEcho('mio') },
    { kind: 'echo', id: 'mio-thread', label: 'muxnet fast mio', wake: 'thread', udp: true, stats: true, command: fastEcho('mio', 'thread') },
    { kind: 'echo', id: 'poll', label: 'muxnet fast poll', wake: 'thread', udp: true, stats: true, command: fastEcho('poll') },
    { kind: 'echo', id: 'select', label: 'muxnet fast select', wake: 'thread', udp: true, stats: true, limit: FD_SETSIZE, command: fastEcho('select') },
    { kind: 'echo', id: 'server-reactor', label: 'muxnet/server reactor', wake: 'fd', udp: false, command: handlerEcho('reactor') },
    { kind: 'echo', id: 'server-async', label: 'muxnet/server reactor, async handle()', wake: 'fd', udp: false, command: handlerEcho('async') },
    {
      kind: 'echo',
      id: 'server-serial',
      label: 'muxnet/server serial',
      wake: 'fd',
      udp: false,
      limit: { connections: 1, reason: 'serial: one connection served at a time' },
      command: handlerEcho('serial'),
    },
    {
      kind: 'echo',
      id: 'server-workers2',
      label: 'muxnet/server workers: 2 (2 cores; the load client takes one)',
      wake: 'fd',
      udp: false,
      command: handlerEcho('workers'),
    },
    {
      kind: 'echo',
      id: 'rust',
      label: 'pure Rust (muxnet-core)',
      wake: '-',
      udp: true,
      unavailable: existsSync(referenceBinary) ? undefined : 'build it: cargo build --release --example echo-reference',
      command: (protocol, host) => ({ cmd: referenceBinary, args: ['--port', '0', '--host', host, ...(protocol === 'udp' ? ['--udp'] : [])] }),
    },
    {
      kind: 'echo',
      id: 'c-plain',
      label: 'plain C (epoll, recvfrom/sendto)',
      wake: '-',
      udp: true,
      udpOnly: true,
      unavailable: cReferenceUnavailable(),
      command: (_protocol, host) => ({ cmd: cReferenceBinary, args: ['--port', '0', '--host', host] }),
    },
    { kind: 'chat', id: 'chat-node', label: 'chat server on node:net', wake: 'libuv', udp: false, command: chatServer('node') },
    { kind: 'chat', id: 'chat-node-corked', label: 'chat server on node:net, corked', wake: 'libuv', udp: false, command: chatServer('node-corked') },
    { kind: 'chat', id: 'chat-muxnet', label: 'chat server on muxnet (mio)', wake: 'fd', udp: false, command: chatServer('muxnet') },
    {
      kind: 'chat',
      id: 'chat-cluster',
      label: '2 chat servers on muxnet + Redis',
      wake: 'fd',
      udp: false,
      unavailable: hasRedis ? undefined : 'redis-server is not installed',
      command: chatCluster,
    },
    { kind: 'proxy', id: 'proxy-node', label: 'node:net proxy (pipe both ways)', wake: 'libuv', udp: false, command: proxyServer('node:net') },
    { kind: 'proxy', id: 'proxy-muxnet', label: 'muxnet/proxy (pipe() in Rust)', wake: 'fd', udp: false, command: proxyServer('muxnet') },
    {
      kind: 'proxy',
      id: 'proxy-muxnet-splice',
      label: 'muxnet/proxy, bulk spliced (splice: true)',
      wake: 'fd',
      udp: false,
      command: proxyServer('muxnet-splice'),
    },
    {
      kind: 'proxy',
      id: 'proxy-rust',
      label: 'pure Rust proxy (muxnet-core pipe(), no JavaScript)',
      wake: '-',
      udp: false,
      unavailable: existsSync(proxyReferenceBinary) ? undefined : 'build it: cargo build --release --example proxy-reference',
      command: rustProxy,
    },
    { kind: 'file', id: 'file-node', label: 'node:net createReadStream().pipe()', wake: 'libuv', udp: false, command: fileServer('node:net') },
    { kind: 'file', id: 'file-muxnet', label: 'muxnet sendFile (sendfile(2))', wake: 'fd', udp: false, command: fileServer('muxnet') },
    { kind: 'proxy', id: 'proxy-direct', label: 'no proxy (the echo server direct)', wake: 'fd', udp: false, command: fastEcho('mio') },
  ];
}
