/**
 * parseMessage on the MIME fixtures: every field the issue names, in memory and, with a tiny
 * cap, through the streaming path; large parts spooled to files and removed by dispose().
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { parseMessage, type ParsedMessage } from '../../src/index.ts';
import { mimeFixture, withLargeAttachment } from './fixtures.ts';

const parse = (name: string) => parseMessage(mimeFixture(name));

async function bytesOf(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('header fields', () => {
  it('keeps every header in order, raw and decoded', async () => {
    const message = await parse('alternative.eml');
    assert.deepEqual(message.headers.slice(0, 3).map((h) => h.name), ['From', 'To', 'Cc']);
    const references = message.headers.find((h) => h.key === 'references');
    assert.equal(references?.raw, 'References: <root-1@example.test>\r\n <prev-2@example.test>');
    assert.equal(references?.value, '<root-1@example.test> <prev-2@example.test>');
    assert.equal(message.header('SUBJECT'), 'Lunch on Friday?');
  });

  it('gives addresses as objects, groups included', async () => {
    const message = await parse('alternative.eml');
    assert.deepEqual(message.from, { name: 'Alice Example', address: 'alice@example.test' });
    assert.deepEqual(message.to, [
      { name: 'Bob Example', address: 'bob@example.test' },
      { name: 'Carol, C.', address: 'carol@example.test' },
    ]);
    assert.deepEqual(message.cc, [
      { name: 'Team', group: [{ name: '', address: 'dave@example.test' }, { name: '', address: 'erin@example.test' }] },
      { name: 'undisclosed-recipients', group: [] },
    ]);
    assert.deepEqual(message.replyTo, [{ name: '', address: 'replies@example.test' }]);
    assert.deepEqual(message.bcc, []);
  });

  it('gives the message ids and the thread', async () => {
    const message = await parse('alternative.eml');
    assert.equal(message.messageId, '<alt-1@example.test>');
    assert.equal(message.inReplyTo, '<prev-2@example.test>');
    assert.deepEqual(message.references, ['<root-1@example.test>', '<prev-2@example.test>']);
  });

  it('decodes encoded-words in ISO-8859-1, ISO-2022-JP and windows-1251, and raw UTF-8 headers', async () => {
    const message = await parse('encoded-words.eml');
    assert.equal(message.subject, 'Grüße aus KölnПривет'); // RFC 2047 section 6.2: space between encoded-words is dropped
    assert.deepEqual(message.from, { name: '山田太郎', address: 'taro@example.test' });
    assert.deepEqual(message.to, [{ name: 'Иван Петров', address: 'ivan@example.test' }]);
    assert.equal(message.header('x-raw-utf8'), 'Grüße, raw UTF-8 (RFC 6532)');
    assert.equal(message.text, 'こんにちは、世界。\n');
  });
});

describe('dates', () => {
  it('reads the Date field, with its raw text', async () => {
    const message = await parse('alternative.eml');
    assert.equal(message.date?.toISOString(), '2025-11-25T09:00:00.000Z');
    assert.deepEqual(message.dateSource, { header: 'date', raw: 'Tue, 25 Nov 2025 10:00:00 +0100' });
  });

  it('accepts the obsolete RFC 822 form: two-digit year, no seconds, named zone, comment', async () => {
    const message = await parse('obsolete-date.eml');
    assert.equal(message.date?.toISOString(), '1997-11-05T15:00:00.000Z');
  });

  it('without a Date field, takes the newest Received field', async () => {
    const message = await parse('no-date.eml');
    assert.equal(message.date?.toISOString(), '2025-11-29T14:05:09.000Z');
    assert.equal(message.dateSource?.header, 'received');
  });

  it('gives null rather than a wrong date', async () => {
    const message = await parse('broken-mime.eml'); // Date: ... 25:61:00, and no Received
    assert.equal(message.date, null);
    assert.equal(message.dateSource, null);
  });
});

describe('bodies and attachments', () => {
  it('multipart/alternative: the text and the HTML, decoded from quoted-printable', async () => {
    const message = await parse('alternative.eml');
    assert.equal(message.text, "Café at noon? It's a long line that the sender folded with a soft line break.\n");
    assert.equal(message.html, '<p>Café at <b>noon</b>?</p>\n');
    assert.deepEqual(message.attachments, []);
  });

  it('attachments in base64 and quoted-printable, and an inline image with its Content-ID', async () => {
    const message = await parse('attachments.eml');
    const [logo, pdf, csv] = message.attachments;
    assert.equal(message.attachments.length, 3);
    assert.deepEqual({ ...logo, content: undefined, stream: undefined }, {
      filename: 'logo.png', contentType: 'image/png', disposition: 'inline', contentId: 'logo@example.test',
      related: true, description: null, size: 70, content: undefined, path: undefined, stream: undefined,
    });
    assert.deepEqual(pdf?.content, Buffer.concat(Array.from({ length: 4 }, () => Buffer.from(Array.from({ length: 256 }, (_, i) => i)))));
    assert.equal(pdf?.description, 'Quarterly report');
    assert.equal(csv?.filename, 'données.csv'); // RFC 2231 filename*
    // postal-mime gives a part that is not base64 with LF line endings, each line ended.
    assert.equal(csv?.content?.toString('utf8'), 'name,city\nJosé,Zürich\nline with trailing space \n\n');
    assert.deepEqual(await bytesOf(pdf!.stream()), pdf?.content);
    assert.match(message.html ?? '', /cid:logo@example.test/);
  });

  it('a nested message/rfc822 is an attachment holding the whole nested message', async () => {
    const message = await parse('nested-rfc822.eml');
    assert.equal(message.text, 'See the message below.\n');
    const [nested] = message.attachments;
    assert.equal(message.attachments.length, 1);
    assert.equal(nested?.contentType, 'message/rfc822');
    const inner = await parseMessage(nested!.content!);
    assert.equal(inner.subject, 'the original');
    assert.equal(inner.text, 'Original text.\n');
    assert.deepEqual(inner.attachments.map((a) => [a.filename, a.content?.toString()]), [['notes.txt', 'inner attachment\n']]);
  });

  it('a message that is not valid MIME still gives what can be recovered, with warnings', async () => {
    const message = await parse('broken-mime.eml');
    assert.equal(message.subject, 'broken');
    assert.match(message.text ?? '', /first part/);
    assert.equal(message.attachments[0]?.filename, 'x.bin');
    assert.match(message.warnings.join(' '), /not header fields/);
  });
});

describe('above the in-memory cap', () => {
  it('streams: headers and text parsed, the large attachment spooled to a file, removed by dispose()', async () => {
    const { message: bytes, attachment } = withLargeAttachment(300 * 1024);
    const chunks = Array.from({ length: Math.ceil(bytes.length / 4096) }, (_, i) => bytes.subarray(i * 4096, (i + 1) * 4096));
    const message = await parseMessage(Readable.from(chunks), { maxInMemoryBytes: 64 * 1024 });
    assert.equal(message.streamed, true);
    assert.equal(message.size, bytes.length);
    assert.equal(message.subject, 'Große Datei');
    assert.equal(message.text, 'Die Datei ist angehängt.\n');
    assert.equal(message.html, '<p>Die Datei ist angeh&auml;ngt.</p>\n');
    const [data, image] = message.attachments;
    assert.equal(data?.filename, 'data.bin');
    assert.equal(data?.content, undefined);
    assert.equal(data?.size, attachment.length);
    assert.deepEqual(await readFile(data!.path!), attachment);
    assert.deepEqual(await bytesOf(data!.stream()), attachment);
    // A small part stays in memory, as below the cap.
    assert.equal(image?.contentId, 'small@example.test');
    assert.equal(image?.path, undefined);
    assert.deepEqual(message.warnings, []);
    await message.dispose();
    assert.equal(existsSync(data!.path!), false);
  });

  it('gives the same fields for every fixture on both sides of the cap', async () => {
    const strip = (m: ParsedMessage) => ({
      ...m,
      attachments: m.attachments.map((a) => ({ ...a, content: undefined, path: undefined, stream: undefined })),
      header: undefined, dispose: undefined, [Symbol.asyncDispose]: undefined, streamed: undefined, warnings: undefined,
    });
    for (const name of ['alternative.eml', 'attachments.eml', 'nested-rfc822.eml']) {
      const bytes = mimeFixture(name);
      const inMemory = await parseMessage(bytes);
      // A cap just under the size: streamed, and the budget still holds the text parts.
      await using streamed = await parseMessage(bytes, { maxInMemoryBytes: bytes.length - 1 });
      assert.equal(streamed.streamed, true, name);
      assert.deepEqual(strip(streamed), strip(inMemory), name);
    }
  });

  it('a text body larger than the budget is not made a string: it is given as a file, with a warning', async () => {
    const bytes = mimeFixture('encoded-words.eml'); // one part: its skeleton is the whole message
    await using message = await parseMessage(bytes, { maxInMemoryBytes: bytes.length - 1 });
    assert.equal(message.subject, 'Grüße aus KölnПривет');
    assert.equal(message.text, null);
    const [body] = message.attachments;
    assert.equal(body?.contentType, 'text/plain');
    assert.deepEqual(await readFile(body!.path!), bytes.subarray(bytes.indexOf('\r\n\r\n') + 4));
    assert.match(message.warnings.join(' '), /too large for memory/);
  });
});
