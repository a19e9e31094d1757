/**
 * `popwire sync` brings its account's row up to date with its options before each run. Run from
 * cron with the same options every time, that was a committed (and, on SQLite, fsynced) write
 * of a row that did not change, in every run that then found nothing new.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testStores } from '../../../../../support/stores.ts';
import { accountFields, loginUrl, policyOf } from '../../../src/cli/sync/account.ts';
import { claimAccount } from '../../../src/cli/sync/policy-owner.ts';

const stores = testStores();

describe("the account row of popwire sync's runs", () => {
  it('is left as it is when the options are the ones it holds, and brought up to date when they change', async () => {
    await using store = await stores.open('sqlite');
    const policy = policyOf({});
    const fields = accountFields(loginUrl('pop3://alice@mail.example:110'), {}, policy);
    const first = await claimAccount(store, fields, policy, {}, 1000);
    assert.equal(first.account.updated_at, 1000);

    const again = await claimAccount(store, fields, policy, {}, 2000);
    assert.equal(again.account.id, first.account.id);
    assert.equal((await store.accounts.get(first.account.id)).updated_at, 1000, 'the same options: no write');

    const deleting = policyOf({ delete: true });
    const changed = await claimAccount(store, accountFields(loginUrl('pop3://alice@mail.example:110'), {}, deleting), deleting, { delete: true }, 3000);
    assert.deepEqual([changed.account.policy, changed.account.updated_at], ['delete', 3000]);

    const plaintext = await claimAccount(store, accountFields(loginUrl('pop3://alice@mail.example:110'), { allowPlaintext: true }, deleting), deleting, { delete: true }, 4000);
    assert.deepEqual([plaintext.account.allow_plaintext_auth, plaintext.account.updated_at], [1, 4000]);
  });
});
