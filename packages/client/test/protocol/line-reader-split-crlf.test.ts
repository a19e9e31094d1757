/**
 * Regression (found by `npm run fuzz`, target "line reader"): a status line of exactly the
 * maximum length was accepted when its CRLF arrived in one chunk, and refused with
 * POP3_LINE_TOO_LONG when the socket split it between the CR and the LF: the CR still waiting
 * for its LF was counted as part of the line. Whether a reply is accepted must not depend on
 * where TCP cuts the bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pop3ProtocolError } from '../../src/errors.ts';
import { LineReader } from '../../src/protocol/line-reader.ts';

function readAll(reader: LineReader, chunks: string[]): string[] {
  const lines: string[] = [];
  for (const text of chunks) {
    const chunk = Buffer.from(text, 'latin1');
    for (let offset = 0; offset < chunk.length; ) {
      const end = reader.push(chunk, offset);
      if (end === -1) break;
      lines.push(reader.take().toString('latin1'));
      offset = end;
    }
  }
  return lines;
}

describe('LineReader with a line of exactly its maximum length', () => {
  const line = `+OK ${'x'.repeat(12)}`; // 16 octets

  it('accepts it when the chunk ends between its CR and its LF', () => {
    assert.deepEqual(readAll(new LineReader(16), [`${line}\r`, '\n']), [line]);
  });

  it('accepts it when the CR comes alone in a chunk', () => {
    assert.deepEqual(readAll(new LineReader(16), [line, '\r', '\n+OK\r\n']), [line, '+OK']);
  });

  it('still refuses one octet more, whether or not a CR follows it', () => {
    for (const chunks of [[`${line}y\r`, '\n'], [`${line}\ry`]]) {
      assert.throws(
        () => readAll(new LineReader(16), chunks),
        (error: unknown) => error instanceof Pop3ProtocolError && error.code === 'POP3_LINE_TOO_LONG',
      );
    }
  });
});
