/**
 * summarize reads a single text part from its headers alone (the sync's common case) and
 * anything else through the full MIME parse. Both must give a message the same list entry:
 * the full parse is the oracle, reached here by handing summarize the same bytes as a stream.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseHeaders } from 'popwire';
import { MAX_INDEXED_TEXT, singlePartBody, textOf } from '../../src/store/search-text.ts';
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
        assert.equal(fastText == null ? fastText : textOf(fastText).trim(), fullText == null ? fullText : textOf(fullText).trim(), bytes.toString('latin1'));
      }
    }
  });
});

/** A single-part message with this Content-Type (and transfer encoding) and these body octets. */
function message(contentType: string, body: Buffer, encoding?: string): Buffer {
  const head = ['From: a@example.test', `Content-Type: ${contentType}`, ...(encoding === undefined ? [] : [`Content-Transfer-Encoding: ${encoding}`]), '', ''].join('\r\n');
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

function bodyOf(bytes: Buffer) {
  return singlePartBody(bytes, parseHeaders(bytes));
}

describe('the text of a single plain-text part, for the index', () => {
  const ascii = Buffer.from('Hello, World: 10:00 <a@b.test> ~ {x} \t tab\r\nsecond line\x00\x1b\x7f.\r\n', 'latin1');

  it('is its own octets when they are ASCII in a charset that leaves ASCII as it is, reading as the decoder would', () => {
    for (const charset of ['us-ascii', 'US-ASCII', 'utf-8', 'UTF8', 'iso-8859-1', 'ISO-8859-15', 'windows-1252', 'latin1']) {
      const text = bodyOf(message(`text/plain; charset=${charset}`, ascii));
      assert.ok(Buffer.isBuffer(text), charset);
      assert.equal(textOf(text), new TextDecoder(charset).decode(ascii), charset);
    }
    assert.ok(Buffer.isBuffer(bodyOf(message('text/plain', ascii))), 'no charset: UTF-8');
    const decoded = bodyOf(message('text/plain; charset=us-ascii', Buffer.from(ascii.toString('base64')), 'base64'));
    assert.equal(textOf(decoded), ascii.toString('latin1'), 'base64 decoded first');
  });

  it('is decoded text when the charset turns ASCII octets into something else, the octets are not ASCII, or it is HTML', () => {
    // ISO-2022-JP: ESC $ B (ASCII octets) switches to JIS X 0208, where "$3$s" is こん.
    const jis = Buffer.from('\x1b$B$3$s\x1b(B ok', 'latin1');
    assert.equal(bodyOf(message('text/plain; charset=iso-2022-jp', jis)), new TextDecoder('iso-2022-jp').decode(jis));
    assert.equal(new TextDecoder('iso-2022-jp').decode(jis), 'こん ok');
    const utf16 = Buffer.from('hi', 'utf16le');
    assert.equal(bodyOf(message('text/plain; charset=utf-16le', utf16)), 'hi');
    assert.equal(bodyOf(message('text/plain; charset=utf-8', Buffer.from('café', 'utf8'))), 'café');
    assert.equal(bodyOf(message('text/html; charset=us-ascii', Buffer.from('<p>Hello</p>'))), ' Hello ');
  });

  it('starts after the first blank line, CRLF or bare LF, whichever comes first', () => {
    const lfHead = Buffer.from('From: a@example.test\nContent-Type: text/plain\n\nbody one\r\n\r\nmore\n\nend\n', 'latin1');
    assert.equal(textOf(bodyOf(lfHead)), 'body one\r\n\r\nmore\n\nend\n');
    const crlfHead = Buffer.from('From: a@example.test\r\nContent-Type: text/plain\r\n\r\nbody two\n\nmore\r\n', 'latin1');
    assert.equal(textOf(bodyOf(crlfHead)), 'body two\n\nmore\r\n');
    const mixed = Buffer.from('From: a@example.test\r\nX-A: b\n\nbody three\r\n\r\n', 'latin1');
    assert.equal(textOf(bodyOf(mixed)), 'body three\r\n\r\n');
  });

  it('is capped at the same length either way', () => {
    const long = Buffer.alloc(MAX_INDEXED_TEXT + 100, 'word ');
    const asOctets = bodyOf(message('text/plain; charset=us-ascii', long));
    assert.ok(Buffer.isBuffer(asOctets));
    assert.equal(textOf(asOctets), long.toString('latin1', 0, MAX_INDEXED_TEXT));
    assert.equal(textOf(bodyOf(message('text/plain; charset=iso-2022-jp', long))), long.toString('latin1', 0, MAX_INDEXED_TEXT));
  });
});
