import type { Engine } from '../engine.js';
import { Pop3UsageError } from '../errors.js';
import { sendListing, sendLine } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
import { parseCount, readCount, skipBlanks, SPACE, TAB, tokens, tooManyEntries, withRoom, type ListingSink } from './listing.js';
import { TRANSACTION } from './states.js';

export interface MessageSize {
  readonly n: number;
  /**
   * Octets as the server reports them. Servers differ on what they count (bare LF as one octet, a
   * missing final CRLF), so popwire never frames a body by it; it is good for progress and limits.
   */
  readonly size: number;
}

/**
 * A LIST reply held compactly: two Float64Arrays (16 octets a message) instead of an array of
 * objects (about 60 with their headers and the array's slot). Read it by index, or iterate it.
 */
export class MessageSizes implements Iterable<MessageSize> {
  /** @internal Built by LIST; not for callers. */
  constructor(
    private readonly numbers: Float64Array,
    private readonly octets: Float64Array,
  ) {}

  get length(): number {
    return this.numbers.length;
  }

  /** The message number of entry `i` (0-based, in the server's order). */
  n(i: number): number {
    return this.numbers[i] as number;
  }

  /** The size in octets of entry `i`. */
  size(i: number): number {
    return this.octets[i] as number;
  }

  *[Symbol.iterator](): Iterator<MessageSize> {
    for (let i = 0; i < this.numbers.length; i++) yield { n: this.numbers[i] as number, size: this.octets[i] as number };
  }

  toArray(): MessageSize[] {
    return Array.from(this);
  }
}

/** RFC 1939: `LIST` -> one `n size` line per message not marked deleted. */
export function listAll(engine: Engine, maxEntries: number): Promise<MessageSizes> {
  return sendListing(engine, encodeCommand('LIST'), { allowedIn: TRANSACTION }, new SizesBuilder(maxEntries));
}

/** @internal Exported for tests and benches. */
export class SizesBuilder implements ListingSink<MessageSizes> {
  private numbers = new Float64Array(1024);
  private octets = new Float64Array(1024);
  private count = 0;
  /** The count read by readCount. */
  private readonly parsed = { value: 0 };

  constructor(private readonly maxEntries: number) {}

  /**
   * The usual line (`n size`, then anything after a space or tab) is read straight from the
   * octets; anything else takes the string rules of parseSizeLine, which accept it or give the error.
   */
  line(bytes: Buffer, start: number, end: number): void {
    let n: number;
    let size: number;
    let at = readCount(bytes, skipBlanks(bytes, start, end), end, this.parsed);
    if (at !== -1 && at < end && (bytes[at] === SPACE || bytes[at] === TAB)) {
      n = this.parsed.value;
      at = readCount(bytes, skipBlanks(bytes, at, end), end, this.parsed);
    } else {
      at = -1;
      n = 0;
    }
    if (at !== -1 && (at === end || bytes[at] === SPACE || bytes[at] === TAB)) {
      size = this.parsed.value;
    } else {
      ({ n, size } = parseSizeLine(bytes.toString('latin1', start, end)));
    }
    if (this.count >= this.maxEntries) throw tooManyEntries('LIST', this.maxEntries);
    if (this.count === this.numbers.length) {
      this.numbers = withRoom(this.numbers, this.count * 2, (length) => new Float64Array(length));
      this.octets = withRoom(this.octets, this.count * 2, (length) => new Float64Array(length));
    }
    this.numbers[this.count] = n;
    this.octets[this.count] = size;
    this.count += 1;
  }

  finish(): MessageSizes {
    return new MessageSizes(this.numbers.subarray(0, this.count), this.octets.subarray(0, this.count));
  }
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
