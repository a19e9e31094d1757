/**
 * The SQLite store's hygiene (issue 12). Its file holds every message and every sealed
 * credential: it is made mode 0600 (and its -wal and -shm files with it), whatever the umask.
 * Migrations are atomic: a migration that fails halfway (as a crash would leave it) leaves the
 * schema as it was, with no half-added table or column and no migration recorded, so the next
 * start can run it again. Kysely's SQLite adapter said DDL was not transactional, so each
 * statement of a migration used to commit on its own.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely, type Migration } from 'kysely';
import { after, before, describe, it } from 'node:test';
import { migrate, openSqlite, SQLITE_FILE } from '../../src/store/database.ts';
import { StoreError } from '../../src/store/errors.ts';
import { migrationProvider } from '../../src/store/migrations/index.ts';
import { Store } from '../../src/store/store.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'popwire-store-hygiene-'));
});
after(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const mode = (file: string) => statSync(file).mode & 0o777;

describe('the SQLite store', () => {
  it('is made mode 0600, its -wal and -shm files too, even under a umask of 022', async () => {
    const previous = process.umask(0o022);
    try {
      const location = join(dir, 'modes');
      await using store = await Store.open({ kind: 'sqlite', dir: location });
      await store.tokens.create('t');
      for (const suffix of ['', '-wal', '-shm']) assert.equal(mode(join(location, SQLITE_FILE + suffix)).toString(8), '600', `${SQLITE_FILE}${suffix}`);
      assert.equal(mode(location).toString(8), '700');
    } finally {
      process.umask(previous);
    }
  });

  it('leaves the old schema when a migration fails halfway, and records nothing of it', async () => {
    const location = join(dir, 'migrations');
    const { db } = openSqlite(location);
    try {
      await migrate(db);
      const before = await schema(db);
      const broken: Migration = {
        async up(trx: Kysely<any>) {
          await trx.schema.createTable('half_made').addColumn('id', 'integer').execute();
          await trx.schema.alterTable('accounts').addColumn('half_added', 'text').execute();
          throw new Error('the process died here');
        },
      };
      const real = await migrationProvider.getMigrations();
      await assert.rejects(
        migrate(db, { getMigrations: async () => ({ ...real, '9999-broken': broken }) }),
        (e: unknown) => e instanceof StoreError && e.code === 'STORE_MIGRATION_FAILED' && /9999-broken/.test(e.message),
      );
      assert.deepEqual(await schema(db), before, 'the schema is what it was');
      const recorded = await sql<{ name: string }>`select name from kysely_migration`.execute(db);
      assert.equal(recorded.rows.some((r) => r.name === '9999-broken'), false);
    } finally {
      await db.destroy();
    }
  });
});

async function schema(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ sql: string | null }>`select sql from sqlite_master order by name`.execute(db);
  return rows.map((r) => r.sql ?? '');
}
