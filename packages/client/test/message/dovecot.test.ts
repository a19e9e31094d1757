/**
 * fetchMessage, fetchMessages, size and deleteMany against the real Dovecot: the MIME fixtures
 * delivered to a mailbox come back parsed with the fields parse.test.ts checks in memory.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Pop3Client, type Pop3ClientOptions } from '../../src/index.ts';
import { expectedListSize, startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { MIME_FIXTURES, mimeFixture, withLargeAttachment } from './fixtures.ts';

let dovecot: Dovecot;
const mailbox = MIME_FIXTURES.map(mimeFixture);
const large = withLargeAttachment(200 * 1024);

before(async () => {
  dovecot = await startDovecot();
});
after(() => dovecot?.stop());
beforeEach(() => dovecot.setMailbox('alice', [...mailbox, large.message]));

const options = (): Pop3ClientOptions => ({
  host: dovecot.host,
  port: dovecot.tlsPort,
  ca: dovecot.ca,
  user: 'alice',
  password: dovecot.users.alice!.password,
  timeout: 10_000,
});

describe('parsed messages from Dovecot', () => {
  it('fetchMessage(n) gives the parsed fields of each fixture', async () => {
    await using client = await Pop3Client.connect(options());
    const alternative = await client.fetchMessage(MIME_FIXTURES.indexOf('alternative.eml') + 1);
    assert.equal(alternative.subject, 'Lunch on Friday?');
    assert.equal(alternative.html, '<p>Café at <b>noon</b>?</p>\n');
    const encoded = await client.fetchMessage(MIME_FIXTURES.indexOf('encoded-words.eml') + 1);
    assert.deepEqual(encoded.from, { name: '山田太郎', address: 'taro@example.test' });
    assert.equal(encoded.text, 'こんにちは、世界。\n');
    const nested = await client.fetchMessage(MIME_FIXTURES.indexOf('nested-rfc822.eml') + 1);
    assert.equal(nested.attachments[0]?.contentType, 'message/rfc822');
    const noDate = await client.fetchMessage(MIME_FIXTURES.indexOf('no-date.eml') + 1);
    assert.equal(noDate.date?.toISOString(), '2025-11-29T14:05:09.000Z');
    const attachments = await client.fetchMessage(MIME_FIXTURES.indexOf('attachments.eml') + 1);
    assert.deepEqual(attachments.attachments.map((a) => a.filename), ['logo.png', 'report.pdf', 'données.csv']);
  });

  it('fetchMessages() parses the whole mailbox in order, pipelined; a large one is streamed to files', async () => {
    await using client = await Pop3Client.connect(options());
    assert.equal(client.pipelining, true);
    const seen: Array<[number, string | null]> = [];
    for await (const { n, message } of client.fetchMessages(undefined, { maxInMemoryBytes: 64 * 1024 })) {
      seen.push([n, message.messageId]);
      if (n === mailbox.length + 1) {
        assert.equal(message.streamed, true);
        assert.equal(message.attachments[0]?.size, large.attachment.length);
      }
      await message.dispose();
    }
    assert.deepEqual(seen.map(([n]) => n), Array.from({ length: mailbox.length + 1 }, (_, i) => i + 1));
    assert.equal(seen[0]?.[1], '<alt-1@example.test>');
    assert.equal(seen.at(-1)?.[1], '<big-1@example.test>');
  });

  it('fetchMessages(numbers) takes the given ones, and breaking out leaves the session usable', async () => {
    await using client = await Pop3Client.connect(options());
    for await (const { n } of client.fetchMessages([3, 1, 2])) {
      assert.equal(n, 3);
      break;
    }
    assert.equal((await client.stat()).count, mailbox.length + 1);
  });

  it('size(n) is LIST n', async () => {
    await using client = await Pop3Client.connect(options());
    assert.equal(await client.size(2), expectedListSize(mailbox[1]!));
  });

  it('deleteMany marks them all at once; QUIT applies them', async () => {
    {
      await using client = await Pop3Client.connect(options());
      await client.deleteMany([1, 3, 5]);
      assert.equal((await client.stat()).count, mailbox.length + 1 - 3);
    }
    await using again = await Pop3Client.connect(options());
    assert.equal((await again.stat()).count, mailbox.length + 1 - 3);
  });

  it('deleteMany throws the first -ERR once all have answered; the others stay marked', async () => {
    await using client = await Pop3Client.connect(options());
    await assert.rejects(client.deleteMany([1, 999, 2]), /DELE failed/);
    assert.equal((await client.stat()).count, mailbox.length + 1 - 2);
    await client.reset();
  });
});
