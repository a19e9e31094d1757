/**
 * searchTokens has a one-pass path for ASCII text (the common case of a sync) beside the
 * Unicode one: both must make the same words, or a message indexed by one would not be found by
 * a query made by the other.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import Sqlite from 'better-sqlite3';
import { ftsDocument, MAX_INDEXED_TEXT, searchDocument, searchTokens } from '../../src/store/search-text.ts';

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

  it('of ASCII text are the words FTS5 makes of it itself, at the same positions, so SQLite is given such text as it is', () => {
    // The table as migration 0007 makes it, twice: one given the text, one given searchTokens' words.
    const db = new Sqlite(':memory:');
    db.exec(`create virtual table given using fts5(body, content='', contentless_delete=1);
      create virtual table made using fts5(body, content='', contentless_delete=1);
      create virtual table given_words using fts5vocab(given, instance);
      create virtual table made_words using fts5vocab(made, instance);`);
    const words = (table: string) => db.prepare(`select term, offset from ${table} order by offset`).all();
    try {
      fc.assert(
        fc.property(fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 300 }), (text) => {
          db.exec('delete from given; delete from made;');
          db.prepare('insert into given (rowid, body) values (1, ?)').run(ftsDocument({ subject: null, fromName: null, fromAddress: null, to: [], text }).body);
          db.prepare('insert into made (rowid, body) values (1, ?)').run(searchTokens(text));
          assert.deepEqual(words('given_words'), words('made_words'));
        }),
        { numRuns: 500 },
      );
    } finally {
      db.close();
    }
  });

  it('of a body kept as ASCII octets are those of the same text as a string, for FTS5 and for PostgreSQL, capped alike', () => {
    const fields = (text: string | Buffer) => ({ subject: 'S', fromName: null, fromAddress: 'a@example.test', to: [], text });
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 300 }), (text) => {
        assert.deepEqual(ftsDocument(fields(Buffer.from(text, 'latin1'))), ftsDocument(fields(text)));
        assert.deepEqual(searchDocument(fields(Buffer.from(text, 'latin1'))), searchDocument(fields(text)));
      }),
      { numRuns: 500 },
    );
    const long = 'x'.repeat(MAX_INDEXED_TEXT - 2) + ' tail words';
    assert.deepEqual(ftsDocument(fields(Buffer.from(long, 'latin1'))), ftsDocument(fields(long)));
    assert.equal(ftsDocument(fields(Buffer.from(long, 'latin1'))).body.length, MAX_INDEXED_TEXT);
    assert.deepEqual(searchDocument(fields(Buffer.from(long, 'latin1'))), searchDocument(fields(long)));
  });

  it('given to FTS5 are the Unicode path\'s words for text that is not ASCII', () => {
    const doc = ftsDocument({ subject: 'Crème BRÛLÉE', fromName: 'Zoë', fromAddress: 'zoe@example.test', to: [{ name: 'Bob', address: 'bob@example.test' }], text: 'naïve café, 10:00' });
    assert.deepEqual(doc, { subject: 'creme brulee', sender: 'zoe zoe example test', recipients: 'Bob bob@example.test', body: 'naive cafe 10 00' });
  });
});
