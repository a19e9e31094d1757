/**
 * What opening a store costs when there is nothing to migrate, and what a sync run's first
 * question of the store (an unfinished large message left by a crash?) reads: every `popwire
 * sync` pays both before its session (bench (j)). On SQLite and PostgreSQL alike.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { CompiledQuery, sql } from 'kysely';
import { STORE_KINDS, accountFields, testStores } from '../../../../support/stores.ts';
import { migrate } from '../../src/store/database.ts';
import { StoreError } from '../../src/store/errors.ts';
import { migrationProvider } from '../../src/store/migrations/index.ts';
import { Store } from '../../src/store/store.ts';

const stores = testStores();

/** Counts the statements a Kysely instance runs. */
class Counter implements KyselyPlugin {
  statements = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    this.statements++;
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

for (const kind of STORE_KINDS) {
  describe(`opening the store on ${kind}`, () => {
    it('asks one question of a store whose every migration has run, and changes nothing', async () => {
      const location = await stores.location(kind);
      await (await Store.open(location)).close();
      await using store = await Store.open(location);
      const counter = new Counter();
      await migrate(store.db.withPlugin(counter));
      assert.equal(counter.statements, 1);
    });

    it('runs a migration the store has not had yet', async () => {
      await using store = await stores.open(kind);
      const real = await migrationProvider.getMigrations();
      const added = { up: async (db: any) => void (await db.schema.createTable('opening_test_added').addColumn('id', 'integer').execute()) };
      await migrate(store.db, { getMigrations: async () => ({ ...real, '9999-added': added }) });
      const { rows } = await sql<{ name: string }>`select name from kysely_migration where name = '9999-added'`.execute(store.db);
      assert.equal(rows.length, 1);
      await sql`drop table opening_test_added`.execute(store.db);
    });

    it('refuses a store that a newer popwire migrated further', async () => {
      await using store = await stores.open(kind);
      const { '0008-pending-index': _newest, ...older } = await migrationProvider.getMigrations();
      await assert.rejects(
        migrate(store.db, { getMigrations: async () => older }),
        (e: unknown) => e instanceof StoreError && /0008-pending-index/.test(e.message),
      );
    });

    it("finds a run's unfinished messages through an index, not by reading the account's messages", async () => {
      await using store = await stores.open(kind);
      const account = await store.accounts.upsert(accountFields('a'), 1);
      const question = store.db.selectFrom('messages').select('id').where('account_id', '=', account.id).where('pending', '=', 1).compile();
      const explain = kind === 'sqlite' ? 'explain query plan ' : 'explain ';
      const plan = await store.db.connection().execute(async (db) => {
        // Small tables are read whole by PostgreSQL's planner whatever indexes exist: ask it not to.
        if (kind === 'postgres') await sql`set enable_seqscan = off`.execute(db);
        try {
          return await db.executeQuery<Record<string, string>>(CompiledQuery.raw(explain + question.sql, [...question.parameters]));
        } finally {
          if (kind === 'postgres') await sql`reset enable_seqscan`.execute(db);
        }
      });
      assert.match(plan.rows.map((r) => r.detail ?? r['QUERY PLAN']).join('\n'), /messages_pending/);
    });
  });
}
