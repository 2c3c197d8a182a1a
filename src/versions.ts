// Which Node runs the module: node:net and node:dgram changed behaviour in
// given releases, and the drop-in follows the one it stands in for.

const [MAJOR, MINOR] = process.versions.node.split('.').map(Number) as [number, number];

/**
 * Whether the running Node is one of `releases` or later: each `[major,
 * minor]` counts for its own major line from that minor on, and every major
 * past the last one given counts (a change backported to 22.8 and made in
 * 24.2 is `nodeFrom([22, 8], [24, 2])`: not 23). Given in ascending order.
 */
export function nodeFrom(...releases: [major: number, minor: number][]): boolean {
  if (MAJOR > releases[releases.length - 1][0]) return true;
  return releases.some(([major, minor]) => major === MAJOR && MINOR >= minor);
}

const [UV_MAJOR, UV_MINOR] = process.versions.uv.split('.').map(Number) as [number, number];

/** Whether the running Node's libuv is 1.`minor` or later (node:net's sockets behave as its libuv). */
export function uvFrom(minor: number): boolean {
  return UV_MAJOR > 1 || UV_MINOR >= minor;
}
