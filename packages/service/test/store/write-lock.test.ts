/**
 * Regression: with two connections to one SQLite store (a `popwire serve` sync worker beside the
 * main thread, or a `popwire sync` process beside serve), a transaction that read first and then
 * wrote failed at once with SQLITE_BUSY ("database is locked") when the other connection had
 * committed in between: a deferred BEGIN takes the write lock only at the first write, and a
 * reader whose snapshot is stale cannot upgrade, so SQLite does not wait out busy_timeout. Bench
 * (e) with two sync workers lost a sync to it. Transactions now BEGIN IMMEDIATE (database.ts):
 * the write lock is taken at the start, where busy_timeout waits for it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { after, it } from 'node:test';
import { Store } from '../../src/store/store.ts';
import { accountFields } from '../../../../support/stores.ts';

let dir: string;
after(() => dir && rm(dir, { recursive: true, force: true }));

it('does not fail a transaction that reads, then writes, when another connection commits in between', async () => {
  dir = await mkdtemp(join(tmpdir(), 'popwire-store-write-lock-'));
  const first = await Store.open({ kind: 'sqlite', dir });
  const second = await Store.open({ kind: 'sqlite', dir });
  try {
    const account = await first.accounts.upsert(accountFields('lock@example.test:110'), 1);
    // The other connection does not wait: its write either goes in now or fails now.
    await sql`pragma busy_timeout = 0`.execute(second.db);
    let otherWrite: 'committed' | 'refused' | undefined;
    await first.db.transaction().execute(async (trx) => {
      await trx.selectFrom('accounts').select('name').where('id', '=', account.id).executeTakeFirstOrThrow();
      otherWrite = await second.accounts.update(account.id, { name: 'other' }, 2).then(
        () => 'committed' as const,
        () => 'refused' as const,
      );
      await trx.updateTable('accounts').set({ name: 'mine' }).where('id', '=', account.id).execute();
    });
    assert.equal(otherWrite, 'refused', 'the write lock was held from the transaction’s start');
    assert.equal((await second.accounts.get(account.id)).name, 'mine');
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});
