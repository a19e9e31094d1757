import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DotDecoder } from '../../src/protocol/dot-decoder.ts';
import { dotStuff } from '../../../../support/dot-stuff.ts';
import { splitAt } from '../../../../support/chunks.ts';

/** Feeds `chunks` to a fresh decoder; returns the body and whatever followed the terminator. */
function decode(chunks: Buffer[]): { body: Buffer; rest: Buffer; ended: boolean } {
  const decoder = new DotDecoder();
  const out: Buffer[] = [];
  const rest: Buffer[] = [];
  let ended = false;
  for (const chunk of chunks) {
    if (ended) {
      rest.push(chunk);
      continue;
    }
    const end = decoder.decode(chunk, 0, (b) => out.push(Buffer.from(b)));
    if (end !== -1) {
      ended = true;
      rest.push(chunk.subarray(end));
    }
  }
  return { body: Buffer.concat(out), rest: Buffer.concat(rest), ended };
}

const b = (s: string) => Buffer.from(s, 'latin1');

describe('DotDecoder framing', () => {
  const cases: Array<[string, string, string]> = [
    ['an empty block is just the terminator', '.\r\n', ''],
    ['a simple body keeps its final CRLF', 'Subject: x\r\n\r\nhi\r\n.\r\n', 'Subject: x\r\n\r\nhi\r\n'],
    ['a stuffed dot line loses one dot', '..hidden\r\n.\r\n', '.hidden\r\n'],
    ['a stuffed lone dot line becomes a lone dot', 'a\r\n..\r\nb\r\n.\r\n', 'a\r\n.\r\nb\r\n'],
    ['three dots become two', '...\r\n.\r\n', '..\r\n'],
    ['a dot that is not at a line start stays', 'a.b\r\n.x.\r\n.\r\n', 'a.b\r\nx.\r\n'],
    ['bare LF line endings pass through and still end the block', 'a\nb\n.\n', 'a\nb\n'],
    ['a sloppy .LF after CRLF lines ends the block', 'a\r\n.\n', 'a\r\n'],
    ['dot CR not followed by LF is content', '.\rX\r\n.\r\n', '\rX\r\n'],
    ['8-bit bytes are untouched', '\xe9\xfc\xff\x80\r\n.\r\n', '\xe9\xfc\xff\x80\r\n'],
    ['a line of spaces and a dot-space line', ' \r\n. \r\n.\r\n', ' \r\n \r\n'],
  ];
  for (const [name, wire, body] of cases) {
    it(name, () => {
      const result = decode([b(wire)]);
      assert.equal(result.ended, true);
      assert.equal(result.body.toString('latin1'), body);
      assert.equal(result.rest.length, 0);
    });
  }

  it('stops exactly at the terminator and leaves the next reply unread', () => {
    const result = decode([b('x\r\n.\r\n+OK next\r\n')]);
    assert.equal(result.body.toString('latin1'), 'x\r\n');
    assert.equal(result.rest.toString('latin1'), '+OK next\r\n');
  });

  it('does not end at a dot line that is not alone (".." or ".x")', () => {
    const result = decode([b('..\r\n.x\r\n')]);
    assert.equal(result.ended, false);
    assert.equal(result.body.toString('latin1'), '.\r\nx\r\n');
  });

  it('gives the same bytes for every split point of a tricky block', () => {
    const wire = b('..a\r\n.\rb\r\nc\n..\n\r\n...\r\nlast\r\n.\r\n+OK');
    const whole = decode([wire]);
    for (let i = 0; i <= wire.length; i++) {
      for (let j = i; j <= wire.length; j++) {
        const split = decode([wire.subarray(0, i), wire.subarray(i, j), wire.subarray(j)]);
        assert.deepEqual(split.body, whole.body, `split at ${i},${j}`);
        assert.deepEqual(split.rest, whole.rest, `split at ${i},${j}`);
      }
    }
  });

  it('hands out views of the input when nothing needs unstuffing (no copy)', () => {
    const decoder = new DotDecoder();
    const chunk = b('line one\r\nline two\r\n.\r\n');
    const views: Buffer[] = [];
    decoder.decode(chunk, 0, (v) => views.push(v));
    assert.equal(views.length, 1);
    assert.equal(views[0]?.buffer, chunk.buffer);
  });
});

describe('DotDecoder properties', () => {
  // Bodies as a server holds them: lines ending in CRLF or LF, rich in dots, CRs and 8-bit bytes.
  const line = fc
    .array(fc.constantFrom(0x2e, 0x2e, 0x0d, 0x20, 0x41, 0x00, 0xff, 0x80, 0x7a), { maxLength: 12 })
    .chain((bytes) => fc.constantFrom('\r\n', '\n').map((eol) => Buffer.concat([Buffer.from(bytes), b(eol)])));
  const body = fc.array(line, { maxLength: 20 }).map((lines) => Buffer.concat(lines));

  it('unstuffing a stuffed body gives the body back, for any chunking', () => {
    fc.assert(
      fc.property(body, fc.array(fc.nat(), { maxLength: 8 }), (original, cuts) => {
        const wire = Buffer.concat([dotStuff(original), b('+OK after')]);
        const result = decode(splitAt(wire, cuts));
        assert.equal(result.ended, true);
        assert.deepEqual(result.body, original);
        assert.equal(result.rest.toString('latin1'), '+OK after');
      }),
      { numRuns: 2000 },
    );
  });

  it('any chunking of any bytes gives the same result as one chunk', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 10 }), (bytes, cuts) => {
        const wire = Buffer.from(bytes);
        const whole = decode([wire]);
        const split = decode(splitAt(wire, cuts));
        assert.deepEqual(split, whole);
      }),
      { numRuns: 3000 },
    );
  });
});
