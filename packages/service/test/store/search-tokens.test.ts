/**
 * searchTokens has a one-pass path for ASCII text (the common case of a sync) beside the
 * Unicode one: both must make the same words, or a message indexed by one would not be found by
 * a query made by the other.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { searchTokens } from '../../src/store/search-text.ts';

/** The words as the Unicode path makes them, for any text. */
function unicodeTokens(text: string): string {
  return text.toLowerCase().normalize('NFKD').replace(/\p{M}+/gu, '').replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
}

describe('search words', () => {
  it('of ASCII text are its letters and digits, lowercased, in runs joined by one space', () => {
    assert.equal(searchTokens('  Re: [Bulk] Message #4 -- alice@Example.TEST, 10:00!  '), 're bulk message 4 alice example test 10 00');
    assert.equal(searchTokens(''), '');
    assert.equal(searchTokens('...'), '');
  });

  it('are the same from the ASCII path and the Unicode path, for any ASCII text', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 300 }), (text) => {
        assert.equal(searchTokens(text), unicodeTokens(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('of text with non-ASCII characters anywhere take the Unicode path', () => {
    assert.equal(searchTokens('Crème BRÛLÉE, naïve café'), 'creme brulee naive cafe');
    assert.equal(searchTokens(`${'a '.repeat(5000)}é`), `${'a '.repeat(5000)}e`);
  });
});
