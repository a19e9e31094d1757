import { Pop3ProtocolError } from '../errors.js';

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
