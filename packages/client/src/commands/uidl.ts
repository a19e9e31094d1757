import type { Engine } from '../engine.js';
import { sendListing, sendLine } from '../exchanges.js';
import { encodeCommand } from '../protocol/command.js';
import { messageNumber } from './list.js';
import { malformed, parseCount, readCount, skipBlanks, SPACE, TAB, tokens, tooManyEntries, withRoom, type ListingSink } from './listing.js';
import { TRANSACTION } from './states.js';

export interface MessageUid {
  readonly n: number;
  /** The server's unique id: 1 to 70 characters from 0x21 to 0x7E (RFC 1939 section 7). */
  readonly uid: string;
}

/**
 * A UIDL reply held compactly: the numbers in a Float64Array, the uids' octets packed in blocks
 * of 1 MiB with each one's start and length in typed arrays (about 14 octets a message plus the
 * uid), instead of an object and a string per message. A uid becomes a string only when asked for.
 * Blocks, not one Buffer doubled as it fills: doubling would copy, and for a moment hold, 1.5
 * times the uids' octets.
 */
export class MessageUids implements Iterable<MessageUid> {
  private byNumber: Map<number, number> | undefined;

  /** @internal Built by UIDL; not for callers. */
  constructor(
    private readonly numbers: Float64Array,
    private readonly starts: Uint32Array,
    private readonly lengths: Uint16Array,
    private readonly blocks: readonly Buffer[],
  ) {}

  get length(): number {
    return this.numbers.length;
  }

  /** The message number of entry `i` (0-based, in the server's order). */
  n(i: number): number {
    return this.numbers[i] as number;
  }

  /** The unique id of entry `i`. */
  uid(i: number): string {
    const start = this.starts[i] as number;
    const at = start % UID_BLOCK;
    return (this.blocks[(start - at) / UID_BLOCK] as Buffer).toString('latin1', at, at + (this.lengths[i] as number));
  }

  /**
   * The entry of message `n`, or -1. Servers list in order, so entry n-1 is tried first; a map is
   * built (once) only for a listing out of order.
   */
  indexOf(n: number): number {
    if (this.numbers[n - 1] === n) return n - 1;
    if (this.byNumber === undefined) {
      this.byNumber = new Map();
      for (let i = this.numbers.length - 1; i >= 0; i--) this.byNumber.set(this.numbers[i] as number, i);
    }
    return this.byNumber.get(n) ?? -1;
  }

  *[Symbol.iterator](): Iterator<MessageUid> {
    for (let i = 0; i < this.numbers.length; i++) yield { n: this.numbers[i] as number, uid: this.uid(i) };
  }

  toArray(): MessageUid[] {
    return Array.from(this);
  }
}

/** Octets per block of uids; a uid (512 at most) never straddles two. */
const UID_BLOCK = 1024 * 1024;

/** The longest uid accepted (see parseUidLine). */
const MAX_UID = 512;

/** UIDL is optional: a server without it answers -ERR, which reaches the caller as a Pop3ServerError. */
export function uidlAll(engine: Engine, maxEntries: number): Promise<MessageUids> {
  return sendListing(engine, encodeCommand('UIDL'), { allowedIn: TRANSACTION }, new UidsBuilder(maxEntries));
}

export function uidlOne(engine: Engine, n: number): Promise<MessageUid> {
  return sendLine(engine, encodeCommand('UIDL', messageNumber(n)), { allowedIn: TRANSACTION }, ({ text }) =>
    parseUidLine(text),
  );
}

/** @internal Exported for tests and benches. */
export class UidsBuilder implements ListingSink<MessageUids> {
  private numbers = new Float64Array(1024);
  private starts = new Uint32Array(1024);
  private lengths = new Uint16Array(1024);
  private readonly blocks: Buffer[] = [];
  /** Where the next uid goes in the last block. */
  private used = UID_BLOCK;
  private count = 0;
  /** The message number read by readCount. */
  private readonly parsedNumber = { value: 0 };

  constructor(private readonly maxEntries: number) {}

  /**
   * The usual line (`n uid`, spaces or tabs around) is read straight from the octets, the uid
   * copied into the block as it is checked. Anything else takes the string rules of parseUidLine,
   * which accept what they always did (a trailing CR or form feed, say) or give the error.
   */
  line(bytes: Buffer, start: number, end: number): void {
    if (this.used + MAX_UID > UID_BLOCK) {
      this.blocks.push(Buffer.allocUnsafeSlow(UID_BLOCK));
      this.used = 0;
    }
    const block = this.blocks[this.blocks.length - 1] as Buffer;
    let length = this.readUid(bytes, start, end, block);
    if (length === -1) {
      const { n, uid } = parseUidLine(bytes.toString('latin1', start, end));
      block.write(uid, this.used, 'latin1');
      this.parsedNumber.value = n;
      length = uid.length;
    }
    if (this.count >= this.maxEntries) throw tooManyEntries('UIDL', this.maxEntries);
    if (this.count === this.numbers.length) this.grow();
    this.numbers[this.count] = this.parsedNumber.value;
    this.starts[this.count] = (this.blocks.length - 1) * UID_BLOCK + this.used;
    this.lengths[this.count] = length;
    this.used += length;
    this.count += 1;
  }

  /** `n uid` from the octets, the uid copied into `block`: its length, or -1 for an unusual line. */
  private readUid(bytes: Buffer, start: number, end: number, block: Buffer): number {
    let at = readCount(bytes, skipBlanks(bytes, start, end), end, this.parsedNumber);
    if (at === -1 || at === end || (bytes[at] !== SPACE && bytes[at] !== TAB)) return -1;
    at = skipBlanks(bytes, at, end);
    const from = at;
    let to = this.used;
    while (at < end) {
      const c = bytes[at] as number;
      if (c < 0x21 || c > 0x7e) break;
      if (at - from === MAX_UID) return -1;
      block[to] = c;
      to += 1;
      at += 1;
    }
    if (at === from || skipBlanks(bytes, at, end) !== end) return -1;
    return at - from;
  }

  private grow(): void {
    const length = this.numbers.length * 2;
    this.numbers = withRoom(this.numbers, length, (size) => new Float64Array(size));
    this.starts = withRoom(this.starts, length, (size) => new Uint32Array(size));
    this.lengths = withRoom(this.lengths, length, (size) => new Uint16Array(size));
  }

  finish(): MessageUids {
    const count = this.count;
    return new MessageUids(this.numbers.subarray(0, count), this.starts.subarray(0, count), this.lengths.subarray(0, count), this.blocks);
  }
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
