import { Pop3ProtocolError } from '../errors.js';
import { LineReader } from '../protocol/line-reader.js';

/**
 * Helpers shared by the commands whose replies are listings (CAPA, LIST, UIDL): their tokens are
 * ASCII, so decoding them (as latin1, which cannot fail) is safe; each line becomes a typed record
 * or a Pop3ProtocolError, never a silently wrong value.
 */

/** The lines of a listing block, without line endings; a final empty line is not a line. */
export function listingLines(body: Buffer): string[] {
  if (body.length === 0) return [];
  const lines = body.toString('latin1').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

/** A message number or a size: a decimal integer that fits in a double without loss. */
export function parseCount(token: string | undefined, what: string, verb: string, line: string): number {
  if (token === undefined || !/^\d{1,15}$/.test(token)) {
    throw malformed(verb, `${what} is not a number`, line);
  }
  return Number(token);
}

export function malformed(verb: string, reason: string, line: string): Pop3ProtocolError {
  const shown = JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}...` : line);
  return new Pop3ProtocolError(`Malformed ${verb} reply (${reason}): ${shown}`, {
    code: 'POP3_BAD_REPLY',
    command: verb,
    response: shown,
  });
}

/** Splits on runs of spaces or tabs: RFC 1939 says one space, and some servers send more. */
export function tokens(line: string): string[] {
  return line.trim().split(/[ \t]+/);
}

/** Maximum size of a listing reply held in memory. 64 MiB is UIDL for two million messages. */
export const MAX_LISTING_BYTES = 64 * 1024 * 1024;

/**
 * Most entries a LIST or UIDL listing may hold (the `maxListingEntries` option): twice the two
 * million messages of the largest mailbox we have met. A server that lists more is refused with
 * POP3_REPLY_TOO_LARGE rather than allowed to grow our memory: a listing costs 16 octets per entry
 * for LIST, 12 plus the uid's length for UIDL.
 */
export const DEFAULT_MAX_LISTING_ENTRIES = 4_000_000;

const LF = 0x0a;
const CR = 0x0d;

/** A listing's line: a number, a space, and a number or a uid (up to 512; see uidl.ts). */
const MAX_LISTING_LINE = 1024;

/**
 * Takes a listing's lines one at a time as the reply arrives, so a listing of millions is never
 * held as a reply Buffer, a string and an array of strings at once (985 MB of RSS for two million
 * lines, before). `line` gets each line without its line ending as octets `start` to `end` of
 * `bytes`, usually a view of the socket's chunk: a sink parses the octets in place and makes a
 * string (latin1; the tokens are ASCII) only for what it keeps or for an unusual line.
 */
export interface ListingSink<T> {
  line(bytes: Buffer, start: number, end: number): void;
  finish(): T;
}

export const SPACE = 0x20;
export const TAB = 0x09;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/**
 * Reads a listing's count (see parseCount) from octet `at` of `bytes`: 1 to 15 decimal digits.
 * Returns the offset past the digits and leaves the value in `count.value`, or returns -1 when
 * there is no count there (no digit, or more than 15). The caller's fast path then falls back to
 * the string rules, which give the error.
 */
export function readCount(bytes: Buffer, at: number, end: number, count: { value: number }): number {
  let value = 0;
  let i = at;
  while (i < end) {
    const c = bytes[i] as number;
    if (c < DIGIT_0 || c > DIGIT_9) break;
    value = value * 10 + (c - DIGIT_0);
    i += 1;
  }
  if (i === at || i - at > 15) return -1;
  count.value = value;
  return i;
}

/** The offset of the first octet from `at` that is not a space or a tab. */
export function skipBlanks(bytes: Buffer, at: number, end: number): number {
  while (at < end && (bytes[at] === SPACE || bytes[at] === TAB)) at += 1;
  return at;
}

/** Splits a listing's body, chunk by chunk, into lines for a ListingSink. */
export class ListingSplitter {
  private readonly lines = new LineReader(MAX_LISTING_LINE);

  constructor(private readonly sink: ListingSink<unknown>) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      // A line wholly inside this chunk goes to the sink as a range of it: no view, no copy. A
      // line split across chunks, or too long (LineReader refuses it), goes through the reader.
      if (this.lines.pending === 0) {
        const lf = chunk.indexOf(LF, offset);
        if (lf !== -1) {
          const end = lf > offset && chunk[lf - 1] === CR ? lf - 1 : lf;
          if (end - offset <= MAX_LISTING_LINE) {
            this.sink.line(chunk, offset, end);
            offset = lf + 1;
            continue;
          }
        }
      }
      const next = this.lines.push(chunk, offset);
      if (next === -1) return;
      offset = next;
      const line = this.lines.take();
      this.sink.line(line, 0, line.length);
    }
  }
}

export function tooManyEntries(verb: string, max: number): Pop3ProtocolError {
  return new Pop3ProtocolError(
    `The reply to ${verb} lists more than ${max} messages (maxListingEntries); it was refused to bound memory`,
    { code: 'POP3_REPLY_TOO_LARGE', command: verb },
  );
}

/** A typed array with room for at least `need` elements: doubled, so appending stays amortised O(1). */
export function withRoom<A extends Float64Array | Uint32Array | Uint16Array>(array: A, need: number, make: (length: number) => A): A {
  if (need <= array.length) return array;
  const grown = make(Math.max(need, array.length * 2));
  grown.set(array);
  return grown;
}
