/**
 * Two refusals of the API that protect the mailbox behind an account (issue 12). A sync asked
 * for through the API of an account whose credentials the server rejected gets 409 until they
 * change: repeating a rejected password is how providers come to lock an account. And the
 * connection test takes the account's sync lock: while a sync holds it, the test gets 409
 * instead of opening a second session on the maildrop.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { testStores } from '../../../../support/stores.ts';
import { AccountLock } from '../../src/sync/lock.ts';
import { accountBody, startApp, type TestApp } from './helpers.ts';

const stores = testStores();
let dovecot: Dovecot;
let app: TestApp;
before(async () => {
  dovecot = await startDovecot({ authFailureDelayMs: 0 });
  app = await startApp(await stores.open('sqlite'), { ca: dovecot.ca });
});
after(async () => {
  await app?.close();
  await app?.store.close();
  await dovecot?.stop();
});

async function createAccount(): Promise<number> {
  // One account per mailbox key: the previous test's goes first.
  for (const account of (await app.request('GET', '/v1/accounts')).json.accounts ?? []) await app.request('DELETE', `/v1/accounts/${account.id}?keepMessages=false`);
  const reply = await app.request('POST', '/v1/accounts', { body: accountBody(dovecot, dovecot.users.alice!.password) });
  assert.equal(reply.status, 201, reply.text);
  return reply.json.id;
}

describe('an account that needs attention', () => {
  it('gets 409 for a sync asked for through the API, until its credentials change', async () => {
    const id = await createAccount();
    await app.store.accounts.update(id, { needs_attention: 1 }, Date.now());
    const refused = await app.request('POST', `/v1/accounts/${id}/sync`);
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.json.error.code, 'ACCOUNT_NEEDS_ATTENTION');
    assert.equal(app.scheduler.enqueued.filter((j) => j.accountId === id).length, 0, "nothing queued");
    // A change that is not the credentials does not lift it.
    assert.equal((await app.request('PATCH', `/v1/accounts/${id}`, { body: { name: 'renamed' } })).status, 200);
    assert.equal((await app.request('POST', `/v1/accounts/${id}/sync`)).status, 409);
    const changed = await app.request('PATCH', `/v1/accounts/${id}`, { body: { credentials: { type: 'password', password: dovecot.users.alice!.password } } });
    assert.equal(changed.status, 200, changed.text);
    assert.equal((await app.request('POST', `/v1/accounts/${id}/sync`)).status, 202);
  });
});

describe('POST /v1/accounts/{id}/test and the sync lock', () => {
  it('gets 409 while a sync holds the account, and tests (then lets go) once it has ended', async () => {
    const id = await createAccount();
    const sync = await AccountLock.acquire(app.store.db, id);
    try {
      const busy = await app.request('POST', `/v1/accounts/${id}/test`);
      assert.equal(busy.status, 409, busy.text);
      assert.equal(busy.json.error.code, 'ACCOUNT_BUSY');
    } finally {
      await sync.release();
    }
    const tested = await app.request('POST', `/v1/accounts/${id}/test`);
    assert.equal(tested.status, 200, tested.text);
    assert.equal(tested.json.ok, true, tested.text);
    assert.equal((await app.store.accounts.get(id)).lock_owner, null, 'the test let the lock go');
  });
});
