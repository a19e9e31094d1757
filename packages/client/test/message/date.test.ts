/** RFC 5322 dates and the obsolete forms real mailers send; null wherever a date would be a guess. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDate, receivedDate } from '../../src/message/date.ts';

const iso = (text: string) => parseDate(text)?.toISOString() ?? null;

describe('parseDate', () => {
  const accepted: Array<[string, string]> = [
    ['Tue, 25 Nov 2025 10:00:00 +0000', '2025-11-25T10:00:00.000Z'],
    ['Tue, 25 Nov 2025 10:00:00 -0830', '2025-11-25T18:30:00.000Z'],
    ['25 Nov 2025 10:00 +0100', '2025-11-25T09:00:00.000Z'], // no day name, no seconds
    ['Tue,25 Nov 2025 10:00:00 GMT', '2025-11-25T10:00:00.000Z'],
    ['Tue 25 Nov 2025 10:00:00 UT', '2025-11-25T10:00:00.000Z'], // comma left out
    ['5 Nov 97 10:00 EST', '1997-11-05T15:00:00.000Z'], // two-digit year (RFC 5322 section 4.3)
    ['5 Nov 49 10:00 PDT', '2049-11-05T17:00:00.000Z'],
    ['5 Nov 103 10:00 +0000', '2003-11-05T10:00:00.000Z'], // three digits: from 1900
    ['Wed, 26 November 2025 08:30:00 CET', '2025-11-26T07:30:00.000Z'], // full month name, named zone
    ['26-Nov-2025 08:30:00 +0000', '2025-11-26T08:30:00.000Z'],
    ['Tue, 25 Nov 2025 10:00:00 +0000 (Coordinated (Universal) Time)', '2025-11-25T10:00:00.000Z'],
    ['Tue, 25 Nov 2025 10:00:00 GMT+0200', '2025-11-25T08:00:00.000Z'],
    ['Tue, 25 Nov 2025 10:00:00 +02:00', '2025-11-25T08:00:00.000Z'],
    ['Tue, 25 Nov 2025 10:00:00 Z', '2025-11-25T10:00:00.000Z'],
    ['Tue, 25 Nov 2025 10:00:00 A', '2025-11-25T10:00:00.000Z'], // military: read as -0000
    ['Wed, 31 Dec 2016 23:59:60 +0000', '2016-12-31T23:59:59.000Z'], // leap second
    ['2025-11-25T10:00:00Z', '2025-11-25T10:00:00.000Z'],
    ['  tue,  25   nov 2025   10:00:00   +0000  ', '2025-11-25T10:00:00.000Z'],
  ];
  for (const [text, expected] of accepted) it(`reads ${JSON.stringify(text)}`, () => assert.equal(iso(text), expected));

  const refused = [
    'Tue, 25 Nov 2025 10:00:00', // no zone: the time could be off by a day
    'Tue, 25 Nov 2025 10:00:00 IST', // India, Israel or Ireland?
    'Tue Nov 25 10:00:00 2025', // asctime, no zone
    '31 Feb 2025 10:00:00 +0000',
    '25 Nov 2025 24:00:00 +0000',
    '25 Nov 2025 10:60:00 +0000',
    '25 Nov 2025 10:00:00 +0075',
    '25 Foo 2025 10:00:00 +0000',
    '25 Nov 1850 10:00:00 +0000',
    '',
    'yesterday',
  ];
  for (const text of refused) it(`refuses ${JSON.stringify(text)}`, () => assert.equal(parseDate(text), null));
});

describe('receivedDate', () => {
  it('reads the date after the last semicolon', () => {
    assert.equal(receivedDate('from a (b [1.2.3.4]) by c with ESMTP id x; Sat, 29 Nov 2025 14:05:09 +0000')?.toISOString(), '2025-11-29T14:05:09.000Z');
    assert.equal(receivedDate('from a by b'), null);
  });
});
