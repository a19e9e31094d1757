/**
 * Accounts on SQLite and PostgreSQL: credentials sealed in the row and absent from every view,
 * client options that log in to a real Dovecot, deletion that keeps or removes the messages,
 * and key rotation that re-seals every secret.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Pop3Client } from 'popwire';
import { startDovecot, type Dovecot } from '../../../../support/dovecot.ts';
import { bulkMessages } from '../../../../support/fixtures.ts';
import { STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { AccountError, AccountService, type AccountInput } from '../../src/accounts/service.ts';
import { SecretBox } from '../../src/accounts/secrets.ts';
import { syncAccount } from '../../src/sync/index.ts';

const stores = testStores();
let dovecot: Dovecot;
before(async () => {
  dovecot = await startDovecot();
});
after(() => dovecot?.stop());

const PASSWORD = () => dovecot.users.alice!.password;
const input = (extra: Partial<AccountInput> = {}): AccountInput => ({
  name: 'Alice',
  host: dovecot.host,
  port: dovecot.port,
  tls: 'starttls',
  username: 'alice',
  credentials: { type: 'password', password: PASSWORD() },
  webhook: { url: 'https://hooks.example.test/popwire', secret: 'webhook-secret-0123456789' },
  ...extra,
});

for (const kind of STORE_KINDS) {
  describe(`accounts on ${kind}`, () => {
    it('seals the credentials in the row and never shows them in a view', async () => {
      await using store = await stores.open(kind);
      const accounts = new AccountService(store, new SecretBox([randomBytes(32)]));
      const created = await accounts.create(input());
      const row = await store.accounts.get(created.id);
      for (const text of [JSON.stringify(row), JSON.stringify(created), JSON.stringify(await accounts.list())]) {
        assert.equal(text.includes(PASSWORD()), false);
        assert.equal(text.includes('webhook-secret'), false);
      }
      assert.equal(created.credentialType, 'password');
      assert.equal(created.webhookUrl, 'https://hooks.example.test/popwire');
      assert.deepEqual(accounts.webhook(row), { url: 'https://hooks.example.test/popwire', secret: 'webhook-secret-0123456789' });
    });

    it('gives client options that log in to the server, TLS verified against the configured CA', async () => {
      await using store = await stores.open(kind);
      const accounts = new AccountService(store, new SecretBox([randomBytes(32)]), { ca: dovecot.ca });
      const { id } = await accounts.create(input());
      await using client = await Pop3Client.connect(accounts.clientOptions(await accounts.row(id)));
      assert.equal(client.secure, true);
      await client.stat();
    });

    it('refuses a second account for the same mailbox, and a keep policy without its days', async () => {
      await using store = await stores.open(kind);
      const accounts = new AccountService(store, new SecretBox([randomBytes(32)]));
      await accounts.create(input());
      await assert.rejects(accounts.create(input({ name: 'again' })), (e: unknown) => e instanceof AccountError && e.code === 'ACCOUNT_EXISTS');
      await assert.rejects(
        accounts.create(input({ username: 'bob', policy: { retention: 'keep' } })),
        (e: unknown) => e instanceof AccountError && e.code === 'ACCOUNT_INVALID' && e.field === 'policy.keepDays',
      );
    });

    it('clears "needs attention" when the credentials change', async () => {
      await using store = await stores.open(kind);
      const accounts = new AccountService(store, new SecretBox([randomBytes(32)]));
      const { id } = await accounts.create(input());
      await store.accounts.update(id, { needs_attention: 1 }, Date.now());
      assert.equal((await accounts.get(id)).needsAttention, true);
      const changed = await accounts.update(id, { credentials: { type: 'password', password: 'new' } });
      assert.equal(changed.needsAttention, false);
      assert.equal(accounts.clientOptions(await accounts.row(id)).password, 'new');
    });

    it('deletes an account and its messages, or hides it and keeps them, as asked', async () => {
      await using store = await stores.open(kind);
      const accounts = new AccountService(store, new SecretBox([randomBytes(32)]), { ca: dovecot.ca });
      await dovecot.setMailbox('alice', bulkMessages(3, 500));
      for (const keepMessages of [true, false]) {
        const { id } = await accounts.create(input());
        const row = await accounts.row(id);
        const report = await syncAccount({ store, accountId: id, connect: () => Pop3Client.connect(accounts.clientOptions(row)), policy: accounts.policy(row) });
        assert.equal(report.newMessages, 3);
        await accounts.remove(id, { keepMessages });
        await assert.rejects(accounts.get(id), (e: unknown) => e instanceof AccountError && e.code === 'ACCOUNT_NOT_FOUND');
        assert.equal(await store.messages.count(id), keepMessages ? 3 : 0);
        const kept = await store.accounts.get(id).catch(() => undefined);
        if (keepMessages) assert.equal(kept?.credentials, null, 'the secrets of a deleted account are dropped');
      }
    });

    it('re-seals every secret with the new key when keys rotate', async () => {
      await using store = await stores.open(kind);
      const oldKey = randomBytes(32);
      const { id } = await new AccountService(store, new SecretBox([oldKey])).create(input());
      const newKey = randomBytes(32);
      const rotated = new AccountService(store, new SecretBox([newKey, oldKey]));
      assert.equal(await rotated.rotateKeys(), 2, 'the credentials and the webhook secret');
      assert.equal(await rotated.rotateKeys(), 0);
      // The old key can now be dropped from the ring.
      const newOnly = new AccountService(store, new SecretBox([newKey]));
      const row = await newOnly.row(id);
      assert.equal(newOnly.clientOptions(row).password, PASSWORD());
      assert.equal(newOnly.webhook(row)?.secret, 'webhook-secret-0123456789');
    });
  });
}
