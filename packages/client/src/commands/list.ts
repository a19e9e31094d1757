import type { Engine } from '../engine.js';
import { Pop3UsageError } from '../errors.js';
import { sendBuffered, sendLine } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
import { listingLines, MAX_LISTING_BYTES, parseCount, tokens } from './listing.js';
import { TRANSACTION } from './states.js';

export interface MessageSize {
  readonly n: number;
  /**
   * Octets as the server reports them. Servers differ on what they count (bare LF as one octet, a
   * missing final CRLF), so popwire never frames a body by it; it is good for progress and limits.
   */
  readonly size: number;
}

/** RFC 1939: `LIST` -> one `n size` line per message not marked deleted. */
export function listAll(engine: Engine): Promise<MessageSize[]> {
  return sendBuffered(engine, encodeCommand('LIST'), { allowedIn: TRANSACTION }, MAX_LISTING_BYTES, (body) =>
    listingLines(body).map(parseSizeLine),
  );
}

/** `LIST n` -> `+OK n size`. */
export function listOne(engine: Engine, n: number): Promise<MessageSize> {
  return sendLine(engine, encodeCommand('LIST', messageNumber(n)), { allowedIn: TRANSACTION }, ({ text }) =>
    parseSizeLine(text),
  );
}

function parseSizeLine(line: string): MessageSize {
  // RFC 1939 allows more information after the size; we keep the two fields it defines.
  const [n, size] = tokens(line);
  return { n: parseCount(n, 'the message number', 'LIST', line), size: parseCount(size, 'the size', 'LIST', line) };
}

/** Message numbers are 1-based integers (RFC 1939 section 4); anything else is a caller's bug. */
export function messageNumber(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Pop3UsageError(`A message number is an integer from 1 up; got ${String(n)}`, {
      code: 'POP3_INVALID_ARGUMENT',
    });
  }
  return n;
}
