/**
 * A token made before scopes existed keeps working after the upgrade, as an administrator of
 * every account that never expires: a store left at migration 0002 (the schema of the release
 * before), a token written the way that release wrote it, then the store opened by this version
 * on SQLite and on PostgreSQL, and the API called with the old token.
 */
import assert from 'node:assert/strict';
import Sqlite from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { STORE_KINDS, testStores } from '../../../../support/stores.ts';
import { SQLITE_FILE, type StoreLocation } from '../../src/store/database.ts';
import { migrationProvider } from '../../src/store/migrations/index.ts';
import { Store } from '../../src/store/store.ts';
import { accountBody, startApp } from './helpers.ts';

const stores = testStores();

/** The database at `location` as the release before left it: migrated up to 0002 only. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the old schema has no type here
async function oldStore(location: StoreLocation): Promise<Kysely<any>> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let db: Kysely<any>;
  if (location.kind === 'sqlite') {
    mkdirSync(location.dir, { recursive: true });
    db = new Kysely({ dialect: new SqliteDialect({ database: new Sqlite(join(location.dir, SQLITE_FILE)) }) });
  } else {
    db = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: location.url, max: 1 }) }) });
  }
  const result = await new Migrator({ db, provider: migrationProvider }).migrateTo('0002-service');
  assert.equal(result.error, undefined);
  return db;
}

for (const kind of STORE_KINDS) {
  describe(`a store from before scoped tokens, on ${kind}`, () => {
    it('keeps its tokens working as admin of every account, with no expiry', async () => {
      const location = await stores.location(kind);
      const old = await oldStore(location);
      const token = `pw_${randomBytes(32).toString('base64url')}`;
      await old
        .insertInto('api_tokens')
        .values({ name: 'deployed', token_hash: createHash('sha256').update(token).digest('hex'), created_at: 1, last_used_at: null })
        .execute();
      await old.destroy();

      const store = await Store.open(location);
      const check = await store.tokens.check(token);
      assert.equal(check.ok, true);
      assert.deepEqual(check.ok && [...check.grant.scopes], ['admin']);
      assert.deepEqual(check.ok && check.grant.accounts, { kind: 'all' });
      const [listed] = await store.tokens.list();
      assert.deepEqual({ ...listed, lastUsedAt: null }, { id: listed!.id, name: 'deployed', scopes: ['admin'], accounts: 'all', createdAt: 1, expiresAt: null, lastUsedAt: null });

      const app = await startApp(store);
      const made = await app.request('POST', '/v1/accounts', { token, body: accountBody({ host: 'pop.example.test', port: 995 }, 'pw-0123456789') });
      assert.equal(made.status, 201, made.text);
      const other = await app.request('POST', '/v1/accounts', { body: accountBody({ host: 'other.example.test', port: 995 }, 'pw-0123456789') });
      assert.equal((await app.request('GET', '/v1/accounts', { token })).json.accounts.length, 2, 'every account, also one it did not make');
      assert.equal((await app.request('GET', `/v1/accounts/${other.json.id}`, { token })).status, 200);
      assert.equal((await app.request('GET', '/metrics', { token })).status, 200);
      await app.close();
      await store.close();
    });
  });
}
