import type { Engine } from '../engine.js';
import { sendBuffered, sendLine } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
import { messageNumber } from './list.js';
import { listingLines, malformed, MAX_LISTING_BYTES, parseCount, tokens } from './listing.js';
import { TRANSACTION } from './states.js';

export interface MessageUid {
  readonly n: number;
  /** The server's unique id: 1 to 70 characters from 0x21 to 0x7E (RFC 1939 section 7). */
  readonly uid: string;
}

/** UIDL is optional: a server without it answers -ERR, which reaches the caller as a Pop3ServerError. */
export function uidlAll(engine: Engine): Promise<MessageUid[]> {
  return sendBuffered(engine, encodeCommand('UIDL'), { allowedIn: TRANSACTION }, MAX_LISTING_BYTES, (body) =>
    listingLines(body).map(parseUidLine),
  );
}

export function uidlOne(engine: Engine, n: number): Promise<MessageUid> {
  return sendLine(engine, encodeCommand('UIDL', messageNumber(n)), { allowedIn: TRANSACTION }, ({ text }) =>
    parseUidLine(text),
  );
}

/**
 * The RFC bounds a UID at 70 characters; some servers exceed it, so we accept up to 512 but still
 * refuse spaces and control or 8-bit bytes, which no server sends and which would corrupt a
 * sync state keyed by UID.
 */
function parseUidLine(line: string): MessageUid {
  const [n, uid, extra] = tokens(line);
  const number = parseCount(n, 'the message number', 'UIDL', line);
  if (uid === undefined || extra !== undefined || !/^[\x21-\x7e]{1,512}$/.test(uid)) {
    throw malformed('UIDL', 'the unique id is missing or not printable ASCII', line);
  }
  return { n: number, uid };
}
