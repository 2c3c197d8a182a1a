/**
 * The file-transfer wire format of `muxnet send` / `muxnet receive`:
 * a 4-byte big-endian length, a JSON header `{ name, size, sha256 }` of
 * that length, then `size` bytes of file. The receiver answers one line:
 * `OK <sha256>` once the bytes it stored hash as the header says, or
 * `ERR <reason>`.
 */

export interface Header {
  /** The file's base name (no directory). */
  name: string;
  size: number;
  /** Hex SHA-256 of the file's bytes. */
  sha256: string;
}

/** A header longer than this is refused (a peer cannot make us buffer more). */
export const MAX_HEADER = 64 * 1024;

export function encodeHeader(header: Header): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(json.length);
  return Buffer.concat([prefix, json]);
}

/** A name safe to create in the receiving directory: a plain file name of at most 255 bytes (a directory entry's most). */
export function safeName(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name) || Buffer.byteLength(name) > 255) return undefined;
  return name;
}

/** The header's fields, checked; a string says what is wrong. */
export function parseHeader(json: Buffer): Header | string {
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(json.toString('utf8')) as Record<string, unknown>;
  } catch {
    return 'header is not JSON';
  }
  const name = safeName(h?.name);
  if (name === undefined) return 'bad file name';
  if (typeof h.size !== 'number' || !Number.isSafeInteger(h.size) || h.size < 0) return 'bad size';
  if (typeof h.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(h.sha256)) return 'bad sha256';
  return { name, size: h.size, sha256: h.sha256 };
}

/**
 * `text` with its control characters escaped (`\n` as `\u000a`, a
 * backslash as `\\`, so an escape is never text): a line for a log or
 * terminal that holds a name or answer a peer chose, which could split the
 * line or send escape sequences to the terminal.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\\\u0000-\u001f\u007f-\u009f]/g, (c) => (c === '\\' ? '\\\\' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}
