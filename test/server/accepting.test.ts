// Server.pauseAccepting()/resumeAccepting() of the fast API (what serial mode
// holds the listener with), on every backend.
import { describe, expect, it } from 'vitest';
import { listen } from '../../src/fast';
import { BACKENDS, closeSocket, netConnect, roundTrip, waitFor } from '../helpers';

describe.each(BACKENDS)('pauseAccepting (%s)', (backend) => {
  it('leaves new clients in the backlog until resumeAccepting()', async () => {
    let opened = 0;
    const server = listen({ port: 0, backend }, {
      onOpen: () => void opened++,
      onData: (c, d) => void c.write(d),
    });
    try {
      const first = await netConnect(server.port);
      await waitFor(() => opened === 1, 'the first accept');
      server.pauseAccepting();
      // Connected by the kernel, but not accepted: nobody echoes.
      const waiting = await Promise.all([netConnect(server.port), netConnect(server.port)]);
      expect(String(await roundTrip(first, Buffer.from('still served')))).toBe('still served');
      expect(opened).toBe(1);
      server.resumeAccepting();
      const echoes = await Promise.all(waiting.map((s) => roundTrip(s, Buffer.from('now'))));
      expect(echoes.map(String)).toEqual(['now', 'now']);
      expect(opened).toBe(3);
      await Promise.all([first, ...waiting].map(closeSocket));
    } finally {
      server.close();
    }
    // A closed server ignores both.
    server.pauseAccepting();
    server.resumeAccepting();
  });
});
