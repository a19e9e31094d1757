/**
 * A purge is the store's business only (issue 15): against a real Dovecot, a message synced,
 * then soft-deleted and purged through the API, is still on the server afterwards, and the
 * next sync neither stores it again nor deletes anything, on SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pop3Client } from 'popwire';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { accountBody, startApp } from './helpers.ts';

const stores = testStores();

const MAILBOX = [1, 2, 3].map((n) => Buffer.from(`From: a${n}@example.test\r\nSubject: Purge me ${n}\r\nMessage-ID: <p${n}@popwire.test>\r\n\r\nBody ${n}.\r\n`));

let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot({ authFailureDelayMs: 0 });
});
after(() => dovecot?.stop());

async function serverCount(password: string): Promise<number> {
  await using client = await Pop3Client.connect({ host: dovecot.host, port: dovecot.port, tls: 'starttls', ca: dovecot.ca, user: 'alice', password });
  const stat = await client.stat();
  await client.quit();
  return stat.count;
}

for (const kind of STORE_KINDS) {
  describe(`purging a synced message on ${kind}`, () => {
    it('leaves it on the server, and the next sync stores nothing again', async () => {
      await dovecot.setMailbox('alice', MAILBOX);
      const password = dovecot.users.alice!.password;
      await using app = await startApp(await stores.open(kind), { ca: dovecot.ca });
      const created = await app.request('POST', '/v1/accounts', { body: accountBody(dovecot, password) });
      assert.equal(created.status, 201, created.text);
      const accountId = created.json.id;
      assert.equal((await app.sync(accountId)).newMessages, 3);
      const page = await app.request('GET', `/v1/accounts/${accountId}/messages`);
      const target = page.json.messages.find((m: { subject: string }) => m.subject === 'Purge me 2');
      assert.equal((await app.request('DELETE', `/v1/messages/${target.id}`)).status, 204);
      assert.equal((await app.request('DELETE', `/v1/messages/${target.id}?purge=true`)).status, 204);
      assert.equal((await app.request('GET', `/v1/messages/${target.id}`)).status, 404);

      const again = await app.sync(accountId);
      assert.equal(again.newMessages, 0, 'the purged message is not fetched again');
      assert.equal(again.deleted, 0);
      assert.equal(await serverCount(password), 3, 'all three are still on the server');
      const listed = await app.request('GET', `/v1/accounts/${accountId}/messages`);
      assert.deepEqual(listed.json.messages.map((m: { subject: string }) => m.subject).sort(), ['Purge me 1', 'Purge me 3']);
      await app.store.close();
    });
  });
}
