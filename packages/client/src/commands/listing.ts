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

/** A listing's line: a number, a space, and a number or a uid (up to 512; see uidl.ts). */
const MAX_LISTING_LINE = 1024;

/**
 * Takes a listing's lines one at a time as the reply arrives, so a listing of millions is never
 * held as a reply Buffer, a string and an array of strings at once (985 MB of RSS for two million
 * lines, before). `line` gets each line without its line ending, as latin1 (the tokens are ASCII).
 */
export interface ListingSink<T> {
  line(text: string): void;
  finish(): T;
}

/** Splits a listing's body, chunk by chunk, into lines for a ListingSink. */
export class ListingSplitter {
  private readonly lines = new LineReader(MAX_LISTING_LINE);

  constructor(private readonly sink: ListingSink<unknown>) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const end = this.lines.push(chunk, offset);
      if (end === -1) return;
      offset = end;
      this.sink.line(this.lines.take().toString('latin1'));
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
