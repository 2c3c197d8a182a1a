// A small authoritative DNS responder for the UDP client tests: the wire
// format (RFC 1035) and what it answers, kept apart from the sockets so one
// zone is served the same over node:dgram, the drop-in dgram and the fast API.
//
// What a name asks for is in its first label: `a7.test` is answered at
// once; `lost-7.test`'s first query is dropped (the client retries);
// `never-7.test` is never answered; `tc-7.test` is answered over UDP
// truncated (TC, no records), so the client asks again over TCP;
// `stray-7.test` gets a forged answer from another port first; and
// `big-7.test`'s TXT record holds `BIG_TXT` bytes (over UDP: EDNS sizes).

const A = 1;
const TXT = 16;
const AAAA = 28;

/** The TXT size of `big-*` names: past the classic 512-byte UDP limit. */
export const BIG_TXT = 4000;
/** The TXT size of `tc-*` names answered over TCP: a message in several segments. */
const TCP_TXT = 20_000;

interface Query {
  id: number;
  /** Recursion desired, echoed back as a server does. */
  rd: boolean;
  name: string;
  type: number;
  /** The question section as it came (name, type, class). */
  question: Buffer;
}

/** The first question of a query; undefined for anything that is not one. */
function parseQuery(msg: Buffer): Query | undefined {
  if (msg.length < 12 || msg[2] & 0x80 || msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let at = 12;
  while (at < msg.length && msg[at] !== 0) {
    const len = msg[at];
    labels.push(msg.toString('latin1', at + 1, at + 1 + len));
    at += 1 + len;
  }
  if (at + 5 > msg.length) return undefined;
  // (What follows the question, such as dig's EDNS OPT record, is not needed for the answer.)
  return { id: msg.readUInt16BE(0), rd: (msg[2] & 1) === 1, name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(at + 1), question: msg.subarray(12, at + 5) };
}

/** The record data of `name`'s answer of `type` (`size` bytes for a TXT), or none. */
function rdata(name: string, type: number, txtSize: number): Buffer | undefined {
  const n = Number(/(\d+)/.exec(name)?.[1] ?? 0);
  if (type === A) return Buffer.from(addressOf(name).split('.').map(Number));
  if (type === AAAA) {
    const b = Buffer.alloc(16);
    b.writeUInt16BE(0xfd00, 0);
    b.writeUInt32BE(n, 12);
    return b;
  }
  if (type !== TXT) return undefined;
  // Character strings of up to 255 bytes each, the text saying whose it is.
  const text = Buffer.alloc(txtSize, `${name};`);
  const parts: Buffer[] = [];
  for (let at = 0; at < text.length; at += 255) {
    const part = text.subarray(at, at + 255);
    parts.push(Buffer.from([part.length]), part);
  }
  return Buffer.concat(parts);
}

/** The IPv4 address the zone gives `name`: 10.x.y.z from its number. */
export function addressOf(name: string): string {
  const n = Number(/(\d+)/.exec(name)?.[1] ?? 0);
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

/** The TXT text the zone gives `name` over `transport`. */
export function textOf(name: string, transport: 'udp' | 'tcp' = 'udp'): string {
  const size = name.startsWith('big-') ? BIG_TXT : name.startsWith('tc-') && transport === 'tcp' ? TCP_TXT : 10;
  return Buffer.alloc(size, `${name};`).toString('latin1');
}

/** The answer to `q`; `truncated`: the header only says TC and carries no records. */
function answer(q: Query, transport: 'udp' | 'tcp', truncated = false): Buffer {
  const txtSize = Buffer.byteLength(textOf(q.name, transport));
  const data = truncated ? undefined : rdata(q.name, q.type, txtSize);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR, AA, RD as asked, TC if truncated; RCODE 0.
  header.writeUInt16BE(0x8400 | (q.rd ? 0x100 : 0) | (truncated ? 0x200 : 0), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(data ? 1 : 0, 6);
  if (!data) return Buffer.concat([header, q.question]);
  const rr = Buffer.alloc(12);
  rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
  rr.writeUInt16BE(q.type, 2);
  rr.writeUInt16BE(1, 4); // IN
  rr.writeUInt32BE(60, 6);
  rr.writeUInt16BE(data.length, 10);
  return Buffer.concat([header, q.question, rr, data]);
}

/** The same answer with another address: what `stray-*` names get first, from the wrong port. */
function forged(q: Query): Buffer {
  const real = answer({ ...q, type: A }, 'udp');
  real.writeUInt8(66, real.length - 4);
  return real;
}

/** What a server does with one UDP query: counts it per name and says how to answer. */
export class Zone {
  /** Queries seen per name, over UDP and over TCP. */
  readonly udp = new Map<string, number>();
  readonly tcp = new Map<string, number>();

  /** The reply to a datagram: `drop`, or the bytes (and, for `stray-*`, a forged one to send first from elsewhere). */
  onDatagram(msg: Buffer): { reply?: Buffer; forged?: Buffer } {
    const q = parseQuery(msg);
    if (q === undefined) return {};
    const seen = (this.udp.get(q.name) ?? 0) + 1;
    this.udp.set(q.name, seen);
    if (q.name.startsWith('never-') || (q.name.startsWith('lost-') && seen === 1)) return {};
    if (q.name.startsWith('tc-')) return { reply: answer(q, 'udp', true) };
    if (q.name.startsWith('stray-')) return { reply: answer(q, 'udp'), forged: forged(q) };
    return { reply: answer(q, 'udp') };
  }

  /** A TCP connection's reader: DNS messages framed by a 2-byte length; gives each framed answer. */
  tcpReader(): (chunk: Buffer) => Buffer[] {
    let pending = Buffer.alloc(0);
    return (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      const out: Buffer[] = [];
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const q = parseQuery(pending.subarray(2, 2 + pending.readUInt16BE(0)));
        pending = pending.subarray(2 + pending.readUInt16BE(0));
        if (q === undefined) continue;
        this.tcp.set(q.name, (this.tcp.get(q.name) ?? 0) + 1);
        const a = answer(q, 'tcp');
        const len = Buffer.alloc(2);
        len.writeUInt16BE(a.length);
        out.push(len, a);
      }
      return out;
    };
  }
}
