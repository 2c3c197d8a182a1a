// The chat server with many real clients over loopback, on both transports.
import { afterEach, describe, expect, it } from 'vitest';
import nodeNet from 'node:net';
import { encodeFrame, FrameDecoder } from '../../src/fast';
import { ChatServer, type ChatServerOptions } from '../../src/apps/chat/server';
import { muxnetTransport, nodeCorkedTransport, nodeTransport } from '../../src/apps/chat/transport';
import { announcements, sleep, waitFor } from '../helpers';
import { LineClient as Client } from './line-client';

let servers: ChatServer[] = [];
let clients: Client[] = [];

afterEach(() => {
  for (const c of clients) c.sock.destroy();
  for (const s of servers) s.stop();
  servers = [];
  clients = [];
});

async function start(options: ChatServerOptions = {}): Promise<ChatServer> {
  const server = await new ChatServer({ port: 0, ...options }).start();
  servers.push(server);
  return server;
}

async function join(server: ChatServer, nick: string, room?: string): Promise<Client> {
  const c = await Client.connect(server.port);
  clients.push(c);
  await c.ask(`/nick ${nick}`, /^NICK /);
  if (room) await c.ask(`/join ${room}`, /^JOINED /);
  return c;
}

describe.each([
  ['muxnet', muxnetTransport],
  ['node:net', nodeTransport],
  ['node:net, corked', nodeCorkedTransport],
])('chat on %s', (_name, transport) => {
  it('relays every line to every other room member exactly once, in order; nobody else gets it', async () => {
    const server = await start({ transport });
    const lobby = await Promise.all(Array.from({ length: 20 }, (_, i) => join(server, `u${i}`)));
    const dev = await Promise.all(Array.from({ length: 3 }, (_, i) => join(server, `d${i}`, 'dev')));
    for (let round = 0; round < 5; round++) lobby.forEach((c, i) => c.say(`line ${round} from u${i}`));
    await waitFor(() => lobby.every((c) => c.chat().length >= 19 * 5), 'every lobby member to receive 95 lines');
    await sleep(50);
    lobby.forEach((c, i) => {
      const got = c.chat();
      expect(got).toHaveLength(95);
      expect(got.some((l) => l.endsWith(` from u${i}`))).toBe(false);
      for (let j = 0; j < 20; j++) {
        if (j === i) continue;
        const fromJ = got.filter((l) => l.split(' ')[1] === `u${j}:`).map((l) => l.split(': ')[1]);
        expect(fromJ).toEqual([0, 1, 2, 3, 4].map((r) => `line ${r} from u${j}`));
      }
    });
    expect(lobby[0].chat()[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ u\d+: line 0 from u\d+$/);
    for (const c of dev) expect(c.chat()).toEqual([]);
  });

  it('cuts off a member who stops reading while the room keeps flowing', async () => {
    const server = await start({ transport, slowCap: 64 << 10, rate: 1e6, burst: 1e6 });
    const talker = await join(server, 'talker');
    const slow = await join(server, 'slow');
    const reader = await join(server, 'reader');
    slow.sock.pause();
    const big = 'x'.repeat(4000);
    const cutOff = () => reader.lines.some((l) => l.includes('* slow disconnected (too slow)'));
    // The reader, the talker and the server share this thread: the talker sends
    // bursts under the cap and waits for the reader to hear each one, so only
    // the member who stopped reading can pass the cap, however loaded the machine.
    let sent = 0;
    let heard = 0;
    let scanned = 0;
    const readerHeard = () => {
      for (; scanned < reader.lines.length; scanned++) if (reader.lines[scanned].includes(' talker: ')) heard++;
      return heard;
    };
    while (sent < 30_000 && !cutOff()) {
      for (let k = 0; k < 12; k++) talker.say(`${sent++} ${big}`);
      await waitFor(() => readerHeard() === sent || reader.closed, `the reader to hear ${sent} lines`);
      expect(reader.closed, `the reader cut off too; its last lines: ${reader.lines.slice(-3).map((l) => l.slice(0, 80)).join(' | ')}`).toBe(false);
    }
    await waitFor(cutOff, 'the room to hear that the slow member was cut off', 15_000);
    // Only once it reads again does the paused client see its connection gone.
    slow.sock.resume();
    await waitFor(() => slow.closed, 'the slow member to see the disconnect');
    const before = reader.chat().length;
    talker.say('after the slow one left');
    await waitFor(() => reader.chat().length > before && reader.chat().at(-1)!.endsWith('talker: after the slow one left'), 'the room to keep flowing');
  });
});

describe('chat commands and limits', () => {
  it('handles /nick, /join, /leave, /rooms, /who, /msg, /me, /ping, /help, /quit and unknown commands', async () => {
    const server = await start();
    const alice = await join(server, 'alice');
    const bob = await join(server, 'bob');
    expect(await alice.ask('/who', /^WHO/)).toBe('WHO lobby: alice, bob');
    expect(await alice.ask('/nick BOB', /^(NICK|ERROR)/)).toBe('ERROR nick BOB is taken');
    expect(await alice.ask('/nick has space', /^(NICK|ERROR)/)).toMatch(/^ERROR nick may not contain spaces/);
    expect(await alice.ask(`/nick ${'a'.repeat(33)}`, /^(NICK|ERROR)/)).toMatch(/^ERROR nick must be 1-32/);
    // Found 2026-12-05 (a hunt): taken by members, the next guests' names made chains of renames.
    for (const guest of ['guest7', 'GUEST12.node-b']) {
      expect(await alice.ask(`/nick ${guest}`, /^(NICK|ERROR)/)).toBe('ERROR nicks guestN and guestN.NODE are kept for guests');
    }
    await alice.ask('/nick guesthouse', /^NICK guesthouse$/);
    await alice.ask('/nick alice', /^NICK alice$/);
    await alice.ask('/nick Alice2', /^NICK Alice2$/);
    await waitFor(() => announcements(bob.lines).includes('alice is now known as Alice2'), 'the nick change announced');
    await alice.ask('/join dev', /^JOINED dev$/);
    await waitFor(() => announcements(bob.lines).includes('Alice2 left lobby'), 'the leave announced');
    expect(await bob.ask('/rooms', /^ROOMS/)).toBe('ROOMS lobby (1), dev (1)');
    await bob.ask('/msg alice2 psst', /-> Alice2: psst$/);
    await waitFor(() => alice.lines.some((l) => / bob \(private\): psst$/.test(l)), 'the private message');
    expect(await bob.ask('/msg nobody hi', /^ERROR/)).toBe('ERROR no such nick: nobody');
    await alice.ask('/leave', /^JOINED lobby$/);
    alice.say('/me waves');
    await waitFor(() => announcements(bob.lines).includes('Alice2 waves'), 'the /me action');
    expect(await bob.ask('/ping', /^PONG$/)).toBe('PONG');
    expect(await bob.ask('/help', /^HELP/)).toContain('/msg NICK text');
    expect(await bob.ask('/frobnicate', /^ERROR/)).toBe('ERROR unknown command /frobnicate; /help lists the commands');
    await bob.ask('/quit', /^BYE$/);
    await waitFor(() => bob.closed, 'bob to be disconnected');
    await waitFor(() => announcements(alice.lines).includes('bob quit'), 'the quit announced');
    // Found 2026-12-05: a guest repeating its own name was refused by that rule.
    const guest = await Client.connect(server.port);
    clients.push(guest);
    const given = /You are (\S+) in/.exec(await guest.expect(/^WELCOME/))![1];
    expect(await guest.ask(`/nick ${given}`, /^(NICK|ERROR)/)).toBe(`NICK ${given}`);
    expect(await guest.ask(`/nick ${given.toUpperCase()}`, /^(NICK|ERROR)/)).toBe(`NICK ${given.toUpperCase()}`);
  });

  it('drops lines over the limit, then disconnects a repeat offender; others unaffected', async () => {
    const server = await start({ maxLine: 100 });
    const abuser = await join(server, 'abuser');
    const other = await join(server, 'other');
    expect(await abuser.ask('y'.repeat(500), /^ERROR/)).toBe('ERROR line longer than 100 bytes; dropped');
    abuser.say('short and fine');
    await waitFor(() => other.chat().some((l) => l.endsWith('abuser: short and fine')), 'the next line relayed');
    abuser.say('z'.repeat(5000));
    abuser.say('z'.repeat(5000));
    await waitFor(() => abuser.closed, 'the repeat offender disconnected');
    expect(abuser.lines.at(-1)).toBe('ERROR too many oversized lines; disconnected');
    expect(other.chat().some((l) => l.includes('zzz'))).toBe(false);
    expect(await other.ask('/ping', /^PONG$/)).toBe('PONG');
  });

  // Found 2026-12-06 (a note's list): a nick with a right-to-left override ('\u202eecila' shows as
  // 'alice') or a zero-width space passed for another's, and an override in a line turned the
  // rest of the receiver's line around.
  it('refuses nicks with invisible characters; relays lines without bidi marks, joiners kept', async () => {
    const server = await start();
    const mallory = await join(server, 'mallory');
    const other = await join(server, 'other');
    // …and blank letters (found 2026-12-06: a Hangul filler or a blank Braille pattern made 'alice ').
    for (const nick of ['al\u200bice', 'al\u2060ice', 'ali\u00adce', '\u200dalice', 'alice\u3164', 'alice\u2800', '\uffa0', 'a\u115f', 'alice\u{1d159}', 'alice\u{16fe4}', 'alice\ue000', 'alice\u0378']) {
      expect(await mallory.ask(`/nick ${nick}`, /^(NICK|ERROR)/)).toBe('ERROR nick may not contain spaces, control or invisible characters');
    }
    // One name typed two ways (é, or e and a combining accent) is one nick (a review: both passed).
    expect(await other.ask('/nick jos\u00e9', /^(NICK|ERROR)/)).toBe('NICK jos\u00e9');
    expect(await mallory.ask('/nick jose\u0301', /^(NICK|ERROR)/)).toBe('ERROR nick jos\u00e9 is taken');
    // …as are room names (a review: `lobby\u200b` showed as a second lobby).
    expect(await mallory.ask('/join lobby\u200b', /^(ERROR|JOINED|\* )/)).toBe('ERROR usage: /join ROOM (1-32 characters, no spaces or invisible characters)');
    // Bidi marks go from every line, a command's too: what is left is what others see.
    expect(await mallory.ask('/nick \u202eecila', /^(NICK|ERROR)/)).toBe('NICK ecila');
    mallory.say('cheap \u202eexe.gpj\u202c and \u2067isolated\u2069 \u200fmark, family \u{1f468}\u200d\u{1f469}\u200d\u{1f467}');
    await waitFor(() => other.chat().length === 1, 'the line relayed');
    expect(other.chat()[0]).toMatch(/ecila: cheap exe\.gpj and isolated mark, family \u{1f468}\u200d\u{1f469}\u200d\u{1f467}$/u);
    // A line separator would start a forged line in a client that breaks lines at it.
    mallory.say('hi\u2028[10:00:00] <admin> reboot\u2029now');
    await waitFor(() => other.chat().length === 2, 'the second line relayed');
    expect(other.chat()[1]).toMatch(/ecila: hi \[10:00:00\] <admin> reboot now$/);
  });

  it('rate-limits a flood with a warning, then a disconnect; strips control characters', async () => {
    const server = await start({ rate: 5, burst: 10 });
    const flooder = await join(server, 'flooder');
    const other = await join(server, 'other');
    flooder.say('bell\u0007 and\u001b[31m escape\ttab');
    await waitFor(() => other.chat().length === 1, 'the first line');
    expect(other.chat()[0]).toMatch(/flooder: bell and\[31m escape tab$/);
    flooder.sock.write(Array.from({ length: 60 }, (_, i) => `flood ${i}\n`).join(''));
    await waitFor(() => flooder.closed, 'the flooder disconnected');
    expect(flooder.lines).toContain('ERROR rate limit: at most 5 lines/s; slow down');
    expect(flooder.lines.at(-1)).toBe('ERROR flooding; disconnected');
    // At most the saved-up burst got through.
    expect(other.chat().length).toBeLessThanOrEqual(11);
  });

  // Found 2026-12-06 (a note's list): the burst defaulted to 200 whatever the rate, and neither
  // was checked (rate: 0 let nothing through, for good, without a word); the CLI alone derived it.
  it('paces by default with a burst of twice the rate, at least one line; a bad rate or burst is refused', async () => {
    const server = await start({ rate: 0.4 });
    // A guest: a /nick would take the one line.
    const slow = await Client.connect(server.port);
    clients.push(slow);
    const other = await join(server, 'other');
    slow.say('one in a while');
    slow.say('and another');
    await waitFor(() => slow.lines.includes('ERROR rate limit: at most 0.4 lines/s; slow down'), 'the second line refused');
    await waitFor(() => other.chat().length === 1, 'the one line relayed');
    expect(other.chat()[0]).toMatch(/: one in a while$/);
    // A few pasted lines are dropped, not taken for a flood (a burst of one cut off the third, a
    // review found); a flood is: past ten dropped in a row.
    for (const line of ['pasted 1', 'pasted 2', 'pasted 3', 'pasted 4']) slow.say(line);
    await sleep(200);
    expect([slow.closed, slow.lines.includes('ERROR flooding; disconnected')]).toEqual([false, false]);
    for (let i = 0; i < 10; i++) slow.say(`flood ${i}`);
    await waitFor(() => slow.closed, 'the flood disconnected');
    expect(slow.lines.at(-1)).toBe('ERROR flooding; disconnected');
    for (const bad of [{ rate: 0 }, { rate: Infinity }, { rate: '5' as never }, { rate: 1, burst: 0.5 }, { burst: NaN }]) {
      expect(() => new ChatServer(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
  });

  it('refuses clients past --max-clients with a message', async () => {
    const server = await start({ maxClients: 2 });
    await join(server, 'one');
    await join(server, 'two');
    const sock = nodeNet.connect(server.port, '127.0.0.1');
    let text = '';
    sock.on('data', (d) => (text += d));
    await new Promise((r) => sock.on('close', r));
    expect(text).toBe('ERROR server full (max 2 clients); try later\n');
  });

  // Found 2026-12-05 (a hunt): bytes that ended no line kept a client alive for ever, a line
  // that never ends (gigabytes of it) included.
  it('takes no bytes but a line for a sign of life: a line that never ends is PINGed and dropped', async () => {
    const server = await start({ idleTimeoutMs: 500 });
    const endless = await join(server, 'endless');
    const chunk = 'A'.repeat(1000);
    const pump = setInterval(() => endless.sock.write(chunk), 50);
    try {
      await waitFor(() => endless.lines.includes('PING'), 'a PING', 5000);
      await waitFor(() => endless.closed, 'the endless line dropped', 5000);
    } finally {
      clearInterval(pump);
    }
    expect(endless.lines.at(-1)).toBe('ERROR idle timeout; disconnected');
  });

  it('PINGs a silent client and drops it if it stays silent; an answer keeps it', async () => {
    // 500 ms: the PONG must be read before the drop, and a loaded loop can
    // run the sweep's timer late enough to miss a tighter window.
    const server = await start({ idleTimeoutMs: 500 });
    const silent = await join(server, 'silent');
    const alive = await join(server, 'alive');
    alive.sock.on('data', (d) => {
      if (String(d).includes('PING')) alive.say('PONG');
    });
    await waitFor(() => silent.lines.includes('PING'), 'a PING');
    await waitFor(() => silent.closed, 'the silent client dropped', 5000);
    expect(silent.lines.at(-1)).toBe('ERROR idle timeout; disconnected');
    await sleep(1200);
    expect(alive.closed).toBe(false);
    expect(alive.lines.filter((l) => l === 'PING').length).toBeGreaterThanOrEqual(1);
  });

  it('announces a batch of events as one line; a member who comes and goes within a batch is never announced', async () => {
    const server = await start({ announceMs: 2000 });
    const watcher = await Client.connect(server.port);
    clients.push(watcher);
    await waitFor(() => announcements(watcher.lines).length > 0, 'the first batch');
    // Within the next batch: one member comes and goes, two stay, one of them renames.
    const ghost = await join(server, 'ghost');
    await ghost.ask('/quit', /^BYE$/);
    const stay = await Client.connect(server.port);
    clients.push(stay);
    const renamed = await join(server, 'renamed');
    const stayNick = /You are (\S+) in/.exec(stay.lines[0])![1];
    const renamedGuest = /You are (\S+) in/.exec(renamed.lines[0])![1];
    await waitFor(() => announcements(watcher.lines).some((a) => a.includes(stayNick)), 'the second batch', 5000);
    const batch = watcher.lines.filter((l) => l.includes(stayNick));
    expect(batch).toHaveLength(1);
    expect(batch[0]).toMatch(new RegExp(`^\\S+ \\* ${stayNick} and ${renamedGuest} joined lobby; ${renamedGuest} is now known as renamed$`));
    expect(watcher.lines.some((l) => /ghost|quit/.test(l))).toBe(false);
  });

  it('says goodbye to everyone on shutdown', async () => {
    const server = await start();
    // Room-mates close while the others are still being said goodbye to: nobody leaving hears more.
    const members = [await join(server, 'a'), await join(server, 'b'), await join(server, 'c'), await join(server, 'd', 'dev')];
    server.stop();
    servers = [];
    await waitFor(() => members.every((c) => c.closed), 'everyone closed');
    for (const c of members) expect(c.lines.at(-1)).toBe('SERVER shutting down. Goodbye.');
  });

  it('speaks length-prefixed frames with --framing length, and refuses an oversized header', async () => {
    const server = await start({ framing: 'length', maxLine: 1000 });
    const frame = (text: string) => encodeFrame('length', text, 1000);
    const connect = async () => {
      const sock = nodeNet.connect(server.port, '127.0.0.1');
      const decoder = new FrameDecoder('length', 1 << 20);
      const got: string[] = [];
      sock.on('data', (d) => got.push(...decoder.push(d).frames.map(String)));
      await waitFor(() => got.some((l) => l.startsWith('WELCOME')), 'welcome');
      return { sock, got };
    };
    const a = await connect();
    const b = await connect();
    // A frame split in the middle of its header.
    const bytes = frame('framed hello');
    a.sock.write(bytes.subarray(0, 2));
    await sleep(20);
    a.sock.write(bytes.subarray(2));
    await waitFor(() => b.got.some((l) => / guest\d+: framed hello$/.test(l)), 'the framed line relayed');
    const closed = new Promise((r) => b.sock.on('close', r));
    b.sock.write(Buffer.from([0x7f, 0xff, 0xff, 0xff]));
    await closed;
    expect(b.got.at(-1)).toBe('ERROR frame longer than 1000 bytes; disconnected');
    a.sock.destroy();
  });
});
