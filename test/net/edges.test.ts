// Argument edges that Node's own tests found (test-pipe-abstract-socket),
// checked against node:net itself.
import { once } from 'node:events';
import nodeNet from 'node:net';
import { describe, expect, it } from 'vitest';
import * as muxnet from '../../src/net';

type Net = typeof nodeNet;

describe.each([
  ['node:net', nodeNet],
  ['muxnet', muxnet as unknown as Net],
])('%s', (_name, net) => {
  it.runIf(process.platform === 'linux').each([{ readableAll: true }, { writableAll: true }, { readableAll: true, writableAll: true }])(
    'refuses %o on an abstract socket path (no file to change), and listens on nothing',
    (modes) => {
      const server = net.createServer();
      const path = `\0muxnet-edges-${process.pid}`;
      expect(() => server.listen({ path, ...modes })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/can not set readableAll or writableAllt to true when path is abstract unix socket/) }),
      );
      expect(server.listening).toBe(false);
      // The name is still free.
      server.listen({ path });
      return once(server, 'listening').then(() => new Promise<void>((resolve) => server.close(() => resolve())));
    },
  );

});
