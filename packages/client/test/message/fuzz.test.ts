/**
 * The parser never throws on message content: random bytes, and the fixtures mutated (bytes
 * flipped, cut, lines repeated), parse in memory and through the streaming path alike.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseMessage } from '../../src/index.ts';
import { MIME_FIXTURES, mimeFixture } from './fixtures.ts';

const fixtures = MIME_FIXTURES.map(mimeFixture);

/** A fixture with up to 8 edits: a byte replaced, a range removed, or a range repeated. */
const mutated = fc
  .tuple(
    fc.constantFrom(...fixtures),
    fc.array(fc.tuple(fc.nat(), fc.nat({ max: 64 }), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'repeat')), { maxLength: 8 }),
  )
  .map(([base, edits]) => {
    let bytes = Buffer.from(base);
    for (const [at, length, byte, kind] of edits) {
      const i = at % Math.max(1, bytes.length);
      if (kind === 'set') bytes[i] = byte;
      else if (kind === 'cut') bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + length)]);
      else bytes = Buffer.concat([bytes.subarray(0, i + length), bytes.subarray(i, i + length), bytes.subarray(i + length)]);
    }
    return bytes;
  });

/** Bytes that look a little like mail: header-ish lines, boundaries, encoded-words, junk. */
const mailish = fc
  .array(
    fc.oneof(
      fc.constantFrom('From: a@b\r\n', 'Content-Type: multipart/mixed; boundary=x\r\n', '--x\r\n', '--x--\r\n', '\r\n', '=?utf-8?B?w6k=?=', 'Content-Transfer-Encoding: base64\r\n', 'Date: 1 Jan 70 00:00 Z\r\n', '\n', ' '),
      fc.string(),
    ),
    { maxLength: 40 },
  )
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

async function parsesBothWays(bytes: Uint8Array): Promise<void> {
  const inMemory = await parseMessage(bytes);
  assert.ok(Array.isArray(inMemory.headers));
  await using streamed = await parseMessage(Readable.from([bytes.subarray(0, 7), bytes.subarray(7)]), {
    maxInMemoryBytes: Math.max(1, Math.floor(bytes.length / 2)),
  });
  assert.ok(Array.isArray(streamed.attachments));
}

describe('the parser never throws on content', () => {
  it('random bytes', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), parsesBothWays), { numRuns: 150 });
  });

  it('mail-like noise', async () => {
    await fc.assert(fc.asyncProperty(mailish, parsesBothWays), { numRuns: 150 });
  });

  it('mutated fixtures', async () => {
    await fc.assert(fc.asyncProperty(mutated, parsesBothWays), { numRuns: 200 });
  });
});
