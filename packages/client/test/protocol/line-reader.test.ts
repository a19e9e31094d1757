import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LineReader } from '../../src/protocol/line-reader.ts';
import { Pop3ProtocolError } from '../../src/errors.ts';
import { splitAt } from '../../../../support/chunks.ts';

function readAll(reader: LineReader, chunks: Buffer[]): string[] {
  const lines: string[] = [];
  for (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.length) {
      const end = reader.push(chunk, offset);
      if (end === -1) break;
      lines.push(reader.take().toString('latin1'));
      offset = end;
    }
  }
  return lines;
}

describe('LineReader', () => {
  it('frames CRLF lines and drops the CR', () => {
    assert.deepEqual(readAll(new LineReader(100), [Buffer.from('+OK a\r\n-ERR b\r\n')]), ['+OK a', '-ERR b']);
  });

  it('accepts bare LF from sloppy servers', () => {
    assert.deepEqual(readAll(new LineReader(100), [Buffer.from('+OK a\n+OK b\r\n')]), ['+OK a', '+OK b']);
  });

  it('joins a line split across chunks, including between CR and LF', () => {
    const reader = new LineReader(100);
    assert.deepEqual(readAll(reader, [Buffer.from('+O'), Buffer.from('K hel'), Buffer.from('lo\r'), Buffer.from('\n')]), [
      '+OK hello',
    ]);
  });

  it('refuses a line longer than its bound, even when no LF ever comes', () => {
    const reader = new LineReader(16);
    assert.throws(
      () => readAll(reader, [Buffer.alloc(10, 0x41), Buffer.alloc(10, 0x41)]),
      (error: unknown) => error instanceof Pop3ProtocolError && error.code === 'POP3_LINE_TOO_LONG',
    );
  });

  it('allows a line of exactly the bound', () => {
    assert.deepEqual(readAll(new LineReader(4), [Buffer.from('+OK \r\n')]), ['+OK ']);
  });

  it('gives the same lines for any chunking', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: fc.constantFrom('a', ' ', '\r', '+', '\u00e9'), maxLength: 10 }), { maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (lines, cuts) => {
          const wire = Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1');
          assert.deepEqual(readAll(new LineReader(1000), splitAt(wire, cuts)), lines);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
