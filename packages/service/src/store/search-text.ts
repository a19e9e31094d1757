import { isAscii } from 'node:buffer';
import type { ParsedHeaders } from 'popwire';

/**
 * What the search index holds of a message, and how text becomes words. Both dialects index
 * the words made here (lowercased, accents removed, runs of letters and digits joined by one
 * space), and a query's words are made the same way (search-query.ts): FTS5's tokenizer and
 * PostgreSQL's parser then see only plain words, so they cut them alike. Left to themselves
 * they do not: PostgreSQL's parser keeps `alice@example.test` as one lexeme, FTS5 makes three.
 */

/** Characters of the text body indexed per message: the start of a long mail is what people search for; the rest costs index space. */
export const MAX_INDEXED_TEXT = 64 * 1024;
/** Octets of an encoded body read to find that much text (base64 takes 4 for 3, quoted-printable up to 3 for 1). */
const MAX_BODY_OCTETS = 4 * MAX_INDEXED_TEXT;

export function searchTokens(text: string): string {
  const ascii = asciiTokens(text);
  if (ascii !== undefined) return ascii;
  const lower = text.toLowerCase();
  // eslint-disable-next-line no-control-regex
  if (!/[^\x00-\x7f]/.test(lower)) return lower.replace(/[^a-z0-9]+/g, ' ').trim();
  return lower
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** Reused by asciiTokens: the words of one text are written here, then copied out as a string. */
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * searchTokens for ASCII text, in one pass over its characters: the same words as lowercasing
 * and `replace(/[^a-z0-9]+/g, ' ').trim()`, or undefined at the first non-ASCII character (the
 * Unicode path then starts over). Why: a profile of the first sync of 10,000 messages of 4 KB
 * put about 100 us per message in the regular expressions here, a quarter of the sync's CPU;
 * this loop takes a tenth of that.
 */
function asciiTokens(text: string): string | undefined {
  if (scratch.length < text.length) scratch = Buffer.allocUnsafe(text.length);
  const out = scratch;
  let length = 0;
  let gap = false;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0x80) return undefined;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)) {
      if (gap && length > 0) out[length++] = 0x20;
      gap = false;
      out[length++] = c;
    } else {
      gap = true;
    }
  }
  return out.toString('latin1', 0, length);
}

/** The four fields of a message's index entry, as words. */
export interface SearchDocument {
  readonly subject: string;
  readonly sender: string;
  readonly recipients: string;
  readonly body: string;
}

/**
 * A message's text body for the index: a string, or ASCII octets standing for themselves (one
 * character each) when the body needed no decoding (singlePartBody says when).
 */
export type BodyText = string | Buffer;

export interface SearchFields {
  readonly subject: string | null;
  readonly fromName: string | null;
  readonly fromAddress: string | null;
  /** The To mailboxes, names and addresses. */
  readonly to: ReadonlyArray<{ readonly name: string; readonly address: string }>;
  readonly text: BodyText | null | undefined;
}

/** The text as a string: ASCII octets are their own latin1 characters. */
export function textOf(text: BodyText): string {
  return typeof text === 'string' ? text : text.toString('latin1');
}

export function searchDocument(fields: SearchFields): SearchDocument {
  return {
    subject: searchTokens(fields.subject ?? ''),
    sender: searchTokens(`${fields.fromName ?? ''} ${fields.fromAddress ?? ''}`),
    recipients: searchTokens(fields.to.map((m) => `${m.name} ${m.address}`).join(' ')),
    body: searchTokens(capText(textOf(fields.text ?? ''))),
  };
}

/**
 * The index entry SQLite's FTS5 is given: ASCII text as it is, the rest as searchTokens makes it.
 * FTS5's unicode61 tokenizer cuts ASCII text exactly as searchTokens does (a token is a run of
 * ASCII letters and digits, folded to lower case; every other ASCII character separates), so the
 * index gets the same words at the same positions either way (a property test holds them
 * equal), and the words of a 4 KB ASCII body need not be made twice: making them was 20 to 40 us
 * of the sync's CPU per message, the check for ASCII takes 2 to 4.
 */
export function ftsDocument(fields: SearchFields): SearchDocument {
  const text = fields.text ?? '';
  return {
    subject: ftsText(fields.subject ?? ''),
    sender: ftsText(`${fields.fromName ?? ''} ${fields.fromAddress ?? ''}`),
    recipients: ftsText(fields.to.map((m) => `${m.name} ${m.address}`).join(' ')),
    body: typeof text === 'string' ? ftsText(capText(text)) : text.toString('latin1', 0, MAX_INDEXED_TEXT),
  };
}

/** A string is ASCII when its UTF-8 takes one octet per UTF-16 unit (anything above 0x7f takes more). */
function ftsText(text: string): string {
  return Buffer.byteLength(text, 'utf8') === text.length ? text : searchTokens(text);
}

export function capText(text: string): string {
  return text.length > MAX_INDEXED_TEXT ? text.slice(0, MAX_INDEXED_TEXT) : text;
}

/**
 * The text of a message that is one text part (text/plain, text/html, or no Content-Type),
 * decoded from its transfer encoding and charset without the MIME parser: the common case of a
 * sync, kept as cheap as reading its headers. HTML is reduced to its text.
 */
export function singlePartText(bytes: Uint8Array, head: ParsedHeaders): string {
  return textOf(singlePartBody(bytes, head));
}

/**
 * singlePartText, but a plain-text body whose octets (after base64 or quoted-printable) are
 * ASCII, in a charset in which ASCII octets are ASCII characters, comes back as those octets,
 * capped at MAX_INDEXED_TEXT (a view of `bytes` when it was not encoded): no string. Why: the sync
 * holds a batch of 1,024 messages until its commit, and their 4 KB text strings outlived the
 * young generation, copied by the scavenges on their way to the old one: the first sync of
 * 10,000 × 4 KB promoted 68 to 73 MB, with them gone 34 to 35, and its GC pauses took 560 to 750
 * ms against 280 to 440. The index makes its string at the commit (ftsDocument), where it dies
 * young; TextDecoder is not needed for ASCII either.
 */
export function singlePartBody(bytes: Uint8Array, head: ParsedHeaders): BodyText {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = bodyStart(buffer);
  if (start < 0) return '';
  let body = buffer.subarray(start, start + MAX_BODY_OCTETS);
  const encoding = (head.header('content-transfer-encoding') ?? '').trim().toLowerCase();
  if (encoding === 'base64') body = Buffer.from(body.toString('latin1'), 'base64');
  else if (encoding === 'quoted-printable') body = decodeQuotedPrintable(body);
  const contentType = head.header('content-type') ?? '';
  const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1] ?? 'utf-8';
  const html = /^\s*text\/html/i.test(contentType);
  if (!html && ASCII_AS_IS.test(charset) && isAscii(body)) return body.subarray(0, MAX_INDEXED_TEXT);
  const text = decode(body, charset);
  return capText(html ? htmlText(text) : text);
}

/**
 * Charsets whose decoders map every octet below 0x80 to the same ASCII character (WHATWG
 * Encoding). Not ISO-2022-*, whose escapes (ASCII octets) switch character sets, nor UTF-16,
 * nor the labels that decode to U+FFFD ("replacement"): those take the decoder.
 */
const ASCII_AS_IS = /^(?:utf-?8|us-ascii|ascii|iso[-_]?8859-\d{1,2}|latin-?1|windows-12[5]\d|cp12[5]\d)$/i;

/** The body text of any message: its text part, or its HTML's text. For the migration that fills the index of stored messages. */
export async function messageText(bytes: Buffer): Promise<string> {
  try {
    // Loaded here, not at the top: the store imports this file, and a sync with nothing new (or a
    // search) never parses a message.
    const { parseHeaders, parseMessage } = await import('popwire');
    const head = parseHeaders(bytes);
    const type = (head.header('content-type') ?? 'text/plain').split(';')[0]!.trim().toLowerCase();
    if (type === '' || type.startsWith('text/')) return singlePartText(bytes, head);
    await using parsed = await parseMessage(bytes);
    return capText(parsed.text ?? (parsed.html === null ? '' : htmlText(parsed.html)));
  } catch {
    return '';
  }
}

/** Where the header block ends: after the first empty line (CRLF or a bare LF, as some mailers write). */
function bodyStart(bytes: Buffer): number {
  const crlf = bytes.indexOf('\r\n\r\n');
  // A bare-LF blank line counts only before the CRLF one: no need to read the body for it.
  const lf = (crlf < 0 ? bytes : bytes.subarray(0, crlf + 2)).indexOf('\n\n');
  if (crlf < 0 && lf < 0) return -1;
  if (lf >= 0 && (crlf < 0 || lf < crlf)) return lf + 2;
  return crlf + 4;
}

/** One decoder per charset, made once: constructing a TextDecoder per message showed in the sync's profile. */
const decoders = new Map<string, InstanceType<typeof TextDecoder>>();

function decode(bytes: Buffer, charset: string): string {
  try {
    const name = charset.toLowerCase();
    let decoder = decoders.get(name);
    if (decoder === undefined) {
      decoder = new TextDecoder(name);
      if (decoders.size < 64) decoders.set(name, decoder);
    }
    return decoder.decode(bytes);
  } catch {
    // A charset the runtime does not know: UTF-8 recovers ASCII words at least.
    return bytes.toString('utf8');
  }
}

function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const upper = byte & ~0x20;
  return upper >= 0x41 && upper <= 0x46 ? upper - 0x41 + 10 : -1;
}

/** RFC 2045 section 6.7; a stray `=` is kept as it is. */
function decodeQuotedPrintable(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (byte === 0x3d) {
      if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) {
        i += 2;
        continue;
      }
      if (bytes[i + 1] === 0x0a) {
        i += 1;
        continue;
      }
      const high = hexValue(bytes[i + 1]);
      const low = hexValue(bytes[i + 2]);
      if (high >= 0 && low >= 0) {
        out[o++] = high * 16 + low;
        i += 2;
        continue;
      }
    }
    out[o++] = byte;
  }
  return out.subarray(0, o);
}

/**
 * The words of an HTML body: scripts, styles and comments dropped, tags made spaces, numeric
 * character references decoded. Named ones become spaces (bar a few letters), which at worst
 * splits a word: this is for an index, never for display.
 */
export function htmlText(html: string): string {
  return html
    .slice(0, MAX_BODY_OCTETS)
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&#(\d{1,7});/g, (_, n: string) => fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-f]{1,6});/gi, (_, n: string) => fromCodePoint(Number.parseInt(n, 16)))
    .replace(/&([a-z]+);/gi, (_, name: string) => NAMED[name.toLowerCase()] ?? ' ');
}

const NAMED: Record<string, string> = { eacute: 'é', egrave: 'è', agrave: 'à', uuml: 'ü', ouml: 'ö', auml: 'ä', szlig: 'ß', ccedil: 'ç' };

function fromCodePoint(n: number): string {
  return n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : ' ';
}
