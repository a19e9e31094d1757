/**
 * The account routes over real HTTP, on SQLite and PostgreSQL: create, list, read, change,
 * pause and resume, delete keeping or removing the messages (synced from a real Dovecot), and
 * no secret in any response.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { accountBody, startApp, WEBHOOK_SECRET, type TestApp } from './helpers.ts';

const stores = testStores();
let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot({ authFailureDelayMs: 0 });
});
after(() => dovecot?.stop());

const PASSWORD = () => dovecot.users.alice!.password;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Neither secret, nor the sealed form of either, in this text. */
function assertNoSecrets(text: string, what: string) {
  assert.equal(text.includes(PASSWORD()), false, `${what}: the password`);
  assert.equal(text.includes(WEBHOOK_SECRET), false, `${what}: the webhook secret`);
  assert.equal(/"credentials"|v1\.[0-9a-f]{8}\./.test(text), false, `${what}: sealed credentials`);
}

for (const kind of STORE_KINDS) {
  describe(`account routes on ${kind}`, () => {
    let app: TestApp;
    before(async () => {
      app = await startApp(await stores.open(kind), { ca: dovecot.ca });
    });
    after(async () => {
      await app?.close();
      await app?.store.close();
    });

    it('creates, lists, reads, changes, pauses and resumes an account, and never shows a secret', async () => {
      const created = await app.request('POST', '/v1/accounts', { body: accountBody(dovecot, PASSWORD(), { syncInterval: 60 }) });
      assert.equal(created.status, 201, created.text);
      const id = created.json.id as number;
      assert.deepEqual(
        { ...created.json, createdAt: 0, updatedAt: 0, nextSyncAt: 0 },
        {
          id,
          name: 'Alice',
          host: dovecot.host,
          port: dovecot.port,
          tls: 'starttls',
          username: 'alice',
          auth: null,
          credentialType: 'password',
          syncInterval: 60,
          policy: { retention: 'leave', keepDays: null, maxSize: null, oversize: 'skip' },
          policyOwner: 'api',
          webhookUrl: 'https://hooks.example.test/popwire',
          paused: false,
          needsAttention: false,
          statusNote: null,
          identity: null,
          loginDelay: null,
          retryAfter: null,
          nextSyncAt: 0,
          createdAt: 0,
          updatedAt: 0,
          destinations: [],
          skipExisting: false,
        },
      );

      // Times as everywhere in the API: ISO 8601, UTC, with milliseconds.
      for (const field of ['createdAt', 'updatedAt', 'nextSyncAt']) assert.match(created.json[field], ISO_TIME, field);

      const list = await app.request('GET', '/v1/accounts');
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.json.accounts.map((a: { id: number }) => a.id),
        [id],
      );
      const read = await app.request('GET', `/v1/accounts/${id}`);
      assert.deepEqual(read.json, created.json);
      // The list reads fewer columns than a single read (store/accounts.ts listShown): it must show the same.
      assert.deepEqual(list.json.accounts[0], read.json);

      const changed = await app.request('PATCH', `/v1/accounts/${id}`, {
        body: { name: 'Alice at work', syncInterval: null, policy: { retention: 'keep', keepDays: 30, maxSize: 1_000_000, oversize: 'headers' }, credentials: { type: 'password', password: `${PASSWORD()}-new` } },
      });
      assert.equal(changed.status, 200, changed.text);
      assert.equal(changed.json.name, 'Alice at work');
      assert.equal(changed.json.syncInterval, null);
      assert.deepEqual(changed.json.policy, { retention: 'keep', keepDays: 30, maxSize: 1_000_000, oversize: 'headers' });
      assert.equal(app.accounts.clientOptions(await app.accounts.row(id)).password, `${PASSWORD()}-new`);

      const paused = await app.request('POST', `/v1/accounts/${id}/pause`);
      assert.equal(paused.json.paused, true);
      const resumed = await app.request('POST', `/v1/accounts/${id}/resume`);
      assert.equal(resumed.json.paused, false);
      const viaPatch = await app.request('PATCH', `/v1/accounts/${id}`, { body: { paused: true, webhook: null } });
      assert.equal(viaPatch.json.paused, true);
      assert.equal(viaPatch.json.webhookUrl, null);

      for (const [what, reply] of Object.entries({ created, list, read, changed, paused, resumed, viaPatch })) assertNoSecrets(reply.text, what);
      await app.request('DELETE', `/v1/accounts/${id}?keepMessages=false`);
    });

    it('says 409 for a second account of the same mailbox and 404 for an account that is not there', async () => {
      const first = await app.request('POST', '/v1/accounts', { body: accountBody(dovecot, PASSWORD(), { username: 'bob' }) });
      assert.equal(first.status, 201);
      const again = await app.request('POST', '/v1/accounts', { body: accountBody(dovecot, PASSWORD(), { username: 'bob', name: 'Bob again' }) });
      assert.equal(again.status, 409);
      assert.equal(again.json.error.code, 'ACCOUNT_EXISTS');
      assertNoSecrets(again.text, '409');
      for (const [method, path] of [
        ['GET', '/v1/accounts/999999'],
        ['PATCH', '/v1/accounts/999999'],
        ['DELETE', '/v1/accounts/999999?keepMessages=true'],
        ['POST', '/v1/accounts/999999/pause'],
        ['GET', '/v1/accounts/999999/messages'],
        ['GET', '/v1/accounts/999999/runs'],
        ['POST', '/v1/accounts/999999/sync'],
      ] as const) {
        const reply = await app.request(method, path, method === 'PATCH' ? { body: { name: 'x' } } : {});
        assert.equal(reply.status, 404, `${method} ${path}`);
        assert.equal(reply.json.error.code, 'ACCOUNT_NOT_FOUND', `${method} ${path}`);
      }
      await app.request('DELETE', `/v1/accounts/${first.json.id}?keepMessages=false`);
    });

    it('says in the OpenAPI document that times are ISO 8601 date-times and people {name, address}', async () => {
      const { json: spec } = await app.request('GET', '/openapi.json', { token: null });
      const schema = (path: string) => spec.paths[path].get.responses['200'].content['application/json'].schema;
      for (const field of ['createdAt', 'updatedAt']) assert.equal(schema('/v1/accounts/{id}').properties[field].format, 'date-time', field);
      const summary = schema('/v1/accounts/{id}/messages').properties.messages.items.properties;
      assert.deepEqual(Object.keys(summary.to.items.properties), ['name', 'address']);
      assert.equal(schema('/v1/jobs/{id}').properties.queuedAt.format, 'date-time');
    });

    it('clears the note about rejected credentials once new ones are given', async () => {
      const { json: account } = await app.request('POST', '/v1/accounts', { body: accountBody(dovecot, 'not-the-password', { username: 'carol' }) });
      assert.equal((await app.sync(account.id)).status, 'failed');
      const rejected = await app.request('GET', `/v1/accounts/${account.id}`);
      assert.match(rejected.json.statusNote, /rejected the credentials/);
      const fixed = await app.request('PATCH', `/v1/accounts/${account.id}`, { body: { credentials: { type: 'password', password: dovecot.users.carol!.password } } });
      assert.equal(fixed.status, 200, fixed.text);
      assert.equal(fixed.json.statusNote, null);
      assert.equal(fixed.json.needsAttention, false);
      await app.request('DELETE', `/v1/accounts/${account.id}?keepMessages=false`);
    });

    it('deletes an account with its messages, or hides it and keeps them readable, as asked', async () => {
      await dovecot.setMailbox('alice', bulkMessages(3, 500));
      for (const keepMessages of [true, false]) {
        const { json: account } = await app.request('POST', '/v1/accounts', { body: accountBody(dovecot, PASSWORD()) });
        assert.equal((await app.sync(account.id)).newMessages, 3);
        const listed = await app.request('GET', `/v1/accounts/${account.id}/messages`);
        const messageId = listed.json.messages[0].id as number;

        const deleted = await app.request('DELETE', `/v1/accounts/${account.id}?keepMessages=${keepMessages}`);
        assert.equal(deleted.status, 204);
        assert.equal(deleted.text, '');
        assert.equal((await app.request('GET', `/v1/accounts/${account.id}`)).status, 404);
        assert.equal((await app.request('GET', '/v1/accounts')).json.accounts.some((a: { id: number }) => a.id === account.id), false);

        const after = await app.request('GET', `/v1/accounts/${account.id}/messages`);
        const message = await app.request('GET', `/v1/messages/${messageId}`);
        if (keepMessages) {
          assert.equal(after.json.messages.length, 3);
          assert.equal(message.status, 200);
        } else {
          assert.equal(after.status, 404);
          assert.equal(message.status, 404);
          assert.equal(message.json.error.code, 'MESSAGE_NOT_FOUND');
        }
      }
    });
  });
}
