import { isAscii } from 'node:buffer';
import { decodeWords } from 'postal-mime';

/** One header field of a message, in the order it was received. */
export interface HeaderField {
  /** The name as written (`Subject`, `X-Mailer`). */
  readonly name: string;
  /** The name in lower case, for lookups. */
  readonly key: string;
  /**
   * The value for people: unfolded, trimmed, 8-bit octets read as UTF-8 (RFC 6532) or else
   * windows-1252, and RFC 2047 encoded-words decoded in whatever charset they name.
   */
  readonly value: string;
  /**
   * The field exactly as received, name and folding included, without its final line break;
   * one character per octet (latin1), so `Buffer.from(raw, 'latin1')` gives back the bytes
   * (what a DKIM verifier needs).
   */
  readonly raw: string;
}

/** A field and its text before encoded-words are decoded: what the address parser wants. */
export interface ReadField {
  readonly field: HeaderField;
  readonly text: string;
}

export interface HeaderBlock {
  readonly fields: ReadField[];
  /** Lines in the header block that are not fields, skipped (an mbox `From ` line, junk). */
  readonly skipped: number;
  /** Where the body starts: after the empty line, or at the end when there is none. */
  readonly bodyStart: number;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * The header block of a message: the lines up to the first empty line (RFC 5322 section 2.1),
 * or every line when there is none (a message with headers only). Bare LF line endings are
 * accepted, as every MIME parser does, because mailboxes written on Unix store them.
 */
export function readHeaderBlock(message: Buffer): HeaderBlock {
  const fields: ReadField[] = [];
  let skipped = 0;
  let start = 0;
  let fieldStart = -1;
  let fieldEnd = 0;
  const flush = () => {
    if (fieldStart === -1) return;
    const field = readField(message.subarray(fieldStart, fieldEnd));
    if (field === undefined) skipped += 1;
    else fields.push(field);
    fieldStart = -1;
  };
  while (start < message.length) {
    const lf = message.indexOf(LF, start);
    const next = lf === -1 ? message.length : lf + 1;
    const end = lf === -1 ? message.length : lf > start && message[lf - 1] === CR ? lf - 1 : lf;
    if (end === start) {
      start = next; // the empty line that ends the header block
      break;
    }
    const first = message[start];
    // RFC 5322 section 2.2.3: a line that starts with white space continues the field above.
    if ((first === 0x20 || first === 0x09) && fieldStart !== -1) {
      fieldEnd = end;
    } else {
      flush();
      fieldStart = start;
      fieldEnd = end;
    }
    start = next;
  }
  flush();
  return { fields, skipped, bodyStart: Math.min(start, message.length) };
}

function readField(bytes: Buffer): ReadField | undefined {
  const raw = bytes.toString('latin1');
  const colon = raw.indexOf(':');
  if (colon <= 0) return undefined;
  // RFC 5322 obs-field allows white space before the colon ("Subject : hi").
  const name = raw.slice(0, colon).replace(/[ \t]+$/, '');
  if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) return undefined;
  // One latin1 character per octet: the value's octets start right after the colon. An ASCII
  // value is already its text in `raw`, so the octets are not read a second time.
  const value = bytes.subarray(colon + 1);
  const text = unfold(isAscii(value) ? raw.slice(colon + 1) : decodeOctets(value));
  return { field: { name, key: name.toLowerCase(), value: decodeEncodedWords(text), raw }, text };
}

/** RFC 5322 section 2.2.3: unfolding removes the CRLF, not the white space after it. */
function unfold(value: string): string {
  if (!value.includes('\n')) return value.trim();
  return value.replace(/\r?\n(?=[ \t])/g, '').trim();
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const windows1252 = new TextDecoder('windows-1252');

/**
 * Header octets to text. RFC 6532 allows UTF-8 in headers; older mailers put raw 8-bit text in
 * their local charset there, which is most often windows-1252 (and a superset of latin1).
 */
export function decodeOctets(bytes: Uint8Array): string {
  if (isAscii(bytes)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  try {
    return utf8.decode(bytes);
  } catch {
    return windows1252.decode(bytes);
  }
}

/** RFC 2047 encoded-words in any charset the runtime knows; the text as it is if decoding fails. */
export function decodeEncodedWords(text: string): string {
  // Without `=?` there is no encoded-word, and decodeWords gives the text back as it is: most
  // fields of most messages, where the call was a regular expression and a token list for nothing.
  if (!text.includes('=?')) return text;
  try {
    return decodeWords(text);
  } catch {
    return text;
  }
}
