/**
 * A wrong key ring does not run silently (issue 12). `popwire serve` refuses to start on a store
 * holding secrets no key of its ring opens, naming the missing key ids and the accounts that
 * need them; listing accounts opens no secret (the credential type is kept in clear, and filled
 * in at start for accounts from before); and a run that failed on a key error records what the
 * public-error filter lets through, not the key id ("sealed with key f5fa46bd, which is not in
 * the key ring" reached GET /runs before).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { checkKeyRing } from '../../src/accounts/key-check.ts';
import { popwire } from '../cli/popwire.ts';
import { keyId, SecretBox, SecretKeyError } from '../../src/accounts/secrets.ts';
import { AccountService, type AccountInput } from '../../src/accounts/service.ts';
import { loadConfig } from '../../src/config.ts';
import { startService } from '../../src/serve.ts';
import { Store } from '../../src/store/store.ts';
import { DEFAULT_POLICY } from '../../src/sync/policy.ts';
import { syncAccount } from '../../src/sync/index.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'popwire-key-ring-'));
});
after(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const oldKey = randomBytes(32);
const newKey = randomBytes(32);

function input(user: string): AccountInput {
  return {
    name: user,
    host: 'pop.example.test',
    port: 995,
    tls: 'implicit',
    username: user,
    credentials: { type: 'password', password: `${user}-password` },
    syncInterval: null,
    webhook: { url: 'https://hooks.example.test/popwire', secret: 'a-webhook-secret-of-16+' },
  };
}

async function storeWith(name: string, users: string[]): Promise<{ location: string; store: Store; ids: number[] }> {
  const location = join(dir, name);
  const store = await Store.open({ kind: 'sqlite', dir: location });
  const accounts = new AccountService(store, new SecretBox([oldKey]));
  const ids: number[] = [];
  for (const user of users) ids.push((await accounts.create(input(user))).id);
  return { location, store, ids };
}

describe('the key ring at start', () => {
  it('refuses a ring that lacks a key the store needs, naming the key id and the accounts', async () => {
    const { store, ids } = await storeWith('refused', ['ann', 'bob']);
    try {
      await assert.rejects(checkKeyRing(store, new SecretBox([newKey])), (e: unknown) => {
        assert.ok(e instanceof SecretKeyError);
        assert.match(e.message, new RegExp(`${keyId(oldKey)} \\(accounts ${ids.join(', ')}\\)`));
        assert.match(e.message, new RegExp(`current key is ${keyId(newKey)}`));
        return true;
      });
      // The old key back in the ring, after the new one: it starts.
      await checkKeyRing(store, new SecretBox([newKey, oldKey]));
    } finally {
      await store.close();
    }
  });

  it('makes popwire serve refuse to start with the wrong POPWIRE_SECRET_KEY', async () => {
    const { location, store } = await storeWith('serve', ['cat']);
    await store.close();
    const config = loadConfig({ env: { POPWIRE_STORE: location, POPWIRE_HTTP_PORT: '0', POPWIRE_LOG_LEVEL: 'silent' } });
    const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
    await assert.rejects(
      startService(config, { env: { POPWIRE_SECRET_KEY: newKey.toString('base64') }, logDestination: silent }),
      (e: unknown) => e instanceof SecretKeyError && e.message.includes(keyId(oldKey)),
    );
    const service = await startService(config, { env: { POPWIRE_SECRET_KEY: `${newKey.toString('base64')},${oldKey.toString('base64')}` }, logDestination: silent });
    await service.close();
  });

  it('lists accounts and their credential type without opening a secret, and fills in the type of older accounts at start', async () => {
    const { store, ids } = await storeWith('listing', ['dan', 'eve']);
    try {
      // A ring that opens nothing: the list still works, and still says what kind of credentials each has.
      const blind = new AccountService(store, new SecretBox([newKey]));
      assert.deepEqual(
        (await blind.list()).map((a) => a.credentialType),
        ['password', 'password'],
      );
      // An account from before migration 0005 has no type in clear until a start with its key.
      await store.db.updateTable('accounts').set({ credential_type: null }).where('id', '=', ids[0]!).execute();
      await checkKeyRing(store, new SecretBox([oldKey]));
      assert.equal((await store.accounts.get(ids[0]!)).credential_type, 'password');
    } finally {
      await store.close();
    }
  });

  it('records a run that failed on a missing key without the key id', async () => {
    const { store, ids } = await storeWith('run-error', ['fay']);
    try {
      const report = await syncAccount({
        store,
        accountId: ids[0]!,
        policy: DEFAULT_POLICY,
        connect: async () => {
          throw new SecretKeyError('a stored secret was sealed with key f5fa46bd, which is not in the key ring', { keyId: 'f5fa46bd' });
        },
      });
      assert.equal(report.status, 'failed');
      const [run] = await store.runs.forAccount(ids[0]!);
      assert.equal(run?.error_code, 'SECRET_KEY_MISSING');
      assert.equal(run?.error_message?.includes('f5fa46bd'), false, run?.error_message ?? '');
    } finally {
      await store.close();
    }
  });
});

describe('a key lost for good', () => {
  it('popwire keys forget drops what the lost key sealed: serve starts, and the account waits for new credentials', async () => {
    const { location, store, ids } = await storeWith('forget', ['gus', 'hal']);
    // hal's secrets are re-sealed with the new key; only gus's need the lost one.
    await new AccountService(store, new SecretBox([newKey, oldKey])).update(ids[1]!, { credentials: { type: 'password', password: 'hal-password' }, webhook: input('hal').webhook });
    await store.close();
    const env = { POPWIRE_STORE: location, POPWIRE_SECRET_KEY: newKey.toString('base64') };

    // A mistyped store is not made: there is nothing there to forget.
    const nowhere = join(dir, 'no-store-here');
    const missingStore = await popwire(['keys', 'forget', keyId(oldKey)], { env: { ...env, POPWIRE_STORE: nowhere } });
    assert.equal(missingStore.code, 8, missingStore.stderr);
    assert.match(missingStore.stderr, /no store at/);
    assert.equal(existsSync(nowhere), false);

    const held = await popwire(['keys', 'forget', keyId(newKey)], { env });
    assert.notEqual(held.code, 0);
    assert.match(held.stderr, /is in the key ring/);

    const forgot = await popwire(['keys', 'forget', keyId(oldKey), '--json'], { env });
    assert.equal(forgot.code, 0, forgot.stderr);
    assert.deepEqual(JSON.parse(forgot.stdout.toString()), { forgotten: [{ accountId: ids[0], credentials: true, webhook: true }] });
    // With the lost key's secrets gone, the ring of one key re-seals what is left, and serve's check passes.
    const rotated = await popwire(['keys', 'rotate', '--json'], { env });
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.deepEqual(JSON.parse(rotated.stdout.toString()), { resealed: 0, keyId: keyId(newKey) });

    const reopened = await Store.open({ kind: 'sqlite', dir: location });
    try {
      const ring = new SecretBox([newKey]);
      await checkKeyRing(reopened, ring);
      const [gus, hal] = await new AccountService(reopened, ring).list();
      assert.equal(gus?.needsAttention, true);
      assert.match(gus?.statusNote ?? '', /credentials were sealed with a key that was lost/);
      assert.equal((await reopened.accounts.get(ids[0]!)).webhook_url, null);
      assert.equal(hal?.needsAttention, false);
      assert.equal((await reopened.accounts.get(ids[1]!)).webhook_url, 'https://hooks.example.test/popwire');
    } finally {
      await reopened.close();
    }
  });
});
