import { Pop3ProtocolError } from '../errors.js';

const LF = 0x0a;
const CR = 0x0d;

/**
 * Frames status lines out of socket chunks.
 *
 * A line ends at LF; a CR before it is dropped, so a sloppy server that ends lines with a bare LF
 * is read the same as a correct one. A line that is split across chunks is kept as parts and
 * joined once, when its LF arrives; a line inside one chunk is returned as a view of that chunk
 * (no copy).
 *
 * Bound: a server that never sends LF would make us buffer forever. RFC 2449 caps a response line
 * at 512 octets; we allow `maxLength` (default 8 KiB, room for chatty greetings) and fail past it.
 */
export class LineReader {
  private parts: Buffer[] = [];
  private partsLength = 0;
  private line: Buffer | undefined;

  constructor(private maxLength: number) {}

  /**
   * Reads from `chunk` at `start`. Returns the offset just past the line's LF when a whole line is
   * ready (take it with `take()`), or -1 when the chunk ended first (everything was consumed).
   */
  push(chunk: Buffer, start: number): number {
    const lf = chunk.indexOf(LF, start);
    if (lf === -1) {
      this.partsLength += chunk.length - start;
      // A final CR may be the first half of the line's CRLF, split across chunks: it is not part of
      // the line, so a line of exactly `maxLength` octets passes however the chunks fall.
      this.checkLength(chunk[chunk.length - 1] === CR ? this.partsLength - 1 : this.partsLength);
      this.parts.push(chunk.subarray(start));
      return -1;
    }
    let line: Buffer;
    if (this.parts.length > 0) {
      this.parts.push(chunk.subarray(start, lf));
      line = Buffer.concat(this.parts, this.partsLength + lf - start);
      this.parts = [];
      this.partsLength = 0;
      if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    } else {
      // The common case, a line inside one chunk: one view, its CR left out by index (a view per
      // status line is made for every RETR of a retrieval).
      line = chunk.subarray(start, lf > start && chunk[lf - 1] === CR ? lf - 1 : lf);
    }
    this.checkLength(line.length);
    this.line = line;
    return lf + 1;
  }

  /** The line completed by the last `push`, without its line ending. */
  take(): Buffer {
    const line = this.line;
    if (line === undefined) throw new Error('LineReader.take() called with no complete line');
    this.line = undefined;
    return line;
  }

  /** Bytes of an unfinished line: anything here when a connection is handed to TLS is injected. */
  get pending(): number {
    return this.partsLength;
  }

  setMaxLength(maxLength: number): void {
    this.maxLength = maxLength;
  }

  private checkLength(length: number): void {
    if (length > this.maxLength) {
      this.parts = [];
      this.partsLength = 0;
      throw new Pop3ProtocolError(`The server sent a line longer than ${this.maxLength} octets`, {
        code: 'POP3_LINE_TOO_LONG',
      });
    }
  }
}
