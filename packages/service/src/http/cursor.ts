import type { MessageCursor, SearchCursor } from '../store/messages.js';
import { invalid } from './errors.js';

/**
 * The `next` of a message page: where it ended, (date, id), as base64url JSON. Opaque to
 * clients (the store's order may change; the cursor's form with it), read back strictly: a
 * cursor that was not made here is a 400, never a query with odd values.
 */
export function encodeCursor(cursor: MessageCursor): string {
  return Buffer.from(JSON.stringify([cursor.date, cursor.id])).toString('base64url');
}

export function decodeCursor(text: string, field = 'querystring.cursor'): MessageCursor {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw invalid(field, 'is not a cursor this API gave');
  }
  if (!Array.isArray(value) || value.length !== 2) throw invalid(field, 'is not a cursor this API gave');
  const [date, id] = value as unknown[];
  if ((date !== null && !Number.isSafeInteger(date)) || !Number.isSafeInteger(id) || (id as number) < 1) {
    throw invalid(field, 'is not a cursor this API gave');
  }
  return { date: date as number | null, id: id as number };
}

/** `since` and `until`: ms since the epoch, or an ISO 8601 date (`2025-11-26`) or date-time. */
export function parseTime(text: string | undefined, field: string): number | undefined {
  if (text === undefined) return undefined;
  if (/^-?\d{1,16}$/.test(text)) return Number(text);
  // Date.parse takes much more than ISO 8601 (and reads it differently per engine): only ISO forms reach it.
  const ms = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw invalid(field, 'must be milliseconds since the epoch or an ISO 8601 date or date-time');
  return ms;
}

/** A search page's `next`: (rank, id), marked so that a list's cursor is not taken for one. */
export function encodeSearchCursor(cursor: SearchCursor): string {
  return Buffer.from(JSON.stringify(['rank', cursor.rank, cursor.id])).toString('base64url');
}

export function decodeSearchCursor(text: string, field = 'querystring.cursor'): SearchCursor {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw invalid(field, 'is not a cursor of this search (a cursor from a search goes with the same q)');
  }
  const [mark, rank, id] = Array.isArray(value) ? (value as unknown[]) : [];
  if (!Array.isArray(value) || value.length !== 3 || mark !== 'rank' || typeof rank !== 'number' || !Number.isFinite(rank) || !Number.isSafeInteger(id) || (id as number) < 1) {
    throw invalid(field, 'is not a cursor of this search (a cursor from a search goes with the same q)');
  }
  return { rank, id: id as number };
}
