/**
 * The message routes over real HTTP, on SQLite and PostgreSQL, with messages a real Dovecot
 * served: pages newest first across cursors, the date and sender filters, a message parsed,
 * its raw bytes equal to what RETR gave, an attachment's decoded bytes, and a sender's file
 * name that tries to inject a header.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parseMessage } from 'popwire';
import { expectedRetrBytes, startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { accountBody, startApp, type TestApp } from './helpers.ts';

const stores = testStores();
const ATTACHMENTS = readFileSync(new URL('../../../client/test/fixtures/mime/attachments.eml', import.meta.url));

/** A short message; `date` null leaves out Date (and there is no Received to fall back on). */
function mail(n: number, from: string, date: string | null, extra: string[] = [], body = `Message ${n}.`): Buffer {
  const head = [`From: ${from}`, 'To: bob@example.test', `Subject: Message ${n}`, ...(date === null ? [] : [`Date: ${date}`]), `Message-ID: <m${n}@popwire.test>`, ...extra];
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n${body}\r\n`, 'utf8');
}

/**
 * A part whose RFC 2231 file name decodes to `résumé"` CR LF `Set-Cookie: stolen=1` `.txt`: a
 * Content-Disposition built from it naively would end early and add a header.
 */
const EVIL = mail(
  9,
  'mallory@evil.test',
  'Mon, 03 Nov 2025 09:00:00 +0000',
  ['MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"'],
  [
    '--b',
    'Content-Type: text/plain',
    '',
    'See attached.',
    '--b',
    "Content-Type: text/html; name*=UTF-8''r%C3%A9sum%C3%A9%22%0D%0ASet-Cookie%3A%20stolen%3D1.html",
    "Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%22%0D%0ASet-Cookie%3A%20stolen%3D1.html",
    '',
    '<script>alert(1)</script>',
    '--b--',
  ].join('\r\n'),
);

/** Dovecot's mailbox, and the order the API must list it in: newest first, the undated last. */
const MAILBOX = [
  mail(1, 'Alice <alice@example.test>', 'Sat, 01 Nov 2025 09:00:00 +0000'),
  mail(2, 'Bob <BOB@Example.TEST>', 'Sun, 02 Nov 2025 09:00:00 +0000'),
  mail(3, 'carol@other.test', 'Tue, 04 Nov 2025 09:00:00 +0000'),
  mail(4, 'bob@example.test', 'Wed, 05 Nov 2025 09:00:00 +0000'),
  mail(5, 'percent%sign@example.test', null),
  EVIL,
  ATTACHMENTS, // Wed, 26 Nov 2025
  mail(6, 'alice@example.test', 'Thu, 06 Nov 2025 09:00:00 +0000'),
];
const NEWEST_FIRST = ['Report and data', 'Message 6', 'Message 4', 'Message 3', 'Message 9', 'Message 2', 'Message 1', 'Message 5'];

let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot({ authFailureDelayMs: 0 });
  await dovecot.setMailbox('alice', MAILBOX);
});
after(() => dovecot?.stop());

for (const kind of STORE_KINDS) {
  describe(`message routes on ${kind}`, () => {
    let app: TestApp;
    let accountId: number;
    /** Subject -> message id. */
    const ids = new Map<string, number>();
    before(async () => {
      app = await startApp(await stores.open(kind), { ca: dovecot.ca });
      const created = await app.request('POST', '/v1/accounts', { body: accountBody(dovecot, dovecot.users.alice!.password) });
      accountId = created.json.id;
      assert.equal((await app.sync(accountId)).newMessages, MAILBOX.length);
    });
    after(async () => {
      await app?.close();
      await app?.store.close();
    });

    /** Every page, following `next`; the subjects in order. */
    async function listAll(query: string): Promise<string[]> {
      const subjects: string[] = [];
      let cursor: string | null = null;
      do {
        const reply = await app.request('GET', `/v1/accounts/${accountId}/messages?${query}${cursor === null ? '' : `&cursor=${cursor}`}`);
        assert.equal(reply.status, 200, reply.text);
        for (const m of reply.json.messages) {
          subjects.push(m.subject);
          ids.set(m.subject, m.id);
        }
        cursor = reply.json.next;
        assert.ok(subjects.length <= MAILBOX.length, 'pages end');
      } while (cursor !== null);
      return subjects;
    }

    it('lists newest first across pages, the undated last, each message once', async () => {
      assert.deepEqual(await listAll('limit=3'), NEWEST_FIRST);
      assert.deepEqual(await listAll('limit=1'), NEWEST_FIRST);
      assert.deepEqual(await listAll(''), NEWEST_FIRST);
      const first = await app.request('GET', `/v1/accounts/${accountId}/messages?limit=1`);
      assert.deepEqual(first.json.messages[0].from, { name: '', address: 'sender@example.test' });
      assert.equal(first.json.messages[0].hasAttachments, true);
      assert.deepEqual(first.json.messages[0].to, [{ name: '', address: 'bob@example.test' }]);
      assert.equal(first.json.messages[0].date, '2025-11-26T13:30:00.000Z');
      assert.match(first.json.messages[0].storedAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    });

    it('filters by date range (ms or ISO 8601) and by sender address, any case', async () => {
      assert.deepEqual(await listAll('since=2025-11-02&until=2025-11-05T00:00:00Z&limit=2'), ['Message 3', 'Message 9', 'Message 2']);
      assert.deepEqual(await listAll(`since=${Date.parse('2025-11-06T00:00:00Z')}`), ['Report and data', 'Message 6']);
      assert.deepEqual(await listAll('from=bob@example.test'), ['Message 4', 'Message 2']);
      assert.deepEqual(await listAll('from=EXAMPLE.test&until=2025-11-03'), ['Message 2', 'Message 1']);
      // LIKE's wildcards are literal here: % matches only a %.
      assert.deepEqual(await listAll('from=%25'), ['Message 5']);
      assert.deepEqual(await listAll('from=_'), []);
    });

    it('refuses a cursor it did not make, a bad date and a bad limit, naming the parameter', async () => {
      for (const [query, field] of [
        ['cursor=not-a-cursor', 'querystring.cursor'],
        [`cursor=${Buffer.from('[1,"x"]').toString('base64url')}`, 'querystring.cursor'],
        ['since=yesterday', 'querystring.since'],
        ['until=2025-13-45', 'querystring.until'],
        ['limit=0', 'querystring.limit'],
        ['limit=201', 'querystring.limit'],
        ['limit=ten', 'querystring.limit'],
        ['sort=asc', 'querystring.sort'],
      ]) {
        const reply = await app.request('GET', `/v1/accounts/${accountId}/messages?${query}`);
        assert.equal(reply.status, 400, query);
        assert.equal(reply.json.error.code, 'INVALID_REQUEST', query);
        assert.equal(reply.json.error.field, field, query);
      }
    });

    it('gives a message parsed: envelope, headers, text, html and the attachment list', async () => {
      const expected = await parseMessage(expectedRetrBytes(ATTACHMENTS));
      const reply = await app.request('GET', `/v1/messages/${ids.get('Report and data')}`);
      assert.equal(reply.status, 200, reply.text);
      const message = reply.json;
      assert.equal(message.accountId, accountId);
      assert.equal(message.subject, 'Report and data');
      assert.equal(message.messageId, '<att-1@example.test>');
      assert.equal(message.date, '2025-11-26T13:30:00.000Z');
      assert.deepEqual(message.from, { name: '', address: 'sender@example.test' });
      assert.deepEqual(message.to, [{ name: '', address: 'bob@example.test' }]);
      assert.deepEqual(message.cc, []);
      assert.deepEqual(
        message.headers.slice(0, 3),
        [
          { name: 'From', value: 'sender@example.test' },
          { name: 'To', value: 'bob@example.test' },
          { name: 'Subject', value: 'Report and data' },
        ],
      );
      assert.equal(message.text, expected.text);
      assert.equal(message.html, expected.html);
      assert.deepEqual(
        message.attachments,
        expected.attachments.map((a, i) => ({
          n: i + 1,
          filename: a.filename,
          contentType: a.contentType,
          size: a.size,
          disposition: a.disposition,
          contentId: a.contentId,
          related: a.related,
          description: a.description,
        })),
      );
      assert.ok(message.attachments.some((a: { filename: string }) => a.filename === 'report.pdf'));
      assert.equal((await app.request('GET', '/v1/messages/999999')).json.error.code, 'MESSAGE_NOT_FOUND');
    });

    it('streams the raw message byte for byte as Dovecot served it, with its length', async () => {
      const reply = await app.request('GET', `/v1/messages/${ids.get('Report and data')}/raw`);
      assert.equal(reply.status, 200);
      assert.equal(reply.headers.get('content-type'), 'message/rfc822');
      assert.ok(reply.bytes.equals(expectedRetrBytes(ATTACHMENTS)));
      assert.equal(reply.headers.get('content-length'), String(reply.bytes.length));
      const missing = await app.request('GET', '/v1/messages/999999/raw');
      assert.equal(missing.status, 404);
      assert.equal(missing.json.error.code, 'MESSAGE_NOT_FOUND');
    });

    it("gives an attachment's decoded bytes with its type and file name", async () => {
      const expected = await parseMessage(expectedRetrBytes(ATTACHMENTS));
      const id = ids.get('Report and data')!;
      for (const [index, attachment] of expected.attachments.entries()) {
        const reply = await app.request('GET', `/v1/messages/${id}/attachments/${index + 1}`);
        assert.equal(reply.status, 200);
        assert.ok(reply.bytes.equals(attachment.content!), attachment.filename ?? String(index));
        assert.equal(reply.headers.get('content-type'), attachment.contentType);
        assert.equal(reply.headers.get('content-length'), String(attachment.size));
        assert.equal(reply.headers.get('x-content-type-options'), 'nosniff');
      }
      const pdf = expected.attachments.findIndex((a) => a.filename === 'report.pdf') + 1;
      const reply = await app.request('GET', `/v1/messages/${id}/attachments/${pdf}`);
      assert.equal(reply.headers.get('content-disposition'), 'attachment; filename="report.pdf"');
      assert.equal(reply.headers.get('content-type'), 'application/pdf');

      const none = await app.request('GET', `/v1/messages/${id}/attachments/${expected.attachments.length + 1}`);
      assert.equal(none.status, 404);
      assert.equal(none.json.error.code, 'ATTACHMENT_NOT_FOUND');
      const zero = await app.request('GET', `/v1/messages/${id}/attachments/0`);
      assert.equal(zero.status, 400);
      assert.equal(zero.json.error.field, 'params.n');
    });

    it('sends a file name that tries to inject a header as a harmless download', async () => {
      const reply = await app.request('GET', `/v1/messages/${ids.get('Message 9')}/attachments/1`);
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.headers.get('set-cookie'), null);
      assert.equal(
        reply.headers.get('content-disposition'),
        `attachment; filename="r_sum__Set-Cookie: stolen=1.html"; filename*=UTF-8''r%C3%A9sum%C3%A9%22Set-Cookie%3A%20stolen%3D1.html`,
      );
      assert.equal(reply.headers.get('content-type'), 'text/html');
      assert.match(reply.headers.get('content-security-policy') ?? '', /sandbox/);
      assert.equal(reply.text.trim(), '<script>alert(1)</script>');
    });
  });
}
