/**
 * Decodes the body of a multi-line reply (RFC 1939 section 3): undoes byte-stuffing and finds the
 * terminating `.` line, across any split of the bytes into chunks.
 *
 * Rules, applied at the start of every line:
 * - `.` CRLF ends the block (and a sloppy `.` LF, which some servers send);
 * - any other line starting with `.` loses that first `.` (`..x` -> `.x`; RFC 1939 says strip it even
 *   when the server forgot to stuff, as Go's textproto does);
 * - everything else passes through untouched: line endings stay as the server sent them, and bytes
 *   are never decoded.
 *
 * The hot path searches for the two bytes LF `.`, so a line that does not start with a dot costs
 * nothing and a body with no dot lines comes out as one view of the input chunk, with no copy.
 * The block's last CRLF (before `.` CRLF) belongs to the message and is passed through.
 */

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const LF_DOT = Buffer.from('\n.', 'latin1');
const CR_ONLY = Buffer.from('\r', 'latin1');

const enum State {
  /** Inside a line: nothing to do until the next LF. */
  Data,
  /** At the first byte of a line. */
  LineStart,
  /** After a leading dot, which we have dropped. */
  Dot,
  /** After a leading dot and a CR, which we hold back: LF next ends the block. */
  DotCr,
}

export type Emit = (chunk: Buffer) => void;

export class DotDecoder {
  private state = State.LineStart;

  /** Prepares for a new block: the first byte of a block starts a line. */
  reset(): void {
    this.state = State.LineStart;
  }

  /**
   * Decodes `chunk` from `start`, passing content to `emit` as views of `chunk`. Returns the offset
   * just past the terminating line, or -1 when the chunk ended inside the block.
   */
  decode(chunk: Buffer, start: number, emit: Emit): number {
    const end = chunk.length;
    let i = start;
    let run = start; // first byte of content not yet emitted
    while (i < end) {
      switch (this.state) {
        case State.Data: {
          const found = chunk.indexOf(LF_DOT, i);
          if (found === -1) {
            // The chunk may end just after an LF, or (split LF / dot) right on it.
            this.state = chunk[end - 1] === LF ? State.LineStart : State.Data;
            i = end;
            break;
          }
          if (found + 1 > run) emit(chunk.subarray(run, found + 1));
          i = found + 2;
          run = i;
          this.state = State.Dot;
          break;
        }
        case State.LineStart:
          if (chunk[i] === DOT) {
            if (i > run) emit(chunk.subarray(run, i));
            i += 1;
            run = i;
            this.state = State.Dot;
          } else {
            this.state = State.Data;
          }
          break;
        case State.Dot: {
          const byte = chunk[i];
          if (byte === LF) {
            this.state = State.LineStart;
            return i + 1;
          }
          if (byte === CR) {
            i += 1;
            run = i;
            this.state = State.DotCr;
          } else {
            // A stuffed (or unstuffed-but-dotted) line: the dot is gone, this byte is content.
            this.state = State.Data;
          }
          break;
        }
        case State.DotCr:
          if (chunk[i] === LF) {
            this.state = State.LineStart;
            return i + 1;
          }
          // `.` CR x: not the terminator. The dot was stuffing; the CR we held back is content.
          emit(CR_ONLY);
          this.state = State.Data;
          break;
      }
    }
    if (run < end) emit(chunk.subarray(run, end));
    return -1;
  }
}
