/**
 * summarize reads a single text part from its headers alone (the sync's common case) and
 * anything else through the full MIME parse. Both must give a message the same list entry:
 * the full parse is the oracle, reached here by handing summarize the same bytes as a stream.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { summarize } from '../../src/sync/summary.ts';

async function* stream(bytes: Buffer): AsyncIterable<Uint8Array> {
  yield bytes;
}

const HEADERS = [
  ['From: Alice Example <alice@example.test>', 'To: Bob <bob@example.test>', 'Subject: plain', 'Date: Tue, 25 Nov 2025 10:00:00 +0000', 'Message-ID: <a@example.test>'],
  ['From: "Doe, John" <john@example.test>', 'To: Team: a@example.test, "B (b)" <b@example.test>;, c@example.test', 'Subject: =?utf-8?q?caf=C3=A9?= =?utf-8?q?_au_lait?=', 'Date: 25 Nov 95 10:00 EST'],
  ['From: john@example.test (John Doe)', 'To: undisclosed-recipients:;', 'Subject: folded\r\n  over\r\n\ttwo lines', 'Date: 25 Nov 2025\r\n 10:00:00 (a (nested) comment) +0100'],
  ['From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.test>', 'To: =?koi8-r?B?8NLJ18XU?= <p@example.test>, x@example.test', 'Subject: \xe9t\xe9 in latin1 octets', 'Date: garbage'],
  ['From: J\xc3\xb6rg <jorg@example.test>', 'To: a@example.test,\r\n  b@example.test (comment)', 'Subject: =?Shift_JIS?B?g2WDWINn?=', 'Received: from x by y; Tue, 25 Nov 2025 10:00:00 +0000'],
  ['From:', 'To:', 'Subject:', 'Message-ID: no brackets here'],
];

const BODIES = [
  ['Content-Type: text/plain; charset=us-ascii', '', 'Hello.'],
  ['Content-Type: text/html; charset=utf-8', '', '<p>Hello</p>'],
  ['', 'No Content-Type at all.'],
];

describe('the summary of a single text part', () => {
  it('is the one the full MIME parse gives, headers tricky or plain', async () => {
    for (const headers of HEADERS) {
      for (const body of BODIES) {
        const bytes = Buffer.from(`${[...headers, ...body].join('\r\n')}\r\n`, 'latin1');
        const { text: fastText, ...fast } = await summarize(bytes);
        const { text: fullText, ...full } = await summarize(stream(bytes));
        assert.deepEqual(fast, full, bytes.toString('latin1'));
        assert.equal(fastText?.trim(), fullText?.trim(), bytes.toString('latin1'));
      }
    }
  });
});
