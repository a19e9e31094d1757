import { Transform, type TransformCallback } from 'node:stream';

/**
 * mboxrd (the "From-quoting" mbox variant that can be undone: qmail's mbox(5), and what
 * Python's mailbox, mutt and Dovecot read): a message is stored as
 *
 *   From MAILER-DAEMON Thu Nov 24 18:22:48 1986\n     <- envelope line, see fromLine()
 *   ...the message, LF line endings, each /^>*From / line given one more '>'...\n
 *   \n                                                  <- blank line before the next "From "
 *
 * Quoting every /^>*From / line (not only /^From /, as mboxo does) is what makes it reversible: a
 * reader strips one '>' from each /^>+From / line and gets the message back exactly.
 *
 * mbox is a Unix format: CRLF becomes LF here. A bare CR (not before LF) is message content and
 * is kept, so is every other octet: bytes, never text.
 */

const LF = 0x0a;
const CR = 0x0d;
const GT = 0x3e;
const FROM_ = Buffer.from('From ');
const QUOTED_FROM_ = Buffer.from('>From ');
const CR_BYTE = Buffer.from([CR]);
const NEWLINE = Buffer.from([LF]);
const TWO_NEWLINES = Buffer.from([LF, LF]);
const EMPTY = Buffer.alloc(0);

/**
 * The most octets MboxrdQuoter.updateTo writes for a chunk of `length`: one '>' more per "From "
 * (at most one per 6 octets, "From " and its line's LF), plus a held-back "From" and a CR from
 * the chunk before.
 */
export function roomFor(length: number): number {
  return length + Math.ceil(length / 5) + 5;
}

/** Chunks shorter than this go through the state machine alone (bulkLines' calls cost more there). */
const BULK_MIN = 256;
const CRLF_TEXT = '\r\n';
/** A "From " line after the first, in bulkLines' text (which starts inside a line: no match at its start). */
const FROM_LINE = /\n(>*From )/g;

/**
 * Writes the mboxrd form of `chunk`'s octets `start` to `end` into `out` at `at`, returning the
 * new end: they begin inside a line (its `>*From ` prefix already passed on) and end with an LF,
 * so every line start in them follows an LF within them. As latin1 text (one char per octet,
 * both ways, so any octet comes back as it was): CRLF -> LF and the From quoting are two string
 * replacements, which run as native code. Line by line, an indexOf, a Buffer.copy (which makes a
 * Uint8Array each time) and the prefix checks cost some 20 us per 4 KB message in a fresh
 * process, where `fetch` spends its run: V8 optimises the line loop only after a few thousand
 * messages (`--trace-opt`: 100 to 150 ms into a run), and a 2,000-message fetch is over by then.
 * This way: about half of that in a fresh process (2,000 messages: 21-28 -> 10-13 us each),
 * and less than before once warm (10,000: 12-23 -> 8-14 us).
 */
function bulkLines(chunk: Buffer, start: number, end: number, out: Buffer, at: number): number {
  let text = chunk.toString('latin1', start, end);
  if (text.includes(CRLF_TEXT)) text = text.replaceAll(CRLF_TEXT, '\n');
  if (text.includes('From ')) text = text.replace(FROM_LINE, '\n>$1');
  return at + out.write(text, at, 'latin1');
}

/** Receives octets `start` to `end` of `source`: a part of the output. */
export type Emit = (source: Buffer, start: number, end: number) => void;

/**
 * The envelope line that starts each message: `From MAILER-DAEMON <date>` with the date in
 * asctime() form ("Thu Nov 24 18:22:48 1986", the day of the month padded with a space), in UTC,
 * as Python's mailbox writes it. The envelope sender is not known to a POP3 client.
 */
export function fromLine(date: Date): string {
  const [weekday, month, day, time, year] = [
    WEEKDAYS[date.getUTCDay()],
    MONTHS[date.getUTCMonth()],
    String(date.getUTCDate()).padStart(2, ' '),
    [date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()].map((v) => String(v).padStart(2, '0')).join(':'),
    date.getUTCFullYear(),
  ];
  return `From MAILER-DAEMON ${weekday} ${month} ${day} ${time} ${year}\n`;
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * One message's bytes in, its mboxrd body out: CRLF -> LF, one more '>' on every /^>*From / line,
 * a final newline if the message lacks one, then the blank line that separates it from the next.
 * (The envelope line is the caller's: see fromLine().) Two methods, `update` for each chunk and
 * `finalize` at the end, so that a writer can run it inside its own loop; MboxrdEncoder below is
 * the same as a Transform stream.
 *
 * A byte-level state machine, so that any chunk boundary gives the same output: a CR at the end of
 * a chunk waits to see whether LF follows, and a line start waits while it can still become
 * `>*From `. What it holds back is at most four octets of "From" (a run of '>' goes out as it
 * comes: one more '>' anywhere in the run quotes the line just as well), so memory does not grow
 * with the message or with its lines.
 */
export class MboxrdQuoter {
  /** The next octet begins a line, or we are still inside its `>*` run or `From ` prefix. */
  private atLineStart = true;
  /** Octets of "From " matched so far after the line's `>*` run (0 to 4). */
  private fromMatched = 0;
  /** The previous chunk ended in CR: LF next means a line ending, anything else a bare CR. */
  private pendingCr = false;
  /** Whether the last octet passed on was LF; true at the start, so an empty message gets no newline. */
  private endsWithLf = true;

  /** The output for `chunk` (possibly empty: a few octets may wait for the next chunk). */
  update(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    this.encode(chunk, (source, start, end) => void out.push(source.subarray(start, end)));
    return this.join(out);
  }

  /**
   * Like update, but hands each part of the output to `emit` (octets `start` to `end` of
   * `source`, valid only during the call) instead of joining them: a writer that gathers many
   * messages before one write (mbox.ts) copies each octet once, and makes no Buffer per line.
   */
  updateInto(chunk: Buffer, emit: Emit): void {
    let last = -1;
    this.encode(chunk, (source, start, end) => {
      if (end <= start) return;
      last = source[end - 1] as number;
      emit(source, start, end);
    });
    if (last !== -1) this.endsWithLf = last === LF;
  }

  /**
   * Like updateInto, but writes the output itself into `out` from offset `at`, and returns where
   * it ended. `out` must have room for roomFor(chunk.length) octets from `at`. One pass over the
   * octets: updateInto hands a writer two ranges per line (the line, then LF for its CRLF), each
   * copied again into the writer's buffer through a callback; those copies and calls were a
   * sixth of `fetch --mbox`'s CPU time on 4 KB messages (`--cpu-prof`, 10,000 over STLS). Here
   * a line is one copy. (A loop over every octet instead was slower than both: 4 ns an octet.)
   * The same state machine as encode(): any chunking gives the same octets.
   *
   * The whole lines of a chunk (up to its last LF) go through bulkLines() instead: a handful of
   * native calls per chunk rather than two to four per line, see there.
   */
  updateTo(chunk: Buffer, out: Buffer, at: number): number {
    const begin = at;
    const length = chunk.length;
    let i = 0;
    if (this.pendingCr && length > 0) {
      this.pendingCr = false;
      if (chunk[0] === LF) {
        out[at++] = LF;
        i = 1;
        this.atLineStart = true;
      } else {
        out[at++] = CR;
      }
    }
    let lineStart = this.atLineStart;
    let matched = this.fromMatched;
    // Past this LF, what is left of the chunk is part of a line: the state machine below.
    let lastLf = length >= BULK_MIN ? chunk.lastIndexOf(LF) : -1;
    while (i < length) {
      if (!lineStart && lastLf >= i) {
        at = bulkLines(chunk, i, lastLf + 1, out, at);
        i = lastLf + 1;
        lastLf = -1;
        lineStart = true;
        continue;
      }
      if (lineStart) {
        // The `>*` run goes out as it comes; "From " is held back until it is known (see linePrefix).
        if (matched === 0) while (i < length && chunk[i] === GT) out[at++] = chunk[i++] as number;
        while (i < length) {
          if (chunk[i] !== FROM_[matched]) {
            for (let k = 0; k < matched; k++) out[at++] = FROM_[k] as number;
            matched = 0;
            lineStart = false;
            break;
          }
          i++;
          matched++;
          if (matched === FROM_.length) {
            out[at++] = GT;
            for (let k = 0; k < matched; k++) out[at++] = FROM_[k] as number;
            matched = 0;
            lineStart = false;
            break;
          }
        }
        continue;
      }
      // The rest of the line, or of the chunk: one copy, its CRLF made LF.
      const lf = chunk.indexOf(LF, i);
      let end = lf === -1 ? length : lf;
      if (lf === -1) {
        // A CR last in the chunk may be the first half of a CRLF: it waits for the next chunk.
        if (chunk[length - 1] === CR) {
          end = length - 1;
          this.pendingCr = true;
        }
      } else if (lf > i && chunk[lf - 1] === CR) {
        end = lf - 1;
      }
      at += chunk.copy(out, at, i, end);
      if (lf === -1) break;
      out[at++] = LF;
      i = lf + 1;
      lineStart = true;
    }
    this.atLineStart = lineStart;
    this.fromMatched = matched;
    if (at > begin) this.endsWithLf = out[at - 1] === LF;
    return at;
  }

  /** What was held back, the final newline if missing, and the blank line. Call once, at the end. */
  finalize(): Buffer {
    const out: Buffer[] = [];
    if (this.pendingCr) {
      this.pendingCr = false;
      out.push(CR_BYTE);
    }
    if (this.fromMatched > 0) out.push(FROM_.subarray(0, this.fromMatched));
    const rest = this.join(out);
    // The blank line: readers take "\n\nFrom " as the boundary, and the newline before it must be
    // the message's own last line ending (mboxrd readers drop exactly one).
    return Buffer.concat([rest, this.endsWithLf ? NEWLINE : TWO_NEWLINES]);
  }

  private join(out: Buffer[]): Buffer {
    const parts = out.filter((part) => part.length > 0);
    if (parts.length === 0) return EMPTY;
    const last = parts[parts.length - 1] as Buffer;
    this.endsWithLf = last[last.length - 1] === LF;
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  private encode(chunk: Buffer, emit: Emit): void {
    let i = 0;
    if (this.pendingCr && chunk.length > 0) {
      this.pendingCr = false;
      if (chunk[0] === LF) {
        emit(NEWLINE, 0, 1);
        i = 1;
        this.atLineStart = true;
      } else {
        emit(CR_BYTE, 0, 1);
      }
    }
    while (i < chunk.length) {
      if (this.atLineStart) {
        i = this.linePrefix(chunk, i, emit);
        if (this.atLineStart) return; // the chunk ended inside the prefix
        continue;
      }
      const lf = chunk.indexOf(LF, i);
      if (lf === -1) {
        // The rest of a line. A CR at the very end may be the first half of a CRLF.
        if (chunk[chunk.length - 1] === CR) {
          emit(chunk, i, chunk.length - 1);
          this.pendingCr = true;
        } else {
          emit(chunk, i, chunk.length);
        }
        return;
      }
      if (lf > i && chunk[lf - 1] === CR) {
        emit(chunk, i, lf - 1);
        emit(NEWLINE, 0, 1);
      } else {
        emit(chunk, i, lf + 1);
      }
      i = lf + 1;
      this.atLineStart = true;
    }
  }

  /**
   * Reads a line's `>*From ` prefix from `i`, passing the '>' run on as it goes. Returns where the
   * line's ordinary content starts; atLineStart stays true if the chunk ended first.
   */
  private linePrefix(chunk: Buffer, start: number, emit: Emit): number {
    let i = start;
    if (this.fromMatched === 0) {
      while (i < chunk.length && chunk[i] === GT) i++;
      if (i > start) emit(chunk, start, i);
    }
    while (i < chunk.length) {
      if (chunk[i] !== FROM_[this.fromMatched]) {
        // Not a From line: what was held back of "From" is content after all.
        emit(FROM_, 0, this.fromMatched);
        this.fromMatched = 0;
        this.atLineStart = false;
        return i;
      }
      i++;
      this.fromMatched++;
      if (this.fromMatched === FROM_.length) {
        emit(QUOTED_FROM_, 0, QUOTED_FROM_.length);
        this.fromMatched = 0;
        this.atLineStart = false;
        return i;
      }
    }
    return i;
  }
}

/** MboxrdQuoter as a stream: a message's bytes in, its mboxrd form out, across any chunking. */
export class MboxrdEncoder extends Transform {
  private readonly quoter = new MboxrdQuoter();

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const out = this.quoter.update(chunk);
    done(null, out.length > 0 ? out : undefined);
  }

  override _flush(done: TransformCallback): void {
    done(null, this.quoter.finalize());
  }
}
