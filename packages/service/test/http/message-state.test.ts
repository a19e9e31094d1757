/**
 * Message state, soft delete and search over real HTTP, on SQLite and PostgreSQL (issue 15):
 * PATCH sets seen and flagged and writes one `message.updated` outbox row per change; DELETE
 * hides, `?purge=true` removes; GET /v1/messages?q= searches every account the token may
 * reach, pages by cursor and takes the list's filters; bad syntax is a 400 that says what is
 * wrong; a read token may not change state.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { WebhookDispatcher } from '../../src/delivery/webhook.ts';
import type { MessageToCommit } from '../../src/store/messages.ts';
import { summarize } from '../../src/sync/summary.ts';
import { accountBody, startApp, type TestApp } from './helpers.ts';

const stores = testStores();

async function mail(uid: string, from: string, subject: string, body: string, date: string): Promise<MessageToCommit> {
  const bytes = Buffer.from(`From: ${from}\r\nTo: bob@example.test\r\nSubject: ${subject}\r\nDate: ${date}\r\n\r\n${body}\r\n`);
  return { uid, listedSize: bytes.length, firstSeenAt: 1, bytes, sha256: createHash('sha256').update(bytes).digest('hex'), headersOnly: false, summary: await summarize(bytes) };
}

for (const kind of STORE_KINDS) {
  describe(`message state and search over HTTP on ${kind}`, () => {
    let app: TestApp;
    let accountA: number;
    let accountB: number;
    const ids = new Map<string, number>();
    before(async () => {
      let dispatcher: WebhookDispatcher | undefined;
      app = await startApp(await stores.open(kind), { webhooks: { rowsFor: (account, events) => dispatcher!.rowsFor(account, events), wake: () => {} } });
      dispatcher = new WebhookDispatcher(app.store, app.accounts);
      for (const name of ['a', 'b']) {
        const made = await app.request('POST', '/v1/accounts', { body: accountBody({ host: `pop-${name}.example.test`, port: 995 }, `pw-${name}-0123456789`, { name: `Tenant ${name}` }) });
        assert.equal(made.status, 201, made.text);
        if (name === 'a') accountA = made.json.id;
        else accountB = made.json.id;
      }
      const batchA = await Promise.all([
        mail('a1', 'Alice <alice@example.test>', 'Invoice for March', 'Please pay the invoice by Friday.', 'Sat, 01 Nov 2025 09:00:00 +0000'),
        mail('a2', 'carol@other.test', 'Lunch', 'Lunch on Friday? No invoice talk.', 'Sun, 02 Nov 2025 09:00:00 +0000'),
        mail('a3', 'dave@example.test', 'Invoice invoice', 'Another invoice.', 'Mon, 03 Nov 2025 09:00:00 +0000'),
      ]);
      const batchB = [await mail('b1', 'zed@b.test', 'Invoice of tenant b', 'b', 'Tue, 04 Nov 2025 09:00:00 +0000')];
      for (const [account, batch] of [[accountA, batchA], [accountB, batchB]] as const) {
        const stored = await app.store.messages.commit(account, batch, 5);
        batch.forEach((m, i) => ids.set(m.uid, stored[i]!));
      }
    });
    after(async () => {
      await app?.close();
      await app?.store.close();
    });

    const subjects = (reply: { json: { messages: Array<{ subject: string }> } }) => reply.json.messages.map((m) => m.subject);

    it('sets seen and flagged with PATCH and sends one message.updated per change', async () => {
      const id = ids.get('a1')!;
      const patched = await app.request('PATCH', `/v1/messages/${id}`, { body: { seen: true } });
      assert.equal(patched.status, 200, patched.text);
      assert.deepEqual([patched.json.seen, patched.json.flagged, patched.json.deletedAt], [true, false, null]);
      assert.equal((await app.request('PATCH', `/v1/messages/${id}`, { body: { seen: true } })).status, 200);
      const events = await app.store.db.selectFrom('webhook_events').selectAll().where('type', '=', 'message.updated').execute();
      assert.equal(events.length, 1, 'the second PATCH changed nothing and sent nothing');
      const body = JSON.parse(events[0]!.body);
      assert.deepEqual(body.message, { id, uid: 'a1', seen: true, flagged: false });
      assert.deepEqual(body.changes, { seen: true });
      assert.deepEqual(body.account, { id: accountA, name: 'Tenant a' });
      assert.equal(events[0]!.url, 'https://hooks.example.test/popwire');
      assert.equal((await app.request('GET', `/v1/messages/${id}`)).json.seen, true);
      await app.request('PATCH', `/v1/messages/${id}`, { body: { seen: false } });
    });

    it('refuses an empty or unknown change, and a token without the write scope', async () => {
      const id = ids.get('a1')!;
      assert.equal((await app.request('PATCH', `/v1/messages/${id}`, { body: {} })).status, 400);
      assert.equal((await app.request('PATCH', `/v1/messages/${id}`, { body: { seen: 'yes' } })).status, 400);
      assert.equal((await app.request('PATCH', `/v1/messages/${id}`, { body: { read: true } })).status, 400);
      const { token } = await app.store.tokens.create('reader', { scopes: ['read'] });
      const refused = await app.request('PATCH', `/v1/messages/${id}`, { body: { flagged: true }, token });
      assert.equal(refused.status, 403);
      assert.equal((await app.request('DELETE', `/v1/messages/${id}`, { token })).status, 403);
    });

    it('searches every account a token may reach, best first, and only those', async () => {
      const all = await app.request('GET', `/v1/messages?q=${encodeURIComponent('invoice')}`);
      assert.equal(all.status, 200, all.text);
      assert.equal(subjects(all)[0], 'Invoice invoice', 'the word twice in the subject and once in the body ranks first');
      assert.deepEqual([...subjects(all)].sort(), ['Invoice for March', 'Invoice invoice', 'Invoice of tenant b', 'Lunch']);
      const { token } = await app.store.tokens.create('tenant b', { scopes: ['read'], accounts: [accountB] });
      assert.deepEqual(subjects(await app.request('GET', '/v1/messages?q=invoice', { token })), ['Invoice of tenant b']);
      const perAccount = await app.request('GET', `/v1/accounts/${accountA}/messages?q=invoice%20-lunch`);
      assert.deepEqual([...subjects(perAccount)].sort(), ['Invoice for March', 'Invoice invoice']);
      assert.equal((await app.request('GET', `/v1/accounts/${accountA}/messages?q=invoice`, { token })).status, 404, "another tenant's account is not there");
    });

    it('pages a search by cursor and combines it with from, since, seen and flagged', async () => {
      const got: string[] = [];
      let path = '/v1/messages?q=invoice&limit=1';
      for (let n = 0; ; n++) {
        assert.ok(n < 10, 'the pages end');
        const page = await app.request('GET', path);
        assert.equal(page.status, 200, page.text);
        got.push(...subjects(page));
        if (page.json.next === null) break;
        path = `/v1/messages?q=invoice&limit=1&cursor=${page.json.next}`;
      }
      assert.equal(got.length, 4);
      assert.equal(new Set(got).size, 4);
      assert.deepEqual(subjects(await app.request('GET', '/v1/messages?q=invoice&from=example.test&since=2025-11-02')), ['Invoice invoice']);
      await app.request('PATCH', `/v1/messages/${ids.get('a2')}`, { body: { flagged: true } });
      assert.deepEqual(subjects(await app.request('GET', '/v1/messages?q=invoice&flagged=true')), ['Lunch']);
      assert.deepEqual(subjects(await app.request('GET', '/v1/messages?flagged=true')), ['Lunch'], 'the filters work without q too');
      assert.equal((await app.request('GET', '/v1/messages?q=invoice&seen=false')).json.messages.length, 4);
      await app.request('PATCH', `/v1/messages/${ids.get('a2')}`, { body: { flagged: false } });
    });

    it('answers bad search syntax and a cursor of the other kind with a 400 that says why', async () => {
      const unclosed = await app.request('GET', `/v1/messages?q=${encodeURIComponent('"open phrase')}`);
      assert.equal(unclosed.status, 400);
      assert.equal(unclosed.json.error.code, 'INVALID_SEARCH');
      assert.match(unclosed.json.error.message, /quote .* not closed/);
      const onlyNot = await app.request('GET', `/v1/messages?q=${encodeURIComponent('-spam')}`);
      assert.equal(onlyNot.status, 400);
      assert.match(onlyNot.json.error.message, /only excluded terms/);
      const listPage = await app.request('GET', '/v1/messages?limit=1');
      const mixed = await app.request('GET', `/v1/messages?q=invoice&cursor=${listPage.json.next}`);
      assert.equal(mixed.status, 400);
      assert.equal(mixed.json.error.field, 'querystring.cursor');
    });

    it('hides a deleted message from lists and searches unless asked, and purges it now with purge=true', async () => {
      const a3 = ids.get('a3')!;
      assert.equal((await app.request('DELETE', `/v1/messages/${a3}`)).status, 204);
      assert.ok(!subjects(await app.request('GET', `/v1/accounts/${accountA}/messages`)).includes('Invoice invoice'));
      assert.ok(!subjects(await app.request('GET', '/v1/messages?q=invoice')).includes('Invoice invoice'));
      assert.deepEqual(subjects(await app.request('GET', '/v1/messages?deleted=only')), ['Invoice invoice']);
      const still = await app.request('GET', `/v1/messages/${a3}`);
      assert.equal(still.status, 200, 'readable until purged');
      assert.notEqual(still.json.deletedAt, null);
      assert.equal((await app.request('DELETE', `/v1/messages/${a3}?purge=true`)).status, 204);
      assert.equal((await app.request('GET', `/v1/messages/${a3}`)).status, 404);
      assert.equal((await app.request('GET', `/v1/messages/${a3}/raw`)).status, 404);
      assert.equal((await app.request('DELETE', `/v1/messages/${a3}`)).status, 404);
      const uid = await app.store.db.selectFrom('seen_uids').select(['state', 'message_id']).where('account_id', '=', accountA).where('uid', '=', 'a3').executeTakeFirst();
      assert.deepEqual(uid, { state: 'stored', message_id: null }, 'the UID stays known: a sync does not fetch it again');
    });
  });
}
