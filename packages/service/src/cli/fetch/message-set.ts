import { InvalidArgumentError } from 'commander';
import type { MessageSize } from 'popwire';
import { UsageError } from '../failure.js';

/** One item of `--messages`: a number (first = last) or a range `first-last`, both inclusive. */
export interface MessageRange {
  readonly first: number;
  readonly last: number;
}

const ITEM = /^(\d{1,15})(?:-(\d{1,15}))?$/;

/**
 * A commander parser for `--messages 1,5-9`: numbers and ranges, comma-separated, spaces allowed
 * around the items. Anything else is refused before connecting: a typo must not select other
 * messages, least of all with --delete. Kept as ranges, not expanded: `1-999999999` is fine.
 */
export function parseMessageSet(text: string): MessageRange[] {
  const items = text.split(',').map((item) => item.trim());
  return items.map((item) => {
    const match = ITEM.exec(item);
    if (match === null) {
      throw new InvalidArgumentError(
        `Expected message numbers and ranges separated by commas, as in 1,5-9; got ${JSON.stringify(item)}.`,
      );
    }
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (first < 1) throw new InvalidArgumentError('Message numbers start at 1.');
    if (last < first) throw new InvalidArgumentError(`The range ${item} ends before it starts.`);
    return { first, last };
  });
}

/**
 * The listed messages that `ranges` ask for, in the server's order, each once. Every number asked
 * for must exist: `--messages 7` on a mailbox of six is a mistake to report, not to skip silently.
 */
export function selectMessages(listed: readonly MessageSize[], ranges: readonly MessageRange[] | undefined): MessageSize[] {
  if (ranges === undefined) return [...listed];
  const present = new Set(listed.map(({ n }) => n));
  const wanted = new Set<number>();
  for (const { first, last } of ranges) {
    // At most present.size + 1 steps: a range longer than the mailbox has a gap within that many.
    for (let n = first; n <= last; n++) {
      if (!present.has(n)) {
        throw new UsageError(
          `--messages asks for message ${n}, but the mailbox ${listed.length === 0 ? 'is empty' : `has ${describeListing(listed)}`}`,
        );
      }
      wanted.add(n);
    }
  }
  return listed.filter(({ n }) => wanted.has(n));
}

function describeListing(listed: readonly MessageSize[]): string {
  const numbers = listed.map(({ n }) => n);
  const contiguous = numbers.every((n, index) => n === index + 1);
  if (contiguous) return listed.length === 1 ? 'message 1 only' : `messages 1-${listed.length}`;
  return `${listed.length} messages`;
}
