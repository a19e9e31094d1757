/**
 * The header reader's shortcuts (issue 13: the sync reads every message's headers, and their
 * parse was a quarter of its CPU) give what the full path gives. The full path, written out
 * here as it was: every value's octets decoded apart from the field's latin1 text (UTF-8, else
 * windows-1252), unfolded by a regular expression, and handed to postal-mime's decodeWords;
 * every date's comments stripped character by character. The shortcuts: an ASCII value taken
 * from the latin1 text already made, no regular expression when nothing is folded, no
 * decodeWords without `=?`, no comment pass without `(`, and the plain `Name <a@b>` and `a@b`
 * read without postal-mime's address parser.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { addressParser, decodeWords } from 'postal-mime';
import { daysIn, parseDate, readDate } from '../../src/message/date.ts';
import { parseAddresses } from '../../src/message/envelope.ts';
import { readHeaderBlock } from '../../src/message/headers.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const windows1252 = new TextDecoder('windows-1252');

function fullText(raw: string): { text: string; value: string } {
  const bytes = Buffer.from(raw, 'latin1');
  const colon = raw.indexOf(':');
  const octets = bytes.subarray(colon + 1);
  let decoded: string;
  try {
    decoded = utf8.decode(octets);
  } catch {
    decoded = windows1252.decode(octets);
  }
  const text = decoded.replace(/\r?\n(?=[ \t])/g, '').trim();
  let value: string;
  try {
    value = decodeWords(text);
  } catch {
    value = text;
  }
  return { text, value };
}

function assertSameAsFullPath(block: Buffer): void {
  for (const { field, text } of readHeaderBlock(block).fields) {
    const full = fullText(field.raw);
    assert.equal(text, full.text, `text of ${JSON.stringify(field.raw)}`);
    assert.equal(field.value, full.value, `value of ${JSON.stringify(field.raw)}`);
  }
}

/** Headers that take every branch: folding, encoded-words in several charsets, groups, comments, old dates, 8-bit octets. */
const TRICKY = [
  'Subject: plain ASCII subject',
  'Subject: folded\r\n  over\r\n\tthree lines',
  'Subject: bare LF\n folded',
  'Subject : white space before the colon',
  'Subject:',
  'Subject:    ',
  'Subject: =?UTF-8?B?w6lsw6h2ZSDinJM=?=',
  'Subject: =?utf-8?q?caf=C3=A9?= =?utf-8?q?_au_lait?=',
  'Subject: =?ISO-8859-1?Q?Andr=E9?= Pirard',
  'Subject: =?windows-1252?Q?=93quoted=94?=',
  'Subject: =?koi8-r?B?8NLJ18XU?=',
  'Subject: =?Shift_JIS?B?g2WDWINn?=',
  'Subject: =?gb2312?B?xOO6ww==?=',
  'Subject: =?utf-8?B?4pyT?=\r\n =?utf-8?B?4pyT?=',
  'Subject: =?unknown-charset?Q?x?=',
  'Subject: not =? an encoded word ?=',
  'Subject: =?utf-8?Q?broken',
  'Subject: \xe9t\xe9 in latin1 octets',
  'Subject: \xc3\xa9t\xc3\xa9 in UTF-8 octets',
  'Subject: invalid UTF-8 \xc3\x28 and \xff',
  'Subject: 8-bit \xe9 and =?utf-8?q?encoded_=C3=A9?=',
  'From: "Doe, John" <john@example.test>',
  'From: john@example.test (John Doe)',
  'From: =?utf-8?q?J=C3=B6rg?= <jorg@example.test>',
  'From: J\xc3\xb6rg <jorg@example.test>',
  'To: Team: a@example.test, "B (b)" <b@example.test>;, c@example.test',
  'To: undisclosed-recipients:;',
  'To: a@example.test,\r\n  b@example.test (comment (nested))',
  'Date: Tue, 25 Nov 2025 10:00:00 +0000',
  'Date: Tue, 25 Nov 2025 10:00:00 +0000 (UTC)',
  'Date: 25 Nov 95 10:00 EST',
  'Date: Tuesday, 25-Nov-2025 10:00:00 GMT',
  'Date: 25 Nov 2025\r\n 10:00:00 (a (nested) comment) +0100',
  'Message-ID: <id@example.test>',
  'X-Tab:\tvalue after a tab',
];

describe('the header reader agrees with the full path', () => {
  it('gives the same text and value for every field of a corpus of tricky headers', () => {
    for (const header of TRICKY) assertSameAsFullPath(Buffer.from(`${header}\r\n\r\nbody\r\n`, 'latin1'));
    assertSameAsFullPath(Buffer.from(`${TRICKY.join('\r\n')}\r\n\r\n`, 'latin1'));
  });

  it('gives the same text and value for header blocks made of random tricky pieces', () => {
    const piece = fc.constantFrom(
      'a', ' ', '\t', '\r\n ', '\n\t', '=?', '?=', '=?utf-8?B?w6k=?=', '=?iso-8859-1?q?=E9?=', '=?x?Q?y?=', '(', ')', '"', '<', '>', ',', ';', ':', '@',
      '\xe9', '\xc3\xa9', '\xff', '\x80', '\u0000',
    );
    const value = fc.array(piece, { maxLength: 12 }).map((parts) => parts.join(''));
    const block = fc.array(fc.tuple(fc.constantFrom('Subject', 'From', 'To', 'Date', 'X-Y'), value), { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(block, (fields) => {
        assertSameAsFullPath(Buffer.from(`${fields.map(([name, text]) => `${name}:${text}`).join('\r\n')}\r\n\r\n`, 'latin1'));
      }),
      { numRuns: 2000 },
    );
  });

  it('reads a date without comments as it reads the same date with an empty comment added', () => {
    const dates = TRICKY.filter((h) => h.startsWith('Date:')).map((h) => h.slice(5).replace(/\r\n/g, ''));
    for (const date of [...dates, '1 Jan 70 00:00 Z', '2025-11-25T10:00:00Z', 'garbage', '']) {
      assert.deepEqual(parseDate(date), parseDate(`${date} ()`), date);
    }
  });

  it('reads the usual date form as the general date reader does, valid or not', () => {
    const two = fc.integer({ min: 0, max: 99 }).map((n) => String(n).padStart(2, '0'));
    const date = fc
      .tuple(
        fc.constantFrom('', 'Tue, ', 'Xyz, ', 'tue, ', 'Tue,', 'TUE, '),
        fc.oneof(fc.integer({ min: 0, max: 39 }).map(String), two),
        fc.constantFrom('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec', 'Foo', 'NOV', 'nov', 'Sept'),
        fc.integer({ min: 1000, max: 9999 }).map(String),
        two, two, two,
        fc.constantFrom('+', '-'),
        two, two,
        fc.constantFrom('', ' (UTC)', ' ', '  '),
      )
      .map(([day, d, mon, year, hh, mm, ss, sign, zh, zm, tail]) => `${day}${d} ${mon} ${year} ${hh}:${mm}:${ss} ${sign}${zh}${zm}${tail}`);
    fc.assert(
      fc.property(date, (text) => {
        assert.deepEqual(parseDate(text), readDate(text), text);
      }),
      { numRuns: 20000 },
    );
    assert.deepEqual(parseDate('Tue, 25 Nov 2025 10:00:00 +0000'), new Date(Date.UTC(2025, 10, 25, 10)));
  });

  it('counts the days of every month of every accepted year as Date does', () => {
    for (let year = 1900; year <= 9999; year++) {
      for (let month = 0; month < 12; month++) {
        assert.equal(daysIn(year, month), new Date(Date.UTC(year, month + 1, 0)).getUTCDate(), `${year}-${month + 1}`);
      }
    }
  });

  it('reads addresses as postal-mime does, plain ones and tricky ones alike', () => {
    const full = (text: string) =>
      addressParser(text).map((a) =>
        a.group === undefined ? { name: a.name, address: a.address } : { name: a.name, group: a.group.map((m) => ({ name: m.name, address: m.address })) },
      );
    const word = fc.array(fc.constantFrom('A', 'z', '0', '.', "'", '_', '-', '+'), { minLength: 1, maxLength: 6 }).map((c) => c.join(''));
    const spaces = fc.constantFrom('', ' ', '  ', '\t');
    const plain = fc
      .tuple(fc.array(fc.tuple(word, spaces), { maxLength: 3 }), spaces, word, word, fc.boolean())
      .map(([name, gap, local, domain, bare]) =>
        bare ? `${local}@${domain}` : `${name.map(([w, s]) => `${w}${s}`).join('')}${gap}<${local}@${domain}>`,
      );
    const piece = fc.constantFrom('a', 'B', '0', ' ', '.', '@', '<', '>', '"', '(', ')', ',', ';', ':', '\\', '=?utf-8?q?x?=', 'x@y', '<x@y', 'x@y>', 'a<b@c', '\xe9');
    const tricky = fc.array(piece, { maxLength: 10 }).map((parts) => parts.join('').trim());
    for (const text of TRICKY.filter((h) => /^(From|To):/.test(h)).map((h) => h.slice(h.indexOf(':') + 1).replace(/\r\n/g, '').trim())) {
      assert.deepEqual(parseAddresses(text), full(text), text);
    }
    fc.assert(
      fc.property(fc.oneof(plain, tricky), (text) => {
        assert.deepEqual(parseAddresses(text), full(text), text);
      }),
      { numRuns: 5000 },
    );
  });
});
